/**
 * The result words of DKIM verification (RFC 8601 §2.7.1) and the error that carries one: what
 * the parsers and the verifier throw when a signature does not verify. `result.ts` maps every
 * error, this one included, to a verdict.
 *
 * @module
 */

/**
 * The DKIM result words of RFC 8601 §2.7.1. `none` is for a message without signatures and so
 * never appears in a per-signature {@link Verdict}.
 */
export type DkimResult =
  | "pass"
  | "fail"
  | "neutral"
  | "policy"
  | "temperror"
  | "permerror"
  | "none";

/** A result other than pass, for one signature. */
export type FailResult = Exclude<DkimResult, "pass" | "none">;

/**
 * A signature that does not verify, carrying its result word and a short reason (the words
 * logs and Authentication-Results show, as OpenDKIM's `dkim_sig_geterrorstr` does).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DkimError } from "./dkim_error.ts";
 * const e = new DkimError("fail", "body hash did not verify");
 * assert.equal(e.result, "fail");
 * assert.equal(e.message, "body hash did not verify");
 * ```
 */
export class DkimError extends Error {
  /** The result this failure gives. */
  readonly result: FailResult;

  /** Makes an error with result `result` and reason `reason`. */
  constructor(result: FailResult, reason: string, options?: ErrorOptions) {
    super(reason, options);
    this.name = "DkimError";
    this.result = result;
  }
}

/**
 * Why a signature is ignored under RFC 6376 §6.1.1 ({@link IgnoredSignatureError}):
 * `unsupported`, it uses what dkimd does not implement; `malformed`, its field breaks §3.5.
 */
export type IgnoredReason = "unsupported" | "malformed";

/**
 * A DKIM-Signature field RFC 6376 §6.1.1 tells the verifier to ignore: "any inconsistency or
 * unexpected values MUST cause the header field to be completely ignored and the Verifier to
 * return PERMFAIL". Its result is `permerror` (RFC 8601 §2.7.1: "A later attempt is unlikely to
 * produce a final result"), and, ignored, it does not make the message signed: RFC 6376 §6.1 says
 * a verifier "SHOULD NOT treat a message that has one or more bad signatures and no good
 * signatures differently from a message with no signature at all". Such a field proves nothing
 * either way, and anyone can strip or add one, so the On-* actions see the message as unsigned
 * (On-NoSignature); a signature that was evaluated and FAILED (a body hash or `b=` that does not
 * verify) stays a bad signature (On-BadSignature).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DkimError, IgnoredSignatureError } from "./dkim_error.ts";
 * const e = new IgnoredSignatureError("malformed", "signature missing required tag (b=)");
 * assert.ok(e instanceof DkimError);
 * assert.equal(e.result, "permerror");
 * assert.equal(e.ignored, "malformed");
 * ```
 */
export class IgnoredSignatureError extends DkimError {
  /** Why the field is ignored. */
  readonly ignored: IgnoredReason;

  /** Makes the error with reason `reason`; its result is always `permerror`. */
  constructor(ignored: IgnoredReason, reason: string, options?: ErrorOptions) {
    super("permerror", reason, options);
    this.name = "IgnoredSignatureError";
    this.ignored = ignored;
  }
}

/**
 * A signature that uses something dkimd does not implement: a `v=` other than 1, an `a=`, `c=`
 * or `q=` value RFC 6376 §3.5's grammar leaves open "for later extension", or rsa-sha1, which
 * RFC 8301 §3.1 forbids verifiers to use. Ignored as {@link IgnoredSignatureError} says (as
 * OpenDKIM, dkimpy and Mail::DKIM report it, `permerror`); such a signature may well be valid for
 * a verifier that implements its algorithm (RFC 8463 added one), so it is not a bad one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DkimError, UnsupportedSignatureError } from "./dkim_error.ts";
 * const e = new UnsupportedSignatureError('unsupported algorithm "rsa-sha512"');
 * assert.ok(e instanceof DkimError);
 * assert.equal(e.result, "permerror");
 * assert.equal(e.ignored, "unsupported");
 * ```
 */
export class UnsupportedSignatureError extends IgnoredSignatureError {
  /** Makes the error with reason `reason`; its result is always `permerror`. */
  constructor(reason: string, options?: ErrorOptions) {
    super("unsupported", reason, options);
    this.name = "UnsupportedSignatureError";
  }
}

/**
 * A DKIM-Signature field with a syntax error (RFC 6376 §3.5, §6.1.1): a required tag missing, a
 * tag twice, a value that is not base64 or not a number, `i=` not within `d=`, `h=` without
 * From, `x=` not after `t=`. Ignored as {@link IgnoredSignatureError} says: §6.1.1 names exactly
 * these ("signature syntax error", "domain mismatch", "From field not signed").
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MalformedSignatureError } from "./dkim_error.ts";
 * const e = new MalformedSignatureError("signature missing required tag (bh=)");
 * assert.equal(e.result, "permerror");
 * assert.equal(e.ignored, "malformed");
 * ```
 */
export class MalformedSignatureError extends IgnoredSignatureError {
  /** Makes the error with reason `reason`; its result is always `permerror`. */
  constructor(reason: string, options?: ErrorOptions) {
    super("malformed", reason, options);
    this.name = "MalformedSignatureError";
  }
}
