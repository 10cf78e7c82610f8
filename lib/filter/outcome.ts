/**
 * From results to what the MTA is told: which On-* setting applies to a verified message
 * (opendkim.conf(5)), and the milter answer for each configured action.
 *
 * @module
 */
import type { Actions } from "../config/defaults.ts";
import type { MilterAction, UnauthorizedSignerAction } from "../config/values.ts";
import type { Verdict } from "../dkim/result.ts";
import type { Action, Modification } from "../milter/filter.ts";

/** The On-* setting that decides a message's fate, or `pass` when nothing needs deciding. */
export type Outcome = keyof Actions | "pass";

/**
 * Which On-* setting applies to a verified message: a passing signature settles it; otherwise
 * the worst problem among the signatures, checked in this order: a DNS failure (On-DNSError), a
 * signature that does not verify or is malformed (On-BadSignature), a key not in the DNS
 * (On-KeyNotFound). No signature at all, or only signatures from testing keys (`t=y`, which RFC
 * 6376 §3.6.1 says to treat as unsigned), is On-NoSignature.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { verifyOutcome } from "./outcome.ts";
 * assert.equal(verifyOutcome([]), "noSignature");
 * assert.equal(verifyOutcome([{ result: "permerror", reason: "no key for signature" }]), "keyNotFound");
 * assert.equal(verifyOutcome([{ result: "fail", reason: "x" }, { result: "temperror", reason: "y" }]), "dnsError");
 * ```
 */
export function verifyOutcome(verdicts: readonly Verdict[]): Outcome {
  if (verdicts.some((v) => v.result === "pass")) return "pass";
  const counted = verdicts.filter((v) => !v.key?.testing);
  if (counted.length === 0) return "noSignature";
  if (counted.some((v) => v.result === "temperror")) return "dnsError";
  if (counted.every((v) => v.result === "permerror" && v.reason === "no key for signature")) {
    return "keyNotFound";
  }
  return "badSignature";
}

/** The SMTP reply given for each outcome when its action is reject or tempfail. */
const REPLIES: Record<keyof Actions, { reject: string; tempfail: string }> = {
  noSignature: { reject: "No DKIM signature", tempfail: "No DKIM signature" },
  badSignature: {
    reject: "DKIM signature verification failed",
    tempfail: "DKIM verification failed, try later",
  },
  keyNotFound: { reject: "DKIM key not found", tempfail: "DKIM key not found, try later" },
  dnsError: { reject: "DKIM key lookup failed", tempfail: "DKIM key lookup failed, try later" },
  internalError: { reject: "DKIM filter error", tempfail: "DKIM filter error, try later" },
  security: {
    reject: "Message refused for security reasons",
    tempfail: "Message deferred for security reasons",
  },
  signatureError: { reject: "DKIM signing failed", tempfail: "DKIM signing failed, try later" },
};

/** The milter answer for a configured action: the final action and any extra modification. */
export function milterAction(
  outcome: keyof Actions,
  action: MilterAction,
): { action: Action; modification?: Modification } {
  switch (action) {
    case "accept":
      return { action: "accept" };
    case "discard":
      return { action: "discard" };
    case "reject":
      return { action: { replycode: 550, xcode: "5.7.1", text: REPLIES[outcome].reject } };
    case "tempfail":
      return { action: { replycode: 451, xcode: "4.7.1", text: REPLIES[outcome].tempfail } };
    case "quarantine":
      return {
        action: "accept",
        modification: { type: "quarantine", reason: `dkimd: ${REPLIES[outcome].reject}` },
      };
  }
}

/**
 * The milter answer for On-UnauthorizedSigner, given at end of headers: accept passes the
 * message on unsigned. The reply names no address: the From is the sender's own text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { unauthorizedSignerAction } from "./outcome.ts";
 * assert.equal(unauthorizedSignerAction("accept"), "accept");
 * assert.deepEqual(unauthorizedSignerAction("reject"), {
 *   replycode: 550, xcode: "5.7.1", text: "From address not authorized for this login",
 * });
 * ```
 */
export function unauthorizedSignerAction(action: UnauthorizedSignerAction): Action {
  const text = "From address not authorized for this login";
  switch (action) {
    case "accept":
    case "discard":
      return action;
    case "reject":
      return { replycode: 550, xcode: "5.7.1", text };
    case "tempfail":
      return { replycode: 451, xcode: "4.7.1", text: `${text}, try later` };
  }
}
