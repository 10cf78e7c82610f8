/**
 * From results to what the MTA is told: which On-* setting applies to a verified message
 * (opendkim.conf(5)), the milter answer for each configured action, and On-Security's answer to
 * a message over a header limit, and the word an action is reported and logged with.
 *
 * @module
 */
import type { Actions } from "../config/defaults.ts";
import type { Config } from "../config/schema.ts";
import { actionSettingName } from "../config/settings.ts";
import type { MilterAction, UnauthorizedSignerAction } from "../config/values.ts";
import type { Verdict } from "../dkim/result.ts";
import type { Action, EndOfMessage, Modification } from "../milter/filter.ts";
import type { MilterLogger } from "../milter/logger.ts";

/** The On-* setting that decides a message's fate, or `pass` when nothing needs deciding. */
export type Outcome = keyof Actions | "pass";

/**
 * Which On-* setting applies to a verified message: a passing signature settles it; otherwise
 * the worst problem among the signatures, checked in this order: a DNS failure (On-DNSError), a
 * signature that does not verify or whose key is unusable (On-BadSignature), a key not in the
 * DNS (On-KeyNotFound). No signature at all, or only signatures from testing keys (`t=y`, which
 * RFC 6376 §3.6.1 says to treat as unsigned) or that RFC 6376 §6.1.1 ignores (`ignored`: a field
 * with a syntax error, an unknown `a=`, rsa-sha1), is On-NoSignature.
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
  // A field RFC 6376 §6.1.1 ignores (malformed, unknown a=, rsa-sha1...) is not counted.
  const counted = verdicts.filter((v) => !v.key?.testing && !(v.result !== "pass" && v.ignored));
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

/** The header limits a message can cross before end of headers. */
export type HeaderLimit = "MaximumHeaders" | "MaximumHeaderFields";

/** What the filter does with a message over a header limit. */
export interface HeaderLimitAnswer {
  /** The log line (after the queue id), naming the limit and the action. */
  readonly log: string;
  /** The On-Security action taken, in words, for the observer. */
  readonly action: MilterAction;
  /**
   * The answer at end of headers; absent for quarantine, an end-of-message action, which
   * answers with `held` when the message ends.
   */
  readonly now?: Action;
  /** The end-of-message answer held for quarantine. */
  readonly held?: EndOfMessage;
}

/** What the log says the filter does for each action. */
const DOING: Record<MilterAction, string> = {
  accept: "accepting it unfiltered",
  reject: "rejecting",
  tempfail: "deferring",
  discard: "discarding",
  quarantine: "quarantining",
};

/**
 * On-Security's answer to a message over `limit`, where OpenDKIM applies it: its mlfi_header()
 * answers "too much header data" with On-Security (default tempfail). The fields past the limit
 * were never kept, so the message can be neither signed nor verified. `reject` is a permanent
 * 552 5.3.4 and `tempfail` a 451 4.3.4 naming the limit; `accept` lets the message through
 * untouched: unsigned, unverified, forged Authentication-Results left in place.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { headerLimitAnswer } from "./outcome.ts";
 * import { DEFAULT_ACTIONS } from "../config/defaults.ts";
 * const config = { maximumHeaders: 65536, maximumHeaderFields: 1000, actions: DEFAULT_ACTIONS };
 * const answer = headerLimitAnswer("MaximumHeaders", config);
 * assert.deepEqual(answer.now, { replycode: 451, xcode: "4.3.4", text: "Message header block too large" });
 * assert.equal(answer.log, "header block exceeds MaximumHeaders (65536 bytes); deferring (On-Security tempfail)");
 * ```
 */
export function headerLimitAnswer(
  limit: HeaderLimit,
  config: Pick<Config, "maximumHeaders" | "maximumHeaderFields" | "actions">,
): HeaderLimitAnswer {
  const action = config.actions.security;
  const what = limit === "MaximumHeaders"
    ? `header block exceeds MaximumHeaders (${config.maximumHeaders} bytes)`
    : `more than MaximumHeaderFields (${config.maximumHeaderFields}) header fields`;
  const log = `${what}; ${DOING[action]} (On-Security ${action})`;
  const text = limit === "MaximumHeaders"
    ? "Message header block too large"
    : "Too many header fields";
  switch (action) {
    case "reject":
      return { log, action, now: { replycode: 552, xcode: "5.3.4", text } };
    case "tempfail":
      return { log, action, now: { replycode: 451, xcode: "4.3.4", text } };
    case "quarantine":
      return {
        log,
        action,
        held: {
          modifications: [{ type: "quarantine", reason: `dkimd: ${text}` }],
          action: "accept",
        },
      };
    case "accept":
    case "discard":
      return { log, action, now: action };
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

/**
 * The answer at end of message for an outcome other than `pass`: the configured On-* action,
 * its modification added to `mods` unless a quarantine is there already, and a log line when
 * the message is not simply accepted.
 */
export function outcomeAction(
  outcome: Exclude<Outcome, "pass">,
  config: Config,
  mods: Modification[],
  logger: MilterLogger,
  qid: string,
): Action {
  const chosen = milterAction(outcome, config.actions[outcome]);
  if (chosen.modification && !mods.some((m) => m.type === "quarantine")) {
    mods.push(chosen.modification);
  }
  if (chosen.action !== "accept") {
    logger.info(`${qid}: ${outcome} → ${config.actions[outcome]} (On-${onName(outcome)})`);
  }
  return chosen.action;
}

/**
 * The word for an action in reports and logs: a reply is a reject (5xx) or a tempfail.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeAction } from "./outcome.ts";
 * assert.equal(describeAction("discard"), "discard");
 * assert.equal(describeAction({ replycode: 451, xcode: "4.7.1", text: "later" }), "tempfail");
 * ```
 */
export function describeAction(action: Action): string {
  return typeof action === "string" ? action : action.replycode >= 500 ? "reject" : "tempfail";
}

function onName(outcome: Exclude<Outcome, "pass">): string {
  return actionSettingName(outcome).slice("On-".length);
}
