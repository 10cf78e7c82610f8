// The security properties of issue 8, end to end: dkimd behind a real Postfix, running the
// example configuration systemd/dkimd.conf (with only paths, socket and logging changed), keys in
// a real DNS server (knot). Forged Authentication-Results claiming our authserv-id are removed
// however many there are; a From or Subject prepended after signing breaks the signature
// (oversigning), and a second From never passes; content appended after an l= count makes the
// result policy and is logged; an i= outside d= and a subdomain i= under a t=s key fail. Each
// case has a control that passes, so the property is what decides.
import assert from "node:assert/strict";
import { concat, CRLF, fromLatin1, latin1, toBase64 } from "../../lib/bytes.ts";
import { importPrivateKey, type SigningKey } from "../../lib/crypto/private_key.ts";
import { BodyHashes } from "../../lib/dkim/body_hasher.ts";
import { selectHeaders, splitMessage } from "../../lib/dkim/header.ts";
import { headerHashInput, signMessage, type SignOptions } from "../../lib/dkim/sign.ts";
import {
  appendSignatureValue,
  formatSignaturePrefix,
  SIGNATURE_FIELD,
} from "../../lib/dkim/signature.ts";
import { verifyMessage } from "../../lib/dkim/verify.ts";
import { parseNameserverList } from "../../lib/dns/nameserver.ts";
import { StubResolver } from "../../lib/dns/stub.ts";
import { KEYS_DIR, recordFor } from "../helpers/dkim_fixtures.ts";
import { type DkimdProcess, startDkimd } from "../helpers/dkimd_process.ts";
import { type DnsServer, startDnsServer } from "../helpers/dns_server.ts";
import { type PostfixInstance, startPostfix } from "../helpers/postfix.ts";
import type { ReceivedMessage } from "../helpers/smtp.ts";

const DOMAIN = "example.com";
const AUTHSERV = "mx.postfix.test"; // Postfix's myhostname, the MTA name dkimd takes by default
const EXAMPLE_CONFIG = new URL("../../systemd/dkimd.conf", import.meta.url);
/** Bounds every wait for delivery or a log line; a healthy run needs well under a second. */
const WAIT_MS = 20_000;

interface World {
  readonly dir: string;
  readonly dns: DnsServer;
  readonly own: SigningKey;
  readonly outside: SigningKey;
  readonly postfix: PostfixInstance;
  readonly dkimd: DkimdProcess;
  readonly delivered: ReceivedMessage[];
  close(): Promise<void>;
}

async function key(file: string): Promise<SigningKey> {
  return await importPrivateKey(await Deno.readTextFile(new URL(file, KEYS_DIR)), file);
}

/** The example configuration with the test's paths, socket and logging appended (last wins). */
async function exampleConfig(dir: string, dns: DnsServer): Promise<(socket: string) => string> {
  const text = await Deno.readTextFile(EXAMPLE_CONFIG);
  return (socket) =>
    `${text}\n# The test's own:\nSocket ${socket}\nPidFile ${dir}/dkimd.pid\nSyslog no\n` +
    `Background no\nKeyTable ${dir}/key.table\nSigningTable refile:${dir}/signing.table\n` +
    `InternalHosts 127.0.0.1\nNameservers ${dns.nameserver}\nLogResults yes\n`;
}

async function world(): Promise<World> {
  const dir = await Deno.makeTempDir();
  await Deno.chmod(dir, 0o755);
  const own = await key("rsa2048_pkcs8.pem");
  const outside = await key("rsa3072.pem");
  const pem = await Deno.readTextFile(new URL("rsa2048_pkcs8.pem", KEYS_DIR));
  await Deno.writeTextFile(`${dir}/own.private`, pem, { mode: 0o600 });
  await Deno.writeTextFile(`${dir}/key.table`, `own ${DOMAIN}:own:${dir}/own.private\n`);
  await Deno.writeTextFile(`${dir}/signing.table`, `*@${DOMAIN} own\n`);
  const dns = await startDnsServer({
    zone: DOMAIN,
    records: {
      [`own._domainkey.${DOMAIN}`]: [recordFor(own)],
      [`outside._domainkey.${DOMAIN}`]: [recordFor(outside)],
      [`strict._domainkey.${DOMAIN}`]: [recordFor(outside, "t=s; ")],
    },
  });
  let dkimd: DkimdProcess | undefined;
  let postfix: PostfixInstance | undefined;
  try {
    dkimd = await startDkimd(dir, await exampleConfig(dir, dns));
    postfix = await startPostfix({ smtpdMilters: `inet:127.0.0.1:${dkimd.port}` });
  } catch (e) {
    await dkimd?.stop();
    await dns.close();
    throw e;
  }
  const p = postfix;
  const d = dkimd;
  return {
    dir,
    dns,
    own,
    outside,
    postfix: p,
    dkimd: d,
    delivered: [],
    async close() {
      await p.stop();
      await d.stop();
      await dns.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function message(from: string, subject: string, body = "Please pay the invoice.\r\n") {
  return fromLatin1(
    `From: Alice <${from}>\r\nTo: Bob <bob@example.org>\r\nSubject: ${subject}\r\n` +
      `Date: Fri, 27 Nov 2026 12:00:00 +0000\r\nMessage-ID: <${
        subject.replace(/\W/g, "")
      }@example.com>\r\n\r\n${body}`,
  );
}

async function signedBy(bytes: Uint8Array, options: SignOptions[]): Promise<Uint8Array> {
  const fields = await signMessage(bytes, options, { now: () => Date.now() / 1000 });
  return concat([...fields.flatMap((f) => [f.raw, CRLF]), bytes]);
}

/**
 * A signature that is cryptographically good but claims `identity` outside `d=`: our Signer
 * refuses to make one, so it is put together from the core's parts.
 */
async function signedWithIdentity(
  bytes: Uint8Array,
  key: SigningKey,
  selector: string,
  identity: string,
): Promise<Uint8Array> {
  const { fields, bodyOffset } = splitMessage(bytes);
  const spec = { canonicalization: "relaxed", algorithm: "sha256" } as const;
  const hashes = new BodyHashes();
  hashes.add(spec);
  hashes.push(bytes.subarray(bodyOffset));
  hashes.finish();
  const names = ["from", "to", "subject", "date"];
  const prefix = formatSignaturePrefix({
    algorithm: "rsa-sha256",
    headerCanonicalization: "relaxed",
    bodyCanonicalization: "relaxed",
    domain: DOMAIN,
    selector,
    identity,
    timestamp: Math.floor(Date.now() / 1000),
    headers: names,
    bodyHash: toBase64(hashes.result(spec).hash),
  });
  const data = headerHashInput(
    selectHeaders(fields, names),
    { name: SIGNATURE_FIELD, raw: fromLatin1(prefix) },
    "relaxed",
  );
  const field = appendSignatureValue(prefix, toBase64(await key.sign(data)));
  return concat([fromLatin1(field), CRLF, bytes]);
}

/** Sends `data` through Postfix from `source` and returns the copy Postfix delivered. */
async function through(w: World, data: Uint8Array, source = "::1"): Promise<string> {
  const r = await w.postfix.sendSmtp({
    from: "someone@example.org",
    to: "bob@example.org",
    data,
    sourceAddress: source,
  });
  assert.equal(r.reply.code, 250, r.reply.lines.join(" "));
  const all = await w.postfix.waitForMessages(w.delivered.length + 1, WAIT_MS);
  w.delivered.push(all[w.delivered.length]);
  return latin1(all[w.delivered.length - 1].data);
}

function fields(text: string, name: string): string[] {
  return splitMessage(fromLatin1(text)).fields
    .filter((f) => f.name.toLowerCase() === name.toLowerCase())
    .map((f) => latin1(f.raw).replace(/\r\n[ \t]/g, " "));
}

/** Our Authentication-Results field: exactly one must claim our authserv-id. */
function ours(text: string): string {
  const mine = fields(text, "Authentication-Results").filter((f) =>
    f.toLowerCase().includes(AUTHSERV)
  );
  assert.equal(mine.length, 1, mine.join("\n"));
  return mine[0];
}

Deno.test("security properties behind Postfix with the example configuration", async (t) => {
  const oversign = /^OversignHeaders\s+(.*)$/m.exec(await Deno.readTextFile(EXAMPLE_CONFIG));
  assert.ok(oversign, "systemd/dkimd.conf sets OversignHeaders");
  assert.match(oversign[1], /\bFrom\b/);
  const w = await world();
  try {
    await t.step("forged Authentication-Results with our authserv-id are all removed", async () => {
      const forged = [
        `Authentication-Results: ${AUTHSERV}; dkim=pass header.d=bank.example`,
        `Authentication-Results: MX.Postfix.TEST; dkim=pass header.d=bank.example`,
        `Authentication-Results: (trust me) ${AUTHSERV}; spf=pass smtp.mailfrom=bank.example`,
        `Authentication-Results: ${AUTHSERV}/4F2A1; dkim=pass header.i=@bank.example`,
        `Authentication-Results:\r\n\t${AUTHSERV} 1;\r\n\tdkim=pass header.d=bank.example`,
        `Authentication-Results: other.example; dkim=pass header.d=bank.example`,
      ].join("\r\n");
      const bytes = fromLatin1(
        `${forged}\r\n${latin1(message("ceo@bank.example", "forged results"))}`,
      );
      const got = await through(w, bytes);
      // The example configuration adds no result to unsigned mail (AlwaysAddARHeader no), so
      // no field may claim our authserv-id at all.
      assert.deepEqual(
        fields(got, "Authentication-Results").filter((f) => f.toLowerCase().includes(AUTHSERV)),
        [],
      );
      // Another host's results are not ours to remove.
      assert.deepEqual(
        fields(got, "Authentication-Results").filter((f) => f.includes("other.example")),
        ["Authentication-Results: other.example; dkim=pass header.d=bank.example"],
      );
      await w.dkimd.waitForLog(
        /removed 5 Authentication-Results field\(s\) claiming to be from "mx\.postfix\.test"/,
        WAIT_MS,
      );
    });

    let signedOut = "";
    await t.step("outbound mail is signed with From and Subject oversigned", async () => {
      signedOut = await through(w, message(`alice@${DOMAIN}`, "invoice"), "127.0.0.1");
      const [sig] = fields(signedOut, "DKIM-Signature");
      const h = /\bh=([^;]*)/.exec(sig)![1].toLowerCase().split(":");
      assert.equal(h.filter((n) => n === "from").length, 2, sig);
      assert.equal(h.filter((n) => n === "subject").length, 2, sig);
      const resolver = new StubResolver({ nameservers: parseNameserverList(w.dns.nameserver) });
      const [v] = await verifyMessage(fromLatin1(signedOut), { resolver });
      assert.equal(v.result, "pass");
    });

    await t.step("the signed message passes inbound unchanged (control)", async () => {
      const got = await through(w, fromLatin1(signedOut));
      assert.match(ours(got), /dkim=pass \(2048-bit key\) header\.d=example\.com/);
    });

    await t.step("a From prepended after signing fails the oversigned signature", async () => {
      const got = await through(w, fromLatin1(`From: <ceo@example.com>\r\n${signedOut}`));
      assert.match(ours(got), /dkim=fail \(2048-bit key\) reason="signature did not verify"/);
    });

    await t.step("a Subject prepended after signing fails the oversigned signature", async () => {
      const got = await through(w, fromLatin1(`Subject: urgent: new bank details\r\n${signedOut}`));
      assert.match(ours(got), /dkim=fail \(2048-bit key\) reason="signature did not verify"/);
    });

    // Issue 13: a second From never passes (RFC 6376 §8.15), so the control that shows what
    // oversigning adds prepends a Subject; the prepended From has a step of its own.
    await t.step(
      "without oversigning, a prepended Subject rides on the signature (control)",
      async () => {
        const plain = await signedBy(message(`alice@${DOMAIN}`, "not oversigned"), [{
          domain: DOMAIN,
          selector: "outside",
          key: w.outside,
        }]);
        const got = await through(
          w,
          fromLatin1(`Subject: urgent: new bank details\r\n${latin1(plain)}`),
        );
        assert.match(ours(got), /dkim=pass \(3072-bit key\)/);
      },
    );

    await t.step(
      "without oversigning, a prepended From gets policy, never pass (RFC 6376 §8.15)",
      async () => {
        const plain = await signedBy(message(`alice@${DOMAIN}`, "not oversigned"), [{
          domain: DOMAIN,
          selector: "outside",
          key: w.outside,
          oversignHeaders: [], // the Signer oversigns From by default
        }]);
        const got = await through(w, fromLatin1(`From: <ceo@example.com>\r\n${latin1(plain)}`));
        assert.match(
          ours(got),
          /dkim=policy \(3072-bit key\) reason="message has 2 From fields"/,
        );
      },
    );

    await t.step("content appended after l= is reported in the result and the log", async () => {
      const bytes = await signedBy(message(`carol@${DOMAIN}`, "length limited"), [{
        domain: DOMAIN,
        selector: "outside",
        key: w.outside,
        bodyLength: true,
      }]);
      const appended = "Ignore that: pay to IBAN XX00 0000 instead.\r\n";
      const got = await through(w, concat([bytes, fromLatin1(appended)]));
      const result = ours(got);
      // Issue 13: PartialBodyResult's default makes it policy, the reason naming the bytes.
      assert.match(
        result,
        new RegExp(
          `dkim=policy \\(3072-bit key\\) reason="l=25 leaves ${appended.length} body bytes unsigned"`,
        ),
      );
      await w.dkimd.waitForLog(
        new RegExp(
          `s=outside d=example\\.com signs only l=25 body bytes: ${appended.length} bytes after them are unsigned`,
        ),
        WAIT_MS,
      );
      // Signed whole, the same message reports nothing (control).
      const whole = await signedBy(message(`carol@${DOMAIN}`, "whole body"), [{
        domain: DOMAIN,
        selector: "outside",
        key: w.outside,
        bodyLength: true,
      }]);
      assert.match(ours(await through(w, whole)), /dkim=pass \(3072-bit key\) header\.d/);
    });

    await t.step("a signature whose i= is outside d= fails", async () => {
      const outsideId = await signedWithIdentity(
        message("ceo@bank.example", "foreign identity"),
        w.outside,
        "outside",
        "ceo@bank.example",
      );
      const got = await through(w, outsideId);
      assert.match(ours(got), /dkim=permerror reason="i= domain not within d= domain"/);
      const inside = await signedWithIdentity(
        message(`ceo@${DOMAIN}`, "own identity"),
        w.outside,
        "outside",
        `ceo@${DOMAIN}`,
      );
      assert.match(ours(await through(w, inside)), /dkim=pass \(3072-bit key\)/);
    });

    await t.step("a key record with t=s refuses a subdomain i=", async () => {
      const sub = (selector: string) =>
        signedBy(message(`alice@${DOMAIN}`, `subdomain ${selector}`), [{
          domain: DOMAIN,
          selector,
          key: w.outside,
          identity: `alice@mail.${DOMAIN}`,
        }]);
      const strict = await through(w, await sub("strict"));
      assert.match(
        ours(strict),
        /dkim=permerror reason="i= domain must equal d= \(key t=s\)" header\.d=example\.com header\.i=alice@mail\.example\.com/,
      );
      const loose = await through(w, await sub("outside"));
      assert.match(
        ours(loose),
        /dkim=pass \(3072-bit key\) header\.d=example\.com header\.i=alice@mail\.example\.com/,
      );
    });
  } finally {
    await w.close();
  }
});
