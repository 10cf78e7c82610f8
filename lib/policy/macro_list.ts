/**
 * MacroList (opendkim.conf(5), MacroList): MTA macros that mark a sender as local, so its mail
 * is signed. An entry `name` is satisfied when the MTA sent the macro with any value, an entry
 * `name=value1|value2` (in a file: `name value1|value2`) when its value is one of those
 * (compared case-sensitively). The first satisfied entry makes the sender local.
 *
 * @module
 */

import type { DataSetEntry } from "./dataset.ts";
import type { Origin } from "./origin.ts";
import { SourceError } from "./origin.ts";

/** One MacroList entry. */
export interface MacroRule {
  /** The macro name without braces (`daemon_name`, `auth_authen`, `j`). */
  readonly name: string;
  /** The accepted values; absent when any value will do. */
  readonly values?: readonly string[];
  /** Where the entry was written. */
  readonly origin: Origin;
}

/** The outcome of {@link MacroList.match}. */
export interface MacroMatch {
  /** True when an entry was satisfied. */
  readonly matched: boolean;
  /** The satisfied entry. */
  readonly rule?: MacroRule;
  /** The macro's value. */
  readonly value?: string;
}

const MACRO_NAME = /^[A-Za-z0-9_]+$/;

/**
 * A parsed MacroList.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MacroList } from "./macro_list.ts";
 * const at = { file: "/etc/opendkim.conf", line: 5 };
 * const list = MacroList.fromEntries([
 *   { key: "daemon_name", value: "MSA|submission", origin: at },
 *   { key: "{auth_authen}", origin: at },
 * ], "MacroList");
 * assert.equal((await list.match((n) => (n === "daemon_name" ? "MSA" : undefined))).matched, true);
 * assert.equal((await list.match((n) => (n === "daemon_name" ? "msa" : undefined))).matched, false);
 * const auth = await list.match((n) => (n === "auth_authen" ? "joe" : undefined));
 * assert.equal(auth.rule?.name, "auth_authen");
 * ```
 */
export class MacroList {
  /** The entries in order. */
  readonly rules: readonly MacroRule[];

  private constructor(rules: MacroRule[]) {
    this.rules = rules;
  }

  /**
   * Builds the list. Braces around a name (`{auth_type}`) are accepted and dropped. Throws
   * {@link SourceError} for a name that is not a macro name.
   */
  static fromEntries(entries: readonly DataSetEntry[], setting: string): MacroList {
    const rules: MacroRule[] = [];
    for (const e of entries) {
      const name = e.key.startsWith("{") && e.key.endsWith("}") ? e.key.slice(1, -1) : e.key;
      if (!MACRO_NAME.test(name)) {
        throw new SourceError(
          `Cannot parse "${setting}" entry "${e.key}"`,
          e.origin,
          "not a macro name (letters, digits and underscores)",
        );
      }
      const values = e.value?.split("|").map((v) => v.trim()).filter((v) => v !== "");
      rules.push(
        values && values.length > 0
          ? { name, values, origin: e.origin }
          : { name, origin: e.origin },
      );
    }
    return new MacroList(rules);
  }

  /**
   * Tests the macros of a transaction; `get` returns a macro's value by name (without braces)
   * or `undefined` when the MTA did not send it. The answer is a promise, as every lookup the
   * filter makes (OpenDKIM looks each macro's value up in the data set).
   */
  match(get: (name: string) => string | undefined): Promise<MacroMatch> {
    for (const rule of this.rules) {
      const value = get(rule.name);
      if (value === undefined) continue;
      if (!rule.values || rule.values.includes(value)) {
        return Promise.resolve({ matched: true, rule, value });
      }
    }
    return Promise.resolve({ matched: false });
  }
}
