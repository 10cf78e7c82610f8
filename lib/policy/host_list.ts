/**
 * Host lists: InternalHosts, ExternalIgnoreList, PeerList (opendkim.conf(5), PeerList) and the
 * host names of RemoveARFrom. Entries are host names (`mail.example.com`), domains
 * (`.example.com`: every host below it), IPv4 and IPv6 addresses and CIDR blocks, optionally in
 * square brackets (`[::1]`, `[192.0.2.0]/24`, `[2001:db8::/32]`), each optionally negated with
 * `!`.
 *
 * Matching follows OpenDKIM's `dkimf_checkhost()` and `dkimf_checkip()`:
 * - the host name is tried first, most specific first: the full name, then each parent domain
 *   with a leading dot (`a.example.com`, `.example.com`, `.com`); at each step a negated entry
 *   wins over a positive one and ends the search;
 * - the address is tried next: among the blocks that contain it, the longest prefix wins
 *   ("More precise entries are preferred over less precise ones, i.e. "192.168.1.1" will match
 *   before "!192.168.1.0/24""), and at equal length a negated entry wins;
 * - the client is in the list when either test found a positive entry, so `!host` does not
 *   undo a matching address block (OpenDKIM ORs the two results).
 *
 * dkimd additions, each where OpenDKIM surprises administrators:
 * - an IPv4-mapped IPv6 client (`::ffff:127.0.0.1`) matches IPv4 entries;
 * - `localhost` also stands for the loopback addresses `127.0.0.0/8` and `::1`, so mail the MTA
 *   hands over from `::1` counts as local when the list says `localhost` (OpenDKIM issue #175);
 * - address and CIDR entries match by value, not by spelling (`2001:DB8::1` = `2001:db8::1`);
 *   a block with host bits set (`192.168.1.5/24`), which OpenDKIM never matches, is warned
 *   about and used as its network.
 *
 * The filter asks a list through {@link HostLookup}, whose answers are promises: a list held in
 * memory (with its CIDR blocks indexed) answers at once, and a list kept in a database can
 * answer OpenDKIM's way, by looking up the name, its parent domains and the address blocks.
 *
 * @module
 */

import type { DataSetEntry } from "./dataset.ts";
import {
  formatIp,
  formatIpPrefix,
  hasHostBits,
  type IpAddress,
  type IpPrefix,
  networkOf,
  parseIp,
  parseIpPrefix,
  prefixContains,
  prefixRank,
} from "./ip_address.ts";
import { formatOrigin, type Origin, SourceError, type SourceWarning } from "./origin.ts";

/**
 * OpenDKIM's default InternalHosts, `DEFINTERNAL` in its opendkim.h: `127.0.0.1` and `::1`
 * (the man page mentions only 127.0.0.1; the code has had both since 2.0).
 */
export const DEFAULT_INTERNAL_HOSTS: readonly string[] = ["127.0.0.1", "::1"];

/** The loopback blocks that the entry `localhost` also stands for (RFC 1122 §3.2.1.3, RFC 4291 §2.5.3). */
export const LOCALHOST_ADDRESSES: readonly string[] = ["127.0.0.0/8", "::1"];

/** Longest host name accepted in an entry: 253 characters (RFC 1035 §2.3.4) plus a leading dot. */
export const MAX_HOST_ENTRY_LENGTH = 254;

/** One entry of a host list, as written, with where it was written. */
export interface HostRule {
  /** The entry as written, including any `!` and brackets. */
  readonly text: string;
  /** True for a `!` entry, which excludes what it matches. */
  readonly negated: boolean;
  /** `name` for a host name, `domain` for `.example.com`, `address` for an address or block. */
  readonly kind: "name" | "domain" | "address";
  /** The file and line of the entry. */
  readonly origin: Origin;
  /** For an address block implied by `localhost`, the entry that implied it. */
  readonly impliedBy?: string;
}

/** The outcome of {@link HostList.match}. */
export interface HostMatch {
  /** True when the client is in the list. */
  readonly matched: boolean;
  /**
   * The entry that decided: the positive entry that matched, or, when nothing positive matched,
   * the `!` entry that excluded the client. Absent when no entry applied.
   */
  readonly rule?: HostRule;
  /** Whether the deciding entry matched the host name or the address. */
  readonly by?: "name" | "address";
}

/** A host list as the filter asks it, once per connection or message. */
export interface HostLookup {
  /**
   * Decides whether a client is in the list: `hostname` is the MTA's name for the client,
   * `ip` its address; either may be absent. Rejects when the list cannot answer.
   */
  match(hostname: string | undefined, ip: string | undefined): Promise<HostMatch>;
  /** Tests a host name alone (RemoveARFrom's authserv-ids). Rejects when the list cannot answer. */
  matchName(hostname: string): Promise<HostMatch>;
}

interface AddressRule {
  readonly prefix: IpPrefix;
  readonly rank: number;
  readonly rule: HostRule;
}

const HOST_NAME =
  /^\.?[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$/;
const NUMERIC = /^[0-9./]+$/;

/**
 * A parsed host list. Build one with {@link HostList.fromEntries} (or
 * {@link HostList.fromStrings}) and ask {@link HostList.match}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { HostList } from "./host_list.ts";
 * const { list } = HostList.fromStrings(["10.0.0.0/8", "!10.0.0.66", ".example.com"], "InternalHosts");
 * assert.equal((await list.match("mx.example.com", "192.0.2.1")).matched, true);
 * assert.equal((await list.match(undefined, "10.1.2.3")).matched, true);
 * const excluded = await list.match(undefined, "10.0.0.66");
 * assert.equal(excluded.rule?.text, "!10.0.0.66");
 * assert.equal(excluded.matched, false);
 * ```
 */
export class HostList implements HostLookup {
  /** Every entry in file order. */
  readonly rules: readonly HostRule[];
  readonly #names: Map<string, HostRule>;
  readonly #negatedNames: Map<string, HostRule>;
  readonly #addresses: readonly AddressRule[];
  #keyed?: HostLookup;

  private constructor(
    rules: HostRule[],
    names: Map<string, HostRule>,
    negatedNames: Map<string, HostRule>,
    addresses: AddressRule[],
  ) {
    this.rules = rules;
    this.#names = names;
    this.#negatedNames = negatedNames;
    this.#addresses = addresses;
  }

  /**
   * Builds a list from data set entries (their keys; values are ignored, as OpenDKIM only tests
   * membership). `setting` names the list in errors and warnings. Throws {@link SourceError}
   * naming the entry's file and line for an entry that is neither a host name nor an address.
   */
  static fromEntries(
    entries: readonly DataSetEntry[],
    setting: string,
  ): { list: HostList; warnings: SourceWarning[] } {
    const rules: HostRule[] = [];
    const names = new Map<string, HostRule>();
    const negatedNames = new Map<string, HostRule>();
    const addresses: AddressRule[] = [];
    const warnings: SourceWarning[] = [];
    const addAddress = (prefix: IpPrefix, rule: HostRule) => {
      addresses.push({ prefix, rank: prefixRank(prefix), rule });
    };
    for (const entry of entries) {
      const text = entry.key;
      const negated = text.startsWith("!");
      const body = negated ? text.slice(1) : text;
      const fail = (detail: string) =>
        new SourceError(`Cannot parse "${setting}" entry "${text}"`, entry.origin, detail);
      if (body === "") throw fail("the entry is empty");
      if (body.length > MAX_HOST_ENTRY_LENGTH) throw fail("the entry is too long for a host name");
      const prefix = parseAddressEntry(body);
      if (prefix) {
        const rule: HostRule = { text, negated, kind: "address", origin: entry.origin };
        rules.push(rule);
        let use = prefix;
        if (hasHostBits(prefix)) {
          use = networkOf(prefix);
          warnings.push({
            message: `"${setting}" entry "${text}" at ${formatOrigin(entry.origin)} has bits ` +
              `set past its prefix length; OpenDKIM never matches it, dkimd uses ` +
              `"${formatIpPrefix(use)}"`,
            origin: entry.origin,
          });
        }
        addAddress(use, rule);
        continue;
      }
      if (body.includes("*")) {
        throw fail('wildcards are not supported in host lists; write ".example.com" for a domain');
      }
      if (NUMERIC.test(body) || body.includes(":") || body.startsWith("[")) {
        throw fail(
          "not an IP address or CIDR block (IPv4 needs all four parts, as in 192.0.2.0/24)",
        );
      }
      if (!HOST_NAME.test(body)) throw fail("not a host name, domain, IP address or CIDR block");
      const key = body.toLowerCase().replace(/\.$/, "");
      const kind = key.startsWith(".") ? "domain" : "name";
      const rule: HostRule = { text, negated, kind, origin: entry.origin };
      rules.push(rule);
      const map = negated ? negatedNames : names;
      if (!map.has(key)) map.set(key, rule);
      if (key === "localhost") {
        for (const block of LOCALHOST_ADDRESSES) {
          const implied: HostRule = {
            text: negated ? `!${block}` : block,
            negated,
            kind: "address",
            origin: entry.origin,
            impliedBy: text,
          };
          addAddress(parseIpPrefix(block)!, implied);
        }
      }
    }
    return { list: new HostList(rules, names, negatedNames, addresses), warnings };
  }

  /**
   * Builds a list from plain strings, all attributed to one origin (for defaults and tests).
   */
  static fromStrings(
    items: readonly string[],
    setting: string,
    origin: Origin = { file: "(default)", line: 1 },
  ): { list: HostList; warnings: SourceWarning[] } {
    return HostList.fromEntries(items.map((key) => ({ key, origin })), setting);
  }

  /**
   * A list kept elsewhere (a database), asked through `lookup` per client: it has no
   * {@link HostList.rules} to list (it is never walked), as a SigningTable kept elsewhere has no rules.
   */
  static keyed(lookup: HostLookup): HostList {
    const list = new HostList([], new Map(), new Map(), []);
    list.#keyed = lookup;
    return list;
  }

  /** True for a list kept elsewhere ({@link HostList.keyed}), whose rules are not listed. */
  get keyed(): boolean {
    return this.#keyed !== undefined;
  }

  /** True when the list has no entries (a list kept elsewhere is not known to be empty). */
  get empty(): boolean {
    return this.#keyed === undefined && this.rules.length === 0;
  }

  /**
   * Decides whether a client is in the list, at once. `hostname` is the MTA's name for the
   * client (a name in square brackets, meaning "no reverse DNS", is skipped as OpenDKIM skips
   * it); `ip` is its address as text or parsed. Either may be absent.
   */
  match(hostname: string | undefined, ip: string | IpAddress | undefined): Promise<HostMatch> {
    if (this.#keyed) {
      return this.#keyed.match(hostname, typeof ip === "object" ? formatIp(ip) : ip);
    }
    return Promise.resolve(this.#match(hostname, ip));
  }

  /**
   * Tests a host name alone: the full name, then each parent domain with a leading dot, a
   * negated entry winning at each level (OpenDKIM `dkimf_checkhost()`).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { HostList } from "./host_list.ts";
   * const { list } = HostList.fromStrings([".example.com", "!bad.example.com"], "PeerList");
   * assert.equal((await list.matchName("Mail.Example.COM")).matched, true);
   * assert.equal((await list.matchName("bad.example.com")).matched, false);
   * assert.equal((await list.matchName("x.bad.example.com")).matched, true);
   * assert.equal((await list.matchName("example.com")).matched, false);
   * ```
   */
  matchName(hostname: string): Promise<HostMatch> {
    if (this.#keyed) return this.#keyed.matchName(hostname);
    return Promise.resolve(this.#matchName(hostname));
  }

  /**
   * Tests an address alone: the longest matching block wins, a negated entry at equal length
   * (OpenDKIM `dkimf_checkip()`).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { HostList } from "./host_list.ts";
   * import { parseIp } from "./ip_address.ts";
   * const { list } = HostList.fromStrings(["!192.168.1.0/24", "192.168.1.1"], "InternalHosts");
   * assert.equal((await list.matchAddress(parseIp("192.168.1.1")!)).matched, true);
   * assert.equal((await list.matchAddress(parseIp("192.168.1.2")!)).matched, false);
   * ```
   */
  matchAddress(ip: IpAddress): Promise<HostMatch> {
    if (this.#keyed) return this.#keyed.match(undefined, formatIp(ip));
    return Promise.resolve(this.#matchAddress(ip));
  }

  #match(hostname: string | undefined, ip: string | IpAddress | undefined): HostMatch {
    const byName = hostname ? this.#matchName(hostname) : undefined;
    if (byName?.matched) return byName;
    const address = typeof ip === "string" ? parseIp(stripBrackets(ip)) : ip;
    const byAddress = address ? this.#matchAddress(address) : undefined;
    if (byAddress?.matched) return byAddress;
    return byName?.rule ? byName : byAddress?.rule ? byAddress : { matched: false };
  }

  #matchName(hostname: string): HostMatch {
    if (hostname === "" || hostname.startsWith("[")) return { matched: false };
    const host = hostname.toLowerCase().replace(/\.$/, "");
    for (let i = 0; i >= 0; i = host.indexOf(".", i + 1)) {
      const candidate = host.slice(i);
      const no = this.#negatedNames.get(candidate);
      if (no) return { matched: false, rule: no, by: "name" };
      const yes = this.#names.get(candidate);
      if (yes) return { matched: true, rule: yes, by: "name" };
    }
    return { matched: false };
  }

  #matchAddress(ip: IpAddress): HostMatch {
    let best: AddressRule | undefined;
    for (const a of this.#addresses) {
      if (!prefixContains(a.prefix, ip)) continue;
      if (
        !best || a.rank > best.rank ||
        (a.rank === best.rank && a.rule.negated && !best.rule.negated)
      ) {
        best = a;
      }
    }
    if (!best) return { matched: false };
    return { matched: !best.rule.negated, rule: best.rule, by: "address" };
  }
}

function stripBrackets(text: string): string {
  return text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
}

/** Reads `ADDR`, `ADDR/LEN`, `[ADDR]`, `[ADDR]/LEN` and `[ADDR/LEN]`. */
function parseAddressEntry(text: string): IpPrefix | undefined {
  if (text.startsWith("[")) {
    const m = /^\[([^\]]+)\](\/[0-9]{1,3})?$/.exec(text);
    if (!m) return undefined;
    if (m[2] && m[1].includes("/")) return undefined;
    return parseIpPrefix(m[1] + (m[2] ?? ""));
  }
  return parseIpPrefix(text);
}
