/**
 * The milter session: one MTA connection's state machine over a {@link Filter} (filter.ts).
 * {@link MilterSession.handle} takes one decoded command and returns the replies to write for it
 * (often none, with the no-reply flags), so the whole protocol runs in memory; the server is only
 * an adapter that moves bytes. The session negotiates, keeps macros per stage (macros.ts), runs
 * many transactions per connection, and contains every failure: a filter that throws costs one
 * message its `onError` answer, a confused MTA gets a safe answer and a log line, and nothing
 * escapes `handle()`. Whether a command is answered at once or later is the scheduler's business
 * (scheduler.ts); the steps here are written as if every answer came at once.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MilterSession } from "./session.ts";
 * import type { Filter } from "./filter.ts";
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

import { errorDescription } from "../error_message.ts";
import {
  actionReply,
  describeAction,
  endOfMessageReplies,
  isFinal,
  refusesRecipient,
} from "./action.ts";
import type { Command, MacroPair } from "./command.ts";
import {
  SMFIM_CONNECT,
  SMFIM_ENVFROM,
  SMFIM_ENVRCPT,
  SMFIM_HELO,
  SMFIP_NOMAIL,
} from "./constants.ts";
import type {
  Action,
  BodyAction,
  ConnectInfo,
  Filter,
  FilterConnection,
  FilterEvent,
  MaybeAction,
  MaybeBodyAction,
  SessionInfo,
} from "./filter.ts";
import type { MilterLogger } from "./logger.ts";
import { MacroStore } from "./macros.ts";
import {
  negotiate,
  type Negotiation,
  NegotiationError,
  NO_REPLY_FLAGS,
  type ProtocolEvent,
} from "./negotiate.ts";
import type { Reply } from "./reply.ts";
import { andThen, CommandQueue, isThenable, type Replies, settle } from "./scheduler.ts";

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
// The empty answer, shared: most commands (macros, header fields, body chunks) are answered with
// nothing, and a new empty array for each was garbage. Frozen, so no caller can fill it.
const NO_REPLIES = Object.freeze([]) as unknown as Reply[];
const SKIP: Reply = { type: "skip" };

// The commands that are events of an open connection, and their names in log lines.
type EventCommand = Extract<
  Command,
  { type: "helo" | "mail" | "rcpt" | "data" | "header" | "eoh" | "body" | "bodyeob" | "unknown" }
>;
const EVENT_NAMES: Readonly<Record<EventCommand["type"], string>> = {
  helo: "HELO",
  mail: "MAIL",
  rcpt: "RCPT",
  data: "DATA",
  header: "HEADER",
  eoh: "EOH",
  body: "BODY",
  bodyeob: "end of message",
  unknown: "UNKNOWN",
};

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
  readonly #commands = new CommandQueue(
    (command: Command) => this.#dispatch(command),
    (command: Command, error: unknown) => this.#internalError(command, error),
  );

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
    return this.#tx !== undefined || this.#commands.busy;
  }

  /**
   * Handles one command and resolves to the replies to send, in order. Never rejects: a filter
   * failure becomes the `onError` action, a protocol oddity a logged warning and a safe answer,
   * and an internal failure a logged error, an empty answer and a closed session.
   */
  handle(command: Command): Promise<Reply[]> {
    return Promise.resolve(this.receive(command));
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
  receive(command: Command): Replies {
    return this.#commands.run(command);
  }

  #internalError(command: Command, error: unknown): Reply[] {
    this.#log.error(
      `${this.#prefix}Internal error handling ${command.type}: ${errorDescription(error)}`,
    );
    this.#state = "closed";
    return [];
  }

  /**
   * Ends the connection from this side (socket closed, timeout, shutdown): an open transaction is
   * aborted and the filter's connection closed. Idempotent; waits for a command being handled.
   */
  close(): Promise<void> {
    return this.#commands.after(() => {
      this.#endConnection();
      this.#state = "closed";
    }, (error) => {
      this.#log.error(`${this.#prefix}Internal error closing: ${errorDescription(error)}`);
    });
  }

  #dispatch(command: Command): Replies {
    if (this.#state === "closed") {
      this.#log.warn(`${this.#prefix}Ignoring ${command.type} after the connection closed`);
      return NO_REPLIES;
    }
    switch (command.type) {
      case "optneg":
        return this.#optneg(command);
      case "macro":
        this.#macro(command.forCommand, command.macros);
        return NO_REPLIES;
      case "connect":
        return this.#connect(command);
      case "abort":
        this.#abort();
        return NO_REPLIES;
      case "quit":
        this.#endConnection();
        this.#state = "closed";
        return NO_REPLIES;
      case "quit_nc":
        this.#endConnection();
        this.#state = this.#negotiation ? "connect" : "optneg";
        return NO_REPLIES;
      case "unrecognized":
        this.#log.warn(
          `${this.#prefix}Unknown milter command 0x${
            command.code.toString(16)
          }: answering continue`,
        );
        return [CONTINUE];
    }
    // The rest are events of an open connection, opened first for an MTA that skipped a step.
    if (this.#state !== "open") {
      return this.#ensureConnection(EVENT_NAMES[command.type]).then(() => this.#event(command));
    }
    return this.#event(command);
  }

  #event(command: EventCommand): Replies {
    switch (command.type) {
      case "helo":
        return this.#helo(command.name);
      case "mail":
        return this.#mail(command.args);
      case "rcpt":
        return this.#rcpt(command.args);
      case "data":
        return this.#data();
      case "header":
        return this.#header(command.name, command.value);
      case "eoh":
        return this.#endOfHeaders();
      case "body":
        return this.#body(command.chunk);
      case "bodyeob":
        return this.#endOfMessage(command.chunk);
      case "unknown":
        return this.#owed("unknown") ? [CONTINUE] : [];
    }
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

  #macro(forCommand: number, pairs: readonly MacroPair[]): void {
    if (!this.#macros.receive(forCommand, pairs)) {
      this.#log.debug(
        `${this.#prefix}Ignoring macros for command 0x${forCommand.toString(16)}`,
      );
    }
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
    this.#macros.enter(SMFIM_CONNECT);
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
        `${this.#prefix}Filter failed at connect: ${
          errorDescription(error)
        }; answering ${this.#onError}`,
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
  ): Replies {
    const owed = this.#owed(event);
    const conn = this.#conn;
    if (this.#connDecided || !conn) {
      return owed && this.#connDecided ? [actionReply(this.#connDecided)] : owed ? [CONTINUE] : [];
    }
    return settle(
      () => run(conn),
      (answer) => {
        const action = answer ?? "continue";
        const reply = actionReply(action);
        if (isFinal(action)) this.#connDecided = action;
        return owed ? [reply] : NO_REPLIES;
      },
      (error) => {
        this.#connDecided = this.#onError;
        this.#log.error(
          `${this.#prefix}Filter failed at ${event}: ${
            errorDescription(error)
          }; answering ${this.#onError}`,
        );
        return owed ? [actionReply(this.#onError)] : [];
      },
    );
  }

  #helo(name: string): Replies {
    if (this.#tx) {
      this.#log.warn(`${this.#prefix}HELO inside a transaction: aborting it`);
      this.#abort();
    }
    this.#macros.enter(SMFIM_HELO);
    return this.#connectionEvent("helo", (c) => c.helo?.(name, this.#macros));
  }

  // Runs a message-level callback: skipped once the message or connection is decided; a final
  // action decides the message (or refuses one recipient); an error applies onError. The
  // callback is picked by `event` and called here, not through closures, as this runs for every
  // header field: a callback that answers at once costs no allocation but its reply.
  #messageEvent(
    event: "envFrom" | "envRcpt" | "data" | "header" | "endOfHeaders" | "body",
    tx: Transaction,
    args?: readonly string[],
    name?: string,
    bytes?: Uint8Array,
  ): Replies {
    const owed = this.#owed(event);
    const settled = this.#connDecided ?? tx.decided;
    if (settled) return owed ? [actionReply(settled)] : NO_REPLIES;
    const conn = this.#conn;
    if (!conn) return owed ? [CONTINUE] : NO_REPLIES;
    let answer: MaybeBodyAction;
    try {
      switch (event) {
        case "envFrom":
          answer = conn.envFrom?.(args!, this.#macros);
          break;
        case "envRcpt":
          answer = conn.envRcpt?.(args!, this.#macros);
          break;
        case "data":
          answer = undefined;
          break;
        case "header":
          answer = conn.header?.(name!, bytes!, this.#macros);
          break;
        case "endOfHeaders":
          answer = conn.endOfHeaders?.(this.#macros);
          break;
        case "body":
          answer = conn.body?.(bytes!);
          break;
      }
    } catch (error) {
      return this.#failed(event, tx, error, owed);
    }
    if (isThenable(answer)) {
      return Promise.resolve(answer).then(
        (value) => this.#messageAnswer(event, tx, owed, value),
        (error) => this.#failed(event, tx, error, owed),
      );
    }
    return this.#messageAnswer(event, tx, owed, answer);
  }

  // What a message-level callback's answer means for the message, and the reply if one is owed;
  // an invalid answer counts as the callback's failure.
  #messageAnswer(
    event: ProtocolEvent,
    tx: Transaction,
    owed: boolean,
    answer: BodyAction | void,
  ): Reply[] {
    try {
      const action = answer ?? "continue";
      if (action === "continue") return owed ? [CONTINUE] : NO_REPLIES;
      if (action === "skip") {
        if (event !== "body") throw new TypeError(`Invalid filter action "skip" at ${event}`);
        tx.skipBody = true;
        return owed ? [this.#negotiation?.skip ? SKIP : CONTINUE] : NO_REPLIES;
      }
      const reply = actionReply(action);
      if (isFinal(action)) {
        if (event === "envRcpt" && owed && refusesRecipient(action)) return [reply];
        tx.decided = action;
        if (!owed) {
          this.#log.debug(
            `${this.#prefix}Decision ${describeAction(action)} at ${event} waits for a reply point`,
          );
        }
      }
      return owed ? [reply] : NO_REPLIES;
    } catch (error) {
      return this.#failed(event, tx, error, owed);
    }
  }

  #failed(event: string, tx: Transaction, error: unknown, owed: boolean): Reply[] {
    tx.decided = this.#onError;
    this.#log.error(
      `${this.#prefix}Filter failed at ${event}: ${
        errorDescription(error)
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

  #mail(args: readonly string[]): Replies {
    if (this.#tx) {
      this.#log.debug(`${this.#prefix}MAIL inside a transaction: aborting the previous one`);
      this.#abort();
    }
    this.#macros.enter(SMFIM_ENVFROM);
    const tx: Transaction = { phase: ENVELOPE, skipBody: false };
    this.#tx = tx;
    return this.#messageEvent("envFrom", tx, args);
  }

  #rcpt(args: readonly string[]): Replies {
    const tx = this.#transaction("RCPT");
    this.#advance(tx, RECIPIENTS, "RCPT");
    this.#macros.enter(SMFIM_ENVRCPT);
    return this.#messageEvent("envRcpt", tx, args);
  }

  #data(): Replies {
    const tx = this.#transaction("DATA");
    this.#advance(tx, DATA, "DATA", true);
    return this.#messageEvent("data", tx);
  }

  #header(name: string, value: Uint8Array): Replies {
    const tx = this.#transaction("HEADER");
    this.#advance(tx, HEADERS, "HEADER");
    return this.#messageEvent("header", tx, undefined, name, value);
  }

  #endOfHeaders(): Replies {
    const tx = this.#transaction("EOH");
    this.#advance(tx, END_OF_HEADERS, "EOH", true);
    return this.#messageEvent("endOfHeaders", tx);
  }

  #body(chunk: Uint8Array): Replies {
    const tx = this.#transaction("BODY");
    this.#advance(tx, BODY, "BODY");
    if (tx.skipBody && !tx.decided && !this.#connDecided) {
      return this.#owed("body") ? [this.#negotiation?.skip ? SKIP : CONTINUE] : NO_REPLIES;
    }
    return this.#messageEvent("body", tx, undefined, undefined, chunk);
  }

  #endOfMessage(chunk?: Uint8Array): Replies {
    const tx = this.#transaction("End of message");
    if (!chunk || chunk.length === 0) return this.#endTransaction(tx);
    this.#advance(tx, BODY, "BODY");
    return andThen(this.#lastBody(tx, chunk), () => this.#endTransaction(tx));
  }

  // The body chunk that came with end of message: its answer is folded into the end-of-message
  // answer, so it may decide the message but has no reply of its own.
  #lastBody(tx: Transaction, chunk: Uint8Array): Replies {
    const conn = this.#conn;
    if (tx.skipBody || tx.decided || this.#connDecided || !conn?.body) return NO_REPLIES;
    return settle(
      () => conn.body?.(chunk),
      (answer) => {
        const action = answer ?? "continue";
        if (action !== "skip" && action !== "continue") {
          actionReply(action); // throws for an invalid action, like any other callback's
          tx.decided = action;
        }
        return NO_REPLIES;
      },
      (error) => this.#failed("body", tx, error, false),
    );
  }

  // The end-of-message answer, then the transaction is over.
  #endTransaction(tx: Transaction): Replies {
    return andThen(this.#finish(tx), (replies) => {
      this.#closeTransaction();
      return replies;
    });
  }

  #closeTransaction(): void {
    this.#tx = undefined;
    this.#macros.endTransaction();
  }

  #finish(tx: Transaction): Replies {
    const settled = this.#connDecided ?? tx.decided;
    if (settled) return [actionReply(settled)];
    const conn = this.#conn;
    if (!conn) return [CONTINUE];
    return settle(
      () => conn.endOfMessage(this.#macros),
      (result) => endOfMessageReplies(result, (this.#negotiation ?? FALLBACK).actions),
      (error) => this.#failed("end of message", tx, error, true),
    );
  }

  #abort(): void {
    const tx = this.#tx;
    this.#tx = undefined;
    this.#macros.endTransaction();
    if (!tx || !this.#conn?.abort) return;
    try {
      this.#conn.abort();
    } catch (error) {
      this.#log.error(`${this.#prefix}Filter failed at abort: ${errorDescription(error)}`);
    }
  }

  // Ends the filter's connection: aborts an open transaction, closes, forgets per-connection
  // state. Negotiation is kept (QUIT_NC); macros are cleared unless asked to keep the CONNECT ones.
  #endConnection(clearConnectMacros = true): void {
    if (this.#tx) this.#abort();
    const conn = this.#conn;
    this.#conn = undefined;
    this.#connDecided = undefined;
    if (clearConnectMacros) this.#macros.clear();
    if (this.#state === "open") this.#state = "connect";
    if (!conn?.close) return;
    try {
      conn.close();
    } catch (error) {
      this.#log.error(`${this.#prefix}Filter failed at close: ${errorDescription(error)}`);
    }
  }
}
