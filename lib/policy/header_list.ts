/**
 * Header field name lists: SignHeaders, OmitHeaders, OversignHeaders and SenderHeaders
 * (opendkim.conf(5)). A list replaces the default, except that a list holding `*` is a change
 * to the default (OmitHeaders, "*,+foobar" adds a name, "*,-Bcc" removes one; OpenDKIM's
 * `dkimf_db_mkarray_base()`), which OpenDKIM applies to SignHeaders and OmitHeaders, and dkimd
 * to OversignHeaders too, now that it has a default (From) to change.
 *
 * The SignHeaders and OversignHeaders defaults are lib/dkim/signed_headers.ts's, the lists
 * `dkimd sign` uses too; config/build_policy.ts hands them in as bases (policy cannot import
 * dkim: dkim → dns → policy's IP address parser would make a cycle).
 *
 * Names are lower-cased: header field names compare case-insensitively (RFC 5322 §1.2.2).
 *
 * @module
 */

import type { DataSetEntry } from "./dataset.ts";
import { formatOrigin, SourceError, type SourceWarning } from "./origin.ts";

/**
 * The default OmitHeaders as opendkim.conf(5) lists them: the RFC 6376 §5.4 "SHOULD NOT be
 * signed" fields plus those a signature must not cover (libopendkim's own list is a subset).
 */
export const DEFAULT_OMIT_HEADERS: readonly string[] = [
  "return-path",
  "received",
  "comments",
  "keywords",
  "bcc",
  "resent-bcc",
  "dkim-signature",
];

/** The fields every signature covers: From (RFC 6376 §5.4, `dkim_required_signhdrs`). */
export const REQUIRED_SIGN_HEADERS: readonly string[] = ["from"];

/** The default SenderHeaders: only From (opendkim.conf(5), SenderHeaders). */
export const DEFAULT_SENDER_HEADERS: readonly string[] = ["from"];

/** The header name lists of a configuration, resolved against their defaults. */
export interface HeaderLists {
  /** SignHeaders, From always included. */
  readonly sign: readonly string[];
  /** OmitHeaders, From never included. */
  readonly omit: readonly string[];
  /** OversignHeaders (default From). */
  readonly oversign: readonly string[];
  /** SenderHeaders, in order. */
  readonly sender: readonly string[];
  /** MustBeSigned: fields every signature must cover when present (default none). */
  readonly mustBeSigned: readonly string[];
}

/** RFC 5322 §3.6.8 field-name: printable US-ASCII except colon. */
const FIELD_NAME = /^[!-9;-~]+$/;

/**
 * Resolves a header name list from its entries. With `base` (SignHeaders, OmitHeaders,
 * OversignHeaders), a list holding `*` starts from `base` (lower-cased), removes `-name` entries
 * and adds `+name` entries; without `*` the entries replace the base. A `+name` or `-name`
 * entry outside a `*` list is an error (OpenDKIM would look for a field literally named
 * `+name`), as is a name that is not an RFC 5322 field name. Throws {@link SourceError}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_OMIT_HEADERS, resolveHeaderList } from "./header_list.ts";
 * const at = { file: "/etc/opendkim.conf", line: 9 };
 * const { names } = resolveHeaderList(
 *   [{ key: "*", origin: at }, { key: "+X-Foo", origin: at }, { key: "-Bcc", origin: at }],
 *   "OmitHeaders",
 *   DEFAULT_OMIT_HEADERS,
 * );
 * assert.ok(names.includes("x-foo"));
 * assert.ok(!names.includes("bcc"));
 * assert.ok(names.includes("received"));
 * ```
 */
export function resolveHeaderList(
  entries: readonly DataSetEntry[],
  setting: string,
  base?: readonly string[],
): { names: string[]; warnings: SourceWarning[] } {
  const warnings: SourceWarning[] = [];
  const delta = base !== undefined && entries.some((e) => e.key === "*");
  const out: string[] = delta ? base.map((n) => n.toLowerCase()) : [];
  const has = (n: string) => out.includes(n);
  for (const e of entries) {
    const fail = (detail: string) =>
      new SourceError(`Cannot parse "${setting}" entry "${e.key}"`, e.origin, detail);
    if (e.key === "*") {
      if (!delta) throw fail(`"*" (the default list) is not supported for ${setting}`);
      continue;
    }
    const sign = e.key[0] === "+" || e.key[0] === "-" ? e.key[0] : "";
    if (sign && !delta) {
      throw fail(`"${sign}name" changes the default list only after "*", as in "*,${e.key}"`);
    }
    const name = (sign ? e.key.slice(1) : e.key).toLowerCase();
    if (!FIELD_NAME.test(name)) throw fail(`"${name}" is not a header field name`);
    if (sign === "-") {
      const i = out.indexOf(name);
      if (i < 0) {
        warnings.push({
          message: `"${setting}" entry "${e.key}" at ${formatOrigin(e.origin)} removes ` +
            `"${name}", which is not in the default list`,
          origin: e.origin,
        });
      } else {
        out.splice(i, 1);
      }
    } else if (!has(name)) {
      out.push(name);
    }
  }
  return { names: out, warnings };
}

/**
 * Applies the DKIM rules OpenDKIM applies to the two lists: fields that must be signed are
 * added to SignHeaders ("implicitly added") and removed from OmitHeaders ("the entry is
 * ignored"), the latter with a warning.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { enforceRequiredHeaders } from "./header_list.ts";
 * const r = enforceRequiredHeaders(["subject"], ["from", "received"]);
 * assert.deepEqual(r.sign, ["from", "subject"]);
 * assert.deepEqual(r.omit, ["received"]);
 * assert.deepEqual(r.removedFromOmit, ["from"]);
 * ```
 */
export function enforceRequiredHeaders(
  sign: readonly string[],
  omit: readonly string[],
): { sign: string[]; omit: string[]; removedFromOmit: string[] } {
  const missing = REQUIRED_SIGN_HEADERS.filter((n) => !sign.includes(n));
  return {
    sign: [...missing, ...sign],
    omit: omit.filter((n) => !REQUIRED_SIGN_HEADERS.includes(n)),
    removedFromOmit: omit.filter((n) => REQUIRED_SIGN_HEADERS.includes(n)),
  };
}
