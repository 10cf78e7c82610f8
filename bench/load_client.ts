/**
 * The benchmark's load client: plays Postfix's side of the milter protocol against one filter,
 * from its own process, so its work never counts as the filter's. Each of `concurrency`
 * connections is one long SMTP session: OPTNEG, CONNECT and HELO once, then for every message
 * MACRO with `i` (and `{auth_type}` when signing), MAIL, RCPT, DATA, one HEADER per field, EOH,
 * BODY in chunks of at most 65535 bytes, EOB, the modifications read until the final reply, and
 * ABORT queued to go out with the next message. Writes follow Postfix's buffered stream
 * (4096 bytes; a body chunk at once; everything waiting before each reply is read), and what is
 * waiting after DATA is written before the content, as Postfix's smtpd does when it hands the
 * milter connection to its cleanup server (strace of a real Postfix 3.7 shows these writes).
 * Events the filter declined are not sent and replies it declined are not awaited
 * (lib/milter/client.ts).
 *
 * Like Postfix, the client leaves Nagle's algorithm on (no TCP_NODELAY) and never forces an ACK.
 * That costs a filter about 40 ms per message wherever a small write waits for a delayed ACK: a
 * filter that splits its answer into several small writes (OpenDKIM), or one that leaves the last
 * write before the content unanswered (the DATA macros). Cells without `quickAck` measure that
 * latency, as a real MTA sees it. With `quickAck` the client takes its side out of it: it sets
 * TCP_NODELAY, and TCP_QUICKACK after every read (tcp_options.ts), so throughput and CPU cells
 * measure the filters' work rather than the timers.
 *
 * Every reply is checked: a DKIM-Signature field added when signing, an Authentication-Results
 * field with `dkim=pass` when verifying (in `arc` mode also `arc=pass`, and an ARC-Seal with
 * `i=3; ... cv=pass`), and an accept (or continue) at the end; anything else
 * is an error. Run: `deno run --allow-all bench/load_client.ts --socket 127.0.0.1:8891
 * --corpus DIR --mode sign --concurrency 4 --duration 3000 [--pid PID] [--quickack]`; it prints
 * one JSON line ({@link LoadResult}).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { fromLatin1, latin1 } from "../lib/bytes.ts";
import { type ClientMessage, type MessageResult, MilterClient } from "../lib/milter/client.ts";
import { type MilterMessage, readCorpus } from "./corpus.ts";
import {
  BLOCKING_POOL_THREAD,
  type CpuTime,
  cpuTime,
  memory,
  resetPeakRss,
  resetTreePeakRss,
  threadCpuDelta,
  threadCpuMs,
  treeCpuTime,
  treeMemory,
} from "./proc_stats.ts";
import { percentile } from "./stats.ts";
import { setQuickAck, socketFd } from "./tcp_options.ts";

/**
 * What the filter is asked to do: sign mail from an authenticated client, verify inbound mail,
 * or (`arc`) verify inbound mail carrying a 2-instance ARC chain and seal it (ARCMode sv).
 */
export type LoadMode = "sign" | "verify" | "arc";

/** The ARC instance the filter must add in `arc` mode: the corpus carries two sets. */
export const ARC_SEAL_INSTANCE = 3;

/** Options of {@link runLoad}. */
export interface LoadOptions {
  /** The filter's TCP address. */
  readonly host: string;
  /** The filter's TCP port. */
  readonly port: number;
  /** The messages to send, sent round-robin (each connection starting at its own offset). */
  readonly messages: readonly MilterMessage[];
  /** Sign or verify. */
  readonly mode: LoadMode;
  /** Connections sending at once. */
  readonly concurrency: number;
  /** Length of the measured window in milliseconds. */
  readonly durationMs: number;
  /** Traffic before the window, not measured: JIT compilation, caches, TCP windows. */
  readonly warmupMs: number;
  /** Set TCP_NODELAY, and TCP_QUICKACK after every read (not what Postfix does; see the module doc). */
  readonly quickAck: boolean;
  /** Set TCP_NODELAY, which Postfix does not: for diagnosing stalls; default false. */
  readonly noDelay?: boolean;
  /** The filter's process, whose CPU time and peak memory are measured over the window. */
  readonly pid?: number;
  /** Measure `pid` with every process below it (rspamd's workers), summed. */
  readonly tree?: boolean;
  /** For sign mode: the `a=` every signature must have (e.g. "rsa-sha256"). */
  readonly algorithm?: string;
  /** Longest wait for any reply; default 30 s. */
  readonly timeoutMs?: number;
}

/** The outcome of one load run, printed as a JSON line. */
export interface LoadResult {
  readonly mode: LoadMode;
  readonly concurrency: number;
  readonly quickAck: boolean;
  /** Messages completed inside the window. */
  readonly messages: number;
  /** Messages inside the window whose reply failed the check, or that failed outright. */
  readonly errors: number;
  /** The first few error descriptions. */
  readonly errorSamples: readonly string[];
  /** The window's length in seconds. */
  readonly seconds: number;
  /** Completed messages per second. */
  readonly msgsPerSecond: number;
  /** Median latency, first command of a message to its final reply, in milliseconds. */
  readonly p50Ms: number;
  /** 99th percentile latency in milliseconds. */
  readonly p99Ms: number;
  /** Mean message size in bytes. */
  readonly meanBytes: number;
  /** The filter's CPU milliseconds (user + system) per completed message, when `pid` was given. */
  readonly cpuMsPerMessage?: number;
  /** The filter's user and system CPU milliseconds over the window. */
  readonly cpu?: CpuTime;
  /**
   * The filter's CPU milliseconds per message outside Deno's blocking thread pool (where
   * WebCrypto computes RSA signatures): its event loop, V8's helper threads and any workers.
   */
  readonly cpuMsOutsidePoolPerMessage?: number;
  /** The filter's peak resident bytes over the window (since its start if it could not be reset). */
  readonly peakRssBytes?: number;
  /** Whether the peak was reset at the window's start. */
  readonly peakReset?: boolean;
}

/**
 * Postfix's stream buffer (VSTREAM_BUFSIZE): commands that need no reply wait in it until it
 * fills or a reply is awaited; a larger command (a body chunk) goes out at once.
 */
export const POSTFIX_WRITE_BUFFER_BYTES = 4096;

/** The default reply timeout: generous, so a slow filter shows as slow rather than failed. */
export const LOAD_TIMEOUT_MS_DEFAULT = 30_000;

/**
 * Checks a filter's answer to one message: undefined when it is what the mode expects, else a
 * description of what is wrong.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkReply } from "./load_client.ts";
 * import { utf8 } from "../lib/bytes.ts";
 * const signed = {
 *   modifications: [{ type: "insheader", index: 0, name: "DKIM-Signature", value: utf8("v=1; a=rsa-sha256; d=example.com; b=abc") }],
 *   final: { type: "accept" },
 *   replies: [],
 * } as const;
 * assert.equal(checkReply("sign", signed, "rsa-sha256"), undefined);
 * assert.match(checkReply("verify", signed) ?? "", /Authentication-Results/);
 * ```
 */
export function checkReply(
  mode: LoadMode,
  result: MessageResult,
  algorithm?: string,
): string | undefined {
  if (result.final.type !== "accept" && result.final.type !== "continue") {
    return `final reply ${result.final.type}`;
  }
  const added = result.modifications.flatMap((m) =>
    m.type === "insheader" || m.type === "addheader"
      ? [{ name: m.name, value: typeof m.value === "string" ? m.value : latin1(m.value) }]
      : []
  );
  if (mode === "sign") {
    const sig = added.find((f) => f.name.toLowerCase() === "dkim-signature");
    if (!sig) return "no DKIM-Signature field added";
    if (!/(^|;)\s*b=\s*[A-Za-z0-9+/]/.test(sig.value)) return "DKIM-Signature without b=";
    if (algorithm && !new RegExp(`(^|;)\\s*a=${algorithm}\\s*;`).test(sig.value)) {
      return `DKIM-Signature not a=${algorithm}: ${sig.value.slice(0, 60)}`;
    }
    return undefined;
  }
  const ar = added.find((f) => f.name.toLowerCase() === "authentication-results");
  if (!ar) return "no Authentication-Results field added";
  if (!/\bdkim=pass\b/.test(ar.value)) return `not dkim=pass: ${ar.value.trim().slice(0, 120)}`;
  if (mode === "arc") {
    if (!/\barc=pass\b/.test(ar.value)) return `not arc=pass: ${ar.value.trim().slice(0, 120)}`;
    const seal = added.find((f) => f.name.toLowerCase() === "arc-seal");
    if (!seal) return "no ARC-Seal field added";
    if (!new RegExp(`^\\s*i=${ARC_SEAL_INSTANCE}\\s*;`).test(seal.value)) {
      return `ARC-Seal not i=${ARC_SEAL_INSTANCE}: ${seal.value.slice(0, 60)}`;
    }
    if (!/(^|;)\s*cv=pass\s*;/.test(seal.value)) {
      return `ARC-Seal not cv=pass: ${seal.value.slice(0, 60)}`;
    }
    if (!/(^|;)\s*b=\s*[A-Za-z0-9+/]/.test(seal.value)) return "ARC-Seal without b=";
  }
  return undefined;
}

// The connecting client and macros: an authenticated local submission client when signing, an
// outside server when verifying, with the macros Postfix sends by default (milter_*_macros).
function envelope(mode: LoadMode, session: number, qid: string): Omit<ClientMessage, "headers"> {
  const sign = mode === "sign";
  return {
    connect: sign
      ? {
        hostname: "localhost",
        address: "127.0.0.1",
        port: 40000 + session,
        family: "inet" as const,
      }
      : {
        hostname: "mx.example.net",
        address: "192.0.2.10",
        port: 40000 + session,
        family: "inet" as const,
      },
    helo: sign ? "client.example.com" : "mx.example.net",
    macros: {
      connect: {
        j: "mail.example.com",
        "{daemon_name}": sign ? "submission" : "smtpd",
        v: "Postfix 3.10",
      },
      mail: sign ? { i: qid, "{auth_type}": "PLAIN", "{auth_authen}": "sender" } : { i: qid },
      rcpt: { i: qid },
      data: { i: qid },
      eoh: { i: qid },
      eom: { i: qid },
    },
    from: sign ? "<sender@example.com>" : "<sender@example.com>",
    rcpts: ["<rcpt@example.org>"],
  };
}

async function openClient(options: LoadOptions): Promise<MilterClient> {
  const conn = await Deno.connect({ hostname: options.host, port: options.port });
  // Postfix leaves Nagle's algorithm on for milter connections; so does this client, unless
  // told to take itself out of Nagle and delayed-ACK stalls.
  conn.setNoDelay(options.quickAck || (options.noDelay ?? false));
  let transport: Deno.Conn = conn;
  if (options.quickAck) {
    const fd = await socketFd(conn.localAddr.port);
    setQuickAck(fd);
    transport = new Proxy(conn, {
      get(target, prop) {
        if (prop === "read") {
          return async (buffer: Uint8Array) => {
            const n = await target.read(buffer);
            if (n !== null) setQuickAck(fd);
            return n;
          };
        }
        const value = Reflect.get(target, prop, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  }
  return await MilterClient.open(transport, {
    timeoutMs: options.timeoutMs ?? LOAD_TIMEOUT_MS_DEFAULT,
    writeBufferBytes: POSTFIX_WRITE_BUFFER_BYTES,
    flushBeforeContent: true,
  });
}

/**
 * Runs the load: opens the connections, sends for `warmupMs`, then measures for `durationMs`
 * (messages completing inside the window, the filter's CPU time and peak memory), then lets the
 * messages in flight finish and closes the connections.
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const { messages, mode, concurrency } = options;
  if (messages.length === 0) throw new RangeError("No messages to send");
  // An object, so the workers' closures see the phase change (and the compiler does not narrow).
  const run: { phase: "warmup" | "measure" | "done" } = { phase: "warmup" };
  const running = () => run.phase !== "done";
  const latencies: number[] = [];
  let errors = 0;
  const errorSamples: string[] = [];
  let bytes = 0;
  let windowStart = 0;
  let windowEnd = 0;
  let cpuStart: CpuTime | undefined;
  let cpuEnd: CpuTime | undefined;
  let threadsStart: Map<number, number> | undefined;
  let threadsEnd: Map<number, number> | undefined;
  let peakReset: boolean | undefined;
  let peakRssBytes: number | undefined;
  let qidCounter = 0;

  const noteError = (text: string) => {
    if (run.phase !== "measure") return;
    errors++;
    if (errorSamples.length < 5) errorSamples.push(text);
  };

  const clients = await Promise.all(
    Array.from({ length: concurrency }, () => openClient(options)),
  );

  const worker = async (index: number) => {
    let client = clients[index];
    let next = Math.floor((index * messages.length) / concurrency);
    while (running()) {
      const message = messages[next++ % messages.length];
      const qid = (0x100000 + qidCounter++).toString(16).toUpperCase();
      const env = envelope(mode, index, qid);
      const started = performance.now();
      try {
        const result = await client.sendMessage({
          ...env,
          headers: message.headers,
          body: message.body,
        });
        const finished = performance.now();
        const problem = checkReply(mode, result, options.algorithm);
        await client.abort({ deferred: true });
        if (run.phase === "measure" && finished <= windowEnd) {
          latencies.push(finished - started);
          bytes += message.bytes;
          if (problem) noteError(problem);
        }
      } catch (e) {
        noteError(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
        client.close();
        if (!running()) break;
        client = await openClient(options);
      }
    }
    try {
      await client.quit();
    } catch {
      // The filter may have gone; the run is over anyway.
    }
  };

  const workers = clients.map((_, i) => worker(i));
  await new Promise((resolve) => setTimeout(resolve, options.warmupMs));
  const cpuOf = options.tree ? treeCpuTime : cpuTime;
  const memoryOf = options.tree ? treeMemory : memory;
  if (options.pid !== undefined) {
    peakReset = await (options.tree ? resetTreePeakRss : resetPeakRss)(options.pid);
    cpuStart = await cpuOf(options.pid);
    threadsStart = await threadCpuMs(options.pid, BLOCKING_POOL_THREAD);
  }
  windowStart = performance.now();
  windowEnd = windowStart + options.durationMs;
  run.phase = "measure";
  await new Promise((resolve) => setTimeout(resolve, options.durationMs));
  if (options.pid !== undefined) {
    cpuEnd = await cpuOf(options.pid);
    threadsEnd = await threadCpuMs(options.pid, BLOCKING_POOL_THREAD);
    peakRssBytes = (await memoryOf(options.pid)).peakRss;
  }
  const seconds = (performance.now() - windowStart) / 1000;
  run.phase = "done";
  await Promise.all(workers);

  const done = latencies.length;
  const cpu = cpuStart && cpuEnd
    ? { userMs: cpuEnd.userMs - cpuStart.userMs, systemMs: cpuEnd.systemMs - cpuStart.systemMs }
    : undefined;
  return {
    mode,
    concurrency,
    quickAck: options.quickAck,
    messages: done,
    errors,
    errorSamples,
    seconds,
    msgsPerSecond: done / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    meanBytes: done > 0 ? bytes / done : NaN,
    cpuMsPerMessage: cpu && done > 0 ? (cpu.userMs + cpu.systemMs) / done : undefined,
    cpu,
    cpuMsOutsidePoolPerMessage: threadsStart && threadsEnd && done > 0
      ? threadCpuDelta(threadsStart, threadsEnd) / done
      : undefined,
    peakRssBytes,
    peakReset,
  };
}

/** Parses the command line of the load client. */
export async function loadOptionsFromArgs(args: readonly string[]): Promise<LoadOptions> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      socket: { type: "string" },
      corpus: { type: "string" },
      mode: { type: "string" },
      concurrency: { type: "string", default: "1" },
      duration: { type: "string", default: "3000" },
      warmup: { type: "string", default: "1000" },
      quickack: { type: "boolean", default: false },
      nodelay: { type: "boolean", default: false },
      pid: { type: "string" },
      tree: { type: "boolean", default: false },
      algorithm: { type: "string" },
    },
    strict: true,
  });
  const socket = values.socket?.match(/^(.+):(\d+)$/);
  if (!socket) throw new TypeError(`Invalid "--socket" ${values.socket}: expected HOST:PORT`);
  if (values.mode !== "sign" && values.mode !== "verify" && values.mode !== "arc") {
    throw new TypeError(`Invalid "--mode" ${values.mode}: expected "sign", "verify" or "arc"`);
  }
  if (!values.corpus) throw new TypeError('Missing "--corpus DIR"');
  const int = (name: string, text: string, min: number) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min) throw new TypeError(`Invalid "--${name}" ${text}`);
    return n;
  };
  return {
    host: socket[1],
    port: int("socket", socket[2], 1),
    messages: await readCorpus(values.corpus),
    mode: values.mode,
    concurrency: int("concurrency", values.concurrency, 1),
    durationMs: int("duration", values.duration, 1),
    warmupMs: int("warmup", values.warmup, 0),
    quickAck: values.quickack,
    noDelay: values.nodelay,
    pid: values.pid === undefined ? undefined : int("pid", values.pid, 1),
    tree: values.tree,
    algorithm: values.algorithm,
  };
}

if (import.meta.main) {
  const options = await loadOptionsFromArgs(Deno.args);
  const result = await runLoad(options);
  await Deno.stdout.write(fromLatin1(`${JSON.stringify(result)}\n`));
}
