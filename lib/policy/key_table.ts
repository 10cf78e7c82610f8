/**
 * The KeyTable (opendkim.conf(5), KeyTable): key names mapped to a signing domain, a selector
 * and a private key. Each value is `domain:selector:keydata[:algorithm]`:
 * - `domain` is the `d=` value, or `%` for the sender's domain at signing time;
 * - `keydata` is a path when it starts with `/`, `./` or `../` (a `%` in it is replaced by the
 *   signing domain, OpenDKIM's `dkimf_reptoken()`), otherwise the key itself as PEM or
 *   base64 DER;
 * - the optional fourth field (newer OpenDKIM, trusteddomainproject/OpenDKIM#269) names the
 *   signing algorithm for this key.
 *
 * Without a fourth field the algorithm follows the key type: an Ed25519 key signs
 * `ed25519-sha256` (RFC 8463 §3), an RSA key the global SignatureAlgorithm when that is an RSA
 * algorithm, else `rsa-sha256` (RFC 8301 §3.1). So one table can hold an RSA and an Ed25519 key
 * for the same domain and MultipleSignatures signs with both.
 *
 * Keys are imported once, when the configuration is loaded, by a capability the loader passes
 * in; only paths whose domain is `%` can wait for the first message from each domain.
 *
 * @module
 */

import { errorMessage } from "../error_message.ts";
import type { DataSetEntry } from "./dataset.ts";
import { formatOrigin, type Origin, SourceError, type SourceWarning } from "./origin.ts";

/** The signing algorithms dkimd implements (RFC 6376 §3.3, RFC 8463 §3). */
export type SigningAlgorithm = "rsa-sha256" | "rsa-sha1" | "ed25519-sha256";

/** Every {@link SigningAlgorithm}, in the order OpenDKIM's `opendkim -V` lists them. */
export const SIGNING_ALGORITHMS: readonly SigningAlgorithm[] = [
  "rsa-sha1",
  "rsa-sha256",
  "ed25519-sha256",
];

/** What the KeyTable needs to know about an imported private key. */
export interface PrivateKeyInfo {
  /** The key type. */
  readonly type: "rsa" | "ed25519";
  /** The modulus size for RSA, 256 for Ed25519. */
  readonly bits: number;
}

/** Where a key comes from: a file (possibly with `%` for the domain) or inline text. */
export type KeySource =
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "inline"; readonly data: string };

/** One KeyTable line, parsed. */
export interface KeyTableEntry {
  /** The key name the SigningTable refers to (case-sensitive, as in OpenDKIM). */
  readonly name: string;
  /** The signing domain (`d=`), lower-cased, or `%` for the sender's domain. */
  readonly domain: string;
  /** The selector (`s=`). */
  readonly selector: string;
  /** Where the private key is. */
  readonly source: KeySource;
  /** The algorithm from the fourth field, when given. */
  readonly algorithm?: SigningAlgorithm;
  /** The line of the entry. */
  readonly origin: Origin;
}

/** A KeyTable entry with its key imported (absent only for `%`-domain key paths). */
export interface LoadedKeyEntry<K extends PrivateKeyInfo> extends KeyTableEntry {
  /** The imported key; `undefined` when the path depends on the sender's domain. */
  readonly key?: K;
}

/** A key ready to sign with: what {@link KeyTable.resolve} returns. */
export interface ResolvedKey<K extends PrivateKeyInfo> {
  /** The KeyTable entry. */
  readonly entry: LoadedKeyEntry<K>;
  /** The signing domain, with `%` replaced. */
  readonly domain: string;
  /** The selector. */
  readonly selector: string;
  /** The key. */
  readonly key: K;
  /** The file the key came from, with `%` replaced; absent for inline keys. */
  readonly path?: string;
}

/** Loads the key of a `%` path once the domain is known: the loader's capability. */
export type TemplateKeyLoader<K extends PrivateKeyInfo> = (
  path: string,
  entry: KeyTableEntry,
) => Promise<K>;

const DOMAIN =
  /^(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;
const SELECTOR = DOMAIN;
const BASE64 = /^[A-Za-z0-9+/=\s]+$/;
const ALGORITHM_LIKE = /^(?:rsa|ed25519|ed448|ecdsa|dsa)-[A-Za-z0-9]+$|^[A-Za-z0-9]+-sha[0-9]*$/i;

/** Longest domain name (RFC 1035 §2.3.4), used to refuse a `%` substitution that cannot be one. */
export const MAX_DOMAIN_LENGTH = 253;

/**
 * True for a domain name dkimd will sign for or substitute into a key path: dot-separated
 * labels of letters, digits, `-` and `_`, at most 253 characters. Refusing anything else keeps
 * a hostile From domain such as `../../etc` out of file names.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isDomainName } from "./key_table.ts";
 * assert.ok(isDomainName("mail.example.com"));
 * assert.ok(!isDomainName("../etc"));
 * ```
 */
export function isDomainName(text: string): boolean {
  return text.length > 0 && text.length <= MAX_DOMAIN_LENGTH && DOMAIN.test(text);
}

/** True when `text` names a key file (OpenDKIM `dkimf_loadkey()`: `/`, `./` or `../`). */
export function isKeyPath(text: string): boolean {
  return text.startsWith("/") || text.startsWith("./") || text.startsWith("../");
}

/**
 * The algorithm a key signs with: the entry's own algorithm if set, `ed25519-sha256` for an
 * Ed25519 key, and for an RSA key the global SignatureAlgorithm if it is an RSA algorithm,
 * else `rsa-sha256`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { algorithmFor } from "./key_table.ts";
 * assert.equal(algorithmFor(undefined, "ed25519", "rsa-sha256"), "ed25519-sha256");
 * assert.equal(algorithmFor(undefined, "rsa", "ed25519-sha256"), "rsa-sha256");
 * assert.equal(algorithmFor(undefined, "rsa", "rsa-sha1"), "rsa-sha1");
 * ```
 */
export function algorithmFor(
  own: SigningAlgorithm | undefined,
  keyType: "rsa" | "ed25519",
  global: SigningAlgorithm,
): SigningAlgorithm {
  if (own) return own;
  if (keyType === "ed25519") return "ed25519-sha256";
  return global.startsWith("rsa-") ? global : "rsa-sha256";
}

/**
 * True when `algorithm` can sign with a key of type `keyType`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { algorithmFitsKey } from "./key_table.ts";
 * assert.ok(!algorithmFitsKey("ed25519-sha256", "rsa"));
 * ```
 */
export function algorithmFitsKey(algorithm: SigningAlgorithm, keyType: "rsa" | "ed25519"): boolean {
  return algorithm === "ed25519-sha256" ? keyType === "ed25519" : keyType === "rsa";
}

/**
 * Longest KeyTable text an error message quotes: a KeyTable may hold the private key itself,
 * and a longer value may be one with a typo, which must never reach a log.
 */
export const MAX_QUOTED_KEY_TABLE_TEXT = 40;

// The value for an error message: quoted when short, else only its length.
function quoted(text: string): string {
  return text.length <= MAX_QUOTED_KEY_TABLE_TEXT
    ? `"${text}"`
    : `the ${text.length}-character value (not shown: it may be key data)`;
}

/**
 * Parses one KeyTable value, `domain:selector:keydata[:algorithm]`, from a data set entry.
 * The fourth field is taken only when it names a known algorithm, so a key path holding a
 * colon still reads as OpenDKIM before #269 read it; a fourth field that looks like an
 * algorithm but is not one is an error. Throws {@link SourceError} naming the line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseKeyTableEntry } from "./key_table.ts";
 * const e = parseKeyTableEntry({
 *   key: "ed",
 *   value: "Example.COM:ed:/etc/opendkim/keys/ed.private:ed25519-sha256",
 *   origin: { file: "/etc/opendkim/key.table", line: 2 },
 * });
 * assert.equal(e.domain, "example.com");
 * assert.deepEqual(e.source, { kind: "file", path: "/etc/opendkim/keys/ed.private" });
 * assert.equal(e.algorithm, "ed25519-sha256");
 * ```
 */
export function parseKeyTableEntry(entry: DataSetEntry): KeyTableEntry {
  const fail = (detail: string) =>
    new SourceError(`Cannot parse KeyTable entry "${entry.key}"`, entry.origin, detail);
  const value = entry.value;
  if (value === undefined || value === "") {
    throw fail('the entry has no value; expected "name domain:selector:keyfile"');
  }
  const c1 = value.indexOf(":");
  const c2 = c1 < 0 ? -1 : value.indexOf(":", c1 + 1);
  if (c2 < 0) {
    throw fail(`${quoted(value)} is not of the form "domain:selector:keyfile"`);
  }
  const domain = value.slice(0, c1).trim();
  const selector = value.slice(c1 + 1, c2).trim();
  let keydata = value.slice(c2 + 1).trim();
  let algorithm: SigningAlgorithm | undefined;
  const last = keydata.lastIndexOf(":");
  if (last >= 0) {
    const tail = keydata.slice(last + 1).trim();
    const known = SIGNING_ALGORITHMS.find((a) => a === tail.toLowerCase());
    if (known) {
      algorithm = known;
      keydata = keydata.slice(0, last).trim();
    } else if (ALGORITHM_LIKE.test(tail)) {
      throw fail(
        `unknown signing algorithm "${tail}" (expected ${SIGNING_ALGORITHMS.join(", ")})`,
      );
    }
  }
  if (domain !== "%" && !isDomainName(domain)) {
    throw fail(`"${domain}" is not a domain name (or "%" for the sender's domain)`);
  }
  if (!SELECTOR.test(selector)) {
    throw fail(`"${selector}" is not a selector (RFC 6376 §3.1: labels separated by dots)`);
  }
  if (keydata === "") throw fail("the key (third field) is empty");
  let source: KeySource;
  if (isKeyPath(keydata)) {
    source = { kind: "file", path: keydata };
  } else if (keydata.includes("-----BEGIN") || BASE64.test(keydata)) {
    source = { kind: "inline", data: keydata };
  } else {
    throw fail(
      `${quoted(keydata)} is neither a key file path (starting with "/", "./" or "../") ` +
        "nor a PEM or base64 key",
    );
  }
  const out: KeyTableEntry = {
    name: entry.key,
    domain: domain === "%" ? "%" : domain.toLowerCase(),
    selector,
    source,
    origin: entry.origin,
  };
  return algorithm ? { ...out, algorithm } : out;
}

/**
 * Parses every KeyTable entry. A name given twice is a warning: OpenDKIM uses the first.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseKeyTable } from "./key_table.ts";
 * const at = (line: number) => ({ file: "kt", line });
 * const { entries, warnings } = parseKeyTable([
 *   { key: "a", value: "example.com:s1:/k1", origin: at(1) },
 *   { key: "a", value: "example.com:s2:/k2", origin: at(2) },
 * ]);
 * assert.equal(entries.length, 1);
 * assert.match(warnings[0].message, /kt:2/);
 * ```
 */
export function parseKeyTable(
  entries: readonly DataSetEntry[],
): { entries: KeyTableEntry[]; warnings: SourceWarning[] } {
  const out: KeyTableEntry[] = [];
  const seen = new Map<string, KeyTableEntry>();
  const warnings: SourceWarning[] = [];
  for (const e of entries) {
    const parsed = parseKeyTableEntry(e);
    const first = seen.get(parsed.name);
    if (first) {
      warnings.push({
        message: `KeyTable name "${parsed.name}" at ${formatOrigin(e.origin)} is already ` +
          `defined at ${formatOrigin(first.origin)}; the first definition is used`,
        origin: e.origin,
      });
      continue;
    }
    seen.set(parsed.name, parsed);
    out.push(parsed);
  }
  return { entries: out, warnings };
}

/** A `%`-path key failed to load for a domain, or the domain cannot be put into a path. */
export class KeyResolutionError extends Error {
  /** The KeyTable entry. */
  readonly entry: KeyTableEntry;
  /** True when the table has logged this problem already (a bad database row, once). */
  readonly reported: boolean;

  /** Makes an error about `entry`; `reported` when it has been logged already. */
  constructor(
    message: string,
    entry: KeyTableEntry,
    options?: ErrorOptions & { readonly reported?: boolean },
  ) {
    super(message, options);
    this.name = "KeyResolutionError";
    this.entry = entry;
    this.reported = options?.reported ?? false;
  }
}

/**
 * The KeyTable as the signer choice asks it: by key name, once per signature to make. A table
 * read at load has its keys imported already; one kept in a database reads the entry named and
 * imports its key at first use.
 */
export interface KeyLookup<K extends PrivateKeyInfo> {
  /**
   * The domain, selector and key to sign with for entry `name` and a sender in `senderDomain`
   * (which replaces `%`). Rejects with {@link KeyResolutionError} when the key cannot be used.
   */
  resolve(name: string, senderDomain: string): Promise<ResolvedKey<K>>;
}

/** Most keys of `%` paths kept in memory: one per signing domain, bounded against a flood of domains. */
export const MAX_TEMPLATE_KEYS = 10_000;

/**
 * A loaded KeyTable: entries by name with their imported keys.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KeyTable } from "./key_table.ts";
 * const key = { type: "ed25519" as const, bits: 256 };
 * const table = new KeyTable([{
 *   name: "k", domain: "%", selector: "s", source: { kind: "inline", data: "AAAA" },
 *   origin: { file: "kt", line: 1 }, key,
 * }]);
 * const r = await table.resolve("k", "Example.ORG");
 * assert.equal(r.domain, "example.org");
 * assert.equal(r.key, key);
 * ```
 */
export class KeyTable<K extends PrivateKeyInfo> implements KeyLookup<K> {
  /** Every entry in table order. */
  readonly entries: readonly LoadedKeyEntry<K>[];
  readonly #byName: Map<string, LoadedKeyEntry<K>>;
  readonly #loadTemplate?: TemplateKeyLoader<K>;
  readonly #templateKeys = new Map<string, Promise<K>>();
  #keyed?: KeyLookup<K>;

  /**
   * Makes a table of `entries` (the first of a repeated name wins); `loadTemplate` loads the
   * key of an entry whose path depends on the sender's domain.
   */
  constructor(entries: readonly LoadedKeyEntry<K>[], loadTemplate?: TemplateKeyLoader<K>) {
    this.entries = entries;
    this.#byName = new Map();
    for (const e of entries) if (!this.#byName.has(e.name)) this.#byName.set(e.name, e);
    this.#loadTemplate = loadTemplate;
  }

  /**
   * A KeyTable kept elsewhere (a database), asked through `lookup` by key name at signing time:
   * it has no {@link KeyTable.entries} to list (it is never walked) and {@link KeyTable.get}
   * finds nothing, as a SigningTable kept elsewhere has no rules.
   */
  static keyed<K extends PrivateKeyInfo>(lookup: KeyLookup<K>): KeyTable<K> {
    const table = new KeyTable<K>([]);
    table.#keyed = lookup;
    return table;
  }

  /** True for a table kept elsewhere ({@link KeyTable.keyed}), whose entries are not listed. */
  get keyed(): boolean {
    return this.#keyed !== undefined;
  }

  /** The entry named `name` (case-sensitive, as OpenDKIM's KeyTable lookup). */
  get(name: string): LoadedKeyEntry<K> | undefined {
    return this.#byName.get(name);
  }

  /**
   * The domain, selector and key to sign with for entry `name` and a sender in `senderDomain`
   * (which replaces `%`). Rejects with {@link KeyResolutionError} when there is no such entry,
   * when the domain cannot stand in a file name, or when a `%` key cannot be loaded.
   */
  async resolve(name: string, senderDomain: string): Promise<ResolvedKey<K>> {
    if (this.#keyed) return await this.#keyed.resolve(name, senderDomain);
    const entry = this.#byName.get(name);
    if (!entry) {
      throw new KeyResolutionError(`No KeyTable entry named "${name}"`, {
        name,
        domain: "%",
        selector: "",
        source: { kind: "inline", data: "" },
        origin: { file: "(none)", line: 0 },
      });
    }
    const domain = entry.domain === "%" ? senderDomain.toLowerCase() : entry.domain;
    if (!isDomainName(domain)) {
      throw new KeyResolutionError(
        `Cannot sign with KeyTable entry "${name}" at ${formatOrigin(entry.origin)}: ` +
          `"${domain}" is not a domain name`,
        entry,
      );
    }
    const path = entry.source.kind === "file"
      ? entry.source.path.replaceAll("%", domain)
      : undefined;
    if (entry.key) return { entry, domain, selector: entry.selector, key: entry.key, path };
    if (!path || !this.#loadTemplate) {
      throw new KeyResolutionError(
        `KeyTable entry "${name}" at ${formatOrigin(entry.origin)} has no loaded key`,
        entry,
      );
    }
    let pending = this.#templateKeys.get(path);
    if (!pending) {
      if (this.#templateKeys.size >= MAX_TEMPLATE_KEYS) this.#templateKeys.clear();
      pending = this.#loadTemplate(path, entry);
      this.#templateKeys.set(path, pending);
      // A failed load is not cached, so fixing the file fixes signing without a reload.
      pending.catch(() => this.#templateKeys.delete(path));
    }
    try {
      const key = await pending;
      return { entry, domain, selector: entry.selector, key, path };
    } catch (cause) {
      throw new KeyResolutionError(
        `Cannot load the key of KeyTable entry "${name}" at ${formatOrigin(entry.origin)} ` +
          `from "${path}": ${errorMessage(cause)}`,
        entry,
        { cause },
      );
    }
  }
}
