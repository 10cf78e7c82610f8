/**
 * What a sealer's ARC-Authentication-Results carries: the results of the sealer's own
 * Authentication-Results fields on the message (RFC 8617 §4.1.1, §5.1: the AAR is a copy of the
 * A-R the sealing ADMD added).
 *
 * @module
 */
import { asciiLower } from "../bytes.ts";
import { AUTH_RESULTS_FIELD, parseAuthservId } from "../dkim/auth_results.ts";
import { fieldValueText, type HeaderField, isField } from "../dkim/header.ts";

/**
 * The resinfo text of every Authentication-Results field of `authservId` in the message, in
 * message order, joined with `; ` (the authserv-id and its version left out), or `none` when
 * there is none (RFC 8601 §2.2's no-result). Fields of other authserv-ids are someone else's
 * claims and are not carried (RFC 8617 §5.1 copies only the sealer's own).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ownAuthResults } from "./seal_input.ts";
 * import { splitMessage } from "../dkim/header.ts";
 * import { utf8 } from "../bytes.ts";
 * const { fields } = splitMessage(utf8(
 *   "Authentication-Results: mx.example.org;\r\n dkim=pass header.d=a.example\r\n" +
 *     "Authentication-Results: other.example; dkim=fail\r\n" +
 *     "Authentication-Results: MX.example.org 1; spf=pass smtp.mailfrom=a.example\r\n\r\n",
 * ));
 * assert.equal(ownAuthResults(fields, "mx.example.org"), "dkim=pass header.d=a.example; spf=pass smtp.mailfrom=a.example");
 * assert.equal(ownAuthResults(fields, "nobody.example"), "none");
 * ```
 */
export function ownAuthResults(fields: readonly HeaderField[], authservId: string): string {
  const wanted = asciiLower(authservId);
  const results: string[] = [];
  for (const field of fields) {
    if (!isField(field, AUTH_RESULTS_FIELD)) continue;
    const text = fieldValueText(field);
    const id = parseAuthservId(text);
    if (id === undefined || asciiLower(id) !== wanted) continue;
    const semicolon = text.indexOf(";", text.indexOf(id) + id.length);
    if (semicolon === -1) continue;
    const rest = text.slice(semicolon + 1).trim();
    if (rest !== "" && asciiLower(rest) !== "none") results.push(rest);
  }
  return results.length === 0 ? "none" : results.join("; ");
}
