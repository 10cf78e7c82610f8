/**
 * What the DKIM filter reports to its observer (the metrics): for each signature added or
 * verified, how its signing domain stands to the From domain (observer.ts, DomainClass).
 */
import assert from "node:assert/strict";
import { toBase64 } from "../../lib/bytes.ts";
import { loadRuntime } from "../../lib/cli/runtime.ts";
import { DkimFilter } from "../../lib/filter/dkim_filter.ts";
import type { TransactionReport } from "../../lib/filter/observer.ts";
import type { Reply } from "../../lib/milter/reply.ts";
import { KEYS_DIR, loadKey } from "../helpers/dkim_fixtures.ts";
import { applyModifications, type HeaderPair } from "../helpers/milter_apply.ts";
import { MemoryLogger } from "../helpers/milter_logger.ts";
import { runTransaction } from "../helpers/milter_transaction.ts";
import { ZoneResolver } from "../helpers/zone_resolver.ts";

const NOW = 1_800_000_000;
const BODY = "Hello.\r\n";

async function filterWith(dir: string, reports: TransactionReport[]): Promise<DkimFilter> {
  await Deno.copyFile(new URL("ed25519.pem", KEYS_DIR), `${dir}/ed.pem`);
  await Deno.chmod(`${dir}/ed.pem`, 0o600);
  // Mail from example.org is signed by example.com: a third party to its author.
  await Deno.writeTextFile(`${dir}/key.table`, `ed example.com:ed:${dir}/ed.pem\n`);
  await Deno.writeTextFile(`${dir}/signing.table`, "*@example.com ed\n*@example.org ed\n");
  await Deno.writeTextFile(
    `${dir}/dkimd.conf`,
    `Mode sv\nKeyTable ${dir}/key.table\nSigningTable refile:${dir}/signing.table\n`,
  );
  const loaded = (await loadRuntime(`${dir}/dkimd.conf`)).loaded;
  const ed = await loadKey("ed25519.pem");
  const zone = new ZoneResolver({
    "ed._domainkey.example.com": [`v=DKIM1; k=ed25519; p=${toBase64(ed.publicKey)}`],
  });
  return new DkimFilter({
    runtime: () => ({ loaded, resolver: zone }),
    logger: new MemoryLogger(),
    hostname: "mx.example.net",
    now: () => NOW,
    observer: {
      transaction: (r) => reports.push(r),
      lookup() {},
      connections() {},
    },
  });
}

function run(
  filter: DkimFilter,
  address: string,
  headers: readonly HeaderPair[],
): Promise<Reply[]> {
  return runTransaction(filter, { address, headers, bodyChunks: [BODY] });
}

Deno.test("DkimFilter reports each signature's domain class: author, third-party, none", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const reports: TransactionReport[] = [];
    const filter = await filterWith(dir, reports);
    const own: HeaderPair[] = [["From", " Ann <ann@Example.COM>"], ["Subject", " x"]];
    const listed: HeaderPair[] = [["From", " Lou <lou@example.org>"], ["Subject", " y"]];
    // d=example.com signs for From: ann@example.com (author) and lou@example.org (third party).
    const ownSigned = applyModifications(own, await run(filter, "127.0.0.1", own));
    const listedSigned = applyModifications(listed, await run(filter, "127.0.0.1", listed));
    assert.deepEqual(
      reports.map((r) => [r.disposition, r.domainClasses]),
      [["signed", ["author"]], ["signed", ["third-party"]]],
    );
    // Verifying: the same classes, whatever the result; an unsigned message has none.
    reports.length = 0;
    await run(filter, "192.0.2.1", ownSigned);
    await run(filter, "192.0.2.1", listedSigned);
    await run(filter, "192.0.2.1", own);
    assert.deepEqual(
      reports.map((r) => [r.disposition, r.results, r.domainClasses]),
      [
        ["verified", ["pass"], ["author"]],
        ["verified", ["pass"], ["third-party"]],
        ["verified", ["none"], ["none"]],
      ],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
