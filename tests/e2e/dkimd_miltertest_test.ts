/**
 * dkimd as a real process (`deno run main.ts -x CONFIG -f`, OpenDKIM's flags), driven by
 * miltertest (Debian's `miltertest`, OpenDKIM's own milter test driver) through dkimd.lua:
 * signing for an internal client over several transactions with an abort, verifying for an
 * external one.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { fromLatin1, latin1, toBase64 } from "../../lib/bytes.ts";
import { signMessage } from "../../lib/dkim/sign.ts";
import { verifyMessage } from "../../lib/dkim/verify.ts";
import { KeyFileResolver } from "../../lib/dns/key_file.ts";
import { KEYS_DIR, loadKey } from "../helpers/dkim_fixtures.ts";
import { startDkimd } from "../helpers/dkimd_process.ts";

const MILTERTEST = "/usr/bin/miltertest";
const here = (name: string) => fileURLToPath(new URL(name, import.meta.url));
const BODY = "Hi Bob,\r\n\r\nNoon at the usual place?  \r\n\r\nAlice\r\n";

function messageText(id: string, body: string): Uint8Array {
  return fromLatin1(
    "From: Alice <alice@example.com>\r\nTo: Bob <bob@example.org>\r\nSubject: Lunch tomorrow?\r\n" +
      `Date: Fri, 27 Nov 2026 12:00:00 +0000\r\nMessage-ID: <${id}@example.com>\r\n\r\n${body}`,
  );
}

Deno.test("dkimd signs and verifies under miltertest: transactions, abort, internal and external clients", async () => {
  const dir = await Deno.makeTempDir();
  const key = await loadKey("ed25519.pem");
  await Deno.copyFile(new URL("ed25519.pem", KEYS_DIR), `${dir}/ed.private`);
  await Deno.chmod(`${dir}/ed.private`, 0o600);
  const record = `v=DKIM1; k=ed25519; p=${toBase64(key.publicKey)}`;
  await Deno.writeTextFile(`${dir}/keys.txt`, `ed._domainkey.example.com ${record}\n`);
  await Deno.writeTextFile(`${dir}/key.table`, `ed example.com:ed:${dir}/ed.private\n`);
  await Deno.writeTextFile(`${dir}/signing.table`, "*@example.com ed\n");
  await Deno.writeTextFile(`${dir}/TrustedHosts`, "127.0.0.1\nlocalhost\n");
  const dkimd = await startDkimd(
    dir,
    (socket) =>
      `Mode sv\nSocket ${socket}\nKeyTable ${dir}/key.table\nSigningTable refile:${dir}/signing.table\n` +
      `InternalHosts ${dir}/TrustedHosts\nExternalIgnoreList ${dir}/TrustedHosts\n` +
      `Canonicalization relaxed/relaxed\nTestPublicKeys ${dir}/keys.txt\nAuthservID mx.example.net\n` +
      `SyslogSuccess yes\nLogWhy yes\n`,
  );
  try {
    // A signature for message Q5 as the filter will see it.
    const [field] = await signMessage(messageText("Q5", BODY), [{
      domain: "example.com",
      selector: "ed",
      key,
    }]);
    const signature = latin1(field.raw).replace(/^DKIM-Signature: /, "").replaceAll("\r\n", "\n");
    const out = await new Deno.Command(MILTERTEST, {
      args: [
        "-s",
        here("dkimd.lua"),
        "-D",
        `socket=${dkimd.socket}`,
        "-D",
        `helpers=${here("../milter/mt_helpers.lua")}`,
        "-D",
        `signature=${signature}`,
        "-D",
        `body=${BODY}`,
        "-D",
        `tampered=${BODY.replace("Noon", "Nine")}`,
      ],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    assert.equal(
      out.code,
      0,
      `miltertest failed:\n${stdout}${new TextDecoder().decode(out.stderr)}\n${dkimd.log()}`,
    );

    // Message 1 as delivered, with the signature dkimd added, verifies.
    const sig1 = stdout.match(/^SIGNATURE1=(.*(?:\n\t.*)*)$/m)?.[1];
    assert.ok(sig1, stdout);
    const delivered = new Uint8Array([
      ...fromLatin1(`DKIM-Signature:${sig1.replaceAll("\n", "\r\n")}\r\n`),
      ...messageText("Q1", BODY),
    ]);
    const resolver = new KeyFileResolver(new Map([["ed._domainkey.example.com", [record]]]));
    const [v] = await verifyMessage(delivered, { resolver });
    assert.equal(v.result, "pass", String(v.reason));

    assert.match(
      stdout,
      /^RESULTS5= ?mx\.example\.net;\n\tdkim=pass \(256-bit key\) header\.d=example\.com/m,
    );
    assert.match(
      stdout,
      /^RESULTS6= ?mx\.example\.net;\n\tdkim=fail \(256-bit key\) reason="body hash did not verify"/m,
    );
    const log = dkimd.log();
    assert.match(log, /Q1: DKIM-Signature field added \(s=ed, d=example\.com\)/);
    assert.match(
      log,
      /Q2: no signing table match for 'alice@example\.org'|Q2: no signing table match for 'carol@example\.org'/,
    );
    assert.match(log, /Q4: DKIM-Signature field added/);
    assert.doesNotMatch(log, /Q3: DKIM-Signature field added/);
    assert.match(log, /Q5: DKIM verification successful/);
    assert.match(log, /Q6: bad signature data \(s=ed d=example\.com\): body hash did not verify/);
  } finally {
    await dkimd.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
