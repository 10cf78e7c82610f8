/**
 * Mail OpenDKIM calls malformed (mlfi_eoh(): no sender to be found, a From it cannot parse when
 * signing): which mail that is ({@link malformedSender}) and how it is answered
 * ({@link answerMalformed}): neither signed nor verified, passed untouched with
 * IgnoreMalformedMail, else marked dkim=permerror.
 *
 * @module
 */
import { asciiLower } from "../bytes.ts";
import { AUTH_RESULTS_FIELD } from "../dkim/auth_results.ts";
import { fieldValueText, type HeaderField } from "../dkim/header.ts";
import type { Action, MacroReader } from "../milter/filter.ts";
import { type ConnectionScope, reportEnd } from "./connection_scope.ts";
import type { Runtime } from "./filter_policy.ts";
import { mtaText } from "./mta_fields.ts";
import { authservId, forgedResults } from "./result_fields.ts";
import type { Sender } from "./sender.ts";
import type { Transaction } from "./transaction.ts";

/**
 * The answer to malformed mail: neither signed nor verified. IgnoreMalformedMail passes it
 * untouched; otherwise it carries "dkim=permerror (bad message format)", as OpenDKIM's
 * mlfi_eom() writes it. Unlike OpenDKIM, forged Authentication-Results are still removed (RFC
 * 8601 §5): a message cannot escape that by leaving out its From.
 */
export async function answerMalformed(
  scope: ConnectionScope,
  tx: Transaction,
  macros: MacroReader,
  qid: string,
  why: string,
): Promise<Action | void> {
  const { config } = tx.runtime.loaded;
  if (config.ignoreMalformedMail) {
    scope.deps.logger.info(`${qid}: ${why}; accepting (IgnoreMalformedMail)`);
    reportEnd(scope, tx, { disposition: "skipped", action: "accept" });
    return "accept";
  }
  scope.deps.logger.info(`${qid}: ${why}; adding dkim=permerror`);
  const id = authservId(scope, tx, macros);
  const mods = await forgedResults(tx, id);
  mods.push({
    type: "insheader",
    index: 0,
    name: AUTH_RESULTS_FIELD,
    value: mtaText(` ${id}; dkim=permerror (bad message format)`, scope.info.session.leadingSpace),
  });
  reportEnd(scope, tx, { disposition: "error", action: "accept" });
  tx.work = { mode: "held", end: { modifications: mods, action: "accept" } };
  return undefined;
}

/**
 * Whether mail without a sender is malformed to OpenDKIM: when no sender field has a value (and
 * no SenderMacro value came), always; when one has a value without an address, only where it
 * signs (mlfi_eoh() parses the address only for signing).
 */
export function malformedSender(
  fields: readonly HeaderField[],
  loaded: Runtime["loaded"],
  fromMacro: Sender | null | undefined,
): boolean {
  if (fromMacro === null) return loaded.config.mode.sign;
  const names = new Set([...loaded.headers.sender, "From"].map(asciiLower));
  const present = fields.some((f) =>
    names.has(asciiLower(f.name)) && fieldValueText(f).trim() !== ""
  );
  return !present || loaded.config.mode.sign;
}
