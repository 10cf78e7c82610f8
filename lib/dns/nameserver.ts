/**
 * Nameserver addresses as OpenDKIM's `Nameservers` setting and the dkimd command line take them:
 * an IP address with an optional port, or a comma-separated list of those. Host names are
 * refused: resolving a nameserver's own name would need a resolver, and a typo would silently
 * send key queries somewhere else.
 *
 * @module
 */

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

const IPV4_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
/** Dotted-quad only: inet_aton's octal, hex and short forms are refused as likely typos. */
const IPV4 = new RegExp(`^${IPV4_OCTET}(?:\\.${IPV4_OCTET}){3}$`);
const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;
const PORT = /^[0-9]{1,5}$/;

function parseIpv4Octets(text: string): number[] | undefined {
  if (!IPV4.test(text)) return undefined;
  return text.split(".").map(Number);
}

/** The eight 16-bit words of an IPv6 address (RFC 4291 §2.2), or undefined. */
function parseIpv6Words(text: string): number[] | undefined {
  if (text.length === 0 || text.length > 45) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const parseSide = (side: string, allowV4: boolean): number[] | undefined => {
    if (side === "") return [];
    const words: number[] = [];
    const groups = side.split(":");
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      if (allowV4 && i === groups.length - 1 && g.includes(".")) {
        const octets = parseIpv4Octets(g);
        if (!octets) return undefined;
        words.push((octets[0] << 8) | octets[1], (octets[2] << 8) | octets[3]);
      } else if (HEX_GROUP.test(g)) {
        words.push(parseInt(g, 16));
      } else {
        return undefined;
      }
    }
    return words;
  };
  if (halves.length === 1) {
    const words = parseSide(halves[0], true);
    return words && words.length === 8 ? words : undefined;
  }
  const head = parseSide(halves[0], false);
  const tail = parseSide(halves[1], true);
  if (!head || !tail || head.length + tail.length > 7) return undefined;
  return [...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail];
}

/** Formats eight words as RFC 5952 §4 text, with IPv4-mapped addresses in dotted form (§5). */
function formatIpv6(words: readonly number[]): string {
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) {
    const v4 = [words[6] >> 8, words[6] & 0xff, words[7] >> 8, words[7] & 0xff].join(".");
    return `::ffff:${v4}`;
  }
  let bestStart = -1;
  let bestLength = 1; // RFC 5952 §4.2.2: "::" never stands for a single zero word.
  for (let i = 0; i < 8; i++) {
    if (words[i] !== 0) continue;
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestStart < 0) return hex.join(":");
  const head = hex.slice(0, bestStart).join(":");
  const tail = hex.slice(bestStart + bestLength).join(":");
  return `${head}::${tail}`;
}

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
  if (IPV4.test(text)) return { address: text, family: 4 };
  const words = parseIpv6Words(text);
  return words ? { address: formatIpv6(words), family: 6 } : undefined;
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
