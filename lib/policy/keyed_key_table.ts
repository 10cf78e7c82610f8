/**
 * A KeyTable kept in a database (`KeyTable dsn:...` or `ldap:`): asked by key name when a
 * message is signed, never walked. The row's columns, joined with `:` by the lookup, are parsed
 * like a KeyTable file line (`domain:selector:key[:algorithm]`, OpenDKIM's datacol order), and
 * the key is imported at first use by the loader's importer, which applies the checks a key file
 * gets at load (size, type, RequireSafeKeys for a key path). An imported key is kept while its
 * row is unchanged. A row that does not parse or whose key cannot be used is logged once (naming
 * the table and the key name) and fails the lookup, so the message gets On-InternalError.
 *
 * @module
 */

import { errorMessage } from "../error_message.ts";
import type { DataSetLookup } from "./data_set_lookup.ts";
import {
  algorithmFitsKey,
  isDomainName,
  type KeyLookup,
  KeyResolutionError,
  type KeySource,
  type KeyTableEntry,
  MAX_TEMPLATE_KEYS,
  parseKeyTableEntry,
  type PrivateKeyInfo,
  type ResolvedKey,
} from "./key_table.ts";
import { formatOrigin } from "./origin.ts";

/**
 * Imports the key of a database KeyTable row: a file (its `%` replaced) or the key text, with
 * the checks file keys get. Rejects with a message saying why the key cannot sign.
 */
export type RowKeyImporter<K extends PrivateKeyInfo> = (
  source: KeySource,
  entry: KeyTableEntry,
) => Promise<K>;

/**
 * A KeyTable answered by a {@link DataSetLookup} (see the module documentation).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KeyedKeyTable } from "./keyed_key_table.ts";
 * import { NameSet } from "./name_set.ts";
 * const origin = { file: 'KeyTable dsn:sqlite3:///k.db/table=k?keycol=id?datacol=d,s,k row "1"', line: 0 };
 * const set = new NameSet([{ key: "1", value: "example.com:mail:/keys/%.pem", origin }], false);
 * const key = { type: "ed25519" as const, bits: 256 };
 * const logged: string[] = [];
 * const table = new KeyedKeyTable(set, (source) => {
 *   assert.deepEqual(source, { kind: "file", path: "/keys/example.com.pem" });
 *   return Promise.resolve(key);
 * }, (line) => logged.push(line));
 * const r = await table.resolve("1", "example.com");
 * assert.equal(r.key, key);
 * assert.equal(r.selector, "mail");
 * await assert.rejects(table.resolve("2", "example.com"), /No KeyTable entry named "2"/);
 * ```
 */
export class KeyedKeyTable<K extends PrivateKeyInfo> implements KeyLookup<K> {
  readonly #set: DataSetLookup;
  readonly #importKey: RowKeyImporter<K>;
  readonly #log: (message: string) => void;
  readonly #keys = new Map<string, Promise<K>>();
  readonly #logged = new Set<string>();

  /**
   * Asks `set` for rows by key name, imports keys with `importKey` and reports a bad row or key
   * once through `log`.
   */
  constructor(
    set: DataSetLookup,
    importKey: RowKeyImporter<K>,
    log: (message: string) => void,
  ) {
    this.#set = set;
    this.#importKey = importKey;
    this.#log = log;
  }

  /**
   * The domain, selector and key of row `name` for a sender in `senderDomain`. Rejects with
   * {@link KeyResolutionError} when there is no such row or its key cannot be used, and with
   * the lookup's error when the database cannot answer.
   */
  async resolve(name: string, senderDomain: string): Promise<ResolvedKey<K>> {
    const [row] = await this.#set.lookup([name]);
    if (!row) {
      throw new KeyResolutionError(`No KeyTable entry named "${name}"`, {
        name,
        domain: "%",
        selector: "",
        source: { kind: "inline", data: "" },
        origin: { file: "(none)", line: 0 },
      });
    }
    const rowId = `${formatOrigin(row.origin)}\0${row.value ?? ""}`;
    let entry: KeyTableEntry;
    try {
      entry = parseKeyTableEntry(row);
    } catch (e) {
      const message = errorMessage(e);
      this.#once(rowId, message);
      throw new KeyResolutionError(message, {
        name,
        domain: "%",
        selector: "",
        source: { kind: "inline", data: "" },
        origin: row.origin,
      }, { cause: e, reported: true });
    }
    const domain = entry.domain === "%" ? senderDomain.toLowerCase() : entry.domain;
    if (!isDomainName(domain)) {
      throw new KeyResolutionError(
        `Cannot sign with KeyTable entry "${name}" at ${formatOrigin(entry.origin)}: ` +
          `"${domain}" is not a domain name`,
        entry,
      );
    }
    const source: KeySource = entry.source.kind === "file"
      ? { kind: "file", path: entry.source.path.replaceAll("%", domain) }
      : entry.source;
    const cacheKey = `${rowId}\0${source.kind === "file" ? source.path : ""}`;
    let pending = this.#keys.get(cacheKey);
    if (!pending) {
      if (this.#keys.size >= MAX_TEMPLATE_KEYS) this.#keys.clear();
      pending = this.#importKey(source, entry).then((key) => {
        if (entry.algorithm && !algorithmFitsKey(entry.algorithm, key.type)) {
          throw new Error(`the key is ${key.type}, but the entry asks for ${entry.algorithm}`);
        }
        return key;
      });
      this.#keys.set(cacheKey, pending);
      // A failed import is not kept, so a fixed key file is used without a reload.
      pending.catch(() => this.#keys.delete(cacheKey));
    }
    try {
      const key = await pending;
      const path = source.kind === "file" ? source.path : undefined;
      return { entry, domain, selector: entry.selector, key, path };
    } catch (cause) {
      const where = source.kind === "file" ? ` from "${source.path}"` : "";
      const message = `Cannot load the key of KeyTable entry "${name}" at ` +
        `${formatOrigin(entry.origin)}${where}: ${errorMessage(cause)}`;
      this.#once(cacheKey, message);
      throw new KeyResolutionError(message, entry, { cause, reported: true });
    }
  }

  // One log line per bad row (or bad key of a row), however many messages meet it.
  #once(id: string, message: string): void {
    if (this.#logged.has(id)) return;
    if (this.#logged.size >= MAX_TEMPLATE_KEYS) this.#logged.clear();
    this.#logged.add(id);
    this.#log(message);
  }
}
