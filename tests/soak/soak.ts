/**
 * A bounded soak of a running dkimd: steady load (a fixed number of MTA connections, each
 * sending messages back to back, half signed and half verified; half the connections
 * reconnect every few messages, half stay open throughout), with dkimd's resident memory (`VmRSS` in /proc/PID/status) and open descriptors
 * (/proc/PID/fd) sampled once a second. The report gives the memory slope after warm-up (a
 * least-squares line through the samples), the descriptor count before and after the load, every
 * error answer, and the latency percentiles (reported, never asserted: CI machines differ).
 *
 * `deno task soak` runs it for 10 minutes (`--seconds N` to change); tests/soak/soak_test.ts runs
 * it in CI for {@link CI_SOAK_SECONDS} seconds.
 *
 * @module
 */
import { mtaMessage } from "../helpers/mta_message.ts";
import { parseArgs } from "node:util";
import { concat, CRLF, fromLatin1, latin1 } from "../../lib/bytes.ts";
import { importPrivateKey } from "../../lib/crypto/private_key.ts";
import { signMessage } from "../../lib/dkim/sign.ts";
import { type ClientMessage, MilterClient } from "../../lib/milter/client.ts";
import type { Reply } from "../../lib/milter/reply.ts";
import { KEYS_DIR, recordFor } from "../helpers/dkim_fixtures.ts";
import { startDkimd } from "../helpers/dkimd_process.ts";
import { startFakeDnsServer } from "../helpers/fake_dns_server.ts";

/** The soak's length in CI: long enough for a slope, short enough for every push. */
export const CI_SOAK_SECONDS = 45;

/** `deno task soak`'s default length: 10 minutes. */
export const TASK_SOAK_SECONDS = 600;

/** MTA connections kept busy at once. */
export const SOAK_CONNECTIONS = 4;

/**
 * Messages a churning connection sends before it is closed and opened again. Half the
 * connections churn; the other half stay open for the whole run, as a long SMTP session keeps
 * its milter connection, so that memory kept per connection (and freed only when it closes)
 * grows there instead of hiding behind the churn.
 */
export const MESSAGES_PER_CONNECTION = 25;

/** How often memory and descriptors are sampled. */
export const SAMPLE_MS = 1000;

/** The first part of the run is warm-up (JIT, caches, heap growth) and not in the slope. */
export const WARMUP_FRACTION = 1 / 3;

/**
 * Samples per bucket for the memory floor: the smallest RSS of each bucket is what survives
 * the garbage collector's cycle, so a line through the bucket minima follows what is kept, not
 * the sawtooth of what is collected.
 */
export const FLOOR_BUCKET_SAMPLES = 5;

/** Seconds of load before the "before" descriptor count, so descriptors opened once are in it. */
export const PRIMING_SECONDS = 2;

/** Options of {@link runSoak}. */
export interface SoakOptions {
  /** How long the load runs, in seconds. */
  readonly seconds: number;
  /** Progress lines go here (default: nowhere). */
  readonly progress?: (line: string) => void;
}

/** One sample of dkimd's resources. */
export interface SoakSample {
  /** Seconds since the load started. */
  readonly t: number;
  /** Resident memory in KiB. */
  readonly rssKb: number;
  /** Open file descriptors. */
  readonly fds: number;
}

/** What a soak found. */
export interface SoakReport {
  /** Seconds the load ran. */
  readonly seconds: number;
  /** Messages answered. */
  readonly messages: number;
  /** Messages whose answer was wrong (not accept, or no signature or pass result), described. */
  readonly errors: readonly string[];
  /** Every sample, in order. */
  readonly samples: readonly SoakSample[];
  /** Memory growth after warm-up, in KiB per minute (least squares through every sample). */
  readonly rssSlopeKbPerMinute: number;
  /**
   * Growth of the memory floor after warm-up, in KiB per minute: least squares through the
   * smallest RSS of each bucket of {@link FLOOR_BUCKET_SAMPLES} samples. A leak raises it.
   */
  readonly rssFloorSlopeKbPerMinute: number;
  /** Resident memory at the end of warm-up, in KiB. */
  readonly rssAfterWarmupKb: number;
  /** Resident memory at the end, in KiB. */
  readonly rssEndKb: number;
  /** Resident memory before the load, in KiB. */
  readonly rssBeforeKb: number;
  /** Open descriptors before the load started, and after it ended and its connections closed. */
  readonly fdsBefore: number;
  /** Open descriptors after the load. */
  readonly fdsAfter: number;
  /** The most descriptors seen during the load. */
  readonly fdsPeak: number;
  /** Latency percentiles of one message (MAIL to the end-of-message answer), in milliseconds. */
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly max: number };
}

/**
 * The least-squares slope of `y` over `x` (0 for fewer than two points or no spread in `x`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { slope } from "./soak.ts";
 * assert.equal(slope([0, 1, 2, 3], [5, 7, 9, 11]), 2);
 * assert.equal(slope([1], [4]), 0);
 * ```
 */
export function slope(x: readonly number[], y: readonly number[]): number {
  const n = Math.min(x.length, y.length);
  if (n < 2) return 0;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i] / n;
    my += y[i] / n;
  }
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
  }
  return sxx === 0 ? 0 : sxy / sxx;
}

/**
 * The `q` quantile (0..1) of `values` by the nearest-rank method; NaN when empty.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { quantile } from "./soak.ts";
 * assert.equal(quantile([5, 1, 4, 2, 3], 0.5), 3);
 * assert.equal(quantile([5, 1, 4, 2, 3], 0.99), 5);
 * ```
 */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** dkimd's resident memory and open descriptors, from /proc. */
async function sample(pid: number, t: number): Promise<SoakSample> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const rss = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!rss) throw new Error(`No VmRSS in /proc/${pid}/status`);
  let fds = 0;
  for await (const _ of Deno.readDir(`/proc/${pid}/fd`)) fds++;
  return { t, rssKb: Number(rss[1]), fds };
}

const DOMAIN = "example.com";
const SENDER = "sender.example";

function message(from: string, n: number): Uint8Array {
  return fromLatin1(
    `From: <${from}>\r\nTo: <bob@example.org>\r\nSubject: soak ${n}\r\n` +
      `Date: Fri, 27 Nov 2026 12:00:00 +0000\r\nMessage-ID: <soak${n}@${DOMAIN}>\r\n\r\n` +
      `${"A line of a soak test message body, long enough to matter.\r\n".repeat(64)}`,
  );
}

function asMta(bytes: Uint8Array, address: string, qid: string): ClientMessage {
  return mtaMessage(bytes, { qid, address });
}

function inserted(modifications: readonly Reply[], name: string): string | undefined {
  const m = modifications.find((r) => r.type === "insheader" && r.name === name);
  if (m?.type !== "insheader") return undefined;
  return typeof m.value === "string" ? m.value : latin1(m.value);
}

/**
 * Runs dkimd under steady load for `options.seconds` seconds and reports on it. dkimd runs as
 * the service runs (`-x CONFIG -f`, the service's permissions), signing with a 2048-bit RSA key
 * and verifying against a DNS server of the test's on loopback (no cache, so every message
 * makes a query: its sockets are among the descriptors watched).
 */
export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const progress = options.progress ?? (() => {});
  const dir = await Deno.makeTempDir();
  const pem = await Deno.readTextFile(new URL("rsa2048_pkcs8.pem", KEYS_DIR));
  const key = await importPrivateKey(pem, "rsa2048_pkcs8.pem");
  await Deno.writeTextFile(`${dir}/rsa.private`, pem, { mode: 0o600 });
  await Deno.writeTextFile(`${dir}/key.table`, `rsa ${DOMAIN}:rsa:${dir}/rsa.private\n`);
  await Deno.writeTextFile(`${dir}/signing.table`, `*@${DOMAIN} rsa\n`);
  const dns = await startFakeDnsServer({ [`s._domainkey.${SENDER}`]: { txt: [recordFor(key)] } });
  const inboundBytes = message(`carol@${SENDER}`, 0);
  const sig = await signMessage(inboundBytes, [{ domain: SENDER, selector: "s", key }], {
    now: () => Date.now() / 1000,
  });
  const inbound = concat([sig[0].raw, CRLF, inboundBytes]);
  const messages = { inbound, outbound: message(`alice@${DOMAIN}`, 1) };
  const dkimd = await startDkimd(
    dir,
    (socket) =>
      `Mode sv\nSocket ${socket}\nSyslog no\nBackground no\nAuthservID mx.test\n` +
      `KeyTable ${dir}/key.table\nSigningTable refile:${dir}/signing.table\n` +
      `Nameservers 127.0.0.1@${dns.port}\n`,
  );
  try {
    // A short load first, so descriptors dkimd opens once and keeps are in the "before" count.
    await load(dkimd.port, PRIMING_SECONDS, messages, () => {});
    const before = await quiet(dkimd.pid, Infinity);
    const samples: SoakSample[] = [];
    const stats: LoadStats = { messages: 0, errors: [], latencies: [] };
    const start = performance.now();
    const end = start + options.seconds * 1000;
    const sampler = (async () => {
      for (let next = start; performance.now() < end;) {
        next += SAMPLE_MS;
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - performance.now())));
        const s = await sample(dkimd.pid, (performance.now() - start) / 1000);
        samples.push(s);
        if (samples.length % 10 === 0) {
          progress(
            `${s.t.toFixed(0)} s: ${stats.messages} messages, RSS ${
              (s.rssKb / 1024).toFixed(1)
            } MiB, ${s.fds} fds, p99 ${quantile(stats.latencies.slice(-2000), 0.99).toFixed(1)} ms`,
          );
        }
      }
    })();
    await load(dkimd.port, options.seconds, messages, (r) => {
      stats.messages++;
      stats.latencies.push(r.ms);
      if (r.error && stats.errors.length < 100) stats.errors.push(r.error);
    });
    await sampler;
    const after = await quiet(dkimd.pid, before.fds);
    const steady = samples.filter((s) => s.t >= options.seconds * WARMUP_FRACTION);
    const floors: SoakSample[] = [];
    for (let i = 0; i + FLOOR_BUCKET_SAMPLES <= steady.length; i += FLOOR_BUCKET_SAMPLES) {
      floors.push(
        steady.slice(i, i + FLOOR_BUCKET_SAMPLES).reduce((a, b) => (b.rssKb < a.rssKb ? b : a)),
      );
    }
    const perMinute = (points: readonly SoakSample[]) =>
      slope(points.map((s) => s.t), points.map((s) => s.rssKb)) * 60;
    return {
      seconds: options.seconds,
      messages: stats.messages,
      errors: stats.errors,
      samples,
      rssSlopeKbPerMinute: perMinute(steady),
      rssFloorSlopeKbPerMinute: perMinute(floors),
      rssBeforeKb: before.rssKb,
      rssAfterWarmupKb: steady[0]?.rssKb ?? NaN,
      rssEndKb: samples.at(-1)?.rssKb ?? NaN,
      fdsBefore: before.fds,
      fdsAfter: after.fds,
      fdsPeak: Math.max(before.fds, ...samples.map((s) => s.fds)),
      latencyMs: {
        p50: quantile(stats.latencies, 0.5),
        p99: quantile(stats.latencies, 0.99),
        max: quantile(stats.latencies, 1),
      },
    };
  } finally {
    await dkimd.stop();
    await dns.close();
    await Deno.remove(dir, { recursive: true });
  }
}

interface LoadStats {
  messages: number;
  readonly errors: string[];
  readonly latencies: number[];
}

/** One answered message: its latency, and what was wrong with the answer, if anything. */
interface Answered {
  readonly ms: number;
  readonly error?: string;
}

/**
 * Keeps {@link SOAK_CONNECTIONS} MTA connections busy for `seconds`, alternating signed and
 * verified messages; odd-numbered connections are reopened every
 * {@link MESSAGES_PER_CONNECTION} messages, even-numbered ones stay open throughout.
 */
async function load(
  port: number,
  seconds: number,
  messages: { readonly inbound: Uint8Array; readonly outbound: Uint8Array },
  answered: (a: Answered) => void,
): Promise<void> {
  const end = performance.now() + seconds * 1000;
  const worker = async (w: number) => {
    let n = 0;
    const perConnection = w % 2 === 1 ? MESSAGES_PER_CONNECTION : Infinity;
    while (performance.now() < end) {
      let client: MilterClient | undefined;
      try {
        client = await MilterClient.connect({ kind: "inet", host: "127.0.0.1", port });
        for (let i = 0; i < perConnection && performance.now() < end; i++, n++) {
          const signing = n % 2 === 0;
          const qid = `W${w}N${n}`;
          const t0 = performance.now();
          const r = await client.sendMessage(
            asMta(
              signing ? messages.outbound : messages.inbound,
              signing ? "127.0.0.1" : "192.0.2.1",
              qid,
            ),
          );
          const ok = r.final.type === "accept" &&
            (signing
              ? inserted(r.modifications, "DKIM-Signature") !== undefined
              : /dkim=pass/.test(inserted(r.modifications, "Authentication-Results") ?? ""));
          answered({
            ms: performance.now() - t0,
            ...(ok ? {} : { error: `${qid}: ${r.final.type} ${JSON.stringify(r.modifications)}` }),
          });
          // The next message comes from another SMTP client, as Postfix reuses a milter
          // connection: QUIT_NC, then CONNECT again with that client's address.
          if (i + 1 < perConnection) await client.quitNewConnection();
        }
      } catch (e) {
        answered({ ms: 0, error: `connection ${w}: ${e}` });
      } finally {
        await client?.quit().catch(() => {});
      }
    }
  };
  await Promise.all(Array.from({ length: SOAK_CONNECTIONS }, (_, w) => worker(w)));
}

/**
 * A sample once the load's connections are closed on dkimd's side too: dkimd closes each once
 * it reads its QUIT, so the descriptor count is sampled until it is at most `fds` or stops
 * falling (bounded: at most 5 s).
 */
async function quiet(pid: number, fds: number): Promise<SoakSample> {
  let last = await sample(pid, 0);
  for (let i = 0; i < 100 && last.fds > fds; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const next = await sample(pid, 0);
    if (fds === Infinity && next.fds === last.fds && i >= 10) return next;
    last = next;
  }
  return last;
}

/** What a soak must stay within. */
export interface SoakLimits {
  /** Largest growth of the memory floor after warm-up, in KiB per minute. */
  readonly maxFloorSlopeKbPerMinute: number;
  /** Descriptors dkimd may hold after the load beyond its count before it. */
  readonly maxExtraFds: number;
}

/**
 * The limits of the CI run: generous, because a {@link CI_SOAK_SECONDS}-second run on a busy
 * machine ends while V8's heap still grows toward its plateau (up to 84 MiB/min was seen with the
 * whole suite running beside it, on 2 cores; 0 to 23 MiB/min alone). 160 MiB/min still catches a
 * leak of a message's worth of memory per message; a leak of a few bytes each needs the long run.
 */
export const CI_SOAK_LIMITS: SoakLimits = {
  maxFloorSlopeKbPerMinute: 160 * 1024,
  maxExtraFds: 2,
};

/**
 * The limits of `deno task soak`'s 10-minute run, whose steady part is long enough for the
 * heap to have settled: the floor must stay within 8 MiB/min (10-minute runs measured -0.7 and
 * -1.0 MiB/min), that is under 16 bytes kept per message at 500 messages a second.
 */
export const TASK_SOAK_LIMITS: SoakLimits = {
  maxFloorSlopeKbPerMinute: 8 * 1024,
  maxExtraFds: 2,
};

/**
 * What is wrong with a soak's report under `limits`: error answers, memory floor growth,
 * descriptors not given back. Empty when all is well.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { soakProblems } from "./soak.ts";
 * const report = {
 *   seconds: 60, messages: 1000, errors: [], samples: [], rssSlopeKbPerMinute: 10,
 *   rssFloorSlopeKbPerMinute: 4096, rssBeforeKb: 1, rssAfterWarmupKb: 1, rssEndKb: 1,
 *   fdsBefore: 20, fdsAfter: 25, fdsPeak: 30, latencyMs: { p50: 1, p99: 2, max: 3 },
 * };
 * assert.deepEqual(soakProblems(report, { maxFloorSlopeKbPerMinute: 8192, maxExtraFds: 2 }), [
 *   "dkimd holds 25 descriptors after the load, 20 before",
 * ]);
 * ```
 */
export function soakProblems(r: SoakReport, limits: SoakLimits): string[] {
  const problems = r.errors.map((e) => `error answer: ${e}`);
  if (r.messages === 0) problems.push("no message was answered");
  if (!(r.rssFloorSlopeKbPerMinute < limits.maxFloorSlopeKbPerMinute)) {
    problems.push(
      `memory floor grows ${r.rssFloorSlopeKbPerMinute.toFixed(0)} KiB/min after warm-up ` +
        `(limit ${limits.maxFloorSlopeKbPerMinute})`,
    );
  }
  if (r.fdsAfter > r.fdsBefore + limits.maxExtraFds) {
    problems.push(`dkimd holds ${r.fdsAfter} descriptors after the load, ${r.fdsBefore} before`);
  }
  return problems;
}

/** The report as a few lines of text. */
export function formatSoakReport(r: SoakReport): string {
  const mib = (kb: number) => `${(kb / 1024).toFixed(1)} MiB`;
  return [
    `soak: ${r.seconds} s, ${r.messages} messages (${
      (r.messages / r.seconds).toFixed(0)
    }/s), ${r.errors.length} errors`,
    `RSS: ${mib(r.rssBeforeKb)} before, ${mib(r.rssAfterWarmupKb)} after warm-up, ${
      mib(r.rssEndKb)
    } at the end; after warm-up slope ${r.rssSlopeKbPerMinute.toFixed(0)} KiB/min, floor slope ${
      r.rssFloorSlopeKbPerMinute.toFixed(0)
    } KiB/min`,
    `fds: ${r.fdsBefore} before, ${r.fdsPeak} at most, ${r.fdsAfter} after`,
    `latency: p50 ${r.latencyMs.p50.toFixed(2)} ms, p99 ${r.latencyMs.p99.toFixed(2)} ms, max ${
      r.latencyMs.max.toFixed(2)
    } ms`,
    ...r.errors.slice(0, 10).map((e) => `error: ${e}`),
  ].join("\n");
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { seconds: { type: "string", default: String(TASK_SOAK_SECONDS) } },
  });
  const seconds = Number(values.seconds);
  if (!Number.isInteger(seconds) || seconds < 3) {
    console.error(`soak: --seconds must be a whole number of at least 3, not "${values.seconds}"`);
    Deno.exit(2);
  }
  const report = await runSoak({ seconds, progress: (line) => console.log(line) });
  console.log(formatSoakReport(report));
  // Shorter runs than the task's default have not settled: judge them as CI runs are judged.
  const problems = soakProblems(
    report,
    seconds >= TASK_SOAK_SECONDS ? TASK_SOAK_LIMITS : CI_SOAK_LIMITS,
  );
  for (const p of problems) console.log(`FAIL: ${p}`);
  console.log(problems.length === 0 ? "soak: ok" : "soak: FAILED");
  Deno.exit(problems.length === 0 ? 0 : 1);
}
