/**
 * A data set held in memory and looked up by exact key: a file or `csl:` list read whole at
 * load. It answers {@link DataSetLookup} for DontSignMailTo (recipient addresses), ExemptDomains
 * (sender domains), MTA (the MTA's `{daemon_name}`), Domain (signing domains) and exact-key
 * SigningTables. OpenDKIM opens all but MTA case-insensitively (`DKIMF_DB_FLAG_ICASE`) and looks
 * each up by the whole key, without wildcards.
 *
 * @module
 */

import type { DataSetLookup } from "./data_set_lookup.ts";
import type { DataSetEntry } from "./dataset.ts";

/**
 * A set of names with the entry that defined each; the first of a repeated name wins.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { NameSet } from "./name_set.ts";
 * const at = { file: "/etc/opendkim.conf", line: 2 };
 * const exempt = new NameSet([{ key: "Example.COM", origin: at }], true);
 * assert.equal((await exempt.lookup(["example.com"]))[0]?.origin.line, 2);
 * const mta = new NameSet([{ key: "MSA", origin: at }], false);
 * assert.deepEqual(await mta.lookup(["msa"]), [undefined]);
 * ```
 */
export class NameSet implements DataSetLookup {
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

  /** The first entry of each of `keys`, at once. */
  lookup(keys: readonly string[]): Promise<readonly (DataSetEntry | undefined)[]> {
    const byName = this.#byName;
    const hits = this.ignoreCase
      ? keys.map((k) => byName.get(k.toLowerCase()))
      : keys.map((k) => byName.get(k));
    return Promise.resolve(hits);
  }
}
