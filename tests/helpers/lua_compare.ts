/**
 * Runs Debian's OpenDKIM 2.11 and dkimd on the same opendkim.conf and the same messages through
 * the milter protocol (the project's MTA side, lib/milter/client.ts), for the Lua policy script
 * comparisons: each filter's reply and header changes summed up in words that do not depend on
 * time or style (signatures by d= and s=, Authentication-Results by their dkim= results).
 *
 * @module
 */
import assert from "node:assert/strict";
import { latin1 } from "../../lib/bytes.ts";
import { signMessage } from "../../lib/dkim/sign.ts";
import { type ClientMessage, type MessageResult, MilterClient } from "../../lib/milter/client.ts";
import type { Reply } from "../../lib/milter/reply.ts";
import { parseSocketSpec } from "../../lib/milter/socket_spec.ts";
import { importPrivateKey } from "../../lib/crypto/private_key.ts";
import { freePort, startDkimd } from "./dkimd_process.ts";

/** The signing key both filters use. */
export const KEY = new URL("../testdata/keys/rsa2048_pkcs1.pem", import.meta.url);
/** Its public key, published to both through TestPublicKeys. */
export const PUB = new URL("../testdata/keys/rsa2048_pub.der", import.meta.url);
const OPENDKIM = "/usr/sbin/opendkim";

/** A directory with the key, the KeyTable and TestPublicKeys both filters share. */
export async function setUp(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "dkimd-lua-" });
  await Deno.chmod(dir, 0o755);
  await Deno.copyFile(KEY, `${dir}/k.private`);
  await Deno.chmod(`${dir}/k.private`, 0o600);
  const p = btoa(String.fromCharCode(...await Deno.readFile(PUB)));
  await Deno.writeTextFile(
    `${dir}/keys.txt`,
    `s1._domainkey.example.com v=DKIM1; k=rsa; p=${p}\n` +
      `s2._domainkey.example.org v=DKIM1; k=rsa; p=${p}\n`,
  );
  await Deno.writeTextFile(
    `${dir}/key.table`,
    `k1 example.com:s1:${dir}/k.private\nk2 example.org:s2:${dir}/k.private\n`,
  );
  return dir;
}

/** The opendkim.conf both read (the Socket line differs). */
export function conf(dir: string, socket: string, extra: string): string {
  return `Mode sv\nSocket ${socket}\nKeyTable ${dir}/key.table\nTestPublicKeys ${dir}/keys.txt\n` +
    `Canonicalization relaxed/relaxed\nAuthservID mx.example.net\nSignatureAlgorithm rsa-sha256\n` +
    `Syslog no\nRequireSafeKeys no\n${extra}`;
}

/** A running filter. */
export interface Filter {
  readonly socket: string;
  stop(): Promise<unknown>;
  log(): string;
}

/** Starts Debian's opendkim in the foreground on `dir`'s opendkim.conf with `extra` lines. */
export async function startOpendkim(dir: string, extra: string): Promise<Filter> {
  const port = freePort();
  const socket = `inet:${port}@127.0.0.1`;
  await Deno.writeTextFile(`${dir}/opendkim.conf`, conf(dir, socket, extra));
  const child = new Deno.Command(OPENDKIM, {
    args: ["-f", "-x", `${dir}/opendkim.conf`],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const c of s.pipeThrough(new TextDecoderStream())) text += c;
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`opendkim did not start:\n${text}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    socket,
    log: () => text,
    stop: async () => {
      try {
        child.kill("SIGTERM");
      } catch {
        // It crashed already (a test may expect that).
      }
      await child.status;
      await pumps;
    },
  };
}

/** Lines only one of the filters reads (a resolver set up each filter's way, say). */
export interface OnlyLines {
  /** Lines for OpenDKIM alone. */
  readonly opendkim?: string;
  /** Lines for dkimd alone. */
  readonly dkimd?: string;
}

/**
 * Writes `files` into a fresh directory and starts both filters on the same configuration
 * (`$DIR` in `extra` and in the files names the directory).
 */
export async function startBoth(
  extra: string,
  files: Record<string, string>,
  only: OnlyLines = {},
) {
  const dir = await setUp();
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(`${dir}/${name}`, text.replaceAll("$DIR", dir));
  }
  const text = extra.replaceAll("$DIR", dir);
  const sub = (t = "") => t.replaceAll("$DIR", dir);
  const opendkim = await startOpendkim(dir, text + sub(only.opendkim));
  const dkimd = await startDkimd(dir, (socket) => conf(dir, socket, text + sub(only.dkimd)));
  return {
    dir,
    opendkim,
    dkimd,
    async stop() {
      await Promise.all([opendkim.stop(), dkimd.stop()]);
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** A client in InternalHosts (the default 127.0.0.1). */
export const INTERNAL = { hostname: "localhost", address: "127.0.0.1" };
/** A client outside. */
export const EXTERNAL = { hostname: "mail.example.net", address: "192.0.2.25" };
/** The body of every message. */
export const BODY = "Hi,\r\n\r\nSee you at noon.\r\n";

/** A message from `from` to `rcpts` through `client`, `extra` fields first. */
export function message(
  id: string,
  from: string,
  rcpts: string[],
  client: { hostname: string; address: string },
  extra: [string, string][] = [],
): ClientMessage {
  return {
    connect: client,
    macros: { mail: { i: id }, eoh: { i: id }, eom: { i: id } },
    from: `<${from}>`,
    rcpts: rcpts.map((r) => `<${r}>`),
    headers: [
      ...extra.map(([n, v]) => [n, ` ${v}`] as const),
      ["From", ` ${from}`],
      ["To", ` ${rcpts.join(", ")}`],
      ["Subject", " Lunch"],
      ["Date", " Mon, 07 Dec 2026 12:00:00 +0000"],
      ["Message-ID", ` <${id}@example.com>`],
    ],
    body: BODY,
  };
}

/** A message signed by dkimd's library with the keys of the KeyTable, for verification. */
export async function signed(
  m: ClientMessage,
  signers: [string, string][],
): Promise<ClientMessage> {
  const key = await importPrivateKey(await Deno.readTextFile(KEY));
  const text = m.headers.map(([n, v]) => `${n}:${typeof v === "string" ? v : latin1(v)}\r\n`)
    .join("") + "\r\n" + BODY;
  const fields = await signMessage(
    new TextEncoder().encode(text),
    signers.map(([d, s]) => ({
      domain: d,
      selector: s,
      key,
      canonicalization: ["relaxed", "relaxed"] as const,
    })),
  );
  const sigs = fields.map((f) => {
    const raw = latin1(f.raw);
    return ["DKIM-Signature", raw.slice(raw.indexOf(":") + 1)] as const;
  });
  return { ...m, headers: [...sigs, ...m.headers] };
}

/** What a filter did, in words that do not depend on time or on the implementation's style. */
export function summary(r: MessageResult): string[] {
  const out: string[] = [];
  for (const m of r.modifications) out.push(describe(m));
  out.sort();
  out.push(`final: ${describeFinal(r.final)}`);
  return out;
}

/** A field value as text. */
export function text(v: unknown): string {
  return typeof v === "string" ? v : latin1(v as Uint8Array);
}

function describe(m: Reply): string {
  if (m.type === "insheader" || m.type === "addheader" || m.type === "chgheader") {
    const value = text(m.value).replace(/\r?\n[ \t]+/g, " ").trim();
    if (m.name === "DKIM-Signature") {
      const d = /(?:^|;)\s*d=([^;\s]+)/.exec(value)?.[1];
      const s = /(?:^|;)\s*s=([^;\s]+)/.exec(value)?.[1];
      return `${m.type === "chgheader" ? "change" : "add"} DKIM-Signature d=${d} s=${s}`;
    }
    if (m.name === "Authentication-Results") {
      const results = [...value.matchAll(/dkim=(\w+)[^;]*?header\.d=([^\s;]+)/g)]
        .map((x) => `${x[1]}:${x[2]}`).sort();
      return `add Authentication-Results ${results.join(" ") || "(none)"}`;
    }
    if (m.name === "DKIM-Filter") return "add DKIM-Filter";
    return `${m.type === "chgheader" ? "change" : "add"} ${m.name}: ${value}`;
  }
  if (m.type === "quarantine") return `quarantine ${m.reason}`;
  return m.type;
}

function describeFinal(r: Reply): string {
  if (r.type === "replycode") return `${r.code} ${r.text}`.trim();
  return r.type;
}

/** Sends each message on its own connection to `socket`; the filter's whole answer to each. */
export async function send(socket: string, messages: ClientMessage[]): Promise<MessageResult[]> {
  const out: MessageResult[] = [];
  for (const m of messages) {
    const client = await MilterClient.connect(parseSocketSpec(socket));
    try {
      out.push(await client.sendMessage(m));
    } finally {
      await client.quit().catch(() => client.close());
    }
  }
  return out;
}

/** Sends each message on its own connection to `socket`; what the filter did with each. */
export async function run(socket: string, messages: ClientMessage[]): Promise<string[][]> {
  return (await send(socket, messages)).map(summary);
}

/**
 * Runs `messages` through both and checks each does `want`; `departure` is what OpenDKIM does
 * instead where dkimd departs from it on purpose (the test names why).
 */
export async function compare(
  extra: string,
  files: Record<string, string>,
  messages: ClientMessage[],
  want: string[][],
  departure?: string[][],
  only: OnlyLines = {},
): Promise<void> {
  const both = await startBoth(extra, files, only);
  try {
    const theirs = await run(both.opendkim.socket, messages);
    const ours = await run(both.dkimd.socket, messages);
    assert.deepEqual(theirs, departure ?? want, "OpenDKIM did not do what the test expects");
    assert.deepEqual(ours, want, `dkimd differs from OpenDKIM; its log:\n${both.dkimd.log()}`);
  } finally {
    await both.stop();
  }
}
