/**
 * The entries of a table whose keys name who they apply to (a SigningTable's senders, an
 * AuthorizedSigners' logins), each read into a rule: from a loaded data set, every entry read at
 * load so a mistake is reported with its place, the first of a repeated key used (as OpenDKIM
 * does) and the others warned about; or kept behind a {@link DataSetLookup} (a database, say),
 * never walked, each entry read when a lookup finds it. Pattern sets (`refile:`) keep their
 * rules in order for the caller to match; exact sets answer {@link RuleSet.exact}.
 *
 * @module
 */

import type { DataSetLookup } from "./data_set_lookup.ts";
import type { DataSet, DataSetEntry } from "./dataset.ts";
import { NameSet } from "./name_set.ts";
import type { Origin, SourceWarning } from "./origin.ts";

/** Reads one entry into a rule, throwing a SourceError that names its place. */
export type ReadRule<R> = (entry: DataSetEntry) => R;

/**
 * The warning for `entry`, whose key an earlier entry (read as `first`) already has.
 *
 * @example
 * ```ts
 * import type { DuplicateWarning } from "./rule_set.ts";
 * const say: DuplicateWarning = (e) => `"${e.key}" is given twice; the first entry is used`;
 * ```
 */
export type DuplicateWarning = (entry: DataSetEntry, first: { readonly origin: Origin }) => string;

/**
 * A table's rules, from a loaded data set or behind a lookup.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RuleSet } from "./rule_set.ts";
 * const origin = (line: number) => ({ file: "/etc/t", line });
 * const { set, warnings } = RuleSet.fromDataSet(
 *   {
 *     source: { kind: "file", path: "/etc/t" },
 *     patterns: false,
 *     entries: [
 *       { key: "a", value: "1", origin: origin(1) },
 *       { key: "A", value: "2", origin: origin(2) },
 *     ],
 *   },
 *   (e) => ({ value: e.value, origin: e.origin }),
 *   (e) => `"${e.key}" again`,
 * );
 * assert.deepEqual(warnings.map((w) => w.message), ['"A" again']);
 * const [none, a] = await set.exact(["b", "a"]);
 * assert.equal(none, undefined);
 * assert.equal(set.ruleOf(a!).value, "1");
 * ```
 */
export class RuleSet<R extends { readonly origin: Origin }> {
  /** Every rule in file order; none for a set kept elsewhere ({@link RuleSet.keyed}). */
  readonly rules: readonly R[];
  /** True when the keys are wildcard patterns (`refile:`), false for exact keys. */
  readonly patterns: boolean;
  readonly #exact: DataSetLookup;
  // The rule read from each entry at load; entries of a set kept elsewhere are read when found.
  readonly #ruleOf: ReadonlyMap<DataSetEntry, R>;
  readonly #read: ReadRule<R>;

  private constructor(
    rules: readonly R[],
    patterns: boolean,
    exact: DataSetLookup,
    ruleOf: ReadonlyMap<DataSetEntry, R>,
    read: ReadRule<R>,
  ) {
    this.rules = rules;
    this.patterns = patterns;
    this.#exact = exact;
    this.#ruleOf = ruleOf;
    this.#read = read;
  }

  /**
   * Reads every entry of `dataSet` now (`read` throws for a bad one); in an exact set, a key
   * given again (ASCII case-insensitively) draws `duplicate`'s warning and the first is used.
   */
  static fromDataSet<R extends { readonly origin: Origin }>(
    dataSet: DataSet,
    read: ReadRule<R>,
    duplicate: DuplicateWarning,
  ): { set: RuleSet<R>; warnings: SourceWarning[] } {
    const rules: R[] = [];
    const ruleOf = new Map<DataSetEntry, R>();
    const seen = new Map<string, R>();
    const warnings: SourceWarning[] = [];
    for (const e of dataSet.entries) {
      const rule = read(e);
      rules.push(rule);
      if (dataSet.patterns) continue;
      ruleOf.set(e, rule);
      const first = seen.get(e.key.toLowerCase());
      if (first) warnings.push({ message: duplicate(e, first), origin: e.origin });
      else seen.set(e.key.toLowerCase(), rule);
    }
    const exact = new NameSet(dataSet.patterns ? [] : dataSet.entries, true);
    return { set: new RuleSet(rules, dataSet.patterns, exact, ruleOf, read), warnings };
  }

  /** An exact set kept behind `lookup`, its entries read by `read` when found. */
  static keyed<R extends { readonly origin: Origin }>(
    lookup: DataSetLookup,
    read: ReadRule<R>,
  ): RuleSet<R> {
    return new RuleSet<R>([], false, lookup, new Map(), read);
  }

  /**
   * The first entry of each of `keys`, in the order asked (`undefined` where there is none), in
   * one lookup; {@link RuleSet.ruleOf} reads the ones the caller uses, so an entry never used
   * cannot fail a lookup.
   */
  exact(keys: readonly string[]): Promise<readonly (DataSetEntry | undefined)[]> {
    return this.#exact.lookup(keys);
  }

  /** The rule of an entry {@link RuleSet.exact} found; throws the SourceError of a bad one. */
  ruleOf(entry: DataSetEntry): R {
    return this.#ruleOf.get(entry) ?? this.#read(entry);
  }
}
