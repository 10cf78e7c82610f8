/**
 * What a verified signature becomes when DNSSEC says its key is bogus or unprotected: OpenDKIM's
 * `BogusKey` and `UnprotectedKey`. The DNSSEC status itself comes from the resolver
 * (`../dns/dnssec.ts` has the trust model).
 *
 * @module
 */

import type { DnssecStatus } from "../dns/dnssec.ts";
import type { Verdict } from "./result.ts";

/**
 * What to do with a signature that verified with such a key (OpenDKIM's `dkimf_keyactions`):
 * `none` (keep the pass), `neutral` (a neutral result), `fail` (a failing result).
 */
export type KeySecurityAction = "none" | "neutral" | "fail";

/** Every {@link KeySecurityAction}, in OpenDKIM's order. */
export const KEY_SECURITY_ACTIONS: readonly KeySecurityAction[] = ["none", "neutral", "fail"];

/** OpenDKIM's `BogusKey` default: a key DNSSEC found forged does not give a pass. */
export const BOGUS_KEY_DEFAULT: KeySecurityAction = "fail";

/** OpenDKIM's `UnprotectedKey` default: most keys are not signed, and that is no failure. */
export const UNPROTECTED_KEY_DEFAULT: KeySecurityAction = "none";

/** The actions for keys by DNSSEC status. */
export interface KeySecurityOptions {
  /** For a bogus key (default {@link BOGUS_KEY_DEFAULT}). */
  readonly bogusKey?: KeySecurityAction;
  /** For an insecure key (default {@link UNPROTECTED_KEY_DEFAULT}). */
  readonly unprotectedKey?: KeySecurityAction;
}

/**
 * The word OpenDKIM writes after the key size in Authentication-Results' comment
 * (`(2048-bit key; secure)`): "secure", "unprotected" for an insecure key, "bogus".
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dnssecWord } from "./key_security.ts";
 * assert.equal(dnssecWord("insecure"), "unprotected");
 * ```
 */
export function dnssecWord(status: DnssecStatus): string {
  return status === "insecure" ? "unprotected" : status;
}

/**
 * `verdict` after the key's DNSSEC status: a pass whose key is bogus takes `bogusKey`, one whose
 * key is insecure takes `unprotectedKey`; `fail` gives `fail` for a bogus key and `policy` for
 * an unprotected one (the words OpenDKIM writes), `neutral` gives `neutral`. Other verdicts, and
 * keys whose status is unknown (DNSSEC not asked) or secure, are kept as they are.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { applyKeySecurity } from "./key_security.ts";
 * import type { Verdict } from "./result.ts";
 * const pass = {
 *   result: "pass", domain: "example.com", signature: {},
 *   key: { type: "ed25519", bits: 256, testing: false, dnssec: "bogus" },
 * } as unknown as Verdict;
 * assert.equal(applyKeySecurity(pass, {}).result, "fail");
 * assert.equal(applyKeySecurity(pass, { bogusKey: "none" }).result, "pass");
 * ```
 */
export function applyKeySecurity(verdict: Verdict, options: KeySecurityOptions): Verdict {
  if (verdict.result !== "pass") return verdict;
  const status = verdict.key?.dnssec;
  if (status === "bogus") {
    const action = options.bogusKey ?? BOGUS_KEY_DEFAULT;
    if (action === "none") return verdict;
    return {
      ...verdict,
      result: action,
      reason: "key record failed DNSSEC validation (bogus)",
    };
  }
  if (status === "insecure") {
    const action = options.unprotectedKey ?? UNPROTECTED_KEY_DEFAULT;
    if (action === "none") return verdict;
    return {
      ...verdict,
      result: action === "fail" ? "policy" : "neutral",
      reason: "key record not protected by DNSSEC (UnprotectedKey)",
    };
  }
  return verdict;
}
