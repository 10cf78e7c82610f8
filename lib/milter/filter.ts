/**
 * The Filter contract: what a mail filter implements and what it answers with. A filter is a
 * plain object: {@link Filter.needs} says which events, actions and macros it wants (negotiation
 * derives the OPTNEG answer from it), and {@link Filter.connect} returns the
 * {@link FilterConnection} that receives one SMTP connection's events. Callbacks answer with an
 * {@link Action} (or nothing, meaning continue), at once or as a promise; end of message answers
 * with the {@link Modification}s to make and the decision. Nothing here knows sockets or the wire
 * format; the session turns these answers into replies.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Filter } from "./filter.ts";
 * import { SMFIF_ADDHDRS } from "./constants.ts";
 * // Refuses mail from one sender, and marks the rest.
 * const filter: Filter = {
 *   needs: { actions: SMFIF_ADDHDRS, events: ["envFrom"] },
 *   connect: () => ({
 *     envFrom: (args) => args[0] === "<spam@example.com>" ? "reject" : "continue",
 *     endOfMessage: () => ({
 *       modifications: [{ type: "addheader", name: "X-Checked", value: " yes" }],
 *       action: "accept",
 *     }),
 *   }),
 * };
 * const session = { version: 6, actions: SMFIF_ADDHDRS, protocol: 0, leadingSpace: true, skip: false };
 * const client = { hostname: "mx", family: "inet", port: 25, address: "192.0.2.1", session } as const;
 * const conn = await filter.connect(client, { get: () => undefined });
 * assert.equal(conn.envFrom?.(["<spam@example.com>"], { get: () => undefined }), "reject");
 * ```
 *
 * @module
 */

import type { AddressFamily } from "./command.ts";
import type { Reply } from "./reply.ts";

/**
 * A protocol event a filter may want, named after its callback. `connect` is always sent (the
 * filter's connection starts there) and so is end of message; naming `connect` matters only in
 * `noReply`. Unknown SMTP commands have no callback, so the MTA is always asked to skip them, or
 * failing that not to wait for a reply. DATA has no callback either (the session answers
 * continue), but a filter may name it to be answered there: Postfix sends the DATA macros even
 * when DATA is skipped, and its cleanup server writes the message content later on the same
 * socket, which Nagle's algorithm holds until the filter's delayed ACK of those macros, about
 * 40 ms per message; a reply to DATA carries that ACK at once.
 */
export type FilterEvent =
  | "connect"
  | "helo"
  | "envFrom"
  | "envRcpt"
  | "data"
  | "header"
  | "endOfHeaders"
  | "body";

/** A macro stage by name, as in {@link FilterNeeds.macros}. */
export type MacroStageName =
  | "connect"
  | "helo"
  | "envFrom"
  | "envRcpt"
  | "data"
  | "endOfHeaders"
  | "endOfMessage";

/** What a filter needs from the MTA; negotiation derives the OPTNEG answer from it. */
export interface FilterNeeds {
  /** `SMFIF_*` actions the filter requires; an MTA not allowing all of them is refused. */
  readonly actions: number;
  /** `SMFIF_*` actions the filter uses when allowed (kept only if the MTA offers them). */
  readonly optionalActions?: number;
  /** The events the filter handles; the MTA is asked not to send the others when it can. */
  readonly events: readonly FilterEvent[];
  /** Events whose replies the filter can do without: it never rejects there. */
  readonly noReply?: readonly FilterEvent[];
  /**
   * Macros the filter reads, per stage; sent as symbol lists when the MTA allows them. Postfix
   * then sends only the listed macros, and none at a stage not listed, so list every macro read.
   */
  readonly macros?: Readonly<Partial<Record<MacroStageName, readonly string[]>>>;
  /** Ask for header values with their leading space (`SMFIP_HDR_LEADSPC`); default true. */
  readonly headerLeadingSpace?: boolean;
}

/** An SMTP reply with a code of the filter's choosing, e.g. `{ replycode: 550, xcode: "5.7.1" }`. */
export interface ReplyCodeAction {
  /** The SMTP reply code, 400 to 599. */
  readonly replycode: number;
  /** The RFC 3463 enhanced status code, whose class must match the reply code's first digit. */
  readonly xcode?: string;
  /** One line of text; a `%` is doubled on the wire because Sendmail formats the text. */
  readonly text: string;
}

/**
 * What a filter answers an event with. `continue` goes on; the others are final for the message
 * (or, from `connect`/`helo`, for the connection): `accept` stops filtering and lets it through,
 * `reject` answers 5xx, `tempfail` 4xx, `discard` accepts and drops it. From `envRcpt`, a reject,
 * tempfail or reply code refuses only that recipient.
 */
export type Action =
  | "continue"
  | "accept"
  | "reject"
  | "tempfail"
  | "discard"
  | ReplyCodeAction;

/** A body chunk's answer may also be `skip`: no more body chunks for this message, please. */
export type BodyAction = Action | "skip";

/** A callback's result: nothing (continue), an action, or a promise of either. */
export type MaybeAction = void | Action | Promise<void | Action>;

/** A body callback's result. */
export type MaybeBodyAction = void | BodyAction | Promise<void | BodyAction>;

/**
 * A change to the message, requested at end of message: header fields, quarantine (the MTA holds
 * the message: Postfix's hold queue), or envelope recipients added or removed. Header values go to the MTA as given:
 * when {@link SessionInfo.leadingSpace} is true the MTA writes `Name:` and the value with nothing
 * between, so a value should start with the space it wants; when false the MTA puts one space
 * back itself (Postfix's `milter8.c`; OpenDKIM prepends the space in the same case). `insheader`
 * counts from 0 at the top; `chgheader` names the nth field (from 1) of that name, and an empty
 * value deletes it.
 */
export type Modification = Extract<
  Reply,
  { type: "addheader" | "insheader" | "chgheader" | "quarantine" | "addrcpt" | "delrcpt" }
>;

/** The end-of-message answer: changes to make, then the decision. */
export interface EndOfMessage {
  /** Changes, applied in order. */
  readonly modifications: readonly Modification[];
  /** The decision for the message. */
  readonly action: Action;
}

/**
 * The macros the MTA sent, as libmilter's `smfi_getsymval` reads them: the latest stage that
 * defines a name wins. Names may be given with or without braces: `auth_type` and `{auth_type}`
 * are the same macro; single-letter names like `i` and `j` have none.
 */
export interface MacroReader {
  /** The value of a macro, or undefined when the MTA did not send it. */
  get(name: string): string | undefined;
}

/** What negotiation settled for this connection. */
export interface SessionInfo {
  /** The protocol version agreed on. */
  readonly version: number;
  /** The `SMFIF_*` actions the filter may take. */
  readonly actions: number;
  /** The `SMFIP_*` flags agreed on. */
  readonly protocol: number;
  /**
   * True when header values arrive byte-exact (`SMFIP_HDR_LEADSPC`). When false, the MTA removed
   * one space after each header's colon, if there was one; a filter that needs the original field
   * (a DKIM verifier) puts it back, as OpenDKIM does.
   */
  readonly leadingSpace: boolean;
  /** True when a body chunk may be answered with `skip` to the MTA's benefit. */
  readonly skip: boolean;
}

/** The SMTP client of a connection, from the CONNECT command. */
export interface ConnectInfo {
  /** The client's host name; Postfix sends `[address]` when it has none. */
  readonly hostname: string;
  /** The address family; `unknown` when the MTA did not say. */
  readonly family: AddressFamily;
  /** The client's port; 0 when not known. */
  readonly port: number;
  /** The client's IP address (or socket path); "" when not known. */
  readonly address: string;
  /** What negotiation settled. */
  readonly session: SessionInfo;
}

/**
 * A mail filter. `needs` drives negotiation; `connect` is called once per SMTP connection and
 * returns the object that receives that connection's events.
 */
export interface Filter {
  /** What the filter needs from the MTA. */
  readonly needs: FilterNeeds;
  /** Starts a connection. Throwing applies the session's `onError` action to the connection. */
  connect(info: ConnectInfo, macros: MacroReader): FilterConnection | Promise<FilterConnection>;
}

/**
 * One SMTP connection's events, in protocol order. Only callbacks named in `needs.events` are
 * asked for; all are optional but `endOfMessage`. A callback that throws (or rejects) makes the
 * current message get the session's `onError` action; the next transaction starts afresh. When
 * the filter does not ask for `envFrom`, a transaction starts at its first message event.
 *
 * Borrowed bytes: a header `value` and a body `chunk` are views of the server's read buffer, not
 * copies (a copy of every 64 KiB body frame cost a quarter of the CPU of a large message). They
 * are valid while the callback runs and, when it returns a promise, until that promise settles;
 * after that the next bytes from the MTA overwrite them. A filter that keeps one longer, such as
 * a header value kept for end of message, keeps a copy (`value.slice()`, or a string made from
 * it). Strings (names, macros, arguments) are the filter's to keep.
 */
export interface FilterConnection {
  /**
   * A final action for the whole connection, decided when it opened (a client the filter
   * leaves alone gets `accept`: the MTA then sends nothing more of this connection).
   */
  readonly decided?: Action;
  /** The HELO/EHLO name. A final action here applies to the whole connection. */
  helo?(name: string, macros: MacroReader): MaybeAction;
  /** MAIL FROM: a transaction starts. `args[0]` is the address, the rest ESMTP parameters. */
  envFrom?(args: readonly string[], macros: MacroReader): MaybeAction;
  /** RCPT TO, once per recipient. */
  envRcpt?(args: readonly string[], macros: MacroReader): MaybeAction;
  /**
   * One header field; `value` is exactly the bytes the MTA sent (see `leadingSpace`), borrowed:
   * copy it to keep it past this call.
   */
  header?(name: string, value: Uint8Array, macros: MacroReader): MaybeAction;
  /** The end of the header block. */
  endOfHeaders?(macros: MacroReader): MaybeAction;
  /**
   * A body chunk, at most 64 KiB, CRLF line ends as on the wire; borrowed: copy it to keep it
   * past this call (or past the settling of the promise this call returns).
   */
  body?(chunk: Uint8Array): MaybeBodyAction;
  /** The end of the message: the only point where modifications can be made. */
  endOfMessage(macros: MacroReader): Promise<EndOfMessage> | EndOfMessage;
  /** The transaction was aborted: back to the state after connect (and HELO). */
  abort?(): void;
  /** The connection is gone (QUIT, QUIT_NC, or the socket closed). */
  close?(): void;
}
