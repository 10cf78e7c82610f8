/**
 * A filter's answers, checked and turned into the replies the MTA gets: an {@link Action}, and at
 * end of message the {@link EndOfMessage} modifications with it. A filter written without types
 * can answer anything; an invalid action (a typo, a reply code out of range, an enhanced status
 * code of the wrong class) or a modification the MTA did not allow or cannot take throws
 * `TypeError` here, which the session treats as a filter error rather than sending the MTA
 * something it would refuse.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { actionReply } from "./action.ts";
 * assert.deepEqual(actionReply("tempfail"), { type: "tempfail" });
 * assert.deepEqual(actionReply({ replycode: 550, xcode: "5.7.1", text: "100% spam" }), {
 *   type: "replycode",
 *   code: 550,
 *   text: "5.7.1 100%% spam",
 * });
 * assert.throws(() => actionReply({ replycode: 550, xcode: "4.7.1", text: "No" }), TypeError);
 * ```
 *
 * @module
 */

import {
  SMFIF_ADDHDRS,
  SMFIF_ADDRCPT,
  SMFIF_ADDRCPT_PAR,
  SMFIF_CHGHDRS,
  SMFIF_DELRCPT,
  SMFIF_QUARANTINE,
} from "./constants.ts";
import type { Action, EndOfMessage, Modification } from "./filter.ts";
import { type Reply, replyProblem } from "./reply.ts";

/** An action (or any value a filter returned) as a log line shows it. */
export function describeAction(action: unknown): string {
  return typeof action === "string" ? action : JSON.stringify(action);
}

/**
 * The reply for a final or continue action, checked: an invalid action (a typo from untyped code,
 * a bad reply code) throws `TypeError`, which the session treats as a filter error. A reply
 * code's `%` is doubled, because Sendmail formats the text.
 */
export function actionReply(action: Action): Reply {
  switch (action) {
    case "continue":
    case "accept":
    case "reject":
    case "tempfail":
    case "discard":
      return { type: action };
  }
  if (typeof action !== "object" || action === null) {
    throw new TypeError(`Invalid filter action ${describeAction(action)}`);
  }
  const { replycode, xcode, text } = action;
  if (!Number.isInteger(replycode) || replycode < 400 || replycode > 599) {
    throw new TypeError(`Invalid reply code ${describeAction(replycode)}: expected 400 to 599`);
  }
  if (typeof text !== "string" || /[\0\r\n]/.test(text)) {
    throw new TypeError(`Invalid reply text ${describeAction(text)}: one line expected`);
  }
  if (xcode !== undefined) {
    // Postfix refuses an enhanced code whose class differs from the reply code's first digit.
    if (!/^[245]\.\d{1,3}\.\d{1,3}$/.test(xcode) || xcode[0] !== String(replycode)[0]) {
      throw new TypeError(`Invalid enhanced status code "${xcode}" for reply ${replycode}`);
    }
  }
  const escaped = text.replaceAll("%", "%%");
  return {
    type: "replycode",
    code: replycode,
    text: xcode === undefined ? escaped : `${xcode} ${escaped}`,
  };
}

/** True for every action but `continue`: it decides the message (or the connection). */
export function isFinal(action: Action): boolean {
  return action !== "continue";
}

/**
 * True for an action that, answering RCPT, refuses that one recipient rather than the message:
 * reject, tempfail or a reply code.
 */
export function refusesRecipient(action: Action): boolean {
  return action === "reject" || action === "tempfail" || typeof action === "object";
}

/** The `SMFIF_*` action a modification needs from negotiation. */
export function neededAction(m: Modification): number {
  switch (m.type) {
    case "addheader":
    case "insheader":
      return SMFIF_ADDHDRS;
    case "chgheader":
      return SMFIF_CHGHDRS;
    case "quarantine":
      return SMFIF_QUARANTINE;
    case "addrcpt":
      return m.args === undefined ? SMFIF_ADDRCPT : SMFIF_ADDRCPT_PAR;
    case "delrcpt":
      return SMFIF_DELRCPT;
  }
}

/**
 * The replies for an end-of-message answer: its modifications, then its action. Throws
 * `TypeError` for a modification whose `SMFIF_*` action is not in `allowed` (what negotiation
 * settled), or that the wire cannot carry (see `replyProblem`), and for an invalid action.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { endOfMessageReplies } from "./action.ts";
 * import { SMFIF_ADDHDRS } from "./constants.ts";
 * const answer = {
 *   modifications: [{ type: "addheader", name: "X-Seen", value: " yes" }],
 *   action: "accept",
 * } as const;
 * assert.deepEqual(endOfMessageReplies(answer, SMFIF_ADDHDRS), [
 *   { type: "addheader", name: "X-Seen", value: " yes" },
 *   { type: "accept" },
 * ]);
 * assert.throws(() => endOfMessageReplies(answer, 0), /not negotiated/);
 * ```
 */
export function endOfMessageReplies(result: EndOfMessage, allowed: number): Reply[] {
  for (const m of result.modifications) {
    const needed = neededAction(m);
    if ((allowed & needed) === 0) {
      throw new TypeError(`Modification ${m.type} was not negotiated with the MTA`);
    }
    const problem = replyProblem(m);
    if (problem) throw new TypeError(`Invalid modification ${m.type}: ${problem}`);
  }
  return [...result.modifications, actionReply(result.action)];
}
