/**
 * The glue between a transaction and the Lua hooks (lua_hooks.ts): what a script sees of the
 * message ({@link luaCall}), the final and statistics scripts at end of message
 * ({@link runFinal}), and how the message ends when a script fails ({@link luaFailed}) or sets a
 * result ({@link luaEnded}). Kept apart from the hooks, which know nothing of the milter
 * connection.
 *
 * @module
 */
import type { SigningKey } from "../crypto/private_key.ts";
import { type HeaderField, isField } from "../dkim/header.ts";
import type { Verdict } from "../dkim/result.ts";
import { errorMessage } from "../error_message.ts";
import type { Action, EndOfMessage, MacroReader, Modification } from "../milter/filter.ts";
import { type ConnectionScope, reportEnd } from "./connection_scope.ts";
import type { FilterPolicy } from "./filter_policy.ts";
import {
  applyFinal,
  type FinalAnswer,
  finalSignatures,
  hasHook,
  type LuaCall,
} from "./lua_hooks.ts";
import { makeField, mtaText } from "./mta_fields.ts";
import { describeAction, milterAction } from "./outcome.ts";
import { findSender } from "./sender.ts";
import type { Transaction } from "./transaction.ts";

/** What the Lua scripts see of this transaction (lua_hooks.ts). */
export function luaCall(
  scope: ConnectionScope,
  tx: Transaction,
  macros: MacroReader,
  fromDomain: string,
  qid: string,
): LuaCall {
  return {
    policy: tx.runtime.loaded,
    client: scope.info,
    macros,
    fields: tx.fields,
    envelopeFrom: scope.envelopeFrom,
    recipients: tx.recipients,
    fromDomain,
    log: (line) => scope.deps.logger.info(`${qid}: ${line}`),
    state: scope.lua,
    actions: scope.info.session.actions,
    replaceField: (name, n, value) => {
      const at = nthField(tx.fields, name, n);
      if (at === undefined) return false;
      // OpenDKIM writes the field "Name: value" whatever the MTA's leading-space habit.
      tx.fields[at] = makeField(tx.fields[at].name, UTF8.encode(` ${value}`), true);
      return true;
    },
  };
}

/** Whether {@link runFinal} has a script to run: the statistics or the final one. */
export function hasFinalHook(policy: FilterPolicy<SigningKey>): boolean {
  return hasHook(policy, "statistics") || hasHook(policy, "final");
}

/**
 * Runs the statistics and final scripts on the message's verdicts (applyFinal()); `signing`
 * is the number of signatures about to be made. Call it only when {@link hasFinalHook} says
 * there is a script: without one no sender is parsed for it and nothing is awaited.
 */
export function runFinal(
  scope: ConnectionScope,
  tx: Transaction,
  macros: MacroReader,
  qid: string,
  verdicts: readonly Verdict[],
  signing?: number,
): Promise<FinalAnswer | undefined> {
  return applyFinal(
    luaCall(
      scope,
      tx,
      macros,
      findSender(tx.fields, tx.runtime.loaded.headers.sender)?.domain ?? "",
      qid,
    ),
    finalSignatures(verdicts, tx.bodyBytes),
    (text) => mtaText(text, scope.info.session.leadingSpace),
    signing,
  );
}

/**
 * A script that failed or went over its budget: On-InternalError (OpenDKIM: tempfail). At end
 * of headers no modification can be made, so quarantine degrades to accept.
 */
export function luaFailed(
  scope: ConnectionScope,
  tx: Transaction,
  setting: string,
  e: unknown,
  qid: string,
): Action {
  scope.deps.logger.error(`${qid}: ${setting} failed: ${errorMessage(e)}`);
  const { action } = milterAction(
    "internalError",
    tx.runtime.loaded.config.actions.internalError,
  );
  reportEnd(scope, tx, { disposition: "error", action: describeAction(action) });
  return action;
}

/**
 * A result the final script set: the message ends with it. As in OpenDKIM, the changes made
 * before the script ran (Authentication-Results) and by it are sent; no signature is added.
 */
export function luaEnded(
  scope: ConnectionScope,
  tx: Transaction,
  modifications: readonly Modification[],
  action: Action,
  qid: string,
): EndOfMessage {
  scope.deps.logger.info(`${qid}: FinalPolicyScript set the result ${describeAction(action)}`);
  reportEnd(scope, tx, { disposition: "skipped", action: describeAction(action) });
  return { modifications, action };
}

// The index of the `n`th field named `name`, from the bottom when `n` is negative (-1 the last),
// as OpenDKIM's dkimf_findheader() counts.
function nthField(fields: readonly HeaderField[], name: string, n: number): number | undefined {
  const at = fields.flatMap((f, i) => isField(f, name) ? [i] : []);
  return n < 0 ? at[at.length + n] : at[n];
}

const UTF8 = new TextEncoder();
