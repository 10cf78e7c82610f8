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
 * A signature that uses something dkimd does not implement: a `v=` other than 1, an `a=`, `c=`
 * or `q=` value RFC 6376 §3.5's grammar leaves open "for later extension", or rsa-sha1, which
 * RFC 8301 §3.1 forbids verifiers to use. RFC 6376 §6.1.1: such a field is "completely ignored"
 * and the verifier returns PERMFAIL, so its result is `permerror` (as OpenDKIM, dkimpy and
 * Mail::DKIM report it; RFC 8601 §2.7.1: "A later attempt is unlikely to produce a final
 * result"), and, ignored, it does not make the message signed: RFC 6376 §6.1 says a verifier
 * "SHOULD NOT treat a message that has one or more bad signatures and no good signatures
 * differently from a message with no signature at all", and such a signature may well be valid
 * for a verifier that implements its algorithm (RFC 8463 added one), so it is not a bad one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DkimError, UnsupportedSignatureError } from "./dkim_error.ts";
 * const e = new UnsupportedSignatureError('unsupported algorithm "rsa-sha512"');
 * assert.ok(e instanceof DkimError);
 * assert.equal(e.result, "permerror");
 * ```
 */
export class UnsupportedSignatureError extends DkimError {
  /** Makes the error with reason `reason`; its result is always `permerror`. */
  constructor(reason: string, options?: ErrorOptions) {
    super("permerror", reason, options);
    this.name = "UnsupportedSignatureError";
  }
}
