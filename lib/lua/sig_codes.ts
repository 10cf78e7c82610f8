/**
 * libopendkim's numbers for a signature's outcome, which `odkim.sig_result()` and
 * `odkim.sig_bhresult()` return (dkim.h: `DKIM_SIGERROR_*`, `DKIM_SIGBH_*`), worked out from
 * dkimd's verdict so scripts written against OpenDKIM compare with the same constants.
 *
 * @module
 */
import type { Verdict } from "../dkim/result.ts";

/** dkim.h `DKIM_SIGERROR_*` values a script may compare against. */
export const DKIM_SIGERROR = {
  UNKNOWN: -1,
  OK: 0,
  VERSION: 1,
  DOMAIN: 2,
  EXPIRED: 3,
  FUTURE: 4,
  TIMESTAMPS: 5,
  INVALID_A: 10,
  MISSING_H: 11,
  INVALID_L: 12,
  MISSING_D: 15,
  MISSING_S: 17,
  MISSING_B: 19,
  CORRUPT_B: 21,
  NOKEY: 22,
  DNSSYNTAX: 23,
  KEYFAIL: 24,
  MISSING_BH: 25,
  BADSIG: 28,
  SUBDOMAIN: 29,
  TOOLARGE_L: 33,
  MBSFAILED: 34,
} as const;

/** dkim.h `DKIM_SIGBH_*`: the body hash was not checked, matched, or did not. */
export const DKIM_SIGBH = { UNTESTED: -1, MATCH: 0, MISMATCH: 1 } as const;

/**
 * The `DKIM_SIGERROR_*` number for a verdict, by its reason (libopendkim keeps one per check;
 * dkimd keeps the words): UNKNOWN where no number fits.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DKIM_SIGERROR, sigErrorCode } from "./sig_codes.ts";
 * assert.equal(sigErrorCode({ result: "permerror", reason: "no key for signature" }), DKIM_SIGERROR.NOKEY);
 * ```
 */
export function sigErrorCode(verdict: Pick<Verdict, "result" | "reason">): number {
  if (verdict.result === "pass") return DKIM_SIGERROR.OK;
  const reason = (verdict.reason ?? "").toLowerCase();
  const rules: [RegExp, number][] = [
    [/did not verify/, DKIM_SIGERROR.BADSIG],
    [/no key for signature/, DKIM_SIGERROR.NOKEY],
    [/key query failed/, DKIM_SIGERROR.KEYFAIL],
    [/key syntax|key record/, DKIM_SIGERROR.DNSSYNTAX],
    [/expired/, DKIM_SIGERROR.EXPIRED],
    [/future/, DKIM_SIGERROR.FUTURE],
    [/version/, DKIM_SIGERROR.VERSION],
    [/subdomain|i= .*d=|identity/, DKIM_SIGERROR.SUBDOMAIN],
    [/must be signed|mustbesigned/, DKIM_SIGERROR.MBSFAILED],
    [/l= .*exceeds|longer than the body/, DKIM_SIGERROR.TOOLARGE_L],
    [/algorithm/, DKIM_SIGERROR.INVALID_A],
  ];
  for (const [pattern, code] of rules) if (pattern.test(reason)) return code;
  return DKIM_SIGERROR.UNKNOWN;
}

/**
 * The `DKIM_SIGBH_*` number for a verdict: MATCH when the signature passed or failed only on its
 * header hash, MISMATCH when the body hash failed, UNTESTED when verification stopped before.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DKIM_SIGBH, sigBodyHashCode } from "./sig_codes.ts";
 * assert.equal(sigBodyHashCode({ result: "fail", reason: "body hash did not verify" }), DKIM_SIGBH.MISMATCH);
 * ```
 */
export function sigBodyHashCode(verdict: Pick<Verdict, "result" | "reason">): number {
  if (verdict.result === "pass") return DKIM_SIGBH.MATCH;
  const reason = verdict.reason ?? "";
  if (/body hash did not verify/.test(reason)) return DKIM_SIGBH.MISMATCH;
  if (/signature did not verify/.test(reason)) return DKIM_SIGBH.MATCH;
  return DKIM_SIGBH.UNTESTED;
}
