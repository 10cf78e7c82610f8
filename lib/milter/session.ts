/**
 * The milter session: one MTA connection's state machine, and the {@link Filter} interface a
 * filter implements. {@link MilterSession.handle} takes one decoded command and returns the
 * replies to write for it (often none, with the no-reply flags), so the whole protocol runs in
 * memory; the server is only an adapter that moves bytes. The session negotiates, keeps macros
 * per stage, runs many transactions per connection, and contains every failure: a filter that
 * throws costs one message its `onError` answer, a confused MTA gets a safe answer and a log line,
 * and nothing escapes `handle()`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MilterSession, type Filter } from "./session.ts";
 * import { SMFIF_ADDHDRS } from "./constants.ts";
 * const filter: Filter = {
 *   needs: { actions: SMFIF_ADDHDRS, events: [] },
 *   connect: () => ({
 *     endOfMessage: () => ({
 *       modifications: [{ type: "addheader", name: "X-Seen", value: "yes" }],
 *       action: "accept",
 *     }),
 *   }),
 * };
 * const quiet = { debug() {}, info() {}, warn() {}, error() {} };
 * const session = new MilterSession(filter, { logger: quiet });
 * await session.handle({ type: "optneg", version: 6, actions: 0x1ff, protocol: 0x1fffff });
 * await session.handle({
 *   type: "connect", hostname: "mx", family: "inet", port: 25, address: "192.0.2.1",
 * });
 * const replies = await session.handle({ type: "bodyeob" });
 * assert.deepEqual(replies, [
 *   { type: "addheader", name: "X-Seen", value: "yes" },
 *   { type: "accept" },
 * ]);
 * ```
 *
 * @module
 */

import { type AddressFamily, type Command, type Reply, replyProblem } from "./codec.ts";
import {
  SMFIC_BODY,
  SMFIC_BODYEOB,
  SMFIC_CONNECT,
  SMFIC_DATA,
  SMFIC_EOH,
  SMFIC_HEADER,
  SMFIC_HELO,
  SMFIC_MAIL,
  SMFIC_RCPT,
  SMFIF_ADDHDRS,
  SMFIF_CHGHDRS,
  SMFIF_QUARANTINE,
  SMFIM_CONNECT,
  SMFIM_DATA,
  SMFIM_ENVFROM,
  SMFIM_ENVRCPT,
  SMFIM_EOH,
  SMFIM_EOM,
  SMFIM_HELO,
  SMFIP_NOMAIL,
} from "./constants.ts";
import {
  type FilterEvent,
  type FilterNeeds,
  negotiate,
  type Negotiation,
  NegotiationError,
  NO_REPLY_FLAGS,
  type ProtocolEvent,
} from "./negotiate.ts";

/**
 * Where log lines go. Structural, so the operations layer can pass its own logger; every line is
 * a complete sentence with the connection's label in front.
 */
export interface MilterLogger {
  /** Protocol detail, off in production. */
  debug(message: string): void;
  /** Normal events worth a line. */
  info(message: string): void;
  /** Something unexpected that was handled. */
  warn(message: string): void;
  /** A failure: a filter error, a broken connection. */
  error(message: string): void;
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
 * A change to the message, requested at end of message. Header values go to the MTA as given:
 * when {@link SessionInfo.leadingSpace} is true the MTA writes `Name:` and the value with nothing
 * between, so a value should start with the space it wants; when false the MTA puts one space
 * back itself (Postfix's `milter8.c`; OpenDKIM prepends the space in the same case). `insheader`
 * counts from 0 at the top; `chgheader` names the nth field (from 1) of that name, and an empty
 * value deletes it.
 */
export type Modification = Extract<
  Reply,
  { type: "addheader" | "insheader" | "chgheader" | "quarantine" }
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

/** What a message gets when the filter fails: let it through, or ask the sender to retry. */
export type ErrorAction = "accept" | "tempfail";

/**
 * The default `onError` action when the session's user sets none: accept, the answer Postfix's
 * `milter_default_action = accept` gives when a filter is unavailable. (The DKIM filter passes
 * its On-InternalError setting instead, whose OpenDKIM default is tempfail.)
 */
export const ON_ERROR_DEFAULT: ErrorAction = "accept";

/** Options of a {@link MilterSession}. */
export interface MilterSessionOptions {
  /** Where log lines go. */
  readonly logger: MilterLogger;
  /** The action for a message whose filter callback threw; default {@link ON_ERROR_DEFAULT}. */
  readonly onError?: ErrorAction;
  /** A label put in front of every log line, e.g. the connection number. */
  readonly label?: string;
}

// Macro stages, in libmilter's order (its ctx_mac_ptr indices equal the SMFIM_* numbers).
const STAGE_COUNT = 7;
// The order stages happen in, for "latest stage wins" lookups.
const LOOKUP_ORDER = [
  SMFIM_EOM,
  SMFIM_EOH,
  SMFIM_DATA,
  SMFIM_ENVRCPT,
  SMFIM_ENVFROM,
  SMFIM_HELO,
  SMFIM_CONNECT,
];
// Which stage a MACRO command's macros belong to. Postfix also sends the end-of-header macros
// before each HEADER and the end-of-message macros before each BODY chunk.
const MACRO_STAGE_OF: ReadonlyMap<number, number> = new Map([
  [SMFIC_CONNECT, SMFIM_CONNECT],
  [SMFIC_HELO, SMFIM_HELO],
  [SMFIC_MAIL, SMFIM_ENVFROM],
  [SMFIC_RCPT, SMFIM_ENVRCPT],
  [SMFIC_DATA, SMFIM_DATA],
  [SMFIC_HEADER, SMFIM_EOH],
  [SMFIC_EOH, SMFIM_EOH],
  [SMFIC_BODY, SMFIM_EOM],
  [SMFIC_BODYEOB, SMFIM_EOM],
]);
// Stages that belong to one transaction, cleared when it ends.
const TRANSACTION_STAGES = [SMFIM_ENVFROM, SMFIM_ENVRCPT, SMFIM_DATA, SMFIM_EOM, SMFIM_EOH];
// Stages cleared when a command of a stage arrives: every stage after it, as libmilter's
// mi_clr_macros(ctx, index + 1) does.
function stagesAfter(stage: number): number[] {
  const out = [];
  for (let s = stage + 1; s < STAGE_COUNT; s++) out.push(s);
  return out;
}

function macroKey(name: string): string {
  return name.length > 2 && name.startsWith("{") && name.endsWith("}") ? name.slice(1, -1) : name;
}

class MacroStore implements MacroReader {
  // Per stage, names (without braces) and values in turn: a stage holds a few macros, and the
  // MTA sends a stage's anew before each command of a message.
  #stages: Array<string[] | undefined> = new Array(STAGE_COUNT);

  set(stage: number, pairs: readonly (readonly [string, string])[]): void {
    const flat = new Array<string>(pairs.length * 2);
    for (let i = 0; i < pairs.length; i++) {
      flat[2 * i] = macroKey(pairs[i][0]);
      flat[2 * i + 1] = pairs[i][1];
    }
    this.#stages[stage] = flat;
  }

  clear(stages: readonly number[]): void {
    for (const s of stages) this.#stages[s] = undefined;
  }

  clearAll(): void {
    this.#stages = new Array(STAGE_COUNT);
  }

  get(name: string): string | undefined {
    const key = macroKey(name);
    for (const s of LOOKUP_ORDER) {
      const flat = this.#stages[s];
      if (!flat) continue;
      // The last definition of a name in one MACRO command wins, as it did in a Map.
      for (let i = flat.length - 2; i >= 0; i -= 2) if (flat[i] === key) return flat[i + 1];
    }
    return undefined;
  }
}

// Transaction phases, in the order the MTA must send them.
const ENVELOPE = 0;
const RECIPIENTS = 1;
const DATA = 2;
const HEADERS = 3;
const END_OF_HEADERS = 4;
const BODY = 5;

interface Transaction {
  phase: number;
  // The final decision for this message, once there is one; later events skip the filter.
  decided?: Action;
  skipBody: boolean;
}

// The negotiation assumed when an MTA skips OPTNEG: nothing negotiated, every reply owed, no
// modification allowed.
const FALLBACK: Negotiation = {
  version: 2,
  actions: 0,
  protocol: 0,
  offer: { version: 2, actions: 0, protocol: 0 },
  leadingSpace: false,
  skip: false,
  symbols: [],
  reply: { type: "optneg", version: 2, actions: 0, protocol: 0 },
};

const UNKNOWN_CLIENT = { hostname: "unknown", family: "unknown", port: 0, address: "" } as const;

const CONTINUE: Reply = { type: "continue" };
const SKIP: Reply = { type: "skip" };

function describe(action: unknown): string {
  return typeof action === "string" ? action : JSON.stringify(action);
}

function errorText(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  // A thrown value may not even turn into a string (Object.create(null)); describing it must
  // never throw, or the filter's error would cost the MTA its reply.
  try {
    return String(error);
  } catch {
    return "a value that cannot be shown";
  }
}

/**
 * The reply for a final or continue action, checked: an invalid action (a typo from untyped code,
 * a bad reply code) throws `TypeError`, which the session treats as a filter error.
 */
function actionReply(action: Action): Reply {
  switch (action) {
    case "continue":
    case "accept":
    case "reject":
    case "tempfail":
    case "discard":
      return { type: action };
  }
  if (typeof action !== "object" || action === null) {
    throw new TypeError(`Invalid filter action ${describe(action)}`);
  }
  const { replycode, xcode, text } = action;
  if (!Number.isInteger(replycode) || replycode < 400 || replycode > 599) {
    throw new TypeError(`Invalid reply code ${describe(replycode)}: expected 400 to 599`);
  }
  if (typeof text !== "string" || /[\0\r\n]/.test(text)) {
    throw new TypeError(`Invalid reply text ${describe(text)}: one line expected`);
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

function isFinal(action: Action): boolean {
  return action !== "continue";
}

// A recipient-level refusal: it refuses one recipient, not the message.
function refusesRecipient(action: Action): boolean {
  return action === "reject" || action === "tempfail" || typeof action === "object";
}

/**
 * One MTA connection's protocol state. Call {@link MilterSession.handle} for each decoded
 * command in order and write the replies it returns, all of them in one write; after it returns,
 * check {@link MilterSession.closed} and close the socket when true. When the socket goes away,
 * call {@link MilterSession.close}. Calls are serialized internally, so an overlapping call waits
 * for the previous one.
 */
export class MilterSession {
  readonly #filter: Filter;
  readonly #log: MilterLogger;
  readonly #onError: ErrorAction;
  readonly #prefix: string;
  readonly #macros = new MacroStore();
  #negotiation?: Negotiation;
  #state: "optneg" | "connect" | "open" | "closed" = "optneg";
  #conn?: FilterConnection;
  // A final decision for the whole connection (from connect or HELO); the filter is not called
  // again on this connection.
  #connDecided?: Action;
  #tx?: Transaction;
  // The end of the commands (and close) being handled; each waits for the one before.
  #queue: Promise<unknown> = Promise.resolve();
  // Commands and closes not finished yet; while there are none, a command runs at once.
  #pending = 0;
  // Commands being handled.
  #busy = 0;

  /** Makes the session of one connection to `filter`. */
  constructor(filter: Filter, options: MilterSessionOptions) {
    this.#filter = filter;
    this.#log = options.logger;
    this.#onError = options.onError ?? ON_ERROR_DEFAULT;
    this.#prefix = options.label ? `${options.label}: ` : "";
  }

  /** What negotiation settled, once OPTNEG has been handled. */
  get negotiation(): Negotiation | undefined {
    return this.#negotiation;
  }

  /** True once the connection should be closed: after QUIT, failed negotiation or close(). */
  get closed(): boolean {
    return this.#state === "closed";
  }

  /** True while a message transaction is open or a command is being handled. */
  get busy(): boolean {
    return this.#tx !== undefined || this.#busy > 0;
  }

  /**
   * Handles one command and resolves to the replies to send, in order. Never rejects: a filter
   * failure becomes the `onError` action, a protocol oddity a logged warning and a safe answer,
   * and an internal failure a logged error, an empty answer and a closed session.
   */
  handle(command: Command): Promise<Reply[]> {
    const replies = this.receive(command);
    return replies instanceof Promise ? replies : Promise.resolve(replies);
  }

  /**
   * Handles one command as {@link MilterSession.handle} does, but returns the replies themselves
   * when it can: when no earlier command is still being handled and the filter answered without
   * a promise (most events of most messages), which spares the server a wait per command. Never
   * throws, and a returned promise never rejects.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MilterSession } from "./session.ts";
   * const quiet = { debug() {}, info() {}, warn() {}, error() {} };
   * const filter = {
   *   needs: { actions: 0, events: ["header" as const] },
   *   connect: () => ({
   *     header: () => "continue" as const,
   *     endOfMessage: () => Promise.resolve({ modifications: [], action: "accept" as const }),
   *   }),
   * };
   * const session = new MilterSession(filter, { logger: quiet });
   * const offer = { type: "optneg", version: 6, actions: 0, protocol: 0 } as const;
   * assert.ok(Array.isArray(session.receive(offer)));
   * await session.receive({ type: "connect", hostname: "mx", family: "unknown", port: 0, address: "" });
   * const value = new TextEncoder().encode(" Hi");
   * const replies = session.receive({ type: "header", name: "Subject", value });
   * assert.deepEqual(replies, [{ type: "continue" }]);
   * assert.deepEqual(await session.receive({ type: "bodyeob" }), [{ type: "accept" }]);
   * ```
   */
  receive(command: Command): Reply[] | Promise<Reply[]> {
    if (this.#pending > 0) {
      // Behind a command still being handled: wait for it, in order.
      const run = this.#queue.then(() => this.#dispatch(command));
      return this.#track(run, command);
    }
    let replies: Reply[] | Promise<Reply[]>;
    try {
      replies = this.#dispatch(command);
    } catch (error) {
      return this.#internalError(command, error);
    }
    return replies instanceof Promise ? this.#track(replies, command) : replies;
  }

  // Counts `run` as pending until it settles, and makes it the end of the queue.
  #track(run: Promise<Reply[]>, command: Command): Promise<Reply[]> {
    this.#pending++;
    this.#busy++;
    const tracked = run.then((replies) => {
      this.#pending--;
      this.#busy--;
      return replies;
    }, (error) => {
      this.#pending--;
      this.#busy--;
      return this.#internalError(command, error);
    });
    this.#queue = tracked;
    return tracked;
  }

  #internalError(command: Command, error: unknown): Reply[] {
    this.#log.error(`${this.#prefix}Internal error handling ${command.type}: ${errorText(error)}`);
    this.#state = "closed";
    return [];
  }

  /**
   * Ends the connection from this side (socket closed, timeout, shutdown): an open transaction is
   * aborted and the filter's connection closed. Idempotent; waits for a command being handled.
   */
  close(): Promise<void> {
    this.#pending++;
    const run = this.#queue.then(() => {
      this.#endConnection();
      this.#state = "closed";
    }).then(() => {
      this.#pending--;
    }, (error) => {
      this.#pending--;
      this.#log.error(`${this.#prefix}Internal error closing: ${errorText(error)}`);
    });
    this.#queue = run;
    return run;
  }

  #dispatch(command: Command): Reply[] | Promise<Reply[]> {
    if (this.#state === "closed") {
      this.#log.warn(`${this.#prefix}Ignoring ${command.type} after the connection closed`);
      return [];
    }
    switch (command.type) {
      case "optneg":
        return this.#optneg(command);
      case "macro":
        this.#macro(command.forCommand, command.macros);
        return [];
      case "connect":
        return this.#connect(command);
      case "helo":
        return this.#opened("HELO", () => this.#helo(command.name));
      case "mail":
        return this.#opened("MAIL", () => this.#mail(command.args));
      case "rcpt":
        return this.#opened("RCPT", () => this.#rcpt(command.args));
      case "data":
        return this.#opened("DATA", () => this.#data());
      case "header":
        return this.#opened("HEADER", () => this.#header(command.name, command.value));
      case "eoh":
        return this.#opened("EOH", () => this.#endOfHeaders());
      case "body":
        return this.#opened("BODY", () => this.#body(command.chunk));
      case "bodyeob":
        return this.#opened("end of message", () => this.#endOfMessage(command.chunk));
      case "abort":
        this.#abort();
        return [];
      case "quit":
        this.#endConnection();
        this.#state = "closed";
        return [];
      case "quit_nc":
        this.#endConnection();
        this.#state = this.#negotiation ? "connect" : "optneg";
        return [];
      case "unknown":
        return this.#opened("UNKNOWN", () => this.#owed("unknown") ? [CONTINUE] : []);
      case "unrecognized":
        this.#log.warn(
          `${this.#prefix}Unknown milter command 0x${
            command.code.toString(16)
          }: answering continue`,
        );
        return [CONTINUE];
    }
  }

  // Runs `event` once there is a negotiation and an open connection, at once when there is.
  #opened(what: string, event: () => Reply[] | Promise<Reply[]>): Reply[] | Promise<Reply[]> {
    if (this.#state === "open") return event();
    return this.#ensureConnection(what).then(event);
  }

  #optneg(offer: { version: number; actions: number; protocol: number }): Reply[] {
    if (this.#state !== "optneg") {
      this.#log.info(`${this.#prefix}OPTNEG again: starting over`);
      this.#endConnection();
    }
    try {
      const result = negotiate(offer, this.#filter.needs);
      this.#negotiation = result;
      this.#state = "connect";
      this.#log.debug(
        `${this.#prefix}Negotiated version ${result.version}, actions 0x${
          result.actions.toString(16)
        }, protocol 0x${result.protocol.toString(16)}`,
      );
      return [result.reply];
    } catch (error) {
      if (!(error instanceof NegotiationError)) throw error;
      this.#log.error(`${this.#prefix}${error.message}; closing the connection`);
      this.#state = "closed";
      return [];
    }
  }

  #macro(forCommand: number, pairs: readonly (readonly [string, string])[]): void {
    const stage = MACRO_STAGE_OF.get(forCommand);
    if (stage === undefined) {
      this.#log.debug(
        `${this.#prefix}Ignoring macros for command 0x${forCommand.toString(16)}`,
      );
      return;
    }
    this.#macros.set(stage, pairs);
  }

  #owed(event: ProtocolEvent): boolean {
    const negotiation = this.#negotiation ?? FALLBACK;
    return (negotiation.protocol & NO_REPLY_FLAGS[event]) === 0;
  }

  #sessionInfo(): SessionInfo {
    const n = this.#negotiation ?? FALLBACK;
    return {
      version: n.version,
      actions: n.actions,
      protocol: n.protocol,
      leadingSpace: n.leadingSpace,
      skip: n.skip,
    };
  }

  async #openConnection(client: Omit<ConnectInfo, "session">): Promise<void> {
    this.#state = "open";
    this.#macros.clear(stagesAfter(SMFIM_CONNECT));
    try {
      this.#conn = await this.#filter.connect(
        { ...client, session: this.#sessionInfo() },
        this.#macros,
      );
      const decided = this.#conn.decided;
      if (decided !== undefined && isFinal(decided)) this.#connDecided = decided;
    } catch (error) {
      this.#connDecided = this.#onError;
      this.#log.error(
        `${this.#prefix}Filter failed at connect: ${errorText(error)}; answering ${this.#onError}`,
      );
    }
  }

  // Makes sure there is a negotiation and an open connection before an event that needs one.
  async #ensureConnection(what: string): Promise<void> {
    if (this.#state === "optneg") {
      this.#log.warn(`${this.#prefix}${what} before OPTNEG: assuming nothing was negotiated`);
      this.#negotiation = FALLBACK;
      this.#state = "connect";
    }
    if (this.#state === "connect") {
      this.#log.warn(`${this.#prefix}${what} before CONNECT: assuming an unknown client`);
      await this.#openConnection(UNKNOWN_CLIENT);
    }
  }

  async #connect(command: Extract<Command, { type: "connect" }>): Promise<Reply[]> {
    if (this.#state === "optneg") await this.#ensureConnection("CONNECT");
    if (this.#state === "open") {
      this.#log.warn(`${this.#prefix}CONNECT on an open connection: starting a new one`);
      // The MACRO for this CONNECT has just arrived; keep it.
      this.#endConnection(false);
    }
    const { hostname, family, port, address } = command;
    await this.#openConnection({ hostname, family, port, address });
    if (!this.#owed("connect")) return [];
    return [this.#connDecided ? actionReply(this.#connDecided) : CONTINUE];
  }

  // Runs a connection-level callback (HELO).
  #connectionEvent(
    event: FilterEvent,
    run: (conn: FilterConnection) => MaybeAction,
  ): Reply[] | Promise<Reply[]> {
    const owed = this.#owed(event);
    if (this.#connDecided || !this.#conn) {
      return owed && this.#connDecided ? [actionReply(this.#connDecided)] : owed ? [CONTINUE] : [];
    }
    return settle(
      () => run(this.#conn!),
      (answer) => {
        const action = answer ?? "continue";
        const reply = actionReply(action);
        if (isFinal(action)) this.#connDecided = action;
        return owed ? [reply] : [];
      },
      (error) => {
        this.#connDecided = this.#onError;
        this.#log.error(
          `${this.#prefix}Filter failed at ${event}: ${
            errorText(error)
          }; answering ${this.#onError}`,
        );
        return owed ? [actionReply(this.#onError)] : [];
      },
    );
  }

  #helo(name: string): Reply[] | Promise<Reply[]> {
    if (this.#tx) {
      this.#log.warn(`${this.#prefix}HELO inside a transaction: aborting it`);
      this.#abort();
    }
    this.#macros.clear(stagesAfter(SMFIM_HELO));
    return this.#connectionEvent("helo", (c) => c.helo?.(name, this.#macros));
  }

  // Runs a message-level callback: skipped once the message or connection is decided; a final
  // action decides the message (or refuses one recipient); an error applies onError.
  #messageEvent(
    event: ProtocolEvent,
    tx: Transaction,
    run: ((conn: FilterConnection) => MaybeBodyAction) | undefined,
  ): Reply[] | Promise<Reply[]> {
    const owed = this.#owed(event);
    const settled = this.#connDecided ?? tx.decided;
    if (settled) return owed ? [actionReply(settled)] : [];
    const conn = this.#conn;
    if (!conn || !run) return owed ? [CONTINUE] : [];
    return settle(
      () => run(conn),
      (answer) => {
        const action = answer ?? "continue";
        if (action === "skip") {
          if (event !== "body") throw new TypeError(`Invalid filter action "skip" at ${event}`);
          tx.skipBody = true;
          return owed ? [this.#negotiation?.skip ? SKIP : CONTINUE] : [];
        }
        const reply = actionReply(action);
        if (isFinal(action)) {
          if (event === "envRcpt" && owed && refusesRecipient(action)) return [reply];
          tx.decided = action;
          if (!owed) {
            this.#log.debug(
              `${this.#prefix}Decision ${describe(action)} at ${event} waits for a reply point`,
            );
          }
        }
        return owed ? [reply] : [];
      },
      (error) => this.#failed(event, tx, error, owed),
    );
  }

  #failed(event: string, tx: Transaction, error: unknown, owed: boolean): Reply[] {
    tx.decided = this.#onError;
    this.#log.error(
      `${this.#prefix}Filter failed at ${event}: ${
        errorText(error)
      }; answering ${this.#onError} for this message`,
    );
    return owed ? [actionReply(this.#onError)] : [];
  }

  // The current transaction, started implicitly when the MTA sends a message event without MAIL.
  #transaction(what: string): Transaction {
    if (this.#tx) return this.#tx;
    const negotiation = this.#negotiation ?? FALLBACK;
    if ((negotiation.protocol & SMFIP_NOMAIL) === 0) {
      this.#log.warn(`${this.#prefix}${what} outside a transaction: starting one`);
    }
    this.#tx = { phase: ENVELOPE, skipBody: false };
    return this.#tx;
  }

  // Moves the transaction to `phase`, or marks the message inconsistent (tempfail) when the MTA
  // went backwards, or repeated a once-only step (DATA, EOH).
  #advance(tx: Transaction, phase: number, what: string, once = false): boolean {
    if (tx.phase > phase || (once && tx.phase === phase)) {
      this.#log.warn(`${this.#prefix}${what} out of order: answering tempfail for this message`);
      tx.decided ??= "tempfail";
      return false;
    }
    tx.phase = phase;
    return true;
  }

  #mail(args: readonly string[]): Reply[] | Promise<Reply[]> {
    if (this.#tx) {
      this.#log.debug(`${this.#prefix}MAIL inside a transaction: aborting the previous one`);
      this.#abort();
    }
    this.#macros.clear(stagesAfter(SMFIM_ENVFROM));
    const tx: Transaction = { phase: ENVELOPE, skipBody: false };
    this.#tx = tx;
    return this.#messageEvent("envFrom", tx, (c) => c.envFrom?.(args, this.#macros));
  }

  #rcpt(args: readonly string[]): Reply[] | Promise<Reply[]> {
    const tx = this.#transaction("RCPT");
    this.#advance(tx, RECIPIENTS, "RCPT");
    this.#macros.clear(stagesAfter(SMFIM_ENVRCPT));
    return this.#messageEvent("envRcpt", tx, (c) => c.envRcpt?.(args, this.#macros));
  }

  #data(): Reply[] | Promise<Reply[]> {
    const tx = this.#transaction("DATA");
    this.#advance(tx, DATA, "DATA", true);
    return this.#messageEvent("data", tx, undefined);
  }

  #header(name: string, value: Uint8Array): Reply[] | Promise<Reply[]> {
    const tx = this.#transaction("HEADER");
    this.#advance(tx, HEADERS, "HEADER");
    return this.#messageEvent("header", tx, (c) => c.header?.(name, value, this.#macros));
  }

  #endOfHeaders(): Reply[] | Promise<Reply[]> {
    const tx = this.#transaction("EOH");
    this.#advance(tx, END_OF_HEADERS, "EOH", true);
    return this.#messageEvent("endOfHeaders", tx, (c) => c.endOfHeaders?.(this.#macros));
  }

  #body(chunk: Uint8Array): Reply[] | Promise<Reply[]> {
    const tx = this.#transaction("BODY");
    this.#advance(tx, BODY, "BODY");
    if (tx.skipBody && !tx.decided && !this.#connDecided) {
      return this.#owed("body") ? [this.#negotiation?.skip ? SKIP : CONTINUE] : [];
    }
    return this.#messageEvent("body", tx, (c) => c.body?.(chunk));
  }

  #endOfMessage(chunk?: Uint8Array): Reply[] | Promise<Reply[]> {
    const tx = this.#transaction("End of message");
    if (chunk && chunk.length > 0) {
      this.#advance(tx, BODY, "BODY");
      // The last chunk's own reply is folded into the end-of-message answer.
      const conn = this.#conn;
      if (!tx.skipBody && !tx.decided && !this.#connDecided && conn?.body) {
        const body = conn.body.bind(conn);
        const last = settle(
          () => body(chunk),
          (answer) => {
            const action = answer ?? "continue";
            if (action !== "skip" && action !== "continue") {
              actionReply(action); // throws for an invalid action, like any other callback's
              tx.decided = action;
            }
            return [];
          },
          (error) => this.#failed("body", tx, error, false),
        );
        if (last instanceof Promise) return last.then(() => this.#endTransaction(tx));
      }
    }
    return this.#endTransaction(tx);
  }

  // The end-of-message answer, then the transaction is over.
  #endTransaction(tx: Transaction): Reply[] | Promise<Reply[]> {
    const replies = this.#finish(tx);
    if (replies instanceof Promise) {
      return replies.then((r) => {
        this.#closeTransaction();
        return r;
      });
    }
    this.#closeTransaction();
    return replies;
  }

  #closeTransaction(): void {
    this.#tx = undefined;
    this.#macros.clear(TRANSACTION_STAGES);
  }

  #finish(tx: Transaction): Reply[] | Promise<Reply[]> {
    const settled = this.#connDecided ?? tx.decided;
    if (settled) return [actionReply(settled)];
    const conn = this.#conn;
    if (!conn) return [CONTINUE];
    return settle(
      () => conn.endOfMessage(this.#macros),
      (result) => {
        const allowed = (this.#negotiation ?? FALLBACK).actions;
        for (const m of result.modifications) {
          const needed = m.type === "quarantine"
            ? SMFIF_QUARANTINE
            : m.type === "chgheader"
            ? SMFIF_CHGHDRS
            : SMFIF_ADDHDRS;
          if ((allowed & needed) === 0) {
            throw new TypeError(`Modification ${m.type} was not negotiated with the MTA`);
          }
          const problem = replyProblem(m);
          if (problem) throw new TypeError(`Invalid modification ${m.type}: ${problem}`);
        }
        return [...result.modifications, actionReply(result.action)];
      },
      (error) => this.#failed("end of message", tx, error, true),
    );
  }

  #abort(): void {
    const tx = this.#tx;
    this.#tx = undefined;
    this.#macros.clear(TRANSACTION_STAGES);
    if (!tx || !this.#conn?.abort) return;
    try {
      this.#conn.abort();
    } catch (error) {
      this.#log.error(`${this.#prefix}Filter failed at abort: ${errorText(error)}`);
    }
  }

  // Ends the filter's connection: aborts an open transaction, closes, forgets per-connection
  // state. Negotiation is kept (QUIT_NC); macros are cleared unless asked to keep the CONNECT ones.
  #endConnection(clearConnectMacros = true): void {
    if (this.#tx) this.#abort();
    const conn = this.#conn;
    this.#conn = undefined;
    this.#connDecided = undefined;
    if (clearConnectMacros) this.#macros.clearAll();
    if (this.#state === "open") this.#state = "connect";
    if (!conn?.close) return;
    try {
      conn.close();
    } catch (error) {
      this.#log.error(`${this.#prefix}Filter failed at close: ${errorText(error)}`);
    }
  }
}

/**
 * Runs a filter callback and hands its answer to `then`, or what it threw (or rejected with),
 * and what `then` threw, to `failed`: at once when the callback answered without a promise,
 * otherwise once the promise settles. A filter answers most events at once, and each await
 * would cost a turn of the event loop per milter command.
 */
function settle<T>(
  call: () => T | PromiseLike<T>,
  then: (answer: T) => Reply[],
  failed: (error: unknown) => Reply[],
): Reply[] | Promise<Reply[]> {
  let answer: T | PromiseLike<T>;
  try {
    answer = call();
  } catch (error) {
    return failed(error);
  }
  if (isThenable(answer)) {
    return Promise.resolve(answer).then((value) => {
      try {
        return then(value);
      } catch (error) {
        return failed(error);
      }
    }, failed);
  }
  try {
    return then(answer);
  } catch (error) {
    return failed(error);
  }
}

function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof value === "object" && value !== null &&
    typeof (value as { then?: unknown }).then === "function";
}
