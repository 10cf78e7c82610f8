/**
 * What the DKIM filter asks of the MTA at negotiation: events, actions, no-reply flags and
 * macros.
 *
 * @module
 */
import { SMFIF_ADDHDRS, SMFIF_CHGHDRS, SMFIF_QUARANTINE } from "../milter/constants.ts";
import type { FilterNeeds } from "../milter/filter.ts";

/**
 * The milter events, actions and macros the DKIM filter needs. MAIL, recipients, headers and
 * body chunks are never answered (no-reply flags), so the MTA streams them without waiting; end
 * of headers is answered so a message that needs nothing more can be accepted there and its body
 * never sent. DATA is asked for only to be answered: Postfix sends the DATA macros even when DATA
 * is skipped, then its cleanup server writes the content on the same socket, and Nagle's
 * algorithm holds that write until this side's delayed ACK of the macros (about 40 ms per
 * message, measured behind a real Postfix 3.7); the reply carries the ACK at once.
 */
export function dkimFilterNeeds(macroList: readonly string[] = []): FilterNeeds {
  const extra = macroList.map((m) => (m.length === 1 ? m : `{${m}}`));
  return {
    actions: SMFIF_ADDHDRS | SMFIF_CHGHDRS,
    optionalActions: SMFIF_QUARANTINE,
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
