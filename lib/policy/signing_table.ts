/**
 * The SigningTable (opendkim.conf(5), SigningTable): which KeyTable keys sign mail from which
 * sender. Each entry's value is `keyname[:signer]`; a key name of `%` means the KeyTable entry
 * named after the sender's domain, and a `%` in the signer (the `i=` value) is replaced by the
 * sender's domain.
 *
 * Two lookup disciplines, as OpenDKIM's `dkimf_apply_signtable()`:
 * - a `refile:` table (or an inline pattern list) holds wildcard patterns tried in file order
 *   against `user@domain`, case-insensitively; `*` matches any text and nothing else is special;
 * - any other table is looked up by exact key, case-insensitively, in this order: `user@domain`,
 *   `domain`, then for each parent of the domain `user@.parent` and `.parent` (so
 *   `user@a.example.com` tries `user@.example.com`, `.example.com`, `user@.com`, `.com`), then
 *   `user@*` and finally `*`. (The man page describes the parents as two separate passes; the
 *   code interleaves them as above, and dkimd follows the code.)
 *
 * Only the first match is used unless MultipleSignatures is on; then every match is, in the
 * order above.
 *
 * An exact table is asked through {@link DataSetLookup}, all of a sender's keys in one call, so
 * the same lookup serves a table held in memory and one kept in a database.
 *
 * @module
 */

import type { DataSetLookup } from "./data_set_lookup.ts";
import type { DataSet, DataSetEntry } from "./dataset.ts";
import { RuleSet } from "./rule_set.ts";
import { formatOrigin, type Origin, SourceError, type SourceWarning } from "./origin.ts";

/** One SigningTable entry. */
export interface SigningRule {
  /** The key of the entry: an address, a domain, or a wildcard pattern. */
  readonly pattern: string;
  /** The KeyTable name, or `%` for the name equal to the sender's domain. */
  readonly keyName: string;
  /** The signer (`i=`) template, `%` standing for the sender's domain. */
  readonly signer?: string;
  /** The file and line of the entry. */
  readonly origin: Origin;
}

/** One match of a sender against the table. */
export interface SigningMatch {
  /** The entry that matched. */
  readonly rule: SigningRule;
  /** The lookup key that found it (for exact tables) or the pattern (for pattern tables). */
  readonly matchedBy: string;
  /** The KeyTable name to use, with `%` replaced. */
  readonly keyName: string;
  /** The signer (`i=`) with `%` replaced, if the entry has one. */
  readonly signer?: string;
}

/** The SigningTable as the signer choice asks it, once per message to sign. */
export interface SigningLookup {
  /**
   * The entries that apply to the sender `user@domain`: the first only, or all when
   * `multiple` (MultipleSignatures) is true. Rejects when the table cannot answer.
   */
  lookup(user: string, domain: string, multiple: boolean): Promise<SigningMatch[]>;
}

/** Longest pattern accepted, bounding the cost of wildcard matching (an address is at most 254 octets, RFC 5321 §4.5.3.1.3). */
export const MAX_PATTERN_LENGTH = 1024;

const REGEX_SPECIALS = /[?[\](){}|^$\\]/;

/**
 * True when `pattern` (`*` the only wildcard) matches all of `text`, comparing ASCII
 * case-insensitively. Runs in O(pattern × text) at worst.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { wildcardMatch } from "./signing_table.ts";
 * assert.ok(wildcardMatch("*@example.com", "Joe@EXAMPLE.com"));
 * assert.ok(!wildcardMatch("*@example.com", "joe@sub.example.com"));
 * assert.ok(wildcardMatch("*@*.example.com", "joe@sub.example.com"));
 * assert.ok(!wildcardMatch("user?@a.b", "use@a.b"));
 * ```
 */
export function wildcardMatch(pattern: string, text: string): boolean {
  const p = pattern.toLowerCase();
  const t = text.toLowerCase();
  let pi = 0;
  let ti = 0;
  let star = -1;
  let mark = 0;
  while (ti < t.length) {
    if (pi < p.length && p[pi] === "*") {
      star = pi++;
      mark = ti;
    } else if (pi < p.length && p[pi] === t[ti]) {
      pi++;
      ti++;
    } else if (star >= 0) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.length && p[pi] === "*") pi++;
  return pi === p.length;
}

/**
 * The exact-table lookup keys for `user@domain`, in OpenDKIM's order (see the module doc).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { exactLookupKeys } from "./signing_table.ts";
 * assert.deepEqual(exactLookupKeys("joe", "mail.example.com"), [
 *   "joe@mail.example.com", "mail.example.com",
 *   "joe@.example.com", ".example.com",
 *   "joe@.com", ".com",
 *   "joe@*", "*",
 * ]);
 * ```
 */
export function exactLookupKeys(user: string, domain: string): string[] {
  const keys = [`${user}@${domain}`, domain];
  for (let i = domain.indexOf("."); i >= 0; i = domain.indexOf(".", i + 1)) {
    const parent = domain.slice(i);
    keys.push(`${user}@${parent}`, parent);
  }
  keys.push(`${user}@*`, "*");
  return keys;
}

/**
 * Reads one SigningTable entry, `pattern keyname[:signer]`. Throws {@link SourceError} naming
 * the entry's place for an entry without a key name or with a pattern too long to match.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSigningRule } from "./signing_table.ts";
 * const origin = { file: "/etc/opendkim/signing.table", line: 3 };
 * assert.deepEqual(parseSigningRule({ key: "*@example.com", value: "mail:@%", origin }), {
 *   pattern: "*@example.com", keyName: "mail", signer: "@%", origin,
 * });
 * ```
 */
export function parseSigningRule(e: DataSetEntry, setting = "SigningTable"): SigningRule {
  const fail = (detail: string) =>
    new SourceError(`Cannot parse ${setting} entry "${e.key}"`, e.origin, detail);
  if (e.key.length > MAX_PATTERN_LENGTH) throw fail("the entry is too long");
  if (e.value === undefined || e.value === "") {
    throw fail('the entry has no key name; expected "pattern keyname[:signer]"');
  }
  const colon = e.value.indexOf(":");
  const keyName = (colon < 0 ? e.value : e.value.slice(0, colon)).trim();
  const signer = colon < 0 ? undefined : e.value.slice(colon + 1).trim() || undefined;
  if (keyName === "") throw fail("the key name is empty");
  return signer === undefined
    ? { pattern: e.key, keyName, origin: e.origin }
    : { pattern: e.key, keyName, signer, origin: e.origin };
}

/**
 * A parsed SigningTable.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SigningTable } from "./signing_table.ts";
 * const origin = { file: "/etc/opendkim/signing.table", line: 1 };
 * const { table } = SigningTable.fromDataSet({
 *   source: { kind: "refile", path: origin.file },
 *   patterns: true,
 *   entries: [{ key: "*@example.com", value: "mail", origin }],
 * });
 * const [m] = await table.lookup("joe", "example.com", false);
 * assert.equal(m.keyName, "mail");
 * assert.equal(m.rule.origin.line, 1);
 * assert.deepEqual(await table.lookup("joe", "example.org", false), []);
 * ```
 */
export class SigningTable implements SigningLookup {
  /** Every entry in file order; none for a table kept elsewhere ({@link SigningTable.keyed}). */
  readonly rules: readonly SigningRule[];
  /** True for wildcard-pattern tables (`refile:`), false for exact-key tables. */
  readonly patterns: boolean;
  readonly #set: RuleSet<SigningRule>;

  private constructor(set: RuleSet<SigningRule>) {
    this.#set = set;
    this.rules = set.rules;
    this.patterns = set.patterns;
  }

  /**
   * Builds the table from a loaded data set. Throws {@link SourceError} for an entry without a
   * key name. Warns about a key repeated in an exact table (OpenDKIM uses the first) and about
   * pattern characters other than `*` that OpenDKIM passes to its regular-expression engine
   * (`?`, `[`, `(`, ...): dkimd matches them literally.
   */
  static fromDataSet(
    dataSet: DataSet,
    setting = "SigningTable",
  ): { table: SigningTable; warnings: SourceWarning[] } {
    const { set, warnings } = RuleSet.fromDataSet(
      dataSet,
      (e) => parseSigningRule(e, setting),
      (e, first) =>
        `${setting} key "${e.key}" at ${formatOrigin(e.origin)} is already ` +
        `defined at ${formatOrigin(first.origin)}; the first definition is used`,
    );
    if (dataSet.patterns) {
      for (const e of dataSet.entries) {
        if (!REGEX_SPECIALS.test(e.key)) continue;
        warnings.push({
          message: `${setting} pattern "${e.key}" at ${formatOrigin(e.origin)} holds ` +
            `characters OpenDKIM reads as a regular expression; dkimd treats only "*" as a ` +
            `wildcard and matches the rest literally`,
          origin: e.origin,
        });
      }
    }
    return { table: new SigningTable(set), warnings };
  }

  /**
   * An exact-key table kept behind `set` (a database, say), never walked: each lookup asks it
   * the sender's keys in OpenDKIM's order, in one call, and reads the entries found. An entry
   * without a key name rejects the lookup with a {@link SourceError} naming its place.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { NameSet } from "./name_set.ts";
   * import { SigningTable } from "./signing_table.ts";
   * const origin = { file: "dsn:pgsql://db/dkim/table=signing", line: 0 };
   * const table = SigningTable.keyed(new NameSet([{ key: "example.com", value: "mail", origin }], true));
   * const [m] = await table.lookup("joe", "example.com", false);
   * assert.deepEqual([m.keyName, m.matchedBy], ["mail", "example.com"]);
   * ```
   */
  static keyed(set: DataSetLookup, setting = "SigningTable"): SigningTable {
    return new SigningTable(RuleSet.keyed(set, (e) => parseSigningRule(e, setting)));
  }

  /** The key names the table refers to, except `%` (which depends on the sender). */
  keyNames(): Set<string> {
    return new Set(this.rules.map((r) => r.keyName).filter((n) => n !== "%"));
  }

  /**
   * The entries that apply to the sender `user@domain`: the first only, or all when
   * `multiple` (MultipleSignatures) is true. The domain is compared case-insensitively; an
   * address that is not ASCII matches nothing, as OpenDKIM opens the table ASCII-only.
   */
  async lookup(user: string, domain: string, multiple: boolean): Promise<SigningMatch[]> {
    const address = `${user}@${domain}`;
    // deno-lint-ignore no-control-regex
    if (/[^\x00-\x7f]/.test(address)) return [];
    const lower = domain.toLowerCase();
    const out: SigningMatch[] = [];
    const add = (rule: SigningRule, matchedBy: string) => {
      const keyName = rule.keyName === "%" ? lower : rule.keyName;
      const signer = rule.signer?.replaceAll("%", lower);
      out.push(
        signer === undefined ? { rule, matchedBy, keyName } : {
          rule,
          matchedBy,
          keyName,
          signer,
        },
      );
    };
    if (this.patterns) {
      for (const rule of this.rules) {
        if (!wildcardMatch(rule.pattern, address)) continue;
        add(rule, rule.pattern);
        if (!multiple) break;
      }
      return out;
    }
    const keys = exactLookupKeys(user, lower);
    const hits = await this.#set.exact(keys);
    for (let i = 0; i < keys.length; i++) {
      const hit = hits[i];
      if (!hit) continue;
      add(this.#set.ruleOf(hit), keys[i]);
      if (!multiple) break;
    }
    return out;
  }
}
