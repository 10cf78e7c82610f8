/**
 * The MTA side of the milter protocol in memory: a {@link MilterSession} of the filter under
 * test, fed commands the way {@link MilterClient.sendMessage} sends them over a socket (MACRO
 * before each event, one HEADER per field with one leading space eaten unless SMFIP_HDR_LEADSPC
 * was agreed, EOH, BODY chunks, end of body), stopping at an early final reply as an MTA does,
 * and recording every reply. Filter logic is tested with it; the socket is tested elsewhere.
 *
 * @module
 */
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import type { ClientMessage, MessageResult, ReplyRecord } from "../../lib/milter/client.ts";
import type { Command } from "../../lib/milter/command.ts";
import type { Reply } from "../../lib/milter/reply.ts";
import {
  SMFI_CURR_ACTS,
  SMFI_CURR_PROT,
  SMFIC_BODY,
  SMFIC_BODYEOB,
  SMFIC_CONNECT,
  SMFIC_DATA,
  SMFIC_EOH,
  SMFIC_HEADER,
  SMFIC_MAIL,
  SMFIC_RCPT,
  SMFIP_HDR_LEADSPC,
  SMFIP_NOBODY,
  SMFIP_NOCONNECT,
  SMFIP_NODATA,
  SMFIP_NOEOH,
  SMFIP_NOHDRS,
  SMFIP_NOMAIL,
  SMFIP_NORCPT,
} from "../../lib/milter/constants.ts";
import type { Filter } from "../../lib/milter/filter.ts";
import { MilterSession } from "../../lib/milter/session.ts";
import { MemoryLogger } from "./milter_logger.ts";

/** How the MTA negotiates and hands commands over. */
export interface MemoryMtaOptions {
  /** The SMFIP_* flags offered (default: all of protocol 6, as Postfix). */
  readonly protocol?: number;
  /**
   * Hands each command to the session and resolves to its replies; by default
   * `session.receive(command)`. A test can lend bytes here (see dkim_filter_test.ts).
   */
  readonly deliver?: (session: MilterSession, command: Command) => Promise<Reply[]>;
}

/** A message to send: as the socket client's, with the body in given chunks if wanted. */
export interface MemoryMessage extends Omit<ClientMessage, "body" | "bodyChunkBytes"> {
  /** The body, CRLF line ends: one BODY command, or one per chunk. */
  readonly body?: string | readonly string[];
}

/**
 * A message from the client at `address` as Postfix sends it to a filter under test: `j` at
 * connect, the queue id `i` from MAIL on, one recipient.
 */
export function testMessage(
  address: string,
  headers: MemoryMessage["headers"],
  body: MemoryMessage["body"],
  from = "<a@example.com>",
): MemoryMessage {
  return {
    connect: { hostname: "client", address, port: 25 },
    macros: { connect: { j: "mx.example.net" }, mail: { i: "4AB12C" } },
    from,
    rcpts: ["<bob@example.org>"],
    headers,
    body,
  };
}

const FINAL = new Set<Reply["type"]>(["accept", "reject", "tempfail", "discard", "replycode"]);

/** One MTA connection to the filter, in memory. */
export class MemoryMta {
  readonly #session: MilterSession;
  readonly #deliver: (session: MilterSession, command: Command) => Promise<Reply[]>;
  readonly #protocol: number;
  #connected = false;

  /** Opens a connection to `filter`; negotiation happens with the first message. */
  constructor(filter: Filter, options: MemoryMtaOptions = {}) {
    this.#session = new MilterSession(filter, { logger: new MemoryLogger() });
    this.#deliver = options.deliver ?? ((s, c) => Promise.resolve(s.receive(c)));
    this.#protocol = options.protocol ?? SMFI_CURR_PROT;
  }

  /** Sends one message and resolves to what the filter did. */
  async sendMessage(message: MemoryMessage): Promise<MessageResult> {
    const replies: ReplyRecord[] = [];
    const done = (final: Reply): MessageResult => ({ modifications: [], final, replies });
    const m = message.macros ?? {};
    if (!this.#connected) {
      this.#connected = true;
      await this.#deliver(this.#session, {
        type: "optneg",
        version: 6,
        actions: SMFI_CURR_ACTS,
        protocol: this.#protocol,
      });
      const c = message.connect ?? {};
      const stop = await this.#event(SMFIC_CONNECT, m.connect, SMFIP_NOCONNECT, {
        type: "connect",
        hostname: c.hostname ?? "localhost",
        family: c.family ?? "inet",
        port: c.port ?? 0,
        address: c.address ?? "127.0.0.1",
      }, replies);
      if (stop) return done(stop);
    }
    const from = message.from ?? "<>";
    const mail: Command = { type: "mail", args: typeof from === "string" ? [from] : [...from] };
    let stop = await this.#event(SMFIC_MAIL, m.mail, SMFIP_NOMAIL, mail, replies);
    if (stop) return done(stop);
    for (const rcpt of message.rcpts ?? ["<postmaster@localhost>"]) {
      const args = typeof rcpt === "string" ? [rcpt] : [...rcpt];
      stop = await this.#event(SMFIC_RCPT, m.rcpt, SMFIP_NORCPT, { type: "rcpt", args }, replies);
      if (stop) return done(stop);
    }
    stop = await this.#event(SMFIC_DATA, m.data, SMFIP_NODATA, { type: "data" }, replies);
    if (stop) return done(stop);
    const leadingSpace = (this.#agreed() & SMFIP_HDR_LEADSPC) !== 0;
    for (const [name, raw] of message.headers) {
      // Postfix hands header lines over with LF line ends.
      const text = (typeof raw === "string" ? raw : latin1(raw))
        .replaceAll("\r\n", "\n");
      const value = fromLatin1(leadingSpace || !text.startsWith(" ") ? text : text.slice(1));
      const header: Command = { type: "header", name, value };
      stop = await this.#event(SMFIC_HEADER, m.eoh, SMFIP_NOHDRS, header, replies);
      if (stop) return done(stop);
    }
    stop = await this.#event(SMFIC_EOH, m.eoh, SMFIP_NOEOH, { type: "eoh" }, replies);
    if (stop) return done(stop);
    const chunks = typeof message.body === "string" ? [message.body] : message.body ?? [];
    for (const chunk of chunks) {
      const body: Command = { type: "body", chunk: fromLatin1(chunk) };
      stop = await this.#event(SMFIC_BODY, m.eom, SMFIP_NOBODY, body, replies);
      if (stop?.type === "skip") break;
      if (stop) return done(stop);
    }
    await this.#macros(SMFIC_BODYEOB, m.eom);
    const modifications: Reply[] = [];
    for (const reply of await this.#deliver(this.#session, { type: "bodyeob" })) {
      replies.push({ command: "bodyeob", reply });
      if (FINAL.has(reply.type)) return { modifications, final: reply, replies };
      if (reply.type !== "progress") modifications.push(reply);
    }
    throw new Error("The filter gave no final reply to end of message");
  }

  /** Ends the connection (QUIT). */
  async close(): Promise<void> {
    await this.#session.close();
  }

  #agreed(): number {
    return this.#session.negotiation?.protocol ?? 0;
  }

  async #macros(forCommand: number, values: Readonly<Record<string, string>> | undefined) {
    if (!values) return;
    await this.#deliver(this.#session, {
      type: "macro",
      forCommand,
      macros: Object.entries(values),
    });
  }

  // Sends an event the filter did not turn off, with its macros first; resolves to the reply
  // that ends the message early (anything but continue), if any.
  async #event(
    forCommand: number,
    macros: Readonly<Record<string, string>> | undefined,
    noFlag: number,
    command: Command,
    replies: ReplyRecord[],
  ): Promise<Reply | undefined> {
    await this.#macros(forCommand, macros);
    if (this.#agreed() & noFlag) return undefined;
    let last: Reply | undefined;
    for (const reply of await this.#deliver(this.#session, command)) {
      replies.push({ command: command.type, reply });
      if (reply.type !== "progress") last = reply;
    }
    return last?.type === "continue" ? undefined : last;
  }
}
