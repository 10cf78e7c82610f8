/**
 * The MTA side of the milter protocol, for tests, the benchmark and a self-test: connects to a
 * filter, negotiates with a configurable offer (Postfix's `milter_protocol = 6` by default, or an
 * older version), and sends messages the way Postfix's `milter8.c` does: the MACRO command
 * before each event, one HEADER per field (one leading space eaten unless `SMFIP_HDR_LEADSPC` was
 * agreed), EOH, body chunks, end of body, then modifications read until the final reply. Events
 * the filter turned off are not sent and replies it declined are not waited for. Every read has
 * a timeout.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MilterClient } from "./client.ts";
 * import { serve } from "./server.ts";
 * import { SMFIF_ADDHDRS } from "./constants.ts";
 * const quiet = { debug() {}, info() {}, warn() {}, error() {} };
 * const server = await serve({
 *   socket: { kind: "inet", host: "127.0.0.1", port: 0 },
 *   logger: quiet,
 *   filter: {
 *     needs: { actions: SMFIF_ADDHDRS, events: [] },
 *     connect: () => ({
 *       endOfMessage: () => ({
 *         modifications: [{ type: "addheader", name: "X-Test", value: "yes" }],
 *         action: "accept",
 *       }),
 *     }),
 *   },
 * });
 * const client = await MilterClient.connect(server.address);
 * const result = await client.sendMessage({ headers: [["Subject", " Hi"]], body: "Hi\r\n" });
 * assert.equal(result.modifications[0].type, "addheader");
 * await client.quit();
 * await server.close();
 * ```
 *
 * @module
 */

import { concat, utf8 } from "../bytes.ts";
import { type AddressFamily, type Command, encodeCommand, type MacroPair } from "./command.ts";
import {
  MACRO_STAGE_OF_COMMAND,
  MILTER_CHUNK_SIZE,
  SMFI_CURR_ACTS,
  SMFI_CURR_PROT,
  SMFI_PROT_VERSION,
  SMFIC_BODY,
  SMFIC_BODYEOB,
  SMFIC_CONNECT,
  SMFIC_DATA,
  SMFIC_EOH,
  SMFIC_HEADER,
  SMFIC_HELO,
  SMFIC_MAIL,
  SMFIC_RCPT,
  SMFIP_HDR_LEADSPC,
  SMFIP_NOBODY,
  SMFIP_NOCONNECT,
  SMFIP_NODATA,
  SMFIP_NOEOH,
  SMFIP_NOHDRS,
  SMFIP_NOHELO,
  SMFIP_NOMAIL,
  SMFIP_NORCPT,
  SMFIP_NR_BODY,
  SMFIP_NR_CONN,
  SMFIP_NR_DATA,
  SMFIP_NR_EOH,
  SMFIP_NR_HDR,
  SMFIP_NR_HELO,
  SMFIP_NR_MAIL,
  SMFIP_NR_RCPT,
} from "./constants.ts";
import { FrameDecoder } from "./frame.ts";
import { MilterProtocolError } from "./protocol_error.ts";
import { decodeReply, type HeaderValue, type Reply } from "./reply.ts";
import type { SocketSpec } from "./socket_spec.ts";

/** How long the client waits for each reply: 10 s, miltertest's default read timeout. */
export const CLIENT_TIMEOUT_MS_DEFAULT = 10_000;

/** Options of {@link MilterClient.connect}: the offer to make and the limits to keep. */
export interface MilterClientOptions {
  /** Protocol version offered; default 6. */
  readonly version?: number;
  /** `SMFIF_*` actions offered; default all of version 6 (0x1FF), as Postfix offers. */
  readonly actions?: number;
  /** `SMFIP_*` flags offered; default all of version 6 (0x1FFFFF), as Postfix offers. */
  readonly protocol?: number;
  /** Longest wait for each reply, write and connect; default {@link CLIENT_TIMEOUT_MS_DEFAULT}. */
  readonly timeoutMs?: number;
  /** Largest reply frame accepted; default 1 MiB. */
  readonly maxFrameBytes?: number;
  /**
   * Commands that need no reply are kept until this many bytes are waiting (or a reply is
   * awaited), then written together. Default 65535, a body frame. Postfix's buffered stream
   * writes at 4096 bytes (VSTREAM_BUFSIZE); the benchmark uses that.
   */
  readonly writeBufferBytes?: number;
  /**
   * Write out what is waiting before the message content (the first HEADER), as Postfix does:
   * its smtpd flushes the milter stream when it hands the connection to its cleanup server after
   * DATA, and cleanup writes the content later. Default false.
   */
  readonly flushBeforeContent?: boolean;
}

/** The SMTP client described by the CONNECT command. */
export interface ClientConnectInfo {
  /** Host name; default "localhost". */
  readonly hostname?: string;
  /** IP address or socket path; default "127.0.0.1". */
  readonly address?: string;
  /** Port; default 0. */
  readonly port?: number;
  /** Address family; default "inet". */
  readonly family?: AddressFamily;
}

/** Macros by name, as the MTA spells them (`i`, `{auth_type}`). */
export type MacroValues = Readonly<Record<string, string>>;

/** A message to send, with its envelope and macros. */
export interface ClientMessage {
  /** The SMTP client, sent in CONNECT before the first message of a connection. */
  readonly connect?: ClientConnectInfo;
  /** The HELO name, sent before the first message of a connection when given. */
  readonly helo?: string;
  /** Macros per stage, each sent in a MACRO command just before its event. */
  readonly macros?: {
    readonly connect?: MacroValues;
    readonly helo?: MacroValues;
    readonly mail?: MacroValues;
    readonly rcpt?: MacroValues;
    readonly data?: MacroValues;
    readonly eoh?: MacroValues;
    readonly eom?: MacroValues;
  };
  /** MAIL FROM arguments (address first); a string is the address alone. Default `<>`. */
  readonly from?: string | readonly string[];
  /** RCPT TO arguments, one entry per recipient. Default one, `<postmaster@localhost>`. */
  readonly rcpts?: readonly (string | readonly string[])[];
  /** Header fields: name and the raw value after the colon, leading space included. */
  readonly headers: readonly (readonly [string, HeaderValue])[];
  /** The body, CRLF line ends; a string is encoded as UTF-8. */
  readonly body?: Uint8Array | string;
  /** Body bytes per BODY command, 1 to 65535; default 65535 as Postfix sends. */
  readonly bodyChunkBytes?: number;
}

/** One reply received, with the command it answered. */
export interface ReplyRecord {
  /** The command's type. */
  readonly command: Command["type"];
  /** The reply. */
  readonly reply: Reply;
}

/** What the filter did with a message. */
export interface MessageResult {
  /** Replies at end of message before the final one: header changes, quarantine. */
  readonly modifications: readonly Reply[];
  /** The decision: the end-of-message reply, or an earlier final one. */
  readonly final: Reply;
  /** Every reply received, in order. */
  readonly replies: readonly ReplyRecord[];
}

/** No reply came (or a write did not finish) within the client's timeout; the connection has been closed. */
export class MilterTimeoutError extends Error {
  /** Makes an error for a wait of `ms` milliseconds. */
  constructor(ms: number, what: string, options?: ErrorOptions) {
    super(
      `No ${what} ${what === "write" ? "completed" : "from the milter"} within ${ms} ms`,
      options,
    );
    this.name = "MilterTimeoutError";
  }
}

const FINAL = new Set<Reply["type"]>([
  "accept",
  "continue",
  "reject",
  "tempfail",
  "discard",
  "replycode",
]);

function macroKey(name: string): string {
  return name.startsWith("{") && name.endsWith("}") ? name.slice(1, -1) : name;
}

function args(value: string | readonly string[]): readonly string[] {
  return typeof value === "string" ? [value] : value;
}

/**
 * A connection to a milter, playing the MTA. Create with {@link MilterClient.connect}; send
 * messages with {@link MilterClient.sendMessage}, calling {@link MilterClient.abort} between
 * them as Postfix does, and end with {@link MilterClient.quit}.
 */
export class MilterClient {
  readonly #conn: Deno.Conn;
  readonly #decoder: FrameDecoder;
  readonly #timeoutMs: number;
  readonly #offer: { version: number; actions: number; protocol: number };
  #negotiated?: Extract<Reply, { type: "optneg" }>;
  #connectSent = false;
  #closed = false;
  // Commands not yet written: like Postfix's buffered stream, events that need no reply go out
  // together with the next one that does, in one write.
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  readonly #writeBufferBytes: number;
  readonly #flushBeforeContent: boolean;
  readonly #buffer = new Uint8Array(65536);

  private constructor(conn: Deno.Conn, options: MilterClientOptions) {
    this.#conn = conn;
    this.#decoder = new FrameDecoder({ maxFrameBytes: options.maxFrameBytes });
    this.#timeoutMs = options.timeoutMs ?? CLIENT_TIMEOUT_MS_DEFAULT;
    this.#writeBufferBytes = options.writeBufferBytes ?? MILTER_CHUNK_SIZE;
    if (!Number.isSafeInteger(this.#writeBufferBytes) || this.#writeBufferBytes < 1) {
      throw new RangeError(
        `Invalid "writeBufferBytes" ${this.#writeBufferBytes}: expected a positive integer`,
      );
    }
    this.#flushBeforeContent = options.flushBeforeContent ?? false;
    this.#offer = {
      version: options.version ?? SMFI_PROT_VERSION,
      actions: options.actions ?? SMFI_CURR_ACTS,
      protocol: options.protocol ?? SMFI_CURR_PROT,
    };
  }

  /**
   * Connects to the milter at `spec` and negotiates. Rejects when the connection fails, the
   * filter closes it (negotiation refused), or its answer is not an OPTNEG reply.
   */
  static async connect(spec: SocketSpec, options: MilterClientOptions = {}): Promise<MilterClient> {
    const timeoutMs = options.timeoutMs ?? CLIENT_TIMEOUT_MS_DEFAULT;
    const connecting = spec.kind === "inet"
      ? Deno.connect({ transport: "tcp", hostname: spec.host, port: spec.port })
      : Deno.connect({ transport: "unix", path: spec.path });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const conn = await Promise.race([
      connecting,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new MilterTimeoutError(timeoutMs, "connection")),
          timeoutMs,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    if (spec.kind === "inet") (conn as Deno.TcpConn).setNoDelay(true);
    return await MilterClient.open(conn, options);
  }

  /**
   * Negotiates over a connection the caller opened, for socket options `connect` does not set
   * (the benchmark leaves Nagle's algorithm on, as Postfix does, and watches each read). The
   * client owns `conn` from then on and closes it on failure.
   */
  static async open(conn: Deno.Conn, options: MilterClientOptions = {}): Promise<MilterClient> {
    const client = new MilterClient(conn, options);
    try {
      await client.send({ type: "optneg", ...client.#offer });
      const reply = await client.readReply("OPTNEG reply");
      if (reply.type !== "optneg") {
        throw new MilterProtocolError(`Expected an OPTNEG reply, got ${reply.type}`);
      }
      client.#negotiated = reply;
      return client;
    } catch (error) {
      client.close();
      throw error;
    }
  }

  /** The filter's OPTNEG reply: version, actions, protocol flags and symbol lists. */
  get negotiated(): Extract<Reply, { type: "optneg" }> {
    if (!this.#negotiated) throw new Error("The milter client has not negotiated");
    return this.#negotiated;
  }

  /** Sends one command, as is, with any buffered before it. */
  async send(command: Command): Promise<void> {
    this.#queue(command);
    await this.#flush();
  }

  #queue(command: Command): void {
    const bytes = encodeCommand(command);
    this.#pending.push(bytes);
    this.#pendingBytes += bytes.length;
  }

  async #flush(): Promise<void> {
    if (this.#pending.length === 0) return;
    const bytes = concat(this.#pending);
    this.#pending = [];
    this.#pendingBytes = 0;
    // A filter that stops reading would block the write once the socket buffers fill.
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.close();
    }, this.#timeoutMs);
    try {
      let offset = 0;
      while (offset < bytes.length) offset += await this.#conn.write(bytes.subarray(offset));
    } catch (error) {
      if (timedOut) throw new MilterTimeoutError(this.#timeoutMs, "write", { cause: error });
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Reads the next reply. Rejects with {@link MilterTimeoutError} after the timeout (closing the
   * connection), or with an error when the filter closed the connection.
   */
  async readReply(what = "reply"): Promise<Reply> {
    await this.#flush();
    for (;;) {
      const frame = this.#decoder.next();
      if (frame) return decodeReply(frame);
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        this.close();
      }, this.#timeoutMs);
      let n: number | null;
      try {
        n = await this.#conn.read(this.#buffer);
      } catch (error) {
        if (timedOut) throw new MilterTimeoutError(this.#timeoutMs, what, { cause: error });
        throw error;
      } finally {
        clearTimeout(timer);
      }
      if (n === null) {
        throw new Deno.errors.ConnectionReset(`The milter closed the connection before a ${what}`);
      }
      this.#decoder.push(this.#buffer.subarray(0, n));
    }
  }

  /** Resolves to true when the filter closed the connection, false if it is still open. */
  async closedByPeer(): Promise<boolean> {
    try {
      const n = await this.#conn.read(this.#buffer);
      if (n === null) return true;
      this.#decoder.push(this.#buffer.subarray(0, n));
      return false;
    } catch {
      return true;
    }
  }

  #protocol(): number {
    return this.negotiated.protocol;
  }

  // Whether an event is sent: not turned off by the filter, and defined by both versions.
  #sends(noFlag: number, minVersion = 2): boolean {
    const version = Math.min(this.#offer.version, this.negotiated.version);
    return version >= minVersion && (this.#protocol() & noFlag) === 0;
  }

  #macros(forCommand: number, values: MacroValues | undefined): void {
    if (!values) return;
    let pairs: MacroPair[] = Object.entries(values);
    const lists = this.negotiated.symbols;
    if (lists && lists.length > 0) {
      // As Postfix: once the filter sends symbol lists, only listed macros go out.
      const stage = MACRO_STAGE_OF_COMMAND.get(forCommand);
      const list = lists.find((l) => l.stage === stage);
      const wanted = new Set((list?.macros ?? []).map(macroKey));
      pairs = pairs.filter(([name]) => wanted.has(macroKey(name)));
      if (pairs.length === 0) return;
    }
    this.#queue({ type: "macro", forCommand, macros: pairs });
  }

  // Sends an event and, unless the filter declined to reply, reads and records the reply.
  async #event(
    command: Command,
    noReplyFlag: number,
    replies: ReplyRecord[],
  ): Promise<Reply | undefined> {
    this.#queue(command);
    if (this.#protocol() & noReplyFlag) {
      // Unanswered events pile up; write them out once there is a frame's worth.
      if (this.#pendingBytes >= this.#writeBufferBytes) await this.#flush();
      return undefined;
    }
    for (;;) {
      const reply = await this.readReply(`reply to ${command.type}`);
      replies.push({ command: command.type, reply });
      if (reply.type !== "progress") return reply;
    }
  }

  /**
   * Sends one message and resolves to what the filter did. CONNECT (and HELO when given) go out
   * before the first message of a connection. An early final reply (reject at MAIL, accept at a
   * header...) ends the message there; a refused recipient does not, unless all are refused.
   */
  async sendMessage(message: ClientMessage): Promise<MessageResult> {
    const replies: ReplyRecord[] = [];
    const done = (final: Reply): MessageResult => ({ modifications: [], final, replies });
    const early = (reply: Reply | undefined) =>
      reply !== undefined && reply.type !== "continue" ? reply : undefined;
    const m = message.macros ?? {};

    if (!this.#connectSent) {
      this.#connectSent = true;
      const c = message.connect ?? {};
      this.#macros(SMFIC_CONNECT, m.connect);
      if (this.#sends(SMFIP_NOCONNECT)) {
        const command: Command = {
          type: "connect",
          hostname: c.hostname ?? "localhost",
          family: c.family ?? "inet",
          port: c.port ?? 0,
          address: c.address ?? "127.0.0.1",
        };
        const stop = early(await this.#event(command, SMFIP_NR_CONN, replies));
        if (stop) return done(stop);
      }
      if (message.helo !== undefined) {
        this.#macros(SMFIC_HELO, m.helo);
        if (this.#sends(SMFIP_NOHELO)) {
          const command: Command = { type: "helo", name: message.helo };
          const stop = early(await this.#event(command, SMFIP_NR_HELO, replies));
          if (stop) return done(stop);
        }
      }
    }

    this.#macros(SMFIC_MAIL, m.mail);
    if (this.#sends(SMFIP_NOMAIL)) {
      const command: Command = { type: "mail", args: args(message.from ?? "<>") };
      const stop = early(await this.#event(command, SMFIP_NR_MAIL, replies));
      if (stop) return done(stop);
    }

    const rcpts = message.rcpts ?? ["<postmaster@localhost>"];
    let refused: Reply | undefined;
    let accepted = 0;
    for (const rcpt of rcpts) {
      this.#macros(SMFIC_RCPT, m.rcpt);
      if (!this.#sends(SMFIP_NORCPT)) {
        accepted++;
        continue;
      }
      const reply = await this.#event({ type: "rcpt", args: args(rcpt) }, SMFIP_NR_RCPT, replies);
      const stop = early(reply);
      if (stop === undefined) accepted++;
      else if (stop.type === "accept" || stop.type === "discard") return done(stop);
      else refused = stop;
    }
    if (accepted === 0 && refused) return done(refused);

    this.#macros(SMFIC_DATA, m.data);
    if (this.#sends(SMFIP_NODATA, 4)) {
      const stop = early(await this.#event({ type: "data" }, SMFIP_NR_DATA, replies));
      if (stop) return done(stop);
    }

    if (this.#flushBeforeContent) await this.#flush();
    const leadingSpace = (this.#protocol() & SMFIP_HDR_LEADSPC) !== 0;
    for (const [name, raw] of message.headers) {
      this.#macros(SMFIC_HEADER, m.eoh);
      if (!this.#sends(SMFIP_NOHDRS)) continue;
      const bytes = typeof raw === "string" ? utf8(raw) : raw;
      const value = leadingSpace ? bytes : eatOneSpace(bytes);
      const reply = await this.#event({ type: "header", name, value }, SMFIP_NR_HDR, replies);
      const stop = early(reply);
      if (stop) return done(stop);
    }

    this.#macros(SMFIC_EOH, m.eoh);
    if (this.#sends(SMFIP_NOEOH)) {
      const stop = early(await this.#event({ type: "eoh" }, SMFIP_NR_EOH, replies));
      if (stop) return done(stop);
    }

    const body = typeof message.body === "string"
      ? utf8(message.body)
      : message.body ?? new Uint8Array(0);
    const chunkBytes = message.bodyChunkBytes ?? MILTER_CHUNK_SIZE;
    if (!Number.isInteger(chunkBytes) || chunkBytes < 1 || chunkBytes > MILTER_CHUNK_SIZE) {
      throw new RangeError(
        `Invalid "bodyChunkBytes" ${chunkBytes}: expected 1 to ${MILTER_CHUNK_SIZE}`,
      );
    }
    if (this.#sends(SMFIP_NOBODY)) {
      for (let offset = 0; offset < body.length; offset += chunkBytes) {
        this.#macros(SMFIC_BODY, m.eom);
        const chunk = body.subarray(offset, offset + chunkBytes);
        const reply = await this.#event({ type: "body", chunk }, SMFIP_NR_BODY, replies);
        if (reply?.type === "skip") break;
        const stop = early(reply);
        if (stop) return done(stop);
      }
    }

    this.#macros(SMFIC_BODYEOB, m.eom);
    this.#queue({ type: "bodyeob" });
    const modifications: Reply[] = [];
    for (;;) {
      const reply = await this.readReply("reply to end of message");
      replies.push({ command: "bodyeob", reply });
      if (reply.type === "progress") continue;
      if (FINAL.has(reply.type)) return { modifications, final: reply, replies };
      modifications.push(reply);
    }
  }

  /**
   * Sends ABORT: the transaction ends, the connection stays for the next message. With
   * `deferred`, ABORT is only queued and goes out in the same write as the next command, as
   * Postfix's buffered stream sends it.
   */
  async abort(options: { readonly deferred?: boolean } = {}): Promise<void> {
    if (options.deferred) this.#queue({ type: "abort" });
    else await this.send({ type: "abort" });
  }

  /** Sends QUIT_NC: the next message starts a new SMTP connection on this milter connection. */
  async quitNewConnection(): Promise<void> {
    await this.send({ type: "quit_nc" });
    this.#connectSent = false;
  }

  /** Sends QUIT and closes the connection. */
  async quit(): Promise<void> {
    try {
      await this.send({ type: "quit" });
    } finally {
      this.close();
    }
  }

  /** Closes the connection without QUIT. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }
}

// Postfix (and Sendmail) eat one space, not a tab, after the colon unless told otherwise.
function eatOneSpace(value: Uint8Array): Uint8Array {
  return value[0] === 0x20 ? value.subarray(1) : value;
}
