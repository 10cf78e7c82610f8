/**
 * IP addresses and CIDR prefixes for host lists. Every address is held as 16 bytes, IPv4 as its
 * IPv4-mapped IPv6 form `::ffff:a.b.c.d` (RFC 4291 §2.5.5.2), so one comparison serves both
 * families and a client connecting over IPv6 from `::ffff:127.0.0.1` matches the rule
 * `127.0.0.1`.
 *
 * @module
 */

/** An IP address. */
export interface IpAddress {
  /** 4 for IPv4 (including IPv4-mapped IPv6 input), 6 for every other IPv6 address. */
  readonly family: 4 | 6;
  /** The 16 bytes of the address; IPv4 is stored IPv4-mapped (`::ffff:a.b.c.d`). */
  readonly bytes: Uint8Array;
}

/** An address block: the first `length` bits of `address` (RFC 4632 §3.1 for IPv4). */
export interface IpPrefix {
  /** The address as written; its bits past `length` may be set (see {@link hasHostBits}). */
  readonly address: IpAddress;
  /** The prefix length in the family's own bits: 0..32 for IPv4, 0..128 for IPv6. */
  readonly length: number;
}

const IPV4_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
const IPV4 = new RegExp(`^${IPV4_OCTET}(?:\\.${IPV4_OCTET}){3}$`);
const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;
const MAPPED_PREFIX = Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff);

function v4Bytes(text: string): Uint8Array | undefined {
  if (!IPV4.test(text)) return undefined;
  const out = new Uint8Array(16);
  out.set(MAPPED_PREFIX);
  text.split(".").forEach((o, i) => (out[12 + i] = Number(o)));
  return out;
}

function v6Words(text: string): number[] | undefined {
  if (text.length === 0 || text.length > 45) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const side = (part: string, allowV4: boolean): number[] | undefined => {
    if (part === "") return [];
    const words: number[] = [];
    const groups = part.split(":");
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      if (allowV4 && i === groups.length - 1 && g.includes(".")) {
        const b = v4Bytes(g);
        if (!b) return undefined;
        words.push((b[12] << 8) | b[13], (b[14] << 8) | b[15]);
      } else if (HEX_GROUP.test(g)) {
        words.push(parseInt(g, 16));
      } else {
        return undefined;
      }
    }
    return words;
  };
  if (halves.length === 1) {
    const w = side(halves[0], true);
    return w && w.length === 8 ? w : undefined;
  }
  const head = side(halves[0], false);
  const tail = side(halves[1], true);
  if (!head || !tail || head.length + tail.length > 7) return undefined;
  return [...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail];
}

function isMapped(bytes: Uint8Array): boolean {
  for (let i = 0; i < 12; i++) if (bytes[i] !== MAPPED_PREFIX[i]) return false;
  return true;
}

/**
 * Parses a dotted-quad IPv4 address or an IPv6 address (RFC 4291 §2.2, no zone index, no
 * brackets). An IPv4-mapped IPv6 address is returned as family 4. Returns `undefined` for
 * anything else; inet_aton's short and octal IPv4 forms (`10.1`, `010.0.0.1`) are refused since
 * OpenDKIM's string lookups never match them either.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatIp, parseIp } from "./ip_address.ts";
 * assert.equal(parseIp("::ffff:127.0.0.1")?.family, 4);
 * assert.equal(formatIp(parseIp("2001:DB8:0:0:0:0:0:1")!), "2001:db8::1");
 * assert.equal(parseIp("localhost"), undefined);
 * ```
 */
export function parseIp(text: string): IpAddress | undefined {
  const v4 = v4Bytes(text);
  if (v4) return { family: 4, bytes: v4 };
  const words = v6Words(text);
  if (!words) return undefined;
  const bytes = new Uint8Array(16);
  words.forEach((w, i) => {
    bytes[2 * i] = w >> 8;
    bytes[2 * i + 1] = w & 0xff;
  });
  return { family: isMapped(bytes) ? 4 : 6, bytes };
}

/**
 * Formats an address canonically: dotted quad for IPv4, RFC 5952 §4 text for IPv6.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatIp, parseIp } from "./ip_address.ts";
 * assert.equal(formatIp(parseIp("0:0::1")!), "::1");
 * assert.equal(formatIp(parseIp("192.0.2.1")!), "192.0.2.1");
 * ```
 */
export function formatIp(ip: IpAddress): string {
  const b = ip.bytes;
  if (ip.family === 4) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((b[2 * i] << 8) | b[2 * i + 1]);
  let bestStart = -1;
  let bestLength = 1; // RFC 5952 §4.2.2: "::" never replaces a single zero word.
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
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

/** The number of leading bits a prefix fixes in the 128-bit (IPv4-mapped) space. */
function bits128(prefix: IpPrefix): number {
  return prefix.address.family === 4 ? 96 + prefix.length : prefix.length;
}

/**
 * Parses `ADDRESS` or `ADDRESS/LENGTH` (a single address is a full-length prefix). Returns
 * `undefined` when the text is not of that form or the length is out of range for the family.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseIpPrefix } from "./ip_address.ts";
 * assert.equal(parseIpPrefix("192.168.0.0/16")?.length, 16);
 * assert.equal(parseIpPrefix("2001:db8::/32")?.length, 32);
 * assert.equal(parseIpPrefix("10.0.0.0/33"), undefined);
 * ```
 */
export function parseIpPrefix(text: string): IpPrefix | undefined {
  const slash = text.indexOf("/");
  const address = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!address) return undefined;
  const max = address.family === 4 ? 32 : 128;
  if (slash < 0) return { address, length: max };
  const lengthText = text.slice(slash + 1);
  if (!/^[0-9]{1,3}$/.test(lengthText)) return undefined;
  const length = Number(lengthText);
  // A mapped address written in IPv6 form takes an IPv6 length (::ffff:10.0.0.0/104).
  if (address.family === 4 && text.slice(0, slash).includes(":")) {
    if (length < 96 || length > 128) return undefined;
    return { address, length: length - 96 };
  }
  return length <= max ? { address, length } : undefined;
}

/**
 * True when `prefix` contains `ip`. IPv4 prefixes and IPv6 prefixes inside `::ffff:0:0/96`
 * contain IPv4 clients; shorter IPv6 prefixes (such as `::/0`) contain only IPv6 clients, as in
 * OpenDKIM, which never tests an IPv4 connection against IPv6 entries.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseIp, parseIpPrefix, prefixContains } from "./ip_address.ts";
 * const net = parseIpPrefix("10.0.0.0/8")!;
 * assert.ok(prefixContains(net, parseIp("::ffff:10.1.2.3")!));
 * assert.ok(!prefixContains(parseIpPrefix("::/0")!, parseIp("10.1.2.3")!));
 * ```
 */
export function prefixContains(prefix: IpPrefix, ip: IpAddress): boolean {
  const n = bits128(prefix);
  if (ip.family === 4 && n < 96) return false;
  if (ip.family === 6 && prefix.address.family === 4) return false;
  const a = prefix.address.bytes;
  const b = ip.bytes;
  const full = n >> 3;
  for (let i = 0; i < full; i++) if (a[i] !== b[i]) return false;
  const rest = n & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (a[full] & mask) === (b[full] & mask);
}

/**
 * The prefix with every bit past its length cleared: `192.168.1.5/24` gives `192.168.1.0/24`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatIpPrefix, networkOf, parseIpPrefix } from "./ip_address.ts";
 * assert.equal(formatIpPrefix(networkOf(parseIpPrefix("192.168.1.5/24")!)), "192.168.1.0/24");
 * ```
 */
export function networkOf(prefix: IpPrefix): IpPrefix {
  const n = bits128(prefix);
  const bytes = new Uint8Array(prefix.address.bytes);
  for (let bit = n; bit < 128; bit++) bytes[bit >> 3] &= ~(0x80 >> (bit & 7));
  return { address: { family: prefix.address.family, bytes }, length: prefix.length };
}

/**
 * True when bits past the prefix length are set (`192.168.1.5/24`). OpenDKIM looks such an
 * entry up as a string and so never matches it; dkimd warns and uses the network.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hasHostBits, parseIpPrefix } from "./ip_address.ts";
 * assert.ok(hasHostBits(parseIpPrefix("192.168.1.5/24")!));
 * assert.ok(!hasHostBits(parseIpPrefix("192.168.1.0/24")!));
 * ```
 */
export function hasHostBits(prefix: IpPrefix): boolean {
  const net = networkOf(prefix).address.bytes;
  for (let i = 0; i < 16; i++) if (net[i] !== prefix.address.bytes[i]) return true;
  return false;
}

/**
 * Formats a prefix as `ADDRESS/LENGTH`, or the bare address for a full-length prefix.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatIpPrefix, parseIpPrefix } from "./ip_address.ts";
 * assert.equal(formatIpPrefix(parseIpPrefix("::1")!), "::1");
 * assert.equal(formatIpPrefix(parseIpPrefix("2001:DB8::/32")!), "2001:db8::/32");
 * ```
 */
export function formatIpPrefix(prefix: IpPrefix): string {
  const max = prefix.address.family === 4 ? 32 : 128;
  const text = formatIp(prefix.address);
  return prefix.length === max ? text : `${text}/${prefix.length}`;
}

/**
 * The specificity of a prefix in the shared 128-bit space, so an IPv4 `/24` ranks with an
 * IPv6 `/120`: used to let the more precise of two matching host-list entries win.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseIpPrefix, prefixRank } from "./ip_address.ts";
 * assert.equal(prefixRank(parseIpPrefix("10.0.0.0/8")!), 104);
 * ```
 */
export function prefixRank(prefix: IpPrefix): number {
  return bits128(prefix);
}
