// dkimd's memory against hostile key records. A sender chooses the selector, so it chooses which
// key records dkimd fetches, and each may hold as much as DNSMaxAnswerBytes allows (8 KiB by
// default). Here 5,000 messages, each signed with a selector of its own, make dkimd fetch 5,000
// distinct 8 KiB records (a wildcard answers every selector with a record of its own): 40 MiB of
// text. Every cache in front of them (QueryCache's answers, the parsed records, the imported keys)
// is bounded in bytes and keyed by name or digest, so the resident memory of the dkimd process
// (VmRSS in /proc, sampled as the messages go through, the highest sample counted) grows by at most
// 20 MiB, with QueryCache on and off. Before the bounds, QueryCache alone kept all 40 MiB.
//
// What is measured is the real process as it runs in service (its V8 flags included). A process
// fed a stream of large records grows for thousands of messages whatever it keeps (its code is
// compiled, its heap and allocator settle to the churn), by some 15 to 20 MiB: so the baseline is
// taken after 2,000 messages of the same kind, with selectors of their own, when the caches are
// full to their bounds; what grows after is what the next 5,000 distinct records leave behind
// (about 5 MiB). Without the byte bounds, QueryCache on grows by about 65 MiB here. With QueryCache
// off, the parsed-record and key caches were already bounded at 1,000 entries, which the warm-up
// fills: that case shows the bound holds, and their byte bounds are shown by
// tests/dkim/key_record_cache_test.ts and tests/dkim/key_cache_test.ts.
import assert from "node:assert/strict";
import { concat, CRLF, fromLatin1, latin1, toBase64 } from "../../lib/bytes.ts";
import { generateSigningKey, type SigningKey } from "../../lib/crypto/private_key.ts";
import { signMessage } from "../../lib/dkim/sign.ts";
import { STUB_MAX_ANSWER_BYTES_DEFAULT } from "../../lib/dns/stub.ts";
import { MilterClient } from "../../lib/milter/client.ts";
import { type DkimdProcess, startDkimd } from "../helpers/dkimd_process.ts";
import { startFakeDnsServer } from "../helpers/fake_dns_server.ts";
import { mtaMessage } from "../helpers/mta_message.ts";

const SENDER = "sender.example";
/** Distinct key records fetched after the warm-up. */
const RECORDS = 5_000;
/** Messages, each with a selector of its own, before the baseline is taken. */
const WARM_UP = 2_000;
/** The most the resident memory may grow while the records go through. */
const MAX_GROWTH_BYTES = 20 * 1024 * 1024;
/** MTA connections sending at once, as a busy Postfix has several. */
const CONNECTIONS = 4;
/** RSS samples taken: one every this many messages. */
const SAMPLE_EVERY = 250;

/** The record at `selector`: the key, padded with a note to exactly `bytes` bytes of text. */
function paddedRecord(key: SigningKey, selector: string, bytes: number): string {
  const head = `v=DKIM1; k=ed25519; n=${selector}-`;
  const tail = `; p=${toBase64(key.publicKey)}`;
  return head + "x".repeat(bytes - head.length - tail.length) + tail;
}

/** The resident set size of process `pid`, in bytes (VmRSS of /proc/PID/status). */
async function rss(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!m) throw new Error(`No VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

/** `count` messages signed by `key`, the i-th with selector `selector(i)`. */
async function signedMessages(key: SigningKey, selector: (i: number) => string, count: number) {
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const bytes = fromLatin1(
      `From: <a@${SENDER}>\r\nTo: <bob@example.org>\r\nSubject: ${selector(i)} ${i}\r\n` +
        `Date: Fri, 27 Nov 2026 12:00:00 +0000\r\n\r\nHello.\r\n`,
    );
    const [sig] = await signMessage(bytes, [{ domain: SENDER, selector: selector(i), key }]);
    out.push(concat([sig.raw, CRLF, bytes]));
  }
  return out;
}

/**
 * Sends `messages` over {@link CONNECTIONS} connections; calls `sample` every
 * {@link SAMPLE_EVERY} messages. Resolves to how many got `dkim=pass`.
 */
async function sendAll(
  d: DkimdProcess,
  messages: readonly Uint8Array[],
  sample: () => Promise<void>,
): Promise<number> {
  let next = 0;
  let passed = 0;
  const worker = async () => {
    const client = await MilterClient.connect({ kind: "inet", host: "127.0.0.1", port: d.port });
    try {
      while (next < messages.length) {
        const i = next++;
        const r = await client.sendMessage(
          mtaMessage(messages[i], { qid: `M${i}`, address: "192.0.2.1" }),
        );
        const ar = r.modifications.find((m) =>
          m.type === "insheader" && m.name === "Authentication-Results"
        );
        if (ar?.type === "insheader" && /dkim=pass/.test(latin1(ar.value as Uint8Array))) {
          passed++;
        }
        if (i % SAMPLE_EVERY === 0) await sample();
      }
    } finally {
      client.close();
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  return passed;
}

for (const queryCache of [true, false]) {
  Deno.test(`dkimd's memory grows at most 20 MiB over 5,000 distinct 8 KiB key records, QueryCache ${queryCache ? "on" : "off"}`, async () => {
    const key = await generateSigningKey("ed25519");
    const dns = await startFakeDnsServer({
      [`*._domainkey.${SENDER}`]: {
        txtFor: (name) => [paddedRecord(key, name.split(".")[0], STUB_MAX_ANSWER_BYTES_DEFAULT)],
      },
    });
    const dir = await Deno.makeTempDir();
    const warmUp = await signedMessages(key, (i) => `w${i}`, WARM_UP);
    const messages = await signedMessages(key, (i) => `s${i}`, RECORDS);
    const d = await startDkimd(dir, (socket) =>
      [
        "Mode v",
        `Socket ${socket}`,
        "Syslog no",
        "Background no",
        "AuthservID mx.test",
        `Nameservers 127.0.0.1@${dns.port}`,
        `QueryCache ${queryCache ? "yes" : "no"}`,
        "",
      ].join("\n"));
    try {
      assert.equal(await sendAll(d, warmUp, () => Promise.resolve()), WARM_UP, d.log());
      const baseline = await rss(d.pid);
      let highest = baseline;
      const sample = async () => {
        highest = Math.max(highest, await rss(d.pid));
      };
      const passed = await sendAll(d, messages, sample);
      await sample();
      // Every record was fetched whole and used: the bound is not kept by refusing them.
      assert.equal(passed, RECORDS, d.log().slice(-2000));
      const growth = highest - baseline;
      const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
      assert.ok(
        growth <= MAX_GROWTH_BYTES,
        `RSS grew by ${mib(growth)} (from ${mib(baseline)} to ${mib(highest)})`,
      );
      console.log(`QueryCache ${queryCache}: RSS ${mib(baseline)} → ${mib(highest)}`);
    } finally {
      await d.stop();
      await dns.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
}
