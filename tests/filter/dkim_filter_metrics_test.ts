/**
 * What the DKIM filter reports to its observer (the metrics): for each signature added or
 * verified, how its signing domain stands to the From domain (observer.ts, DomainClass), and
 * how each key lookup went.
 */
import assert from "node:assert/strict";
import { DkimFilter } from "../../lib/filter/dkim_filter.ts";
import type { LookupReport, TransactionReport } from "../../lib/filter/observer.ts";
import type { Reply } from "../../lib/milter/reply.ts";
import { MemoryMta, testMessage } from "../helpers/memory_mta.ts";
import { exampleSigning, memoryRuntime } from "../helpers/memory_runtime.ts";
import { applyModifications, type HeaderPair } from "../helpers/milter_apply.ts";
import { MemoryLogger } from "../helpers/milter_logger.ts";
import type { ZoneEntry } from "../helpers/zone_resolver.ts";

const NOW = 1_800_000_000;
const BODY = "Hello.\r\n";

async function filterWith(
  reports: TransactionReport[],
  lookups: LookupReport[] = [],
  dns: Record<string, ZoneEntry> = {},
): Promise<DkimFilter> {
  const { files, zone } = await exampleSigning();
  // Mail from example.org is signed by example.com: a third party to its author.
  const runtime = await memoryRuntime(
    "Mode sv\nKeyTable /etc/dkimd/key.table\nSigningTable refile:/etc/dkimd/signing.table\n",
    {
      files: {
        "/etc/dkimd/key.table": "ed example.com:ed:/etc/dkimd/keys/ed.pem\n",
        "/etc/dkimd/signing.table": "*@example.com ed\n*@example.org ed\n",
        "/etc/dkimd/keys/ed.pem": files["/etc/dkimd/keys/ed.pem"],
      },
      zone: { ...zone, ...dns },
    },
  );
  return new DkimFilter({
    runtime: () => runtime,
    logger: new MemoryLogger(),
    hostname: "mx.example.net",
    now: () => NOW,
    observer: {
      transaction: (r) => reports.push(r),
      lookup: (r) => lookups.push(r),
      connections() {},
    },
  });
}

async function run(
  filter: DkimFilter,
  address: string,
  headers: readonly HeaderPair[],
): Promise<Reply[]> {
  const r = await new MemoryMta(filter).sendMessage(testMessage(address, headers, BODY));
  return [...r.modifications, r.final];
}

Deno.test("DkimFilter reports each signature's domain class: author, third-party, none", async () => {
  const reports: TransactionReport[] = [];
  const filter = await filterWith(reports);
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
});

Deno.test("DkimFilter reports each key lookup's outcome: ok, or the DNS error's code", async () => {
  const headers: HeaderPair[] = [["From", " Ann <ann@example.com>"], ["Subject", " x"]];
  const signed = applyModifications(headers, await run(await filterWith([]), "127.0.0.1", headers));
  const outcomes = async (dns: Record<string, ZoneEntry>) => {
    const lookups: LookupReport[] = [];
    await run(await filterWith([], lookups, dns), "192.0.2.1", signed);
    return lookups.map((l) => l.outcome);
  };
  assert.deepEqual(await outcomes({}), ["ok"]);
  assert.deepEqual(await outcomes({ "ed._domainkey.example.com": "servfail" }), ["servfail"]);
});
