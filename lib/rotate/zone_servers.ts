/**
 * The servers of the zone a key record lives in, found through the resolver dkimd uses: the
 * zone's apex and primary (SOA, RFC 1035 §3.3.13: MNAME is the default `DNSUpdateServer`), and
 * its authoritative servers (NS, and their addresses), which the proof asks directly. The edge
 * of the rotation layer: it uses `Deno.resolveDns`, which reads NS, SOA and address records that
 * our TXT-only stub does not; a failure here is a plain error, not an answer to judge.
 *
 * @module
 */

import { DNS_PORT, formatNameserver, type Nameserver } from "../dns/nameserver.ts";
import { StubResolver } from "../dns/stub.ts";
import type { ProofServer } from "./proof.ts";

/** Time for each lookup of the discovery: each is one short query. */
export const ZONE_LOOKUP_TIMEOUT_MS = 5000;

/** A zone's apex and primary, from its SOA. */
export interface ZoneApex {
  /** The apex, without the trailing dot. */
  readonly zone: string;
  /** The SOA MNAME: the primary server's host name. */
  readonly primary: string;
}

/** A zone's servers could not be found. */
export class ZoneLookupError extends Error {
  /** Says what could not be found and why. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ZoneLookupError";
  }
}

function lookupOptions(resolver: Nameserver) {
  return {
    nameServer: { ipAddr: resolver.address, port: resolver.port },
    signal: AbortSignal.timeout(ZONE_LOOKUP_TIMEOUT_MS),
  };
}

/** Runs `query` against each resolver in turn until one answers; NotFound ends the search. */
async function ask<T>(
  resolvers: readonly Nameserver[],
  query: (resolver: Nameserver) => Promise<T>,
): Promise<T | undefined> {
  let lastError: unknown;
  for (const resolver of resolvers) {
    try {
      return await query(resolver);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      lastError = error;
    }
  }
  throw lastError;
}

const bare = (name: string) => name.replace(/\.$/, "").toLowerCase();

/**
 * The zone `name` is in: the closest enclosing name with an SOA record, asked of `resolvers`.
 */
export async function findZoneApex(
  name: string,
  resolvers: readonly Nameserver[],
): Promise<ZoneApex> {
  const labels = bare(name).split(".");
  for (let i = 0; i < labels.length - 1; i++) {
    const candidate = labels.slice(i).join(".");
    try {
      const soa = await ask(resolvers, (r) => Deno.resolveDns(candidate, "SOA", lookupOptions(r)));
      if (soa && soa.length > 0) return { zone: candidate, primary: bare(soa[0].mname) };
    } catch (cause) {
      throw new ZoneLookupError(`Cannot find the zone of "${name}": ${cause}`, { cause });
    }
  }
  throw new ZoneLookupError(`Cannot find the zone of "${name}": no SOA record above it`);
}

/** The addresses of host `host`, IPv4 then IPv6, on `port`. */
export async function hostAddresses(
  host: string,
  resolvers: readonly Nameserver[],
  port: number = DNS_PORT,
): Promise<Nameserver[]> {
  const out: Nameserver[] = [];
  for (const [type, family] of [["A", 4], ["AAAA", 6]] as const) {
    try {
      const found = await ask(resolvers, (r) => Deno.resolveDns(host, type, lookupOptions(r)));
      for (const address of found ?? []) out.push({ address, port, family });
    } catch (cause) {
      throw new ZoneLookupError(`Cannot find the address of "${host}": ${cause}`, { cause });
    }
  }
  if (out.length === 0) throw new ZoneLookupError(`Cannot find the address of "${host}"`);
  return out;
}

/**
 * The zone's authoritative servers: its NS records' addresses, on `port` (53; tests pass
 * another), labelled with their names. Throws {@link ZoneLookupError} when there are none.
 */
export async function findAuthoritativeServers(
  zone: string,
  resolvers: readonly Nameserver[],
  port: number = DNS_PORT,
): Promise<{ readonly host: string; readonly server: Nameserver }[]> {
  let hosts: string[] | undefined;
  try {
    hosts = await ask(resolvers, (r) => Deno.resolveDns(zone, "NS", lookupOptions(r)));
  } catch (cause) {
    throw new ZoneLookupError(`Cannot find the servers of zone "${zone}": ${cause}`, { cause });
  }
  if (!hosts || hosts.length === 0) {
    throw new ZoneLookupError(`Cannot find the servers of zone "${zone}": it has no NS records`);
  }
  const out: { host: string; server: Nameserver }[] = [];
  for (const host of [...new Set(hosts.map(bare))].sort()) {
    for (const server of await hostAddresses(host, resolvers, port)) out.push({ host, server });
  }
  return out;
}

/** Options for {@link proofServers}. */
export interface ProofServerOptions {
  /** Time for each server's answer (default {@link ZONE_LOOKUP_TIMEOUT_MS}). */
  readonly timeoutMs?: number;
}

/**
 * The servers the proof asks: each authoritative server alone and without recursion, then each
 * resolver dkimd uses, alone and with recursion, each over TCP when its answer is truncated.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { proofServers } from "./zone_servers.ts";
 * const servers = proofServers(
 *   [{ host: "ns1.example.com", server: { address: "192.0.2.53", port: 53, family: 4 } }],
 *   [{ address: "127.0.0.53", port: 53, family: 4 }],
 * );
 * assert.deepEqual(servers.map((s) => [s.label, s.role]), [
 *   ["192.0.2.53@53 (ns1.example.com)", "authoritative"],
 *   ["127.0.0.53@53", "resolver"],
 * ]);
 * ```
 */
export function proofServers(
  authoritative: readonly { readonly host?: string; readonly server: Nameserver }[],
  resolvers: readonly Nameserver[],
  options: ProofServerOptions = {},
): ProofServer[] {
  const timeoutMs = options.timeoutMs ?? ZONE_LOOKUP_TIMEOUT_MS;
  const make = (server: Nameserver, recursionDesired: boolean) =>
    new StubResolver({ nameservers: [server], timeoutMs, attempts: 2, recursionDesired });
  return [
    ...authoritative.map(({ host, server }) => ({
      label: `${formatNameserver(server)}${host ? ` (${host})` : ""}`,
      role: "authoritative" as const,
      resolver: make(server, false),
    })),
    ...resolvers.map((server) => ({
      label: formatNameserver(server),
      role: "resolver" as const,
      resolver: make(server, true),
    })),
  ];
}
