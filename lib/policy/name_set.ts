/**
 * Membership sets keyed by exact text: DontSignMailTo (recipient addresses), ExemptDomains
 * (sender domains), MTA (the MTA's `{daemon_name}`) and TestDNSData (record names). OpenDKIM
 * opens all but MTA case-insensitively (`DKIMF_DB_FLAG_ICASE`) and looks each up by the whole
 * key, without wildcards.
 *
 * @module
 */

import type { DataSetEntry } from "./dataset.ts";

/**
 * A set of names with the entry that defined each.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { NameSet } from "./name_set.ts";
 * const at = { file: "/etc/opendkim.conf", line: 2 };
 * const exempt = new NameSet([{ key: "Example.COM", origin: at }], true);
 * assert.equal(exempt.get("example.com")?.origin.line, 2);
 * const mta = new NameSet([{ key: "MSA", origin: at }], false);
 * assert.equal(mta.has("msa"), false);
 * ```
 */
export class NameSet {
  /** The entries as given. */
  readonly entries: readonly DataSetEntry[];
  /** True when names compare case-insensitively. */
  readonly ignoreCase: boolean;
  readonly #byName = new Map<string, DataSetEntry>();

  /** Makes the set; with `ignoreCase`, names are compared ASCII case-insensitively. */
  constructor(entries: readonly DataSetEntry[], ignoreCase: boolean) {
    this.entries = entries;
    this.ignoreCase = ignoreCase;
    for (const e of entries) {
      const k = ignoreCase ? e.key.toLowerCase() : e.key;
      if (!this.#byName.has(k)) this.#byName.set(k, e);
    }
  }

  /** The first entry for `name`, or `undefined`. */
  get(name: string): DataSetEntry | undefined {
    return this.#byName.get(this.ignoreCase ? name.toLowerCase() : name);
  }

  /** True when `name` is in the set. */
  has(name: string): boolean {
    return this.get(name) !== undefined;
  }
}
