/**
 * Verification results as data, and the one mapping from errors to RFC 8601 result words.
 *
 * @module
 */
import { errorMessage } from "../error_message.ts";
import { DnsError } from "../dns/resolver.ts";
import type { DnssecStatus } from "../dns/dnssec.ts";
import { KeyError } from "../crypto/key_error.ts";
import {
  DkimError,
  type FailResult,
  type IgnoredReason,
  IgnoredSignatureError,
} from "./dkim_error.ts";
import type { Signature, SignatureSummary } from "./signature.ts";

/** The public key a signature was checked with. */
export interface KeyInfo {
  /** Key type (`k=`). */
  readonly type: "rsa" | "ed25519";
  /** Key size in bits. */
  readonly bits: number;
  /** `t=y` in the key record: the domain is testing DKIM (RFC 6376 §3.6.1). */
  readonly testing: boolean;
  /** What DNSSEC said of the key record; absent when it was not asked (see `dnssec.ts`). */
  readonly dnssec?: DnssecStatus;
}

/** The outcome for one DKIM-Signature field. */
export type Verdict =
  & SignatureSummary
  & { readonly key?: KeyInfo; readonly signature?: Signature }
  & (
    | {
      readonly result: "pass";
      readonly signature: Signature;
      readonly reason?: undefined;
      /**
       * Canonical body bytes after the `l=` count, which the signature does not cover: content
       * anyone may have appended (RFC 6376 §8.2). Absent when the whole body is signed.
       */
      readonly unsignedBodyBytes?: number;
    }
    | {
      readonly result: FailResult;
      readonly reason: string;
      /**
       * As for a pass: set on a signature that verified but was refused (`policy`) while `l=`
       * left body bytes unsigned, so the log can still say how many.
       */
      readonly unsignedBodyBytes?: number;
      /**
       * Set when RFC 6376 §6.1.1 ignores the field ({@link IgnoredSignatureError}): it uses
       * what dkimd does not implement (`unsupported`) or has a syntax error (`malformed`). It is
       * reported (permerror), and otherwise ignored: it does not count as a signature for the
       * On-* actions.
       */
      readonly ignored?: IgnoredReason;
    }
  );

/**
 * The one mapping from an error met while verifying a signature to its result: {@link DkimError}
 * keeps its own (with `ignored` when it is an {@link IgnoredSignatureError}: unsupported or
 * malformed, RFC 6376 §6.1.1); DNS failures give `permerror` ("no key for signature") when the record does not
 * exist, `permerror` ("key record over DNSMaxAnswerBytes") when it holds more than the resolver
 * accepts, and `temperror` when the query failed (RFC 6376 §6.1.2); key format problems give
 * `permerror`; anything else is an internal error, reported as `temperror` so a later attempt may
 * succeed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resultOf } from "./result.ts";
 * import { DnsError } from "../dns/resolver.ts";
 * assert.deepEqual(resultOf(new DnsError("nxdomain", "s._domainkey.example.com")), {
 *   result: "permerror",
 *   reason: "no key for signature",
 * });
 * assert.equal(resultOf(new DnsError("timeout", "x")).result, "temperror");
 * ```
 */
export function resultOf(
  error: unknown,
): { result: FailResult; reason: string; ignored?: IgnoredReason } {
  if (error instanceof IgnoredSignatureError) {
    return { result: error.result, reason: error.message, ignored: error.ignored };
  }
  if (error instanceof DkimError) return { result: error.result, reason: error.message };
  if (error instanceof DnsError) {
    if (error.permanent) return { result: "permerror", reason: "no key for signature" };
    // An oversized record is published that way: asking later gives the same answer.
    if (error.code === "toolarge") {
      return { result: "permerror", reason: "key record over DNSMaxAnswerBytes" };
    }
    const what = error.code === "timeout" ? "DNS timeout" : `DNS error (${error.code})`;
    return { result: "temperror", reason: `key query failed: ${what}` };
  }
  if (error instanceof KeyError) {
    // KeyError messages read 'Cannot use public key: <detail>'; keep the detail.
    const detail = error.message.replace(/^Cannot use [^:]*: /, "");
    switch (error.code) {
      case "revoked":
        return { result: "permerror", reason: "key revoked" };
      case "too-large":
        return { result: "permerror", reason: `key too large (${detail})` };
      case "too-small":
        return { result: "permerror", reason: `key too small (${detail})` };
      case "wrong-type":
        return { result: "permerror", reason: `key type mismatch (${detail})` };
      default:
        return { result: "permerror", reason: `key syntax error (${detail})` };
    }
  }
  const text = errorMessage(error);
  return { result: "temperror", reason: `internal error: ${text}` };
}
