/**
 * Nameserver addresses as OpenDKIM's `Nameservers` setting and the dkimd command line take them:
 * an IP address with an optional port, or a comma-separated list of those. Host names are
 * refused: resolving a nameserver's own name would need a resolver, and a typo would silently
 * send key queries somewhere else.
 *
 * @module
 */
import { formatIp, parseIp } from "../policy/ip_address.ts";

/** The DNS port (RFC 1035 §4.2), used when a spec names no port. */
export const DNS_PORT = 53;

/**
 * Most nameservers in one list: each server gets a slice of the one lookup timeout, so a longer
 * list would leave each too little time to answer.
 */
export const MAX_NAMESERVERS = 16;

/** One server to send queries to. */
export interface Nameserver {
  /** The address in canonical text form (RFC 5952 for IPv6), without brackets or zone. */
  readonly address: string;
  /** The UDP and TCP port, 1..65535. */
  readonly port: number;
  /** The address family. */
  readonly family: 4 | 6;
}

/** An IP address parsed strictly. */
export interface IpAddress {
  /** The address in canonical text form (RFC 5952 for IPv6). */
  readonly address: string;
  /** The address family. */
  readonly family: 4 | 6;
}

/**
 * A nameserver spec that cannot be parsed. `value` is the text that was refused.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { NameserverSyntaxError, parseNameserver } from "./nameserver.ts";
 * assert.throws(() => parseNameserver("ns.example.com"), NameserverSyntaxError);
 * ```
 */
export class NameserverSyntaxError extends SyntaxError {
  /** The text that could not be parsed. */
  readonly value: string;

  /** Makes an error for `value`, with `detail` saying what was expected. */
  constructor(value: string, detail: string, options?: ErrorOptions) {
    super(`Cannot parse nameserver "${value}": ${detail}`, options);
    this.name = "NameserverSyntaxError";
    this.value = value;
  }
}

const PORT = /^[0-9]{1,5}$/;

/**
 * Parses an IPv4 address (dotted quad) or an IPv6 address (RFC 4291 §2.2, without a zone) and
 * returns it in canonical form, so two spellings of one address compare equal. Returns
 * `undefined` for anything else, including host names.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseIpAddress } from "./nameserver.ts";
 * assert.deepEqual(parseIpAddress("0:0:0:0:0:0:0:1"), { address: "::1", family: 6 });
 * assert.deepEqual(parseIpAddress("192.0.2.1"), { address: "192.0.2.1", family: 4 });
 * assert.equal(parseIpAddress("localhost"), undefined);
 * ```
 */
export function parseIpAddress(text: string): IpAddress | undefined {
  const ip = parseIp(text);
  if (!ip) return undefined;
  // An IPv4-mapped IPv6 address written as IPv6 stays IPv6: the query goes out on an IPv6 socket.
  if (ip.family === 4 && text.includes(":")) {
    return { address: `::ffff:${formatIp(ip)}`, family: 6 };
  }
  return { address: formatIp(ip), family: ip.family };
}

function parsePort(spec: string, text: string): number {
  const port = PORT.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) {
    throw new NameserverSyntaxError(spec, `port "${text}" is not a number in 1..65535`);
  }
  return port;
}

function notAnAddress(spec: string, text: string): NameserverSyntaxError {
  return new NameserverSyntaxError(
    spec,
    `"${text}" is not an IPv4 or IPv6 address (host names are not allowed)`,
  );
}

/**
 * Parses one nameserver spec. Accepted forms: `IP` (port 53), `IP@PORT` (OpenDKIM's form when
 * built with Unbound, for IPv4 and IPv6 alike: `::1@5353`), `[IPv6]`, `[IPv6]:PORT` and
 * `IPv4:PORT`. A bare IPv6 address never carries a port, since its colons make `::1:53`
 * ambiguous. Throws {@link NameserverSyntaxError} naming the bad value.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseNameserver } from "./nameserver.ts";
 * assert.deepEqual(parseNameserver("127.0.0.1@5353"), { address: "127.0.0.1", port: 5353, family: 4 });
 * assert.deepEqual(parseNameserver("[::1]:5353"), { address: "::1", port: 5353, family: 6 });
 * assert.equal(parseNameserver("2001:db8::53").port, 53);
 * ```
 */
export function parseNameserver(text: string): Nameserver {
  if (text.startsWith("[")) {
    const m = /^\[([^\]]*)\](?::([^:]*))?$/.exec(text);
    if (!m) {
      throw new NameserverSyntaxError(text, 'expected "[IPv6]" or "[IPv6]:PORT"');
    }
    const ip = parseIpAddress(m[1]);
    if (!ip || ip.family !== 6) {
      throw new NameserverSyntaxError(text, `"${m[1]}" is not an IPv6 address`);
    }
    const port = m[2] === undefined ? DNS_PORT : parsePort(text, m[2]);
    return { address: ip.address, port, family: 6 };
  }
  const at = text.lastIndexOf("@");
  if (at >= 0) {
    const host = text.slice(0, at);
    const ip = parseIpAddress(host);
    if (!ip) throw notAnAddress(text, host);
    return { address: ip.address, port: parsePort(text, text.slice(at + 1)), family: ip.family };
  }
  const ip = parseIpAddress(text);
  if (ip) return { address: ip.address, port: DNS_PORT, family: ip.family };
  const colon = text.indexOf(":");
  if (colon >= 0 && colon === text.lastIndexOf(":")) {
    const host = text.slice(0, colon);
    const v4 = parseIpAddress(host);
    if (!v4 || v4.family !== 4) throw notAnAddress(text, host);
    return { address: v4.address, port: parsePort(text, text.slice(colon + 1)), family: 4 };
  }
  throw notAnAddress(text, text);
}

/**
 * Parses a comma-separated list of nameserver specs (OpenDKIM's `Nameservers`), allowing spaces
 * around the commas. Empty entries, an empty list and more than {@link MAX_NAMESERVERS} entries
 * are errors.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseNameserverList } from "./nameserver.ts";
 * const list = parseNameserverList("192.0.2.53, ::1@5353");
 * assert.deepEqual(list.map((ns) => ns.port), [53, 5353]);
 * ```
 */
export function parseNameserverList(text: string): Nameserver[] {
  const items = text.split(",").map((item) => item.trim());
  if (items.length > MAX_NAMESERVERS) {
    throw new NameserverSyntaxError(
      text,
      `${items.length} entries, more than the limit of ${MAX_NAMESERVERS}`,
    );
  }
  return items.map((item) => {
    if (item === "") throw new NameserverSyntaxError(text, "empty entry in the list");
    return parseNameserver(item);
  });
}

/**
 * Formats a nameserver as `IP@PORT`, the one form {@link parseNameserver} reads back for both
 * families (OpenDKIM's `Nameservers` syntax).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatNameserver, parseNameserver } from "./nameserver.ts";
 * assert.equal(formatNameserver(parseNameserver("[::1]:5353")), "::1@5353");
 * ```
 */
export function formatNameserver(ns: Nameserver): string {
  return `${ns.address}@${ns.port}`;
}
