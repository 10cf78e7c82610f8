/**
 * A filter's {@link Action}, checked and turned into the reply the MTA gets. A filter written
 * without types can answer anything; an invalid action (a typo, a reply code out of range, an
 * enhanced status code of the wrong class) throws `TypeError` here, which the session treats as
 * a filter error rather than sending the MTA something it would refuse.
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

import type { Reply } from "./codec.ts";
import type { Action } from "./filter.ts";

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
