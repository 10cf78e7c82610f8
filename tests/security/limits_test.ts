// Every named limit of a running dkimd, crossed: the frame length (MilterMaxFrameBytes), header
// count (MaximumHeaderFields) and header block size (MaximumHeaders), signatures per message
// (MaximumSignaturesToVerify), DNS answer size (DNSMaxAnswerBytes), key size (MaximumKeyBits) and
// connections (MilterMaxConnections); the idle limit is crossed in tests/faults/mta_faults_test.ts.
// Each crossing gets the configured action and a log line naming the limit, and the same message
// just under the limit goes through, so the limit and nothing else made the difference. Lines have
// no limit of their own: a 3 MiB body line streams through signing.
import { mtaMessage } from "../helpers/mta_message.ts";
import assert from "node:assert/strict";
import { concat, CRLF, fromLatin1, latin1, toBase64 } from "../../lib/bytes.ts";
import { derBitString, derInteger, derNull, derOid, derSequence } from "../../lib/crypto/der.ts";
import { importPrivateKey, type SigningKey } from "../../lib/crypto/private_key.ts";
import { signMessage, type SignOptions } from "../../lib/dkim/sign.ts";
import { verifyMessage } from "../../lib/dkim/verify.ts";
import { type ClientMessage, type MessageResult, MilterClient } from "../../lib/milter/client.ts";
import type { Reply } from "../../lib/milter/reply.ts";
import { KEYS_DIR, recordFor } from "../helpers/dkim_fixtures.ts";
import {
  type DkimdProcess,
  freePort,
  openConnections,
  sendMessage,
  startDkimd,
  until,
} from "../helpers/dkimd_process.ts";
import { type FakeDnsServer, startFakeDnsServer } from "../helpers/fake_dns_server.ts";
import { startPostfix } from "../helpers/postfix.ts";

const SENDER = "sender.example";
const OUTBOUND = "example.com";
/** Bounds every wait on dkimd or Postfix; a healthy run needs a fraction of it. */
const WAIT_MS = 20_000;

interface World {
  readonly dir: string;
  readonly dns: FakeDnsServer;
  readonly keys: Record<"k2048" | "k3072" | "k4096", SigningKey>;
  readonly metricsPort: number;
}

async function world(): Promise<World> {
  const dir = await Deno.makeTempDir();
  const load = async (file: string) =>
    await importPrivateKey(await Deno.readTextFile(new URL(file, KEYS_DIR)), file);
  const keys = {
    k2048: await load("rsa2048_pkcs8.pem"),
    k3072: await load("rsa3072.pem"),
    k4096: await load("rsa4096.pem"),
  };
  // dkimd signs outbound mail with the 2048-bit key, kept 0600 as RequireSafeKeys wants.
  const pem = await Deno.readTextFile(new URL("rsa2048_pkcs8.pem", KEYS_DIR));
  await Deno.writeTextFile(`${dir}/main.private`, pem, { mode: 0o600 });
  await Deno.writeTextFile(`${dir}/key.table`, `main ${OUTBOUND}:main:${dir}/main.private\n`);
  await Deno.writeTextFile(`${dir}/signing.table`, `*@${OUTBOUND} main\n`);
  const dns = await startFakeDnsServer({
    [`k2048._domainkey.${SENDER}`]: { txt: [recordFor(keys.k2048)] },
    [`k3072._domainkey.${SENDER}`]: { txt: [recordFor(keys.k3072)] },
    [`k4096._domainkey.${SENDER}`]: { txt: [recordFor(keys.k4096)] },
    // The key record with a 3000-byte neighbour: more TXT text than DNSMaxAnswerBytes (2048).
    [`padded._domainkey.${SENDER}`]: { txt: [recordFor(keys.k2048), "x".repeat(3000)] },
  });
  return { dir, dns, keys, metricsPort: freePort() };
}

function config(w: World, extra = ""): (socket: string) => string {
  return (socket) =>
    [
      "Mode sv",
      `Socket ${socket}`,
      "Syslog no",
      "Background no",
      "AuthservID mx.test",
      // Not the default (127.0.0.1, ::1): Postfix's mail comes from ::1, a client outside, and is
      // verified, not signed.
      "InternalHosts 127.0.0.1",
      `KeyTable ${w.dir}/key.table`,
      `SigningTable refile:${w.dir}/signing.table`,
      `Nameservers 127.0.0.1@${w.dns.port}`,
      "DNSTimeout 5",
      `MetricsListen 127.0.0.1:${w.metricsPort}`,
      "On-BadSignature reject",
      "On-DNSError tempfail",
      // The header limits answer with On-Security (default tempfail, as OpenDKIM); refuse here.
      "On-Security reject",
      "MilterMaxFrameBytes 65536",
      "MaximumHeaders 65536",
      "MaximumHeaderFields 50",
      "MaximumSignaturesToVerify 2",
      "MaximumKeyBits 3072",
      "DNSMaxAnswerBytes 2048",
      "MilterMaxConnections 8",
      extra,
    ].join("\n") + "\n";
}

function message(from: string, subject: string, extraHeaders = "", body = "Hello.\r\n") {
  return fromLatin1(
    `From: <${from}>\r\nTo: <bob@example.org>\r\nSubject: ${subject}\r\n` +
      `Date: Fri, 27 Nov 2026 12:00:00 +0000\r\n${extraHeaders}\r\n${body}`,
  );
}

async function signedBy(bytes: Uint8Array, options: SignOptions[]): Promise<Uint8Array> {
  const fields = await signMessage(bytes, options, { now: () => Date.now() / 1000 });
  return concat([...fields.flatMap((f) => [f.raw, CRLF]), bytes]);
}

/** The message as Postfix hands it to a milter, from `address` (127.0.0.1 is internal). */
function asMta(bytes: Uint8Array, address: string, qid: string): ClientMessage {
  return mtaMessage(bytes, { qid, address });
}

function inserted(result: MessageResult, name: string): string[] {
  return result.modifications
    .filter((r): r is Extract<Reply, { type: "insheader" }> =>
      r.type === "insheader" && r.name === name
    )
    .map((r) => typeof r.value === "string" ? r.value : latin1(r.value));
}

/** A connection that negotiated and announced its client, then stays idle, as Postfix's do. */
async function idleConnection(d: DkimdProcess): Promise<MilterClient> {
  const client = await MilterClient.connect({ kind: "inet", host: "127.0.0.1", port: d.port });
  await client.send({
    type: "connect",
    hostname: "idle.test",
    family: "inet",
    port: 1,
    address: "192.0.2.7",
  });
  assert.equal((await client.readReply()).type, "continue");
  return client;
}

Deno.test("dkimd limits: each crossing gets its action and a log line naming the limit", async (t) => {
  const w = await world();
  const d = await startDkimd(w.dir, config(w));
  let n = 0;
  const qid = () => `LIM${++n}`;
  const inbound = async (bytes: Uint8Array) =>
    await sendMessage(d, asMta(bytes, "192.0.2.1", qid()));
  const sign = (selector: keyof World["keys"]) => ({
    domain: SENDER,
    selector,
    key: w.keys[selector],
  });
  try {
    await t.step(
      "MilterMaxFrameBytes: a 70000-byte header frame closes the connection",
      async () => {
        const big = message(`a@${SENDER}`, "big frame", `X-Big: ${"b".repeat(70_000)}\r\n`);
        await assert.rejects(() => inbound(big));
        await d.waitForLog(
          /connection \d+: a frame of 7\d{4} bytes exceeds MilterMaxFrameBytes \(65536\); closing/,
          WAIT_MS,
        );
        const under = message(`a@${SENDER}`, "under", `X-Big: ${"b".repeat(60_000)}\r\n`);
        const r = await inbound(await signedBy(under, [sign("k2048")]));
        assert.equal(r.final.type, "accept");
        assert.match(inserted(r, "Authentication-Results")[0], /dkim=pass/);
      },
    );

    await t.step("MaximumHeaders: 90 KB of header fields is refused with 552", async () => {
      const fields = [1, 2, 3].map((i) => `X-Pad${i}: ${"p".repeat(30_000)}\r\n`).join("");
      const r = await inbound(message(`a@${SENDER}`, "fat headers", fields));
      assert.deepEqual(r.final, {
        type: "replycode",
        code: 552,
        text: "5.3.4 Message header block too large",
      });
      await d.waitForLog(/LIM\d+: header block exceeds MaximumHeaders \(65536 bytes\); rejecting/);
    });

    await t.step("MaximumHeaderFields: 60 fields are refused with 552, 45 are not", async () => {
      const many = (count: number) =>
        Array.from({ length: count }, (_, i) => `X-N${i}: ${i}\r\n`).join("");
      const r = await inbound(message(`a@${SENDER}`, "many fields", many(60)));
      assert.deepEqual(r.final, {
        type: "replycode",
        code: 552,
        text: "5.3.4 Too many header fields",
      });
      await d.waitForLog(/LIM\d+: more than MaximumHeaderFields \(50\) header fields; rejecting/);
      const ok = await inbound(
        await signedBy(message(`a@${SENDER}`, "fewer", many(45)), [
          sign("k2048"),
        ]),
      );
      assert.equal(ok.final.type, "accept");
      assert.match(inserted(ok, "Authentication-Results")[0], /dkim=pass/);
    });

    await t.step(
      "MaximumSignaturesToVerify: of 4 signatures 2 are verified and reported",
      async () => {
        const four = await signedBy(message(`a@${SENDER}`, "four signatures"), [
          sign("k2048"),
          sign("k3072"),
          sign("k2048"),
          sign("k3072"),
        ]);
        const r = await inbound(four);
        assert.equal(r.final.type, "accept");
        const [ar] = inserted(r, "Authentication-Results");
        assert.equal(ar.match(/dkim=pass/g)?.length, 2, ar);
        await d.waitForLog(
          /LIM\d+: 4 DKIM-Signature fields; verifying the first 2 \(MaximumSignaturesToVerify\)/,
        );
      },
    );

    await t.step("MaximumKeyBits: a 4096-bit key gets permerror and On-BadSignature", async () => {
      const r = await inbound(await signedBy(message(`a@${SENDER}`, "big key"), [sign("k4096")]));
      assert.deepEqual(r.final, {
        type: "replycode",
        code: 550,
        text: "5.7.1 DKIM signature verification failed",
      });
      await d.waitForLog(
        /bad signature data \(s=k4096 d=sender\.example\): key too large .*over MaximumKeyBits \(3072\)/,
      );
      const ok = await inbound(await signedBy(message(`a@${SENDER}`, "3072"), [sign("k3072")]));
      assert.equal(ok.final.type, "accept");
      assert.match(inserted(ok, "Authentication-Results")[0], /dkim=pass \(3072-bit key\)/);
    });

    // A record over DNSMaxAnswerBytes is published that way: asking later gives the same answer,
    // so it is a permerror (and On-BadSignature), no longer a temperror (issue 13, item 8).
    await t.step(
      "DNSMaxAnswerBytes: a 3 KB key answer is a permerror and On-BadSignature",
      async () => {
        const padded = await signedBy(message(`a@${SENDER}`, "padded"), [{
          domain: SENDER,
          selector: "padded",
          key: w.keys.k2048,
        }]);
        const r = await inbound(padded);
        assert.deepEqual(r.final, {
          type: "replycode",
          code: 550,
          text: "5.7.1 DKIM signature verification failed",
        });
        await d.waitForLog(
          /bad signature data \(s=padded d=sender\.example\): key record over DNSMaxAnswerBytes/,
        );
      },
    );

    await t.step("no line length limit: a 3 MiB body line is signed and verifies", async () => {
      const body = `${"a".repeat(3 * 1024 * 1024)}\r\n`;
      const bytes = message(`alice@${OUTBOUND}`, "one long line", "", body);
      const r = await sendMessage(d, asMta(bytes, "127.0.0.1", qid()));
      assert.equal(r.final.type, "accept");
      const [sig] = inserted(r, "DKIM-Signature");
      assert.ok(sig, "a DKIM-Signature was inserted");
      const delivered = concat([
        fromLatin1(`DKIM-Signature:${sig.replaceAll("\n", "\r\n")}`),
        CRLF,
        bytes,
      ]);
      const [verdict] = await verifyMessage(delivered, {
        resolver: { resolveTxt: () => Promise.resolve([recordFor(w.keys.k2048)]) },
      });
      assert.equal(verdict.result, "pass", verdict.reason ?? "");
    });

    await t.step(
      "MilterMaxConnections: the 9th connection is closed, a freed slot serves",
      async () => {
        await until("no connection open", async () => (await openConnections(w.metricsPort)) === 0);
        const held: MilterClient[] = [];
        try {
          for (let i = 0; i < 8; i++) {
            held.push(
              await MilterClient.connect({ kind: "inet", host: "127.0.0.1", port: d.port }),
            );
          }
          await assert.rejects(() =>
            MilterClient.connect({ kind: "inet", host: "127.0.0.1", port: d.port })
          );
          await d.waitForLog(/MilterMaxConnections \(8\) reached: refusing connection \d+/);
          held.pop()!.close();
          await until("a free slot", async () => (await openConnections(w.metricsPort)) < 8);
          const r = await inbound(await signedBy(message(`a@${SENDER}`, "slot"), [sign("k2048")]));
          assert.match(inserted(r, "Authentication-Results")[0], /dkim=pass/);
        } finally {
          for (const c of held) c.close();
        }
      },
    );
  } finally {
    await d.stop();
    await w.dns.close();
    await Deno.remove(w.dir, { recursive: true });
  }
});

// Postfix never sends a frame over 64 KiB (it cuts a longer header field), so the frame limit
// cannot be crossed from it; the connection limit can, and Postfix's milter_default_action is
// then the message's answer.
Deno.test("dkimd limits: past MilterMaxConnections Postfix applies milter_default_action", async () => {
  const w = await world();
  const d = await startDkimd(w.dir, config(w));
  const postfix = await startPostfix({
    smtpdMilters: `inet:127.0.0.1:${d.port}`,
    milterDefaultAction: "tempfail",
  }).catch(async (e) => {
    await d.stop();
    throw e;
  });
  const held: MilterClient[] = [];
  const signed = () =>
    signedBy(message(`a@${SENDER}`, "limit"), [{
      domain: SENDER,
      selector: "k2048",
      key: w.keys.k2048,
    }]);
  try {
    for (let i = 0; i < 8; i++) {
      held.push(await idleConnection(d));
    }
    const refused = await postfix.sendSmtp({
      from: `a@${SENDER}`,
      to: "bob@example.org",
      data: await signed(),
      sourceAddress: "::1",
    });
    assert.equal(refused.reply.code, 451, refused.reply.lines.join(" "));
    await d.waitForLog(/MilterMaxConnections \(8\) reached: refusing connection \d+/, WAIT_MS);
    for (const c of held.splice(0)) c.close();
    await until(
      "the held connections to close",
      async () => (await openConnections(w.metricsPort)) === 0,
    );
    const served = await postfix.sendSmtp({
      from: `a@${SENDER}`,
      to: "bob@example.org",
      data: await signed(),
      sourceAddress: "::1",
    });
    assert.equal(served.reply.code, 250, served.reply.lines.join(" "));
    const [delivered] = await postfix.waitForMessages(1, WAIT_MS);
    assert.match(latin1(delivered.data), /^Authentication-Results: mx\.test;\s+dkim=pass/m);
  } finally {
    for (const c of held) c.close();
    await postfix.stop();
    await d.stop();
    await w.dns.close();
    await Deno.remove(w.dir, { recursive: true });
  }
});

/**
 * A key record with an RSA public key of `bits` bits (a random odd modulus): enough to be
 * refused for its size, which is checked before any signature is.
 */
function rsaRecordOfBits(bits: number): string {
  const n = crypto.getRandomValues(new Uint8Array(bits / 8));
  n[0] |= 0x80;
  n[n.length - 1] |= 1;
  const spki = derSequence(
    derSequence(derOid("1.2.840.113549.1.1.1"), derNull()),
    derBitString(derSequence(derInteger(n), derInteger(65537))),
  );
  return `v=DKIM1; k=rsa; p=${toBase64(spki)}`;
}

Deno.test("dkimd limits: by default (MaximumKeyBits 4096, RFC 8301) an 8192-bit key gets permerror", async () => {
  const w = await world();
  w.dns.zone[`k8192._domainkey.${SENDER}`] = { txt: [rsaRecordOfBits(8192)] };
  const d = await startDkimd(
    w.dir,
    (socket) =>
      `Mode v\nSocket ${socket}\nSyslog no\nBackground no\nAuthservID mx.test\n` +
      `Nameservers 127.0.0.1@${w.dns.port}\n`,
  );
  try {
    const bytes = await signedBy(message(`a@${SENDER}`, "8192"), [{
      domain: SENDER,
      selector: "k8192",
      key: w.keys.k2048,
    }]);
    const r = await sendMessage(d, asMta(bytes, "192.0.2.1", "BIG1"));
    assert.equal(r.final.type, "accept"); // On-BadSignature's default
    assert.match(
      inserted(r, "Authentication-Results")[0],
      /dkim=permerror reason="key too large \(over 4096 bits\)"/,
    );
    await d.waitForLog(/BIG1: bad signature data .*over MaximumKeyBits \(4096\)/);
    // The 4096-bit key, at the limit, passes.
    const ok = await sendMessage(
      d,
      asMta(
        await signedBy(message(`a@${SENDER}`, "4096"), [{
          domain: SENDER,
          selector: "k4096",
          key: w.keys.k4096,
        }]),
        "192.0.2.1",
        "BIG2",
      ),
    );
    assert.match(inserted(ok, "Authentication-Results")[0], /dkim=pass \(4096-bit key\)/);
  } finally {
    await d.stop();
    await w.dns.close();
    await Deno.remove(w.dir, { recursive: true });
  }
});
