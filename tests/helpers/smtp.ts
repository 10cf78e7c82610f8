/**
 * SMTP for end-to-end tests, both sides: {@link sendSmtp}, a client that submits one message to an
 * MTA (RFC 5321 §3.3: EHLO, MAIL, RCPT, DATA with dot-stuffing, QUIT) and returns the server's
 * final reply, so a test can see a milter's reject or tempfail; and {@link startSmtpSink}, a
 * server on 127.0.0.1 that accepts every message and keeps its bytes exactly as they came (CRLF
 * line ends, dot-unstuffed, RFC 5321 §4.5.2) with the envelope, so a test can read what an MTA
 * delivered. Both bound every line, reply, message and wait; neither follows DNS.
 *
 * The client uses `node:net`, whose `localAddress` lets a test choose the loopback address it
 * connects from (Deno.connect cannot bind one). Tests use only 127.0.0.1 and ::1: a client on
 * ::1 stands for an external host (see PostfixInstance.smtpPort).
 *
 * @module
 */

import net from "node:net";
import { concat, CRLF, fromLatin1, indexOf, latin1 } from "../../lib/bytes.ts";

/** Longest wait for one reply from the server, or for the connection: a test never hangs. */
export const SMTP_TIMEOUT_MS_DEFAULT = 30_000;

/**
 * Longest reply line accepted, CRLF excluded: 4096 bytes, eight times RFC 5321 §4.5.3.1.5's 512,
 * so a verbose server still fits and a garbage stream is cut off.
 */
export const MAX_REPLY_LINE_BYTES = 4096;

/** Most lines in one multi-line reply: a bound on memory; EHLO replies have a dozen. */
export const MAX_REPLY_LINES = 100;

/**
 * Longest command line the sink accepts, CRLF excluded: 4096 bytes, eight times RFC 5321
 * §4.5.3.1.4's 512, room for long ESMTP parameters.
 */
export const MAX_COMMAND_LINE_BYTES = 4096;

/**
 * Largest message the sink keeps: 64 MiB, above Postfix's default `message_size_limit` of
 * 10 240 000 bytes, so anything Postfix sends fits; a larger one gets 552 and is dropped.
 */
export const MAX_SINK_MESSAGE_BYTES = 64 * 1024 * 1024;

/** Most messages the sink keeps: a bound on memory, far beyond what one test sends. */
export const MAX_SINK_MESSAGES = 10_000;

/** Most connections the sink serves at once: Postfix's smtp client opens a few per destination. */
export const MAX_SINK_CONNECTIONS = 64;

/**
 * Longest the sink waits for the next bytes of a connection before closing it: 60 s, longer
 * than Postfix's `smtp_connection_cache_time_limit` (2 s) and any pause inside one delivery.
 */
export const SINK_IDLE_TIMEOUT_MS = 60_000;

/** One SMTP reply (RFC 5321 §4.2): the code and the text of each line, code stripped. */
export interface SmtpReply {
  /** The three-digit reply code, such as 250 or 550. */
  readonly code: number;
  /** The text after `NNN-` or `NNN ` on each line, in order. */
  readonly lines: readonly string[];
}

/** The step of a submission a reply answers. */
export type SmtpStage = "greeting" | "ehlo" | "auth" | "mail" | "rcpt" | "data" | "message";

/** What {@link sendSmtp} saw. */
export interface SmtpSendResult {
  /**
   * The final reply: the one to the end of the message when everything before was accepted,
   * otherwise the first refusal (greeting, EHLO, AUTH, MAIL, a RCPT, or DATA).
   */
  readonly reply: SmtpReply;
  /** Which step `reply` answers. */
  readonly stage: SmtpStage;
  /** True when the server took the message (stage "message", code 2xx). */
  readonly accepted: boolean;
  /** The queue id from Postfix's `250 2.0.0 Ok: queued as ID`, when there is one. */
  readonly queueId?: string;
  /** The EHLO reply's keyword lines (`8BITMIME`, `PIPELINING`, ...), upper-cased. */
  readonly extensions: readonly string[];
}

/** Options of {@link sendSmtp}. */
export interface SmtpSendOptions {
  /** The server's address; default 127.0.0.1. */
  readonly host?: string;
  /** The server's port. */
  readonly port: number;
  /** The envelope sender, without angle brackets ("" for the null sender). */
  readonly from: string;
  /** The envelope recipients, without angle brackets. */
  readonly to: string | readonly string[];
  /** The message, headers and body, with CRLF line ends; it must end with CRLF. */
  readonly data: Uint8Array;
  /** The local address to connect from, such as ::1; default: the system's choice. */
  readonly sourceAddress?: string;
  /** The EHLO name; default "client.test". */
  readonly helo?: string;
  /** Wait limit for the connection and for each reply; default {@link SMTP_TIMEOUT_MS_DEFAULT}. */
  readonly timeoutMs?: number;
  /** Log in after EHLO with AUTH PLAIN (RFC 4954, RFC 4616); default: no AUTH. */
  readonly auth?: { readonly user: string; readonly password: string };
}

/**
 * The server broke the protocol: a malformed or oversized reply, or it closed too early.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SmtpProtocolError } from "./smtp.ts";
 * assert.equal(new SmtpProtocolError("bad").message, "SMTP protocol error: bad");
 * ```
 */
export class SmtpProtocolError extends Error {
  /** Makes an error explaining `detail`. */
  constructor(detail: string, options?: ErrorOptions) {
    super(`SMTP protocol error: ${detail}`, options);
    this.name = "SmtpProtocolError";
  }
}

/**
 * A wait timed out: the connection, a reply, or the sink's messages did not come in time.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SmtpTimeoutError } from "./smtp.ts";
 * assert.equal(new SmtpTimeoutError("SMTP reply", 5).message, "No SMTP reply within 5 ms");
 * ```
 */
export class SmtpTimeoutError extends Error {
  /** Makes an error saying what was awaited, with `detail` (diagnostics) after it. */
  constructor(what: string, ms: number, detail = "", options?: ErrorOptions) {
    super(`No ${what} within ${ms} ms${detail ? `\n${detail}` : ""}`, options);
    this.name = "SmtpTimeoutError";
  }
}

const DOT = 0x2e;

/**
 * Dot-stuffs message data for the DATA phase (RFC 5321 §4.5.2): a period is doubled at the start
 * of every line. A line starts after every LF, bare or not, since some servers (Postfix among
 * them) end lines at a bare LF.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dotStuff } from "./smtp.ts";
 * const out = dotStuff(new TextEncoder().encode(".a\r\nb\r\n..c\r\n"));
 * assert.equal(new TextDecoder().decode(out), "..a\r\nb\r\n...c\r\n");
 * ```
 */
export function dotStuff(data: Uint8Array): Uint8Array {
  let dots = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] === DOT && (i === 0 || data[i - 1] === 0x0a)) dots++;
  }
  if (dots === 0) return data;
  const out = new Uint8Array(data.length + dots);
  let o = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] === DOT && (i === 0 || data[i - 1] === 0x0a)) out[o++] = DOT;
    out[o++] = data[i];
  }
  return out;
}

/**
 * Submits one message over SMTP (RFC 5321 §3.3) and returns the server's final answer; a refusal
 * at any step is a result, not an error. Adds `BODY=8BITMIME` (RFC 6152) when the data has 8-bit
 * bytes and the server offers it. Throws {@link SmtpTimeoutError} or {@link SmtpProtocolError}
 * when the server does not answer properly, and RangeError when `data` does not end with CRLF
 * (the bytes would not survive as given).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sendSmtp, startSmtpSink } from "./smtp.ts";
 * const sink = await startSmtpSink();
 * const data = new TextEncoder().encode("Subject: Hi\r\n\r\n.Hello\r\n");
 * const result = await sendSmtp({ port: sink.port, from: "a@example.com", to: "b@example.net", data });
 * assert.equal(result.accepted, true);
 * const [message] = await sink.waitForMessages(1, 5000);
 * assert.deepEqual(message.data, data);
 * assert.deepEqual(message.rcptTo, ["b@example.net"]);
 * await sink.close();
 * ```
 */
export async function sendSmtp(options: SmtpSendOptions): Promise<SmtpSendResult> {
  const data = options.data;
  if (data.length < 2 || data[data.length - 2] !== 0x0d || data[data.length - 1] !== 0x0a) {
    throw new RangeError("Invalid SMTP message data: it must end with CRLF");
  }
  const recipients = typeof options.to === "string" ? [options.to] : options.to;
  if (recipients.length === 0) throw new RangeError("Invalid SMTP recipients: none given");
  for (const address of [options.from, ...recipients]) {
    if (/[\r\n<>]/.test(address)) {
      throw new RangeError(`Invalid SMTP address "${address}": it contains CR, LF or brackets`);
    }
  }
  const timeoutMs = options.timeoutMs ?? SMTP_TIMEOUT_MS_DEFAULT;
  const client = await SmtpConnection.open(
    options.host ?? "127.0.0.1",
    options.port,
    options.sourceAddress,
    timeoutMs,
  );
  let extensions: string[] = [];
  const done = (stage: SmtpStage, reply: SmtpReply): SmtpSendResult => {
    const accepted = stage === "message" && reply.code >= 200 && reply.code < 300;
    const queueId = accepted
      ? /queued as ([0-9A-Za-z]+)/.exec(reply.lines.join(" "))?.[1]
      : undefined;
    return { reply, stage, accepted, extensions, ...(queueId ? { queueId } : {}) };
  };
  try {
    const greeting = await client.reply();
    if (greeting.code !== 220) return done("greeting", greeting);
    const ehlo = await client.command(`EHLO ${options.helo ?? "client.test"}`);
    if (ehlo.code !== 250) return done("ehlo", ehlo);
    extensions = ehlo.lines.slice(1).map((l) => l.toUpperCase());
    if (options.auth) {
      const { user, password } = options.auth;
      const plain = btoa(String.fromCharCode(...fromLatin1(`\0${user}\0${password}`)));
      const auth = await client.command(`AUTH PLAIN ${plain}`);
      if (auth.code !== 235) return done("auth", auth);
    }
    const eightBit = data.some((b) => b >= 0x80) &&
      extensions.some((e) => e === "8BITMIME" || e.startsWith("8BITMIME "));
    const mail = await client.command(
      `MAIL FROM:<${options.from}>${eightBit ? " BODY=8BITMIME" : ""}`,
    );
    if (mail.code !== 250) return done("mail", mail);
    for (const rcpt of recipients) {
      const reply = await client.command(`RCPT TO:<${rcpt}>`);
      if (reply.code !== 250 && reply.code !== 251) return done("rcpt", reply);
    }
    const start = await client.command("DATA");
    if (start.code !== 354) return done("data", start);
    await client.write(concat([dotStuff(data), fromLatin1(".\r\n")]));
    return done("message", await client.reply());
  } finally {
    await client.quit();
  }
}

// One client connection over node:net, with a bounded reply reader.
class SmtpConnection {
  readonly #socket: net.Socket;
  readonly #timeoutMs: number;
  #buffer: Uint8Array = new Uint8Array(0);
  #ended = false;
  #error?: Error;
  #wake?: () => void;
  readonly #closed: Promise<void>;

  private constructor(socket: net.Socket, timeoutMs: number) {
    this.#socket = socket;
    this.#timeoutMs = timeoutMs;
    this.#closed = new Promise((resolve) => socket.once("close", () => resolve()));
    socket.on("data", (chunk: Uint8Array) => {
      this.#buffer = concat([this.#buffer, new Uint8Array(chunk)]);
      this.#notify();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#notify();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#notify();
    });
    socket.on("error", (error: Error) => {
      this.#error ??= error;
      this.#notify();
    });
  }

  static async open(
    host: string,
    port: number,
    localAddress: string | undefined,
    timeoutMs: number,
  ): Promise<SmtpConnection> {
    const socket = net.connect({ host, port, ...(localAddress ? { localAddress } : {}) });
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        timer = setTimeout(
          () => reject(new SmtpTimeoutError(`connection to ${host}:${port}`, timeoutMs)),
          timeoutMs,
        );
        socket.once("connect", () => resolve());
        socket.once("error", reject);
      });
    } catch (error) {
      socket.destroy();
      throw error;
    } finally {
      clearTimeout(timer);
    }
    socket.setNoDelay(true);
    return new SmtpConnection(socket, timeoutMs);
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  // Reads one CRLF-terminated line, without the CRLF.
  async #line(deadline: number): Promise<string> {
    for (;;) {
      const end = indexOf(this.#buffer, CRLF);
      if (end >= 0) {
        if (end > MAX_REPLY_LINE_BYTES) {
          throw new SmtpProtocolError(`reply line longer than ${MAX_REPLY_LINE_BYTES} bytes`);
        }
        const line = latin1(this.#buffer.subarray(0, end));
        this.#buffer = this.#buffer.subarray(end + 2);
        return line;
      }
      if (this.#buffer.length > MAX_REPLY_LINE_BYTES) {
        throw new SmtpProtocolError(`reply line longer than ${MAX_REPLY_LINE_BYTES} bytes`);
      }
      if (this.#error) {
        throw new SmtpProtocolError("the connection failed", { cause: this.#error });
      }
      if (this.#ended) throw new SmtpProtocolError("the server closed the connection");
      const left = deadline - Date.now();
      if (left <= 0) throw new SmtpTimeoutError("SMTP reply", this.#timeoutMs);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  }

  async reply(): Promise<SmtpReply> {
    const deadline = Date.now() + this.#timeoutMs;
    const lines: string[] = [];
    let code = 0;
    for (;;) {
      const line = await this.#line(deadline);
      const m = /^([2-5][0-9][0-9])([ -])(.*)$/s.exec(line) ?? /^([2-5][0-9][0-9])()$/.exec(line);
      if (!m) throw new SmtpProtocolError(`malformed reply line "${line}"`);
      const lineCode = Number(m[1]);
      if (lines.length > 0 && lineCode !== code) {
        throw new SmtpProtocolError(`reply code changed within a reply: "${line}"`);
      }
      code = lineCode;
      lines.push(m[3] ?? "");
      if (m[2] !== "-") return { code, lines };
      if (lines.length >= MAX_REPLY_LINES) {
        throw new SmtpProtocolError(`reply longer than ${MAX_REPLY_LINES} lines`);
      }
    }
  }

  write(bytes: Uint8Array): Promise<void> {
    if (this.#error) {
      return Promise.reject(new SmtpProtocolError("the connection failed", { cause: this.#error }));
    }
    return new Promise((resolve, reject) => {
      this.#socket.write(bytes, (error?: Error | null) => {
        if (error) reject(new SmtpProtocolError("cannot write", { cause: error }));
        else resolve();
      });
    });
  }

  async command(line: string): Promise<SmtpReply> {
    await this.write(fromLatin1(`${line}\r\n`));
    return await this.reply();
  }

  // Says QUIT when the connection is still usable, then closes it and waits until it is closed.
  async quit(): Promise<void> {
    try {
      if (!this.#ended && !this.#error) {
        await this.write(fromLatin1("QUIT\r\n"));
        await this.reply().catch(() => undefined);
      }
    } catch {
      // The server is gone already; closing is all that is left.
    } finally {
      this.#socket.destroy();
      await this.#closed;
    }
  }
}

/** One message as the sink received it. */
export interface ReceivedMessage {
  /** The EHLO or HELO name the client gave. */
  readonly helo: string;
  /** The MAIL FROM address, without angle brackets. */
  readonly mailFrom: string;
  /** The ESMTP parameters after MAIL FROM, such as `BODY=8BITMIME`. */
  readonly mailParams: readonly string[];
  /** The RCPT TO addresses, without angle brackets. */
  readonly rcptTo: readonly string[];
  /** The message bytes as received: CRLF line ends, dot-unstuffed, without the final ".". */
  readonly data: Uint8Array;
}

/** A running SMTP sink. */
export interface SmtpSink {
  /** Its port on 127.0.0.1. */
  readonly port: number;
  /** The messages received so far, in order. */
  readonly messages: readonly ReceivedMessage[];
  /**
   * Resolves with the messages received so far once there are at least `count`; after
   * `timeoutMs` throws {@link SmtpTimeoutError}, with the text `describe` gives (diagnostics).
   */
  waitForMessages(
    count: number,
    timeoutMs: number,
    describe?: () => Promise<string>,
  ): Promise<ReceivedMessage[]>;
  /** Stops listening and closes every connection; calling it again returns the same promise. */
  close(): Promise<void>;
}

/** Options of {@link startSmtpSink}. */
export interface SmtpSinkOptions {
  /** The name in its greeting and EHLO reply; default "sink.test". */
  readonly hostname?: string;
  /** Largest message kept; default {@link MAX_SINK_MESSAGE_BYTES}. */
  readonly maxMessageBytes?: number;
}

/**
 * Starts an SMTP server on 127.0.0.1 and a port the system picks that accepts every message
 * (RFC 5321 §4.1: EHLO, HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT; it offers 8BITMIME and
 * SMTPUTF8 so an MTA sends 8-bit bodies as they are instead of converting them, and no
 * PIPELINING) and keeps what it receives in memory.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { startSmtpSink } from "./smtp.ts";
 * const sink = await startSmtpSink();
 * assert.ok(sink.port > 0);
 * await assert.rejects(sink.waitForMessages(1, 10), /No 1 message/);
 * await sink.close();
 * ```
 */
export function startSmtpSink(options: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const listener = Deno.listen({ transport: "tcp", hostname: "127.0.0.1", port: 0 });
  return Promise.resolve(new Sink(listener, options));
}

interface Waiter {
  readonly count: number;
  readonly resolve: (messages: ReceivedMessage[]) => void;
}

class Sink implements SmtpSink {
  readonly #listener: Deno.TcpListener;
  readonly #hostname: string;
  readonly #maxMessageBytes: number;
  readonly #messages: ReceivedMessage[] = [];
  readonly #waiters = new Set<Waiter>();
  readonly #conns = new Map<Deno.Conn, Promise<void>>();
  readonly #accepting: Promise<void>;
  #closing?: Promise<void>;
  #stopping = false;

  constructor(listener: Deno.TcpListener, options: SmtpSinkOptions) {
    this.#listener = listener;
    this.#hostname = options.hostname ?? "sink.test";
    this.#maxMessageBytes = options.maxMessageBytes ?? MAX_SINK_MESSAGE_BYTES;
    this.#accepting = this.#acceptLoop();
  }

  get port(): number {
    return this.#listener.addr.port;
  }

  get messages(): readonly ReceivedMessage[] {
    return this.#messages;
  }

  async waitForMessages(
    count: number,
    timeoutMs: number,
    describe?: () => Promise<string>,
  ): Promise<ReceivedMessage[]> {
    if (this.#messages.length >= count) return [...this.#messages];
    let waiter: Waiter | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arrived = new Promise<ReceivedMessage[]>((resolve) => {
      waiter = { count, resolve };
      this.#waiters.add(waiter);
    });
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    const outcome = await Promise.race([arrived, timedOut]);
    clearTimeout(timer);
    this.#waiters.delete(waiter!);
    if (outcome !== "timeout") return outcome;
    const have = `${this.#messages.length} received`;
    const detail = describe ? `${have}\n${await describe()}` : have;
    throw new SmtpTimeoutError(`${count} message(s) at the SMTP sink`, timeoutMs, detail);
  }

  #store(message: ReceivedMessage): void {
    if (this.#messages.length >= MAX_SINK_MESSAGES) return;
    this.#messages.push(message);
    for (const waiter of this.#waiters) {
      if (this.#messages.length >= waiter.count) {
        this.#waiters.delete(waiter);
        waiter.resolve([...this.#messages]);
      }
    }
  }

  async #acceptLoop(): Promise<void> {
    while (!this.#stopping) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch {
        // The listener was closed by close(); any other accept failure ends the sink too, and
        // a test waiting for messages then times out with diagnostics.
        return;
      }
      if (this.#stopping || this.#conns.size >= MAX_SINK_CONNECTIONS) {
        safeClose(conn);
        continue;
      }
      this.#conns.set(conn, this.#serve(conn));
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    const session = new SinkSession(this.#hostname, this.#maxMessageBytes, (m) => this.#store(m));
    const buffer = new Uint8Array(65536);
    try {
      await writeAll(conn, session.greeting());
      while (!session.closed) {
        const n = await readWithTimeout(conn, buffer, SINK_IDLE_TIMEOUT_MS);
        if (n === null) break;
        const out = session.push(buffer.subarray(0, n));
        if (out.length > 0) await writeAll(conn, out);
      }
    } catch {
      // The client went away, timed out, or close() closed the socket: nothing to keep.
    } finally {
      safeClose(conn);
      this.#conns.delete(conn);
    }
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#stopping = true;
      try {
        this.#listener.close();
      } catch {
        // Already closed.
      }
      await this.#accepting;
      for (const conn of this.#conns.keys()) safeClose(conn);
      await Promise.all(this.#conns.values());
    })();
    return this.#closing;
  }
}

// The sink's protocol state for one connection: bytes in, reply bytes out. Pure.
class SinkSession {
  readonly #hostname: string;
  readonly #maxMessageBytes: number;
  readonly #store: (message: ReceivedMessage) => void;
  #pending: Uint8Array = new Uint8Array(0);
  #helo = "";
  #from?: { address: string; params: string[] };
  #rcpts: string[] = [];
  #inData = false;
  #dataParts: Uint8Array[] = [];
  #dataBytes = 0;
  #tooBig = false;
  closed = false;

  constructor(hostname: string, maxMessageBytes: number, store: (m: ReceivedMessage) => void) {
    this.#hostname = hostname;
    this.#maxMessageBytes = maxMessageBytes;
    this.#store = store;
  }

  greeting(): Uint8Array {
    return fromLatin1(`220 ${this.#hostname} ESMTP test sink\r\n`);
  }

  push(chunk: Uint8Array): Uint8Array {
    this.#pending = this.#pending.length === 0 ? chunk.slice() : concat([this.#pending, chunk]);
    const out: string[] = [];
    let start = 0;
    while (!this.closed) {
      const end = indexOf(this.#pending, CRLF, start);
      if (end < 0) break;
      const line = this.#pending.subarray(start, end);
      start = end + 2;
      const reply = this.#inData ? this.#dataLine(line) : this.#command(line);
      if (reply) out.push(reply);
    }
    this.#pending = this.#pending.slice(start);
    if (!this.#inData && this.#pending.length > MAX_COMMAND_LINE_BYTES) {
      out.push("500 5.5.0 Line too long\r\n");
      this.closed = true;
    } else if (this.#inData && this.#pending.length > this.#maxMessageBytes) {
      // One endless line: drop what came, keep reading until the final dot.
      this.#tooBig = true;
      this.#pending = new Uint8Array(0);
    }
    return fromLatin1(out.join(""));
  }

  #dataLine(line: Uint8Array): string | undefined {
    if (line.length === 1 && line[0] === DOT) {
      this.#inData = false;
      const data = concat(this.#dataParts);
      this.#dataParts = [];
      const from = this.#from!;
      const message: ReceivedMessage = {
        helo: this.#helo,
        mailFrom: from.address,
        mailParams: from.params,
        rcptTo: this.#rcpts,
        data,
      };
      this.#from = undefined;
      this.#rcpts = [];
      if (this.#tooBig) {
        this.#tooBig = false;
        return "552 5.3.4 Message too big for the test sink\r\n";
      }
      this.#store(message);
      return "250 2.0.0 Ok: kept by the test sink\r\n";
    }
    const text = line.length > 0 && line[0] === DOT ? line.subarray(1) : line;
    this.#dataBytes += text.length + 2;
    if (this.#dataBytes > this.#maxMessageBytes) {
      this.#tooBig = true;
      this.#dataParts = [];
    } else {
      this.#dataParts.push(text.slice(), CRLF);
    }
    return undefined;
  }

  #command(bytes: Uint8Array): string {
    if (bytes.length > MAX_COMMAND_LINE_BYTES) {
      this.closed = true;
      return "500 5.5.0 Line too long\r\n";
    }
    const line = latin1(bytes);
    const verb = line.split(" ", 1)[0].toUpperCase();
    switch (verb) {
      case "EHLO":
        this.#helo = line.slice(5).trim();
        this.#reset();
        return `250-${this.#hostname}\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n`;
      case "HELO":
        this.#helo = line.slice(5).trim();
        this.#reset();
        return `250 ${this.#hostname}\r\n`;
      case "MAIL": {
        const m = /^MAIL FROM:\s*<([^>]*)>\s*(.*)$/i.exec(line);
        if (!m) return "501 5.5.4 Syntax: MAIL FROM:<address>\r\n";
        if (this.#from) return "503 5.5.1 Nested MAIL command\r\n";
        this.#from = { address: m[1], params: m[2] ? m[2].split(/\s+/) : [] };
        return "250 2.1.0 Ok\r\n";
      }
      case "RCPT": {
        const m = /^RCPT TO:\s*<([^>]*)>/i.exec(line);
        if (!m) return "501 5.5.4 Syntax: RCPT TO:<address>\r\n";
        if (!this.#from) return "503 5.5.1 Need MAIL command\r\n";
        this.#rcpts.push(m[1]);
        return "250 2.1.5 Ok\r\n";
      }
      case "DATA":
        if (!this.#from || this.#rcpts.length === 0) return "503 5.5.1 Need RCPT command\r\n";
        this.#inData = true;
        this.#dataBytes = 0;
        this.#tooBig = false;
        return "354 End data with <CR><LF>.<CR><LF>\r\n";
      case "RSET":
        this.#reset();
        return "250 2.0.0 Ok\r\n";
      case "NOOP":
        return "250 2.0.0 Ok\r\n";
      case "QUIT":
        this.closed = true;
        return "221 2.0.0 Bye\r\n";
      default:
        return "502 5.5.2 Command not implemented\r\n";
    }
  }

  #reset(): void {
    this.#from = undefined;
    this.#rcpts = [];
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}

// One read, closing the connection when nothing comes within `ms` (which ends the read).
async function readWithTimeout(
  conn: Deno.Conn,
  buffer: Uint8Array,
  ms: number,
): Promise<number | null> {
  const timer = setTimeout(() => safeClose(conn), ms);
  try {
    return await conn.read(buffer);
  } finally {
    clearTimeout(timer);
  }
}

function safeClose(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}
