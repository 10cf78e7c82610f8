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
