/**
 * Debian's `opendkim` and dkimd side by side as milters, on the same opendkim.conf lines, for the
 * setting-by-setting comparisons of issue 18: each message is played to both over a real socket
 * by the milter client (the MTA's side), and what each did is reduced to what an MTA acts on —
 * the final reply and every header change, quarantine and recipient change — with the parts
 * that differ on every run (signature bytes, timestamps, comments, reply texts) left out, so the
 * two can be compared with `deepEqual`.
 *
 * @module
 */
import { latin1 } from "../../lib/bytes.ts";
import { type ClientMessage, type MessageResult, MilterClient } from "../../lib/milter/client.ts";
import type { Reply } from "../../lib/milter/reply.ts";
import { type DkimdProcess, freePort, startDkimd } from "./dkimd_process.ts";
import { PEER_PROGRAMS } from "./peers.ts";

/** Whether Debian's opendkim is installed (the comparison tests are skipped without it). */
export const HAVE_OPENDKIM: boolean = await Deno.stat(PEER_PROGRAMS.opendkim).then(
  () => true,
  () => false,
);

/** A running `opendkim -f`. */
export interface OpenDkimMilter {
  /** Its TCP port on 127.0.0.1. */
  readonly port: number;
  /** What it wrote to standard error. */
  log(): string;
  /** Stops it (SIGTERM) and waits for it. */
  stop(): Promise<void>;
}

/** How long opendkim may take to listen. */
const OPENDKIM_START_MS = 10_000;

/**
 * Starts `opendkim -f -x dir/opendkim.conf` with `lines` and a socket on a free port of
 * 127.0.0.1; resolves once it accepts connections. It rejects with opendkim's own words when
 * opendkim refuses the configuration. `env` adds environment variables (libldap's
 * LDAPTLS_CACERT, which has no opendkim.conf setting).
 */
export async function startOpenDkim(
  dir: string,
  lines: readonly string[],
  env: Readonly<Record<string, string>> = {},
): Promise<OpenDkimMilter> {
  const port = freePort();
  const conf = `${dir}/opendkim.conf`;
  await Deno.writeTextFile(
    conf,
    [...lines, `Socket inet:${port}@127.0.0.1`, "Syslog no", "Background no", ""].join("\n"),
  );
  const child = new Deno.Command(PEER_PROGRAMS.opendkim, {
    args: ["-f", "-x", conf],
    env,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  const pump = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) text += decoder.decode(chunk, { stream: true });
  })();
  let exited = false;
  const status = child.status.then(async (s) => {
    exited = true;
    await pump;
    return s;
  });
  const stop = async () => {
    if (!exited) child.kill("SIGTERM");
    // libmilter notices the stop flag SIGTERM sets only when its listener wakes: at its next
    // 5 s poll timeout, or at once on a connection. So connect until it exits, a graceful stop
    // (exit status 0) in milliseconds rather than 5 s per milter.
    while (!exited) {
      await Deno.connect({ hostname: "127.0.0.1", port }).then((c) => c.close(), () => {});
      await Promise.race([status, new Promise((resolve) => setTimeout(resolve, 20))]);
    }
    await status;
  };
  const deadline = Date.now() + OPENDKIM_START_MS;
  for (;;) {
    if (exited) {
      await status;
      throw new Error(`opendkim exited at start: ${text.trim()}`);
    }
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`opendkim did not listen on ${port}: ${text.trim()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return { port, log: () => text, stop };
}

/** OpenDKIM and dkimd running on the same configuration. */
export interface MilterPair {
  /** Debian's opendkim. */
  readonly opendkim: OpenDkimMilter;
  /** dkimd, started as the `start` task starts it. */
  readonly dkimd: DkimdProcess;
  /** Stops both. */
  stop(): Promise<void>;
}

/**
 * Starts opendkim and dkimd on the same opendkim.conf `lines` (each in its own subdirectory of
 * `dir`, with its own socket).
 */
export async function startPair(dir: string, lines: readonly string[]): Promise<MilterPair> {
  await Deno.mkdir(`${dir}/opendkim`, { recursive: true });
  await Deno.mkdir(`${dir}/dkimd`, { recursive: true });
  // Both at once (each waits mostly for its process to listen); if one fails, the other is
  // stopped and the failure is thrown.
  const [o, d] = await Promise.allSettled([
    startOpenDkim(`${dir}/opendkim`, lines),
    startDkimd(`${dir}/dkimd`, (socket) => [...lines, `Socket ${socket}`, ""].join("\n")),
  ]);
  if (o.status === "rejected" || d.status === "rejected") {
    await Promise.all([
      o.status === "fulfilled" ? o.value.stop() : undefined,
      d.status === "fulfilled" ? d.value.stop() : undefined,
    ]);
    throw o.status === "rejected" ? o.reason : (d as PromiseRejectedResult).reason;
  }
  const opendkim = o.value;
  const dkimd = d.value;
  return {
    opendkim,
    dkimd,
    async stop() {
      await Promise.all([opendkim.stop(), dkimd.stop()]);
    },
  };
}

/** What a milter did with a message, reduced to what can be compared between two filters. */
export interface Observed {
  /** The final reply: `accept`, `tempfail`, `reject 550 5.7.1`... */
  readonly final: string;
  /** Each change in order: `insheader Authentication-Results: dkim=pass header.d=...`. */
  readonly changes: readonly string[];
}

/** Sends `message` to the milter on `port` over a connection of its own. */
export async function sendTo(port: number, message: ClientMessage): Promise<MessageResult> {
  const client = await MilterClient.connect({ kind: "inet", host: "127.0.0.1", port });
  try {
    return await client.sendMessage(message);
  } finally {
    client.close();
  }
}

/** Plays `message` to both milters of `pair`; what each did. */
export async function observeBoth(
  pair: MilterPair,
  message: ClientMessage,
): Promise<{ opendkim: Observed; dkimd: Observed }> {
  const [opendkim, dkimd] = await Promise.all([
    sendTo(pair.opendkim.port, message),
    sendTo(pair.dkimd.port, message),
  ]);
  return { opendkim: observe(opendkim), dkimd: observe(dkimd) };
}

/**
 * Reduces a milter's answer: the final reply (with its code and enhanced code, not its text) and
 * each change, where DKIM-Signature keeps the tags that say what was signed (d, s, a, c, h, l,
 * i, z present; h= as a sorted multiset), Authentication-Results each method's result with its header.d/header.s and the
 * authserv-id, and quarantine only that it happened (the reasons are each filter's own words).
 */
export function observe(result: MessageResult): Observed {
  const final = describeFinal(result.final);
  const changes = result.modifications.map(describeChange);
  return { final, changes };
}

function describeFinal(reply: Reply): string {
  if (reply.type !== "replycode") return reply.type;
  const xcode = /^\d\.\d{1,3}\.\d{1,3}\b/.exec(reply.text)?.[0];
  return `${reply.code >= 500 ? "reject" : "tempfail"} ${reply.code}${xcode ? ` ${xcode}` : ""}`;
}

function text(value: Uint8Array | string): string {
  return typeof value === "string" ? value : latin1(value);
}

function describeChange(reply: Reply): string {
  switch (reply.type) {
    case "insheader":
    case "addheader":
    case "chgheader": {
      const where = reply.type === "addheader" ? "" : ` ${reply.index}`;
      const value = text(reply.value);
      return `${reply.type}${where} ${reply.name}: ${describeValue(reply.name, value)}`;
    }
    case "quarantine":
      return "quarantine";
    case "addrcpt":
      return `addrcpt ${reply.address}${reply.args ? ` ${reply.args}` : ""}`;
    case "delrcpt":
      return `delrcpt ${reply.address}`;
    default:
      return reply.type === "unrecognized"
        ? `reply 0x${reply.code.toString(16)} ${latin1(reply.data).replace(/\0/g, " ").trim()}`
        : reply.type;
  }
}

function describeValue(name: string, value: string): string {
  const flat = value.replace(/\r?\n[ \t]+/g, " ").replace(/\s+/g, " ").trim();
  if (flat === "") return "(deleted)";
  switch (name.toLowerCase()) {
    case "dkim-signature":
      return signatureSummary(flat);
    case "authentication-results":
      return resultsSummary(flat);
    default:
      return flat;
  }
}

function signatureSummary(value: string): string {
  const tags = new Map<string, string>();
  for (const part of value.split(";")) {
    const at = part.indexOf("=");
    if (at === -1) continue;
    tags.set(part.slice(0, at).trim(), part.slice(at + 1).replace(/\s+/g, ""));
  }
  // The order of h= names matters only among fields of one name: OpenDKIM puts the oversigned
  // names last, dkimd beside their first instance; both sign the same fields.
  const h = tags.get("h")?.toLowerCase().split(":").sort().join(":");
  return [
    `d=${tags.get("d")}`,
    `s=${tags.get("s")}`,
    `a=${tags.get("a")}`,
    `c=${tags.get("c") ?? "simple/simple"}`,
    ...(h ? [`h=${h}`] : []),
    ...(tags.has("l") ? [`l=${tags.get("l")}`] : []),
    ...(tags.has("i") ? [`i=${tags.get("i")}`] : []),
    ...(tags.has("z") ? ["z"] : []),
  ].join(" ");
}

function resultsSummary(value: string): string {
  const [id, ...rest] = value.split(";");
  // Debian's build has ATPS (RFC 6541, experimental) and adds "dkim-atps=neutral" to every
  // result; dkimd does not implement ATPS (a warning says so), so that method is left out.
  const parts = rest.map((r) => r.replace(/\([^)]*\)/g, " ").trim())
    .filter((r) => r !== "" && !r.startsWith("dkim-atps="));
  const methods = parts.map((p) => {
    const result = /^(\w+)=(\w+)/.exec(p);
    const d = /header\.d=(\S+)/.exec(p)?.[1];
    const s = /header\.s=(\S+)/.exec(p)?.[1];
    return [result ? `${result[1]}=${result[2]}` : p, d && `header.d=${d}`, s && `header.s=${s}`]
      .filter(Boolean).join(" ");
  });
  return [id.trim().split(/\s/)[0], ...methods].join("; ");
}
