/**
 * A real authoritative DNS server for tests: Knot DNS (`knotd`, Debian package "knot") serving
 * one zone built from `{ name: [txt strings] }`, on 127.0.0.1 and a free port, from a temporary
 * directory, as the current user, in the foreground. Missing names get NXDOMAIN and names
 * without TXT get NODATA, both with the zone's SOA, as on the Internet. Other implementations
 * (Mail::DKIM, OpenDKIM) and our own resolver can all be pointed at it.
 *
 * @module
 */

import dgram from "node:dgram";
import { asciiLower, fromLatin1 } from "../../lib/bytes.ts";
import { StubResolver } from "../../lib/dns/stub.ts";
import { DnsError } from "../../lib/dns/resolver.ts";

/** Longest wait for knotd to load the zone and answer: it takes well under a second. */
export const DNS_SERVER_START_TIMEOUT_MS = 15_000;

/** Most stderr kept from knotd, for the error message when it fails to start. */
const MAX_LOG_BYTES = 64 * 1024;

/** Options for {@link startDnsServer}. */
export interface DnsServerOptions {
  /** The zone apex, such as "example.com". */
  readonly zone: string;
  /**
   * TXT records by absolute name inside the zone. Each string is one TXT record, written as
   * latin1 bytes and split into 255-byte character-strings; an empty list makes the name exist
   * with an A record (192.0.2.1) and no TXT, so it answers NODATA.
   */
  readonly records: Readonly<Record<string, readonly string[]>>;
  /** TTL of every record (default 300). */
  readonly ttl?: number;
  /** The SOA MINIMUM, the negative TTL of RFC 2308 (default 60). */
  readonly negativeTtl?: number;
}

/** A running knotd. */
export interface DnsServer {
  /** The port, UDP and TCP, on 127.0.0.1. */
  readonly port: number;
  /** "127.0.0.1@PORT", as OpenDKIM's `Nameservers` and `parseNameserver` take it. */
  readonly nameserver: string;
  /** Stops knotd and removes its directory. */
  close(): Promise<void>;
}

/** Thrown when knotd is not installed. */
export class DnsServerUnavailableError extends Error {
  /** Makes the error, naming the program and the Debian package that has it. */
  constructor(program: string, pkg: string, options?: ErrorOptions) {
    super(`Cannot find "${program}": install the Debian package "${pkg}"`, options);
    this.name = "DnsServerUnavailableError";
  }
}

/** Where Debian installs knotd; /usr/sbin is often missing from a user's PATH. */
export async function findProgram(name: string): Promise<string> {
  const dirs = ["/usr/sbin", "/usr/local/sbin", ...(Deno.env.get("PATH") ?? "").split(":")];
  for (const dir of dirs) {
    if (!dir) continue;
    try {
      const info = await Deno.stat(`${dir}/${name}`);
      if (info.isFile) return `${dir}/${name}`;
    } catch {
      // Not in this directory.
    }
  }
  throw new DnsServerUnavailableError(name, "knot");
}

/** Text of one character-string in a zone file: quoted, with RFC 1035 §5.1 escapes. */
function quote(bytes: Uint8Array): string {
  let out = '"';
  for (const b of bytes) {
    if (b === 0x22 || b === 0x5c) out += `\\${String.fromCharCode(b)}`;
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += `\\${b.toString().padStart(3, "0")}`;
  }
  return `${out}"`;
}

/** A TXT record's RDATA: the bytes in character-strings of at most 255 bytes (RFC 1035 §3.3). */
function txtRdata(text: string): string {
  const bytes = fromLatin1(text);
  const parts: string[] = [];
  for (let i = 0; i < bytes.length; i += 255) parts.push(quote(bytes.subarray(i, i + 255)));
  return parts.length > 0 ? parts.join(" ") : '""';
}

function absolute(name: string): string {
  return asciiLower(name.endsWith(".") ? name.slice(0, -1) : name);
}

/** Builds the zone file text; exported for tests of the helper itself. */
export function buildZoneFile(options: DnsServerOptions, readyToken: string): string {
  const zone = absolute(options.zone);
  const ttl = options.ttl ?? 300;
  const lines = [
    `$ORIGIN ${zone}.`,
    `$TTL ${ttl}`,
    `@ SOA ns.${zone}. hostmaster.${zone}. 1 3600 900 604800 ${options.negativeTtl ?? 60}`,
    `@ NS ns.${zone}.`,
    `ns A 127.0.0.1`,
    `_ready TXT ${txtRdata(readyToken)}`,
  ];
  for (const [name, texts] of Object.entries(options.records)) {
    const owner = absolute(name);
    if (owner !== zone && !owner.endsWith(`.${zone}`)) {
      throw new RangeError(`Cannot serve "${name}": it is not inside the zone "${zone}"`);
    }
    if (new Set(texts).size !== texts.length) {
      throw new RangeError(`Cannot serve "${name}": a zone holds each TXT record only once`);
    }
    if (texts.length === 0) lines.push(`${owner}. A 192.0.2.1`);
    for (const text of texts) lines.push(`${owner}. TXT ${txtRdata(text)}`);
  }
  return lines.join("\n") + "\n";
}

// A port free for both UDP and TCP on 127.0.0.1. The OS picks a free UDP port; the same TCP
// port may be taken (tests in parallel open many connections), so try again until both are.
/** A port free on 127.0.0.1 for both UDP and TCP, for a server about to start. */
export async function freePort(): Promise<number> {
  for (let attempt = 0;; attempt++) {
    const udp = dgram.createSocket("udp4");
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once("error", reject);
        udp.bind(0, "127.0.0.1", () => resolve());
      });
      const port = udp.address().port;
      try {
        Deno.listen({ hostname: "127.0.0.1", port }).close(); // TCP free too
      } catch (error) {
        if (error instanceof Deno.errors.AddrInUse && attempt < 20) continue;
        throw error;
      }
      return port;
    } finally {
      await new Promise<void>((resolve) => udp.close(() => resolve()));
    }
  }
}

/**
 * Starts knotd serving `options.zone` and waits until it answers. The zone also holds a TXT
 * record at `_ready.<zone>` with a random token, used to tell our knotd from anything else
 * that might have taken the port.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { startDnsServer } from "./dns_server.ts";
 * const server = await startDnsServer({ zone: "example.com", records: {} });
 * assert.match(server.nameserver, /^127\.0\.0\.1@\d+$/);
 * await server.close();
 * ```
 */
export async function startDnsServer(options: DnsServerOptions): Promise<DnsServer> {
  const program = await findProgram("knotd");
  const token = crypto.randomUUID();
  const zoneText = buildZoneFile(options, token);
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      return await startOnce(program, options, zoneText, token);
    } catch (error) {
      lastError = error as Error;
      if (!(error instanceof PortTakenError)) throw error;
    }
  }
  throw lastError;
}

class PortTakenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PortTakenError";
  }
}

async function startOnce(
  program: string,
  options: DnsServerOptions,
  zoneText: string,
  token: string,
): Promise<DnsServer> {
  const zone = absolute(options.zone);
  const dir = await Deno.makeTempDir({ prefix: "dkimd-knot-" });
  const port = await freePort();
  await Deno.writeTextFile(`${dir}/${zone}.zone`, zoneText);
  await Deno.writeTextFile(
    `${dir}/knot.conf`,
    [
      "server:",
      `    rundir: "${dir}"`,
      `    pidfile: "${dir}/knot.pid"`,
      `    listen: 127.0.0.1@${port}`,
      "database:",
      `    storage: "${dir}"`,
      "control:",
      `    listen: "${dir}/knot.sock"`,
      "log:",
      "  - target: stderr",
      "    any: info",
      "template:",
      "  - id: default",
      `    storage: "${dir}"`,
      '    file: "%s.zone"',
      "    zonefile-sync: -1",
      "    journal-content: none",
      "zone:",
      `  - domain: ${zone}`,
      "",
    ].join("\n"),
  );
  const child = new Deno.Command(program, {
    args: ["-c", `${dir}/knot.conf`],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let log = "";
  const decoder = new TextDecoder();
  const drained = (async () => {
    for await (const chunk of child.stderr) {
      log = (log + decoder.decode(chunk, { stream: true })).slice(-MAX_LOG_BYTES);
    }
  })();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch {
        // It exited just now.
      }
    }
    await status;
    await drained;
    await Deno.remove(dir, { recursive: true });
  };

  const resolver = new StubResolver({
    nameservers: [{ address: "127.0.0.1", port, family: 4 }],
    timeoutMs: 250,
    attempts: 1,
  });
  const deadline = Date.now() + DNS_SERVER_START_TIMEOUT_MS;
  try {
    while (true) {
      if (exited) {
        throw new Error(`knotd exited before answering; its log:\n${log}`);
      }
      try {
        const records = await resolver.resolveTxt(`_ready.${zone}`);
        if (records[0] === token) break;
        throw new PortTakenError(`Another server answers on port ${port}`);
      } catch (error) {
        if (!(error instanceof DnsError)) throw error;
        // Refused or no answer: knotd is still starting. Anything else: not our knotd.
        if (error.code === "nxdomain" || error.code === "nodata") {
          throw new PortTakenError(`Another server answers on port ${port}`);
        }
      }
      if (Date.now() > deadline) {
        throw new Error(
          `knotd did not answer within ${DNS_SERVER_START_TIMEOUT_MS} ms; log:\n${log}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } catch (error) {
    await close();
    if (/cannot bind|address already in use/i.test(log)) {
      throw new PortTakenError(`knotd could not bind port ${port}`);
    }
    throw error;
  }
  return { port, nameserver: `127.0.0.1@${port}`, close };
}
