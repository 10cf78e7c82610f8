// DNS faults against a running dkimd: a DNS server the test controls answers each key name its
// own wrong way (SERVFAIL, REFUSED, too slow, silent, cut short, garbage, truncated, a CNAME
// loop, NXDOMAIN, NODATA, a huge TXT record), and a real one (knot) goes down behind Postfix.
// Each fault must give the right RFC 6376 §6.1.2 result in Authentication-Results (temperror
// for a failed query, permerror for an answer saying there is no usable key) and its On-* action,
// and the next message on the same connection must verify as if nothing had happened.
import { mtaMessage } from "../helpers/mta_message.ts";
import assert from "node:assert/strict";
import { concat, CRLF, fromLatin1, latin1 } from "../../lib/bytes.ts";
import { importPrivateKey, type SigningKey } from "../../lib/crypto/private_key.ts";
import { signMessage } from "../../lib/dkim/sign.ts";
import { type ClientMessage, type MessageResult, MilterClient } from "../../lib/milter/client.ts";
import type { Reply } from "../../lib/milter/reply.ts";
import { KEYS_DIR, recordFor } from "../helpers/dkim_fixtures.ts";
import { type DkimdProcess, startDkimd } from "../helpers/dkimd_process.ts";
import { type DnsServer, startDnsServer } from "../helpers/dns_server.ts";
import { type FakeAnswer, startFakeDnsServer } from "../helpers/fake_dns_server.ts";
import { startPostfix } from "../helpers/postfix.ts";

const DOMAIN = "sender.example";
/** Bounds each wait on dkimd, Postfix or knot; a healthy run needs a fraction of it. */
const WAIT_MS = 20_000;

const KEY: SigningKey = await importPrivateKey(
  await Deno.readTextFile(new URL("rsa2048_pkcs8.pem", KEYS_DIR)),
  "rsa2048_pkcs8.pem",
);
const RECORD = recordFor(KEY);

function message(subject: string): Uint8Array {
  return fromLatin1(
    `From: <alice@${DOMAIN}>\r\nTo: <bob@example.org>\r\nSubject: ${subject}\r\n` +
      `Date: Fri, 27 Nov 2026 12:00:00 +0000\r\n\r\nHello.\r\n`,
  );
}

async function signed(subject: string, selector: string): Promise<Uint8Array> {
  const bytes = message(subject);
  const fields = await signMessage(bytes, [{ domain: DOMAIN, selector, key: KEY }], {
    now: () => Date.now() / 1000,
  });
  return concat([...fields.flatMap((f) => [f.raw, CRLF]), bytes]);
}

function asMta(bytes: Uint8Array, qid: string): ClientMessage {
  return mtaMessage(bytes, { qid, address: "192.0.2.1", from: `<alice@${DOMAIN}>` });
}

function results(r: MessageResult): string {
  const ar = r.modifications.find((m): m is Extract<Reply, { type: "insheader" }> =>
    m.type === "insheader" && m.name === "Authentication-Results"
  );
  assert.ok(ar, `no Authentication-Results in ${JSON.stringify(r.modifications)}`);
  return (typeof ar.value === "string" ? ar.value : latin1(ar.value)).replace(/\n\t/g, " ");
}

function quarantine(r: MessageResult): string | undefined {
  const q = r.modifications.find((m) => m.type === "quarantine");
  return q?.type === "quarantine" ? q.reason : undefined;
}

interface Fault {
  /** What the server does. */
  readonly name: string;
  /** The fake server's answer for this fault's key name. */
  readonly answer: FakeAnswer | undefined;
  /** The Authentication-Results result and reason wanted. */
  readonly want: RegExp;
  /** The quarantine reason: which On-* setting applied (all are "quarantine" here). */
  readonly action: string | undefined;
}

const ON_DNS_ERROR = "dkimd: DKIM key lookup failed";
const ON_KEY_NOT_FOUND = "dkimd: DKIM key not found";
const ON_BAD_SIGNATURE = "dkimd: DKIM signature verification failed";
// A key record of 60 KB: its p= is no key at all, and it is far over DNSMaxAnswerBytes (8 KiB).
const HUGE = `v=DKIM1; k=rsa; p=${"QUJD".repeat(15_000)}`;

const FAULTS: readonly Fault[] = [
  {
    name: "SERVFAIL",
    answer: { rcode: "SERVFAIL" },
    want: /dkim=temperror reason="key query failed: DNS error \(servfail\)"/,
    action: ON_DNS_ERROR,
  },
  {
    name: "REFUSED",
    answer: { rcode: "REFUSED" },
    want: /dkim=temperror reason="key query failed: DNS error \(refused\)"/,
    action: ON_DNS_ERROR,
  },
  {
    name: "slower than DNSTimeout",
    answer: { txt: [RECORD], delayMs: 4000 },
    want: /dkim=temperror reason="key query failed: DNS timeout"/,
    action: ON_DNS_ERROR,
  },
  {
    name: "no answer at all",
    answer: { drop: true },
    want: /dkim=temperror reason="key query failed: DNS timeout"/,
    action: ON_DNS_ERROR,
  },
  {
    name: "an answer that ends inside a record",
    answer: { garbage: "records" },
    want: /dkim=temperror reason="key query failed: DNS error \(malformed\)"/,
    action: ON_DNS_ERROR,
  },
  {
    name: "random bytes (no answer to the query)",
    answer: { garbage: "random" },
    want: /dkim=temperror reason="key query failed: DNS timeout"/,
    action: ON_DNS_ERROR,
  },
  {
    name: "truncated over UDP, then 64 KiB of zeros over TCP",
    answer: { truncateUdp: true, oversizedTcp: true },
    want: /dkim=temperror reason="key query failed: DNS error \(malformed\)"/,
    action: ON_DNS_ERROR,
  },
  {
    name: "a CNAME pointing at itself",
    answer: { cname: `loop._domainkey.${DOMAIN}` },
    want: /dkim=temperror reason="key query failed: DNS error \(malformed\)"/,
    action: ON_DNS_ERROR,
  },
  {
    name: "NXDOMAIN",
    answer: undefined,
    want: /dkim=permerror reason="no key for signature"/,
    action: ON_KEY_NOT_FOUND,
  },
  {
    name: "NODATA",
    answer: { txt: [] },
    want: /dkim=permerror reason="no key for signature"/,
    action: ON_KEY_NOT_FOUND,
  },
  {
    name: "a 60 KB TXT record",
    answer: { txt: [HUGE] },
    // Refused by its size before it is read (issue 13, item 8).
    want: /dkim=permerror reason="key record over DNSMaxAnswerBytes"/,
    action: ON_BAD_SIGNATURE,
  },
  {
    name: "truncated over UDP, whole over TCP (not a fault)",
    answer: { txt: [RECORD], truncateUdp: true },
    want: /dkim=pass \(2048-bit key\)/,
    action: undefined,
  },
  {
    name: "a spoofed answer first (ignored)",
    answer: { txt: [RECORD], spoof: "id" },
    want: /dkim=pass \(2048-bit key\)/,
    action: undefined,
  },
];

function selectorOf(i: number): string {
  return `fault${i}`;
}

Deno.test("DNS faults: each gives its result and On-* action, and the next message is unaffected", async () => {
  const zone: Record<string, FakeAnswer> = { [`good._domainkey.${DOMAIN}`]: { txt: [RECORD] } };
  FAULTS.forEach((f, i) => {
    if (!f.answer) return;
    const name = `${selectorOf(i)}._domainkey.${DOMAIN}`;
    // The loop's CNAME names its own key name.
    zone[name] = f.answer.cname ? { cname: name } : f.answer;
  });
  const dns = await startFakeDnsServer(zone);
  const dir = await Deno.makeTempDir();
  const d = await startDkimd(
    dir,
    (socket) =>
      `Mode v\nSocket ${socket}\nSyslog no\nBackground no\nAuthservID mx.test\n` +
      `Nameservers 127.0.0.1@${dns.port}\nDNSTimeout 1\nOn-DNSError quarantine\n` +
      `On-KeyNotFound quarantine\nOn-BadSignature quarantine\n`,
  );
  try {
    await Promise.all(FAULTS.map(async (f, i) => {
      const client = await MilterClient.connect({ kind: "inet", host: "127.0.0.1", port: d.port });
      try {
        const faulty = await client.sendMessage(
          asMta(await signed(`fault ${i}`, selectorOf(i)), `F${i}`),
        );
        assert.equal(faulty.final.type, "accept", f.name);
        assert.match(results(faulty), f.want, f.name);
        assert.equal(quarantine(faulty), f.action, f.name);
        const next = await client.sendMessage(asMta(await signed(`after ${i}`, "good"), `N${i}`));
        assert.equal(next.final.type, "accept", f.name);
        assert.match(results(next), /dkim=pass \(2048-bit key\)/, `after ${f.name}`);
        assert.equal(quarantine(next), undefined, `after ${f.name}`);
      } finally {
        client.close();
      }
    }));
    // Temporary failures are logged with what the server did.
    assert.match(d.log(), /F0: key retrieval failed \(s=fault0 d=sender\.example\): .*servfail/);
  } finally {
    await d.stop();
    await dns.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("DNS faults: knot down behind Postfix defers mail (On-DNSError tempfail); back up, mail verifies", async () => {
  const dir = await Deno.makeTempDir();
  const records = { [`good._domainkey.${DOMAIN}`]: [RECORD] };
  let knot: DnsServer = await startDnsServer({ zone: DOMAIN, records });
  const conf = (ns: string) => (socket: string) =>
    `Mode v\nSocket ${socket}\nSyslog no\nBackground no\nNameservers ${ns}\nDNSTimeout 1\n` +
    // Not the default (127.0.0.1, ::1): the mail comes from ::1, a client outside.
    "InternalHosts 127.0.0.1\n";
  let d: DkimdProcess | undefined;
  let postfix: Awaited<ReturnType<typeof startPostfix>> | undefined;
  try {
    d = await startDkimd(dir, conf(knot.nameserver));
    postfix = await startPostfix({ smtpdMilters: `inet:127.0.0.1:${d.port}` });
    const send = async (subject: string) =>
      await postfix!.sendSmtp({
        from: `alice@${DOMAIN}`,
        to: "bob@example.org",
        data: await signed(subject, "good"),
        sourceAddress: "::1",
      });
    const up = await send("knot up");
    assert.equal(up.reply.code, 250, up.reply.lines.join(" "));

    await knot.close();
    const down = await send("knot down");
    // On-DNSError's default, tempfail: the sender keeps the message and tries again.
    assert.equal(down.reply.code, 451, down.reply.lines.join(" "));
    assert.match(down.reply.lines.join(" "), /4\.7\.1 DKIM key lookup failed, try later/);
    await d.waitForLog(/key retrieval failed \(s=good d=sender\.example\): key query failed/);

    knot = await startDnsServer({ zone: DOMAIN, records });
    await Deno.writeTextFile(d.config, conf(knot.nameserver)(d.socket));
    d.signal("SIGUSR1");
    await d.waitForLog(/configuration reloaded/, WAIT_MS);
    const back = await send("knot back");
    assert.equal(back.reply.code, 250, back.reply.lines.join(" "));

    const delivered = await postfix.waitForMessages(2, WAIT_MS);
    assert.deepEqual(
      delivered.map((m) => /^Subject: (.*)$/m.exec(latin1(m.data))?.[1]).sort(),
      ["knot back", "knot up"],
    );
    for (const m of delivered) {
      assert.match(latin1(m.data), /^Authentication-Results: mx\.postfix\.test;\s+dkim=pass/m);
    }
  } finally {
    await postfix?.stop();
    await d?.stop();
    await knot.close();
    await Deno.remove(dir, { recursive: true });
  }
});
