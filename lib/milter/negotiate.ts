/**
 * Option negotiation: from the MTA's OPTNEG offer and what a filter needs, the answer to send.
 * The answer asks only for the events the filter handles (the `SMFIP_NO*` flags turn the others
 * off), declares "no reply" (`SMFIP_NR_*`) for events the filter never rejects, asks for header
 * values with their leading space (`SMFIP_HDR_LEADSPC`) and for the macros the filter reads
 * (symbol lists, which Postfix honours). Only flags the MTA offered are ever set, as libmilter's
 * `st_optionneg` does, and only those defined for the version agreed on.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { negotiate } from "./negotiate.ts";
 * import { SMFIF_ADDHDRS, SMFIP_NOHELO, SMFIP_NR_HDR } from "./constants.ts";
 * const result = negotiate(
 *   { version: 6, actions: 0x1ff, protocol: 0x1fffff },
 *   { actions: SMFIF_ADDHDRS, events: ["header"], noReply: ["header"] },
 * );
 * assert.equal(result.version, 6);
 * assert.ok(result.protocol & SMFIP_NOHELO);
 * assert.ok(result.protocol & SMFIP_NR_HDR);
 * assert.equal(result.leadingSpace, true);
 * ```
 *
 * @module
 */

import {
  SMFI_CURR_ACTS,
  SMFI_CURR_PROT,
  SMFI_PROT_VERSION,
  SMFI_PROT_VERSION_MIN,
  SMFI_V1_ACTS,
  SMFI_V1_PROT,
  SMFI_V2_ACTS,
  SMFI_V2_PROT,
  SMFIF_ADDHDRS,
  SMFIF_ADDRCPT,
  SMFIF_ADDRCPT_PAR,
  SMFIF_CHGBODY,
  SMFIF_CHGFROM,
  SMFIF_CHGHDRS,
  SMFIF_DELRCPT,
  SMFIF_QUARANTINE,
  SMFIF_SETSYMLIST,
  SMFIM_CONNECT,
  SMFIM_DATA,
  SMFIM_ENVFROM,
  SMFIM_ENVRCPT,
  SMFIM_EOH,
  SMFIM_EOM,
  SMFIM_HELO,
  SMFIP_HDR_LEADSPC,
  SMFIP_NOBODY,
  SMFIP_NOCONNECT,
  SMFIP_NODATA,
  SMFIP_NOEOH,
  SMFIP_NOHDRS,
  SMFIP_NOHELO,
  SMFIP_NOMAIL,
  SMFIP_NORCPT,
  SMFIP_NOUNKNOWN,
  SMFIP_NR_BODY,
  SMFIP_NR_CONN,
  SMFIP_NR_DATA,
  SMFIP_NR_EOH,
  SMFIP_NR_HDR,
  SMFIP_NR_HELO,
  SMFIP_NR_MAIL,
  SMFIP_NR_RCPT,
  SMFIP_NR_UNKN,
  SMFIP_SKIP,
} from "./constants.ts";
import type { FilterEvent, FilterNeeds, MacroStageName } from "./filter.ts";
import type { Reply, SymbolList } from "./reply.ts";

/** Every event the protocol can turn off or leave unanswered: the filter events, DATA, unknown. */
export type ProtocolEvent = FilterEvent | "unknown";

/** The `SMFIM_*` number of each stage name. */
export const MACRO_STAGES: Readonly<Record<MacroStageName, number>> = {
  connect: SMFIM_CONNECT,
  helo: SMFIM_HELO,
  envFrom: SMFIM_ENVFROM,
  envRcpt: SMFIM_ENVRCPT,
  data: SMFIM_DATA,
  endOfHeaders: SMFIM_EOH,
  endOfMessage: SMFIM_EOM,
};

/** The MTA's OPTNEG offer. */
export interface OptionOffer {
  /** The MTA's protocol version. */
  readonly version: number;
  /** `SMFIF_*` actions the MTA allows. */
  readonly actions: number;
  /** `SMFIP_*` flags the MTA can honour. */
  readonly protocol: number;
}

/** The outcome of negotiation: what was agreed and the OPTNEG reply that says so. */
export interface Negotiation {
  /** The version agreed on: the MTA's, capped at 6. */
  readonly version: number;
  /** `SMFIF_*` actions the filter may take. */
  readonly actions: number;
  /** `SMFIP_*` flags of the reply: events not sent, replies not expected, extras. */
  readonly protocol: number;
  /** The offer as understood (0 actions or protocol replaced by the version 1 defaults). */
  readonly offer: OptionOffer;
  /**
   * True when header values arrive byte-exact, leading space included. When false the MTA ate
   * one space after the colon (Sendmail's and Postfix's default), and header values the filter
   * sends get one space put back by the MTA; a filter that needs the exact field restores it.
   */
  readonly leadingSpace: boolean;
  /** True when the filter may answer a body chunk with SMFIR_SKIP. */
  readonly skip: boolean;
  /** The symbol lists sent, empty when the MTA does not allow them. */
  readonly symbols: readonly SymbolList[];
  /** The OPTNEG reply to send. */
  readonly reply: Extract<Reply, { type: "optneg" }>;
}

/**
 * Negotiation failed: the MTA's version is too old or it does not allow an action the filter
 * requires. Like libmilter, the server then closes the connection without a reply; the MTA
 * applies its default action (Postfix: `milter_default_action`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { negotiate, NegotiationError } from "./negotiate.ts";
 * assert.throws(
 *   () => negotiate({ version: 1, actions: 0, protocol: 0 }, { actions: 0, events: [] }),
 *   NegotiationError,
 * );
 * ```
 */
export class NegotiationError extends Error {
  /** The offer that could not be satisfied. */
  readonly offer: OptionOffer;

  /** Makes an error about `offer`. */
  constructor(message: string, offer: OptionOffer, options?: ErrorOptions) {
    super(message, options);
    this.name = "NegotiationError";
    this.offer = offer;
  }
}

/** The "do not send" flag of each event. */
export const NO_SEND_FLAGS: Readonly<Record<ProtocolEvent, number>> = {
  connect: SMFIP_NOCONNECT,
  helo: SMFIP_NOHELO,
  envFrom: SMFIP_NOMAIL,
  envRcpt: SMFIP_NORCPT,
  data: SMFIP_NODATA,
  header: SMFIP_NOHDRS,
  endOfHeaders: SMFIP_NOEOH,
  body: SMFIP_NOBODY,
  unknown: SMFIP_NOUNKNOWN,
};

/** The "no reply" flag of each event. */
export const NO_REPLY_FLAGS: Readonly<Record<ProtocolEvent, number>> = {
  connect: SMFIP_NR_CONN,
  helo: SMFIP_NR_HELO,
  envFrom: SMFIP_NR_MAIL,
  envRcpt: SMFIP_NR_RCPT,
  data: SMFIP_NR_DATA,
  header: SMFIP_NR_HDR,
  endOfHeaders: SMFIP_NR_EOH,
  body: SMFIP_NR_BODY,
  unknown: SMFIP_NR_UNKN,
};

// Events the filter can be spared; CONNECT is never turned off because the filter's connection
// object is created there.
const OPTIONAL_EVENTS: readonly ProtocolEvent[] = [
  "helo",
  "envFrom",
  "envRcpt",
  "data",
  "header",
  "endOfHeaders",
  "body",
  "unknown",
];

const ACTION_NAMES: ReadonlyArray<readonly [number, string]> = [
  [SMFIF_ADDHDRS, "SMFIF_ADDHDRS"],
  [SMFIF_CHGBODY, "SMFIF_CHGBODY"],
  [SMFIF_ADDRCPT, "SMFIF_ADDRCPT"],
  [SMFIF_DELRCPT, "SMFIF_DELRCPT"],
  [SMFIF_CHGHDRS, "SMFIF_CHGHDRS"],
  [SMFIF_QUARANTINE, "SMFIF_QUARANTINE"],
  [SMFIF_CHGFROM, "SMFIF_CHGFROM"],
  [SMFIF_ADDRCPT_PAR, "SMFIF_ADDRCPT_PAR"],
  [SMFIF_SETSYMLIST, "SMFIF_SETSYMLIST"],
];

/** Names of the `SMFIF_*` bits set in `actions`, for messages and logs. */
export function actionNames(actions: number): string[] {
  return ACTION_NAMES.filter(([bit]) => actions & bit).map(([, name]) => name);
}

/**
 * The `SMFIP_*` flags defined by each protocol version, after Postfix's `milter8.c` tables:
 * version 2 has the seven NO* flags, 3 adds NOUNKNOWN and the no-reply-to-headers extension, 4
 * adds NODATA, 6 everything else.
 */
export function protocolFlagsForVersion(version: number): number {
  if (version >= 6) return SMFI_CURR_PROT;
  if (version >= 4) return SMFI_V2_PROT | SMFIP_NR_HDR | SMFIP_NOUNKNOWN | SMFIP_NODATA;
  if (version >= 3) return SMFI_V2_PROT | SMFIP_NR_HDR | SMFIP_NOUNKNOWN;
  return SMFI_V2_PROT;
}

/** The `SMFIF_*` actions defined by each protocol version: v2 to v5 know six, v6 all nine. */
export function actionsForVersion(version: number): number {
  return version >= 6 ? SMFI_CURR_ACTS : SMFI_V2_ACTS;
}

/**
 * Computes the answer to an MTA's OPTNEG. Versions 2 to 6 are accepted and answered with the
 * same version (newer MTAs get 6); a version 2 to 5 MTA gets an answer with only the flags its
 * version defines and no symbol lists. An offer of 0 actions or 0 protocol flags means the
 * version 1 defaults, as in libmilter. Throws {@link NegotiationError} for a version below 2 or
 * when a required action is not allowed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { negotiate } from "./negotiate.ts";
 * import { SMFIF_ADDHDRS, SMFIF_SETSYMLIST, SMFIM_ENVFROM } from "./constants.ts";
 * const result = negotiate(
 *   { version: 6, actions: 0x1ff, protocol: 0x1fffff },
 *   { actions: SMFIF_ADDHDRS, events: ["envFrom"], macros: { envFrom: ["{auth_type}"] } },
 * );
 * assert.ok(result.actions & SMFIF_SETSYMLIST);
 * assert.deepEqual(result.symbols, [{ stage: SMFIM_ENVFROM, macros: ["{auth_type}"] }]);
 * ```
 */
export function negotiate(offered: OptionOffer, needs: FilterNeeds): Negotiation {
  if (offered.version < SMFI_PROT_VERSION_MIN) {
    throw new NegotiationError(
      `Cannot negotiate with MTA protocol version ${offered.version}: version ${SMFI_PROT_VERSION_MIN} or later is required`,
      offered,
    );
  }
  const offer: OptionOffer = {
    version: offered.version,
    actions: offered.actions === 0 ? SMFI_V1_ACTS : offered.actions,
    protocol: offered.protocol === 0 ? SMFI_V1_PROT : offered.protocol,
  };
  const version = Math.min(offer.version, SMFI_PROT_VERSION);
  const allowedActions = offer.actions & actionsForVersion(version);
  const missing = needs.actions & ~allowedActions;
  if (missing !== 0) {
    throw new NegotiationError(
      `Cannot negotiate: the MTA does not allow required milter actions ${
        actionNames(missing).join(", ")
      } (offered actions 0x${offered.actions.toString(16)})`,
      offered,
    );
  }
  const available = offer.protocol & protocolFlagsForVersion(version);
  const wanted = new Set<ProtocolEvent>(needs.events);
  const noReply = new Set<ProtocolEvent>(needs.noReply ?? []);
  let protocol = 0;
  for (const event of OPTIONAL_EVENTS) {
    if (!wanted.has(event)) {
      // An event the filter ignores: not sent if the MTA can skip it, else not replied to.
      if (available & NO_SEND_FLAGS[event]) protocol |= NO_SEND_FLAGS[event];
      else if (available & NO_REPLY_FLAGS[event]) protocol |= NO_REPLY_FLAGS[event];
    } else if (noReply.has(event) && available & NO_REPLY_FLAGS[event]) {
      protocol |= NO_REPLY_FLAGS[event];
    }
  }
  if (noReply.has("connect") && available & SMFIP_NR_CONN) protocol |= SMFIP_NR_CONN;
  const leadingSpace = (needs.headerLeadingSpace ?? true) && (available & SMFIP_HDR_LEADSPC) !== 0;
  if (leadingSpace) protocol |= SMFIP_HDR_LEADSPC;
  const skip = wanted.has("body") && (available & SMFIP_SKIP) !== 0;
  if (skip) protocol |= SMFIP_SKIP;

  let actions = needs.actions | ((needs.optionalActions ?? 0) & allowedActions);
  const symbols: SymbolList[] = [];
  if (allowedActions & SMFIF_SETSYMLIST) {
    for (const [name, stage] of Object.entries(MACRO_STAGES)) {
      const macros = needs.macros?.[name as MacroStageName];
      if (macros && macros.length > 0) symbols.push({ stage, macros: [...new Set(macros)] });
    }
    if (symbols.length > 0) actions |= SMFIF_SETSYMLIST;
  }
  const reply = symbols.length > 0
    ? { type: "optneg" as const, version, actions, protocol, symbols }
    : { type: "optneg" as const, version, actions, protocol };
  return { version, actions, protocol, offer, leadingSpace, skip, symbols, reply };
}
