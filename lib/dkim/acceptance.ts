/**
 * When a signature that verified is still not vouched for: the local rules that turn `pass`
 * into `policy`, RFC 8601 §2.7.1's word for "the message was signed, but some aspect of the
 * signature or signatures was not acceptable to the ADMD". The signature is sound, so neither
 * `fail` (it did not fail the check) nor `permerror` (it could be checked) would be honest; the
 * reason says which rule refused it.
 *
 * - A message with more than one From field, always (RFC 6376 §8.15: the reader sees one From,
 *   DMARC may use another, and the signature cannot say which one it vouched for).
 * - With StrictHeaders, any break of RFC 5322 §3.6's field counts (field_counts.ts), as
 *   OpenDKIM's StrictHeaders refuses such a message.
 * - With MustBeSigned, a listed field present but not covered by `h=` (opendkim.conf(5)).
 * - With PartialBodyResult `policy` (the default), body content after the `l=` count, which
 *   anyone may have appended (RFC 6376 §8.2).
 *
 * @module
 */
import { asciiLower } from "../bytes.ts";
import { FIELD_COUNT_RULES, fieldCountProblem, SINGLE_FROM } from "./field_counts.ts";
import type { HeaderField } from "./header.ts";
import type { Signature } from "./signature.ts";

/**
 * The result of a valid signature whose `l=` leaves part of the body unsigned: `policy` (the
 * default) or `pass` (OpenDKIM's behaviour).
 */
export type PartialBodyResult = "policy" | "pass";

/** Every {@link PartialBodyResult}. */
export const PARTIAL_BODY_RESULTS: readonly PartialBodyResult[] = ["policy", "pass"];

/**
 * The default {@link PartialBodyResult}: `policy`, since what follows `l=` is content anyone can
 * add (RFC 6376 §8.2).
 */
export const PARTIAL_BODY_RESULT_DEFAULT: PartialBodyResult = "policy";

/** The local rules a verifier applies to a signature that verified. */
export interface AcceptanceOptions {
  /** The result of a signature with body content past `l=` (default {@link PARTIAL_BODY_RESULT_DEFAULT}). */
  readonly partialBodyResult?: PartialBodyResult;
  /** Refuse messages that break RFC 5322 §3.6's field counts, not only a second From (OpenDKIM's StrictHeaders). */
  readonly strictHeaders?: boolean;
  /** Header field names that, when present, every signature must cover (OpenDKIM's MustBeSigned). */
  readonly mustBeSigned?: readonly string[];
}

/**
 * Why a signature that verified is not accepted, or undefined when it passes. `fields` are the
 * message's header fields; `unsignedBodyBytes` the canonical body bytes after its `l=` count.
 * The message's own problems come first, then MustBeSigned, then the unsigned body.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { refusalOf } from "./acceptance.ts";
 * import { splitMessage } from "./header.ts";
 * import { utf8 } from "../bytes.ts";
 * const { fields } = splitMessage(utf8("From: a@x\r\nReply-To: b@y\r\n\r\n"));
 * const sig = { headers: ["from"], length: 10 };
 * assert.equal(refusalOf(sig, fields, 0), undefined);
 * assert.equal(refusalOf(sig, fields, 5), "l=10 leaves 5 body bytes unsigned");
 * assert.equal(refusalOf(sig, fields, 5, { partialBodyResult: "pass" }), undefined);
 * assert.equal(refusalOf(sig, fields, 0, { mustBeSigned: ["reply-to"] }), "Reply-To field not signed");
 * ```
 */
export function refusalOf(
  sig: Pick<Signature, "headers" | "length">,
  fields: readonly HeaderField[],
  unsignedBodyBytes: number,
  options: AcceptanceOptions = {},
): string | undefined {
  const problem = fieldCountProblem(
    fields,
    options.strictHeaders ? FIELD_COUNT_RULES : SINGLE_FROM,
  );
  if (problem !== undefined) return problem;
  if (options.mustBeSigned && options.mustBeSigned.length > 0) {
    const unsigned = unsignedField(sig.headers, fields, options.mustBeSigned);
    if (unsigned !== undefined) return unsigned;
  }
  if (
    unsignedBodyBytes > 0 && (options.partialBodyResult ?? PARTIAL_BODY_RESULT_DEFAULT) !== "pass"
  ) {
    return `l=${sig.length} leaves ${unsignedBodyBytes} body bytes unsigned`;
  }
  return undefined;
}

/**
 * The first field of `names` present in the message and not covered by `h=`, in words. A name
 * in `h=` covers one instance, from the bottom up (RFC 6376 §5.4.2), so every instance present
 * must be listed: a second Reply-To added above a signed one is as unsigned as the only one. This
 * is stricter than OpenDKIM, which only asks whether `h=` names the field at all; its manual's
 * words ("if a header field in this set is present in the message and is not signed") fit an
 * added instance too.
 */
function unsignedField(
  signed: readonly string[],
  fields: readonly HeaderField[],
  names: readonly string[],
): string | undefined {
  for (const name of names) {
    const wanted = asciiLower(name);
    const present = fields.filter((f) => asciiLower(f.name) === wanted);
    if (present.length === 0) continue;
    const covered = signed.filter((h) => asciiLower(h) === wanted).length;
    if (covered >= present.length) continue;
    // The field's name as the message spells it, for people.
    const spelled = present[0].name;
    return covered === 0
      ? `${spelled} field not signed`
      : `${present.length - covered} of ${present.length} ${spelled} fields not signed`;
  }
  return undefined;
}
