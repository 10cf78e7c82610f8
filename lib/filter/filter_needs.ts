/**
 * What the DKIM filter asks of the MTA at negotiation: events, actions, no-reply flags and
 * macros.
 *
 * @module
 */
import {
  SMFIF_ADDHDRS,
  SMFIF_ADDRCPT,
  SMFIF_CHGHDRS,
  SMFIF_DELRCPT,
  SMFIF_QUARANTINE,
} from "../milter/constants.ts";
import type { FilterNeeds } from "../milter/filter.ts";
import type { Config } from "../config/schema.ts";

/**
 * The actions a configuration may use beyond header changes, asked for when the MTA offers them
 * (as OpenDKIM's mlfi_negotiate asks only for what its settings need): quarantine for an On-*
 * `quarantine`, Quarantine, CaptureUnknownErrors or a final script (`odkim.quarantine()`);
 * recipient changes for RedirectFailuresTo or a final script (`odkim.add_rcpt()`,
 * `odkim.del_rcpt()`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { optionalActionsFor } from "./filter_needs.ts";
 * import { DEFAULT_ACTIONS } from "../config/defaults.ts";
 * const config = { actions: DEFAULT_ACTIONS, quarantine: false, captureUnknownErrors: false };
 * assert.equal(optionalActionsFor(config, false), 0);
 * assert.equal(optionalActionsFor({ ...config, redirectFailuresTo: "f@example.com" }, false), 0x0c);
 * ```
 */
export function optionalActionsFor(
  config: Pick<Config, "actions" | "quarantine" | "captureUnknownErrors" | "redirectFailuresTo">,
  finalScript: boolean,
): number {
  let actions = 0;
  if (
    Object.values(config.actions).includes("quarantine") || config.quarantine ||
    config.captureUnknownErrors || finalScript
  ) {
    actions |= SMFIF_QUARANTINE;
  }
  if (config.redirectFailuresTo !== undefined || finalScript) {
    actions |= SMFIF_ADDRCPT | SMFIF_DELRCPT;
  }
  return actions;
}

/**
 * The milter events, actions and macros the DKIM filter needs. MAIL, recipients, headers and
 * body chunks are never answered (no-reply flags), so the MTA streams them without waiting; end
 * of headers is answered so a message that needs nothing more can be accepted there and its body
 * never sent. DATA is asked for only to be answered: Postfix sends the DATA macros even when DATA
 * is skipped, then its cleanup server writes the content on the same socket, and Nagle's
 * algorithm holds that write until this side's delayed ACK of the macros (about 40 ms per
 * message, measured behind a real Postfix 3.7); the reply carries the ACK at once.
 * `optionalActions` (see {@link optionalActionsFor}) are asked for when the MTA offers them.
 */
export function dkimFilterNeeds(
  macroList: readonly string[] = [],
  optionalActions = 0,
): FilterNeeds {
  const extra = macroList.map((m) => (m.length === 1 ? m : `{${m}}`));
  return {
    actions: SMFIF_ADDHDRS | SMFIF_CHGHDRS,
    optionalActions,
    events: ["connect", "envFrom", "envRcpt", "data", "header", "endOfHeaders", "body"],
    noReply: ["envFrom", "envRcpt", "header", "body"],
    macros: {
      connect: ["j", "{daemon_name}", ...extra],
      envFrom: ["i", "{auth_type}", "{auth_authen}", ...extra],
      envRcpt: ["i"],
      data: ["i"],
      endOfHeaders: ["i", ...extra],
      endOfMessage: ["i"],
    },
    headerLeadingSpace: true,
  };
}
