/**
 * Knot DNS as a zone's real authoritative servers, for the key rotation tests: a primary that
 * takes dynamic updates (RFC 2136) signed with a TSIG key, and optionally a secondary fed by
 * NOTIFY and IXFR/AXFR from it, each a `knotd` on 127.0.0.1 and its own free port, from a
 * temporary directory, controlled through `knotc` (to hold back the secondary's transfers
 * and let it catch up on demand, as a lagging secondary does in life).
 *
 * @module
 */

import { StubResolver } from "../../lib/dns/stub.ts";
import { DnsError } from "../../lib/dns/resolver.ts";
import {
  buildZoneFile,
  DNS_SERVER_START_TIMEOUT_MS,
  type DnsServerOptions,
  findProgram,
  freePort,
} from "./dns_server.ts";

/** Most stderr kept from each knotd, for the error message when it fails. */
const MAX_LOG_BYTES = 64 * 1024;

/** A TSIG key as knot.conf names it. */
export interface KnotTsigKey {
  /** The key name. */
  readonly name: string;
  /** The secret, base64. */
  readonly secret: string;
}

/** Options for {@link startKnotZone}. */
export interface KnotZoneOptions extends DnsServerOptions {
  /** The key the primary knows (its `key:` section). */
  readonly key: KnotTsigKey;
  /** Whether the primary's ACL lets `key` update the zone (default true); false: REFUSED. */
  readonly allowUpdate?: boolean;
  /** Start a secondary too (default false). */
  readonly secondary?: boolean;
}

/** One running knotd. */
export interface KnotServer {
  /** Its port, UDP and TCP, on 127.0.0.1. */
  readonly port: number;
  /** "127.0.0.1@PORT". */
  readonly nameserver: string;
  /** Runs `knotc` against this server with `args`; resolves its stdout, rejects on failure. */
  control(...args: string[]): Promise<string>;
}

/** The zone's servers. */
export interface KnotZone {
  /** The primary, which takes updates. */
  readonly primary: KnotServer;
  /** The secondary, when asked for. */
  readonly secondary?: KnotServer;
  /** Stops every knotd and removes their directories. */
  close(): Promise<void>;
}

interface Running extends KnotServer {
  log(): string;
  close(): Promise<void>;
}

async function spawnKnot(
  name: string,
  dir: string,
  port: number,
  config: readonly string[],
): Promise<Running & { log: () => string; exited: () => boolean }> {
  const program = await findProgram("knotd");
  const knotc = await findProgram("knotc");
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
      ...config,
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
  return {
    port,
    nameserver: `127.0.0.1@${port}`,
    log: () => `${name}:\n${log}`,
    exited: () => exited,
    async control(...args: string[]) {
      const out = await new Deno.Command(knotc, {
        args: ["-c", `${dir}/knot.conf`, "-s", `${dir}/knot.sock`, ...args],
        stdin: "null",
      }).output();
      const text = decoder.decode(out.stdout) + decoder.decode(out.stderr);
      if (!out.success) throw new Error(`knotc ${args.join(" ")} failed: ${text}`);
      return text;
    },
    async close() {
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
    },
  };
}

async function waitForToken(
  server: Running & { log: () => string; exited: () => boolean },
  zone: string,
  token: string,
): Promise<void> {
  const resolver = new StubResolver({
    nameservers: [{ address: "127.0.0.1", port: server.port, family: 4 }],
    timeoutMs: 250,
    attempts: 1,
  });
  const deadline = Date.now() + DNS_SERVER_START_TIMEOUT_MS;
  while (true) {
    if (server.exited()) throw new Error(`knotd exited before answering; ${server.log()}`);
    try {
      const records = await resolver.resolveTxt(`_ready.${zone}`);
      if (records[0] === token) return;
      throw new Error(`Another server answers on port ${server.port}`);
    } catch (error) {
      if (!(error instanceof DnsError)) throw error;
    }
    if (Date.now() > deadline) {
      throw new Error(`knotd did not serve ${zone} within the time; ${server.log()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Starts knotd as the primary of `options.zone` (and a secondary when `options.secondary`),
 * waits until each serves the zone, and returns them. The primary accepts updates signed with
 * `options.key` (unless `allowUpdate` is false: then the key may only transfer, and knot answers
 * NOTAUTH/BADKEY) and NOTIFYs the secondary about a second after each change. To make the
 * secondary lag, `secondary.control("zone-freeze", zone)`: it postpones the transfer the NOTIFY
 * asks for (its SOA refresh is an hour away) until `secondary.control("zone-thaw", zone)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { startKnotZone } from "./knot_servers.ts";
 * const key = { name: "rotate", secret: "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0" };
 * const dns = await startKnotZone({ zone: "example.com", records: {}, key, secondary: true });
 * assert.ok(dns.secondary);
 * await dns.close();
 * ```
 */
export async function startKnotZone(options: KnotZoneOptions): Promise<KnotZone> {
  const zone = options.zone.replace(/\.$/, "").toLowerCase();
  const token = crypto.randomUUID();
  const primaryPort = await freePort();
  let secondaryPort = options.secondary ? await freePort() : undefined;
  while (secondaryPort === primaryPort) secondaryPort = await freePort();
  const primaryDir = await Deno.makeTempDir({ prefix: "dkimd-knot-primary-" });
  await Deno.writeTextFile(`${primaryDir}/${zone}.zone`, buildZoneFile(options, token));
  const started: Running[] = [];
  const close = async () => {
    for (const s of started.reverse()) await s.close();
  };
  try {
    const primary = await spawnKnot("primary", primaryDir, primaryPort, [
      "key:",
      `  - id: ${options.key.name}`,
      "    algorithm: hmac-sha256",
      `    secret: ${options.key.secret}`,
      ...(secondaryPort
        ? ["remote:", "  - id: secondary", `    address: 127.0.0.1@${secondaryPort}`]
        : []),
      "acl:",
      // Without update, the key may still transfer the zone: a server that knows the key but
      // does not let it update answers REFUSED rather than BADKEY.
      "  - id: update",
      `    key: ${options.key.name}`,
      `    action: ${options.allowUpdate === false ? "transfer" : "update"}`,
      "  - id: transfer",
      "    address: 127.0.0.1",
      "    action: transfer",
      "zone:",
      `  - domain: ${zone}`,
      `    storage: "${primaryDir}"`,
      '    file: "%s.zone"',
      "    zonefile-sync: -1",
      "    journal-content: changes",
      "    serial-policy: increment",
      "    acl: [update, transfer]",
      ...(secondaryPort ? ["    notify: secondary"] : []),
    ]);
    started.push(primary);
    await waitForToken(primary, zone, token);
    let secondary: Running | undefined;
    if (secondaryPort) {
      const dir = await Deno.makeTempDir({ prefix: "dkimd-knot-secondary-" });
      const s = await spawnKnot("secondary", dir, secondaryPort, [
        "remote:",
        "  - id: primary",
        `    address: 127.0.0.1@${primaryPort}`,
        "acl:",
        "  - id: notify",
        "    address: 127.0.0.1",
        "    action: notify",
        "zone:",
        `  - domain: ${zone}`,
        `    storage: "${dir}"`,
        '    file: "%s.zone"',
        "    zonefile-sync: -1",
        "    journal-content: changes",
        "    master: primary",
        "    acl: notify",
      ]);
      started.push(s);
      await waitForToken(s, zone, token);
      secondary = s;
    }
    return { primary, ...(secondary ? { secondary } : {}), close };
  } catch (error) {
    await close();
    throw error;
  }
}
