/**
 * A host list kept in a database (InternalHosts, ExternalIgnoreList, PeerList as `dsn:` or
 * `ldap:`), asked OpenDKIM's way: it cannot be walked, so the client's name and address are
 * turned into every key an entry could have been written as, and the set is asked for all of
 * them in one lookup. The keys and their order are OpenDKIM's (opendkim/util.c):
 *
 * - `dkimf_checkhost()`: the host name, then each parent domain with a leading dot
 *   (`mail.example.com`, `.example.com`, `.com`), each first as `!NAME` (a hit excludes the
 *   host) and then as `NAME` (a hit includes it);
 * - `dkimf_checkip()`: the address, then the address in brackets, then for each prefix length
 *   from the longest to 0 the network `NET/LEN` and `[NET]/LEN`, each first with `!`. IPv4 is
 *   written as a dotted quad, IPv6 as `inet_ntop()` writes it (RFC 5952, lower case);
 * - the client is in the list when either test says so.
 *
 * The first key in that order that the set holds decides, as in OpenDKIM. An IPv4-mapped IPv6
 * client is asked as IPv4 (as {@link HostList} matches it). A name in brackets (the MTA's "no
 * reverse DNS") is not asked as a name. dkimd's `localhost` shorthand for the loopback blocks
 * applies to lists read whole only: a database list holds the addresses themselves.
 *
 * @module
 */

import type { DataSetLookup } from "./data_set_lookup.ts";
import type { DataSetEntry } from "./dataset.ts";
import type { HostLookup, HostMatch, HostRule } from "./host_list.ts";
import { formatIp, type IpAddress, networkOf, parseIp } from "./ip_address.ts";

/**
 * The keys OpenDKIM's `dkimf_checkhost()` asks for a host name, in its order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hostKeys } from "./keyed_host_list.ts";
 * assert.deepEqual(hostKeys("Mail.Example.COM"), [
 *   "!mail.example.com", "mail.example.com", "!.example.com", ".example.com", "!.com", ".com",
 * ]);
 * ```
 */
export function hostKeys(hostname: string): string[] {
  if (hostname === "" || hostname.startsWith("[")) return [];
  const host = hostname.toLowerCase().replace(/\.$/, "");
  const out: string[] = [];
  for (let i = 0; i >= 0; i = host.indexOf(".", i + 1)) {
    const candidate = host.slice(i);
    out.push(`!${candidate}`, candidate);
  }
  return out;
}

/**
 * The keys OpenDKIM's `dkimf_checkip()` asks for an address, in its order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { addressKeys } from "./keyed_host_list.ts";
 * import { parseIp } from "./ip_address.ts";
 * const keys = addressKeys(parseIp("192.0.2.77")!);
 * assert.deepEqual(keys.slice(0, 8), [
 *   "!192.0.2.77", "192.0.2.77", "![192.0.2.77]", "[192.0.2.77]",
 *   "!192.0.2.77/32", "192.0.2.77/32", "![192.0.2.77]/32", "[192.0.2.77]/32",
 * ]);
 * assert.ok(keys.includes("192.0.2.0/24"));
 * assert.equal(keys.at(-1), "[0.0.0.0]/0");
 * ```
 */
export function addressKeys(ip: IpAddress): string[] {
  const text = formatIp(ip);
  const out = [`!${text}`, text, `![${text}]`, `[${text}]`];
  const max = ip.family === 4 ? 32 : 128;
  for (let length = max; length >= 0; length--) {
    const net = formatIp(networkOf({ address: ip, length }).address);
    out.push(`!${net}/${length}`, `${net}/${length}`, `![${net}]/${length}`, `[${net}]/${length}`);
  }
  return out;
}

/**
 * A host list answered by a {@link DataSetLookup} (see the module documentation).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KeyedHostList } from "./keyed_host_list.ts";
 * import { NameSet } from "./name_set.ts";
 * const origin = { file: "dsn:pgsql://db/dkim/table=internal", line: 0 };
 * const set = new NameSet(["10.0.0.0/8", "!10.0.0.66", ".example.com"].map((key) => ({ key, origin })), true);
 * const list = new KeyedHostList(set);
 * assert.equal((await list.match("mx.example.com", "192.0.2.1")).matched, true);
 * assert.equal((await list.match(undefined, "10.1.2.3")).rule?.text, "10.0.0.0/8");
 * assert.equal((await list.match(undefined, "10.0.0.66")).matched, false);
 * ```
 */
export class KeyedHostList implements HostLookup {
  readonly #set: DataSetLookup;

  /** Asks `set` for the keys of each client. */
  constructor(set: DataSetLookup) {
    this.#set = set;
  }

  /** Decides whether a client is in the list, in one lookup. Rejects when the set cannot answer. */
  async match(hostname: string | undefined, ip: string | undefined): Promise<HostMatch> {
    const names = hostname ? hostKeys(hostname) : [];
    const address = ip === undefined ? undefined : parseIp(stripBrackets(ip));
    const addresses = address ? addressKeys(address) : [];
    const found = await this.#set.lookup([...names, ...addresses]);
    const byName = decide(names, found.slice(0, names.length), "name");
    if (byName.matched) return byName;
    const byAddress = decide(addresses, found.slice(names.length), "address");
    if (byAddress.matched) return byAddress;
    return byName.rule ? byName : byAddress.rule ? byAddress : { matched: false };
  }

  /** Tests a host name alone. Rejects when the set cannot answer. */
  async matchName(hostname: string): Promise<HostMatch> {
    const names = hostKeys(hostname);
    return decide(names, await this.#set.lookup(names), "name");
  }
}

// The first key found decides: a "!" key excludes, any other includes.
function decide(
  keys: readonly string[],
  found: readonly (DataSetEntry | undefined)[],
  by: "name" | "address",
): HostMatch {
  for (let i = 0; i < keys.length; i++) {
    const entry = found[i];
    if (!entry) continue;
    const negated = keys[i].startsWith("!");
    const body = negated ? keys[i].slice(1) : keys[i];
    const rule: HostRule = {
      text: keys[i],
      negated,
      kind: by === "address" ? "address" : body.startsWith(".") ? "domain" : "name",
      origin: entry.origin,
    };
    return { matched: !negated, rule, by };
  }
  return { matched: false };
}

function stripBrackets(text: string): string {
  return text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
}
