/**
 * The results an ARC set records for a message that came back through dkimd: when a mailing list
 * on the same host re-injects a post from an InternalHosts address, the message still carries the
 * Authentication-Results dkimd wrote when it first arrived (before the list changed its Subject
 * and body). RFC 8617 §4.1.1 has the ARC-Authentication-Results record the results "as evaluated
 * by the sealer when the message arrived"; for a post re-injected locally, the arrival evaluation
 * is that first pass, so the AAR carries its results, not this pass's `dkim=fail` after the list's
 * changes. Only a trusted (internal) client is believed: from anyone else such a field is forged
 * (RFC 8601 §5) and never copied.
 *
 * @module
 */
import { ArcSyntaxError, collectArcSets } from "../arc/arc_set.ts";
import { asciiLower } from "../bytes.ts";
import { AUTH_RESULTS_FIELD, parseAuthservId } from "../dkim/auth_results.ts";
import { fieldValueText, type HeaderField, isField } from "../dkim/header.ts";

/**
 * Whether an Authentication-Results value claims the authserv-id `id`. AuthservIDWithJobID
 * writes `id/jobid`, so the part before the slash counts too.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { claimsAuthservId } from "./arrival_results.ts";
 * assert.equal(claimsAuthservId("MX.example.org/4AB12C; dkim=pass", "mx.example.org"), true);
 * assert.equal(claimsAuthservId("other.example; dkim=pass", "mx.example.org"), false);
 * ```
 */
export function claimsAuthservId(value: string, id: string): boolean {
  const claimed = parseAuthservId(value);
  if (claimed === undefined) return false;
  const ours = asciiLower(id);
  return asciiLower(claimed) === ours || asciiLower(claimed.replace(/\/[^/]*$/, "")) === ours;
}

/**
 * The results (the text after the authserv-id, unfolded) of the newest Authentication-Results
 * field with the authserv-id `id`, or undefined when there is none or it says only `none`. The
 * newest is the topmost: each hop adds its fields at the top.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fromLatin1 } from "../bytes.ts";
 * import { splitMessage } from "../dkim/header.ts";
 * import { earlierResults } from "./arrival_results.ts";
 * const { fields } = splitMessage(fromLatin1(
 *   "Authentication-Results: mx.example.org;\r\n\tdkim=pass header.d=example.com\r\n" +
 *     "Authentication-Results: mx.example.org; dkim=fail\r\nSubject: hi\r\n\r\n",
 * ));
 * assert.equal(earlierResults(fields, "mx.example.org"), "dkim=pass header.d=example.com");
 * ```
 */
export function earlierResults(fields: readonly HeaderField[], id: string): string | undefined {
  const field = fields.find((f) =>
    isField(f, AUTH_RESULTS_FIELD) && claimsAuthservId(fieldValueText(f), id)
  );
  if (!field) return undefined;
  const value = fieldValueText(field).replaceAll("\t", " ");
  const results = value.slice(value.indexOf(";") + 1).trim();
  return value.includes(";") && results !== "" && asciiLower(results) !== "none"
    ? results
    : undefined;
}

/**
 * The fields of the newest ARC set when dkimd itself added it at the arrival pass: its seal's
 * `d=` is `arcDomain` and its ARC-Authentication-Results has the authserv-id `id`. Sealing the
 * re-injected post replaces that set (its AMS no longer verifies once the list has changed the
 * body, so keeping it would make dkimd seal its own arrival as `cv=fail`); the new set in its place
 * records the same arrival results. Undefined for any other chain, or a malformed one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fromLatin1 } from "../bytes.ts";
 * import { splitMessage } from "../dkim/header.ts";
 * import { ownArrivalSet } from "./arrival_results.ts";
 * const { fields } = splitMessage(fromLatin1("Subject: hi\r\n\r\n"));
 * assert.equal(ownArrivalSet(fields, "mx.example.org", "example.org"), undefined);
 * ```
 */
export function ownArrivalSet(
  fields: readonly HeaderField[],
  id: string,
  arcDomain: string,
): readonly HeaderField[] | undefined {
  let sets;
  try {
    sets = collectArcSets(fields);
  } catch (e) {
    if (e instanceof ArcSyntaxError) return undefined;
    throw e;
  }
  const newest = sets.at(-1);
  if (!newest || asciiLower(newest.seal.domain) !== asciiLower(arcDomain)) return undefined;
  const aar = fieldValueText(newest.aar.field);
  if (!claimsAuthservId(aar.slice(aar.indexOf(";") + 1), id)) return undefined;
  return [newest.aar.field, newest.ams.field, newest.seal.field];
}
