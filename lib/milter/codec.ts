/**
 * The milter wire format, as pure functions over bytes. A frame is a 32-bit big-endian length,
 * then one command (or reply) byte, then `length - 1` bytes of data. Strings inside the data end
 * with a NUL byte; integers are 32-bit (16-bit for a port) big-endian. This module decodes what
 * an MTA sends ({@link decodeCommand}) and encodes what a filter answers ({@link encodeReply}),
 * plus the reverse pair for the MTA side ({@link encodeCommand}, {@link decodeReply}) that the
 * test client uses. Layouts follow Sendmail's libmilter (`engine.c`, `smfi.c`) and Postfix's
 * `milter8.c`, the two ends every real deployment pairs with.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeCommand, encodeCommand, FrameDecoder } from "./codec.ts";
 * const decoder = new FrameDecoder();
 * decoder.push(encodeCommand({ type: "helo", name: "mx.example.org" }));
 * const frame = decoder.next();
 * assert.ok(frame);
 * assert.deepEqual(decodeCommand(frame), { type: "helo", name: "mx.example.org" });
 * ```
 *
 * @module
 */

import { concat, fromLatin1, latin1, utf8 } from "../bytes.ts";
import {
  MILTER_LEN_BYTES,
  MILTER_OPTLEN,
  SMFIA_INET,
  SMFIA_INET6,
  SMFIA_UNIX,
  SMFIA_UNKNOWN,
  SMFIC_ABORT,
  SMFIC_BODY,
  SMFIC_BODYEOB,
  SMFIC_CONNECT,
  SMFIC_DATA,
  SMFIC_EOH,
  SMFIC_HEADER,
  SMFIC_HELO,
  SMFIC_MACRO,
  SMFIC_MAIL,
  SMFIC_OPTNEG,
  SMFIC_QUIT,
  SMFIC_QUIT_NC,
  SMFIC_RCPT,
  SMFIC_UNKNOWN,
  SMFIR_ACCEPT,
  SMFIR_ADDHEADER,
  SMFIR_CHGHEADER,
  SMFIR_CONTINUE,
  SMFIR_DISCARD,
  SMFIR_INSHEADER,
  SMFIR_OPTNEG,
  SMFIR_PROGRESS,
  SMFIR_QUARANTINE,
  SMFIR_REJECT,
  SMFIR_REPLYCODE,
  SMFIR_SETSYMLIST,
  SMFIR_SKIP,
  SMFIR_TEMPFAIL,
} from "./constants.ts";

/**
 * Largest frame accepted, length prefix excluded: 1 MiB. Sendmail sends at most 1 MiB - 1 data
 * bytes per command even when it negotiates its largest size (`SMFIP_MDS_1M`), and Postfix sends a
 * whole header field in one frame, which its `header_size_limit` (100 KiB by default) bounds.
 */
export const MAX_FRAME_BYTES_DEFAULT = 1024 * 1024;

/** Largest value a 32-bit length or index field can carry. */
const UINT32_MAX = 0xffffffff;

/**
 * The peer broke the milter protocol: a frame too large or empty, a truncated or malformed
 * payload, or a value that cannot be encoded. The connection cannot be trusted to stay in step
 * after this, so the server closes it; no reply is owed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeCommand, MilterProtocolError } from "./codec.ts";
 * assert.throws(
 *   () => decodeCommand({ code: 0x48, data: new Uint8Array([0x61]) }),
 *   MilterProtocolError,
 * );
 * ```
 */
export class MilterProtocolError extends SyntaxError {
  /** The command or reply byte of the offending frame, when known. */
  readonly code?: number;
  /** For a frame over the size limit: the length its prefix announced, and the limit. */
  readonly oversized?: { readonly length: number; readonly limit: number };

  /** Makes an error about the frame with byte `code`. */
  constructor(
    message: string,
    code?: number,
    options?: ErrorOptions & { oversized?: { length: number; limit: number } },
  ) {
    super(message, options);
    this.name = "MilterProtocolError";
    this.code = code;
    if (options?.oversized) this.oversized = { ...options.oversized };
  }
}

/** One frame: the command or reply byte and the data after it. */
export interface Frame {
  /** The command (`SMFIC_*`) or reply (`SMFIR_*`) byte. */
  readonly code: number;
  /** The bytes after the code; their length is the frame length minus one. */
  readonly data: Uint8Array;
}

/** Options of a {@link FrameDecoder}. */
export interface FrameDecoderOptions {
  /** Largest frame length accepted; default {@link MAX_FRAME_BYTES_DEFAULT}. */
  readonly maxFrameBytes?: number;
}

/**
 * Cuts a byte stream into frames. Bytes go in with {@link FrameDecoder.push} as they arrive, in
 * pieces split anywhere; whole frames come out of {@link FrameDecoder.next}. A length prefix
 * announcing more than the limit (or zero) throws {@link MilterProtocolError} as soon as its four
 * bytes are in, before the frame's data is buffered; the decoder then stays failed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FrameDecoder, MilterProtocolError } from "./codec.ts";
 * const decoder = new FrameDecoder();
 * decoder.push(Uint8Array.of(0, 0, 0));
 * assert.equal(decoder.next(), undefined);
 * decoder.push(Uint8Array.of(2, 0x42, 0x78, 0, 0));
 * assert.deepEqual(decoder.next(), { code: 0x42, data: Uint8Array.of(0x78) });
 * assert.equal(decoder.buffered, 2);
 * const small = new FrameDecoder({ maxFrameBytes: 10 });
 * assert.throws(
 *   () => small.push(Uint8Array.of(0, 0, 0, 11)),
 *   (e) => e instanceof MilterProtocolError && e.oversized?.length === 11,
 * );
 * ```
 */
export class FrameDecoder {
  /** Largest frame length accepted. */
  readonly maxFrameBytes: number;
  #buf = new Uint8Array(4096);
  #start = 0;
  #end = 0;
  // Offset of the first frame whose length prefix has not been checked yet.
  #scan = 0;
  #failure?: MilterProtocolError;

  /** Makes a decoder with an optional frame size limit. */
  constructor(options: FrameDecoderOptions = {}) {
    const max = options.maxFrameBytes ?? MAX_FRAME_BYTES_DEFAULT;
    if (!Number.isInteger(max) || max < 1 || max > UINT32_MAX) {
      throw new RangeError(`Invalid "maxFrameBytes" ${max}: expected an integer from 1 to 2^32-1`);
    }
    this.maxFrameBytes = max;
  }

  /** Bytes received and not yet returned as frames. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /**
   * Adds received bytes. Throws {@link MilterProtocolError} when a length prefix is zero or over
   * the limit.
   */
  push(bytes: Uint8Array): void {
    if (this.#failure) throw this.#failure;
    if (bytes.length === 0) return;
    this.#reserve(bytes.length);
    this.#buf.set(bytes, this.#end);
    this.#end += bytes.length;
    this.#check();
  }

  /** The next whole frame, or undefined until more bytes arrive. Its data is a copy. */
  next(): Frame | undefined {
    return this.#take(true);
  }

  /**
   * The next whole frame, as {@link FrameDecoder.next} gives it, but without a copy: its data is
   * a view of the decoder's buffer, valid only until the next {@link FrameDecoder.push}, which
   * may overwrite it. For a reader that is done with each frame before it pushes more bytes, as
   * the milter server is: a copy of every 64 KiB body frame cost a quarter of the CPU of a large
   * message, and the memory of the copies grew with the message.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { encodeCommand, FrameDecoder } from "./codec.ts";
   * const decoder = new FrameDecoder();
   * decoder.push(encodeCommand({ type: "body", chunk: new TextEncoder().encode("one") }));
   * const view = decoder.nextView();
   * const copy = new Uint8Array(view!.data);
   * decoder.push(encodeCommand({ type: "body", chunk: new TextEncoder().encode("two") }));
   * assert.equal(new TextDecoder().decode(copy), "one");
   * assert.equal(new TextDecoder().decode(view!.data), "two"); // overwritten
   * ```
   */
  nextView(): Frame | undefined {
    return this.#take(false);
  }

  #take(copy: boolean): Frame | undefined {
    if (this.#failure) throw this.#failure;
    const available = this.#end - this.#start;
    if (available < MILTER_LEN_BYTES) return undefined;
    const length = this.#lengthAt(this.#start);
    if (available < MILTER_LEN_BYTES + length) return undefined;
    const codeAt = this.#start + MILTER_LEN_BYTES;
    const end = codeAt + length;
    const frame = {
      code: this.#buf[codeAt],
      data: copy ? this.#buf.slice(codeAt + 1, end) : this.#buf.subarray(codeAt + 1, end),
    };
    this.#start = end;
    if (this.#start === this.#end) this.#start = this.#end = this.#scan = 0;
    return frame;
  }

  #lengthAt(offset: number): number {
    const b = this.#buf;
    return ((b[offset] << 24) | (b[offset + 1] << 16) | (b[offset + 2] << 8) | b[offset + 3]) >>>
      0;
  }

  // Validates every length prefix that is fully buffered, so an oversized frame is refused
  // before its data accumulates.
  #check(): void {
    while (this.#end - this.#scan >= MILTER_LEN_BYTES) {
      const length = this.#lengthAt(this.#scan);
      if (length === 0) {
        this.#failure = new MilterProtocolError("Invalid milter frame: length 0");
      } else if (length > this.maxFrameBytes) {
        this.#failure = new MilterProtocolError(
          `Milter frame too large: ${length} bytes announced, limit ${this.maxFrameBytes}`,
          undefined,
          { oversized: { length, limit: this.maxFrameBytes } },
        );
      }
      if (this.#failure) throw this.#failure;
      const next = this.#scan + MILTER_LEN_BYTES + length;
      if (next > this.#end) return;
      this.#scan = next;
    }
  }

  #reserve(extra: number): void {
    if (this.#end + extra <= this.#buf.length) return;
    const live = this.#end - this.#start;
    if (live + extra <= this.#buf.length) {
      this.#buf.copyWithin(0, this.#start, this.#end);
    } else {
      let size = this.#buf.length * 2;
      while (size < live + extra) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.#buf.subarray(this.#start, this.#end));
      this.#buf = grown;
    }
    this.#scan -= this.#start;
    this.#end = live;
    this.#start = 0;
  }
}

/** The address family of the SMTP client in a CONNECT command (`SMFIA_*`). */
export type AddressFamily = "inet" | "inet6" | "unix" | "unknown";

/** A name and value pair from a MACRO command, the name as the MTA spelled it (`{auth_type}`). */
export type MacroPair = readonly [name: string, value: string];

/**
 * A command from the MTA, one variant per `SMFIC_*` code. Text fields are decoded as UTF-8
 * (invalid bytes become U+FFFD); a header name is decoded one byte per character (latin1) so its
 * bytes survive, and header values and body chunks stay bytes. Codes this module does not know
 * decode as `unrecognized`, so the session can answer them instead of failing.
 */
export type Command =
  | {
    readonly type: "optneg";
    readonly version: number;
    readonly actions: number;
    readonly protocol: number;
  }
  | {
    readonly type: "connect";
    readonly hostname: string;
    readonly family: AddressFamily;
    /** The client's port; 0 for unix and unknown families. */
    readonly port: number;
    /** The client's IP address, or the socket path for unix; "" for unknown. */
    readonly address: string;
  }
  | { readonly type: "helo"; readonly name: string }
  | {
    readonly type: "macro";
    /** The command byte these macros belong to (`SMFIC_CONNECT`, `SMFIC_MAIL`, ...). */
    readonly forCommand: number;
    readonly macros: readonly MacroPair[];
  }
  | { readonly type: "mail"; readonly args: readonly string[] }
  | { readonly type: "rcpt"; readonly args: readonly string[] }
  | { readonly type: "data" }
  | { readonly type: "header"; readonly name: string; readonly value: Uint8Array }
  | { readonly type: "eoh" }
  | { readonly type: "body"; readonly chunk: Uint8Array }
  | { readonly type: "bodyeob"; readonly chunk?: Uint8Array }
  | { readonly type: "abort" }
  | { readonly type: "quit" }
  | { readonly type: "quit_nc" }
  | { readonly type: "unknown"; readonly command: string }
  | { readonly type: "unrecognized"; readonly code: number; readonly data: Uint8Array };

/** A header value: bytes go out untouched, a string is encoded as UTF-8. */
export type HeaderValue = Uint8Array | string;

/** The macro names wanted at one stage (`SMFIM_*`), as sent with the OPTNEG reply. */
export interface SymbolList {
  /** The stage, an `SMFIM_*` number. */
  readonly stage: number;
  /** Macro names as the MTA spells them, e.g. `i` or `{auth_type}`. */
  readonly macros: readonly string[];
}

/**
 * A reply from the filter, one variant per `SMFIR_*` code. Header indices follow Sendmail:
 * `insheader` counts from 0 at the top of the header block, `chgheader` picks the nth (from 1)
 * field with that name, and an empty `chgheader` value deletes the field.
 */
export type Reply =
  | { readonly type: "accept" }
  | { readonly type: "continue" }
  | { readonly type: "tempfail" }
  | { readonly type: "reject" }
  | { readonly type: "discard" }
  | { readonly type: "skip" }
  | { readonly type: "progress" }
  | {
    readonly type: "replycode";
    /** The SMTP reply code, 400 to 599. */
    readonly code: number;
    /** The text after the code, usually starting with an enhanced status code. */
    readonly text: string;
  }
  | { readonly type: "addheader"; readonly name: string; readonly value: HeaderValue }
  | {
    readonly type: "insheader";
    readonly index: number;
    readonly name: string;
    readonly value: HeaderValue;
  }
  | {
    readonly type: "chgheader";
    readonly index: number;
    readonly name: string;
    readonly value: HeaderValue;
  }
  | { readonly type: "quarantine"; readonly reason: string }
  | { readonly type: "setsymlist"; readonly stage: number; readonly macros: readonly string[] }
  | {
    readonly type: "optneg";
    readonly version: number;
    readonly actions: number;
    readonly protocol: number;
    readonly symbols?: readonly SymbolList[];
  }
  | { readonly type: "unrecognized"; readonly code: number; readonly data: Uint8Array };

const NUL = 0;
const utf8Fatal = new TextDecoder("utf-8", { fatal: false });

// Longest text given the ASCII fast path of text(): macro values, addresses, host names.
const SHORT_TEXT_BYTES = 256;

function text(bytes: Uint8Array): string {
  // Most protocol text is short ASCII (macros, addresses: some twenty strings per message), which
  // reads the same as latin1 without a call into the UTF-8 decoder.
  if (bytes.length <= SHORT_TEXT_BYTES) {
    let ascii = true;
    for (let i = 0; i < bytes.length; i++) {
      if (bytes[i] >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) return latin1(bytes);
  }
  return utf8Fatal.decode(bytes);
}

function codeName(code: number): string {
  return code >= 0x20 && code < 0x7f ? `"${String.fromCharCode(code)}"` : `0x${code.toString(16)}`;
}

// Reads fields from a frame's data, throwing MilterProtocolError naming the frame on any
// shortfall.
class Reader {
  #data: Uint8Array;
  #pos = 0;
  #what: string;
  #code: number;

  constructor(frame: Frame, what: string) {
    this.#data = frame.data;
    this.#code = frame.code;
    this.#what = what;
  }

  get remaining(): number {
    return this.#data.length - this.#pos;
  }

  fail(detail: string): never {
    throw new MilterProtocolError(`Malformed milter ${this.#what}: ${detail}`, this.#code);
  }

  uint32(field: string): number {
    if (this.remaining < 4) this.fail(`truncated ${field}`);
    const d = this.#data;
    const p = this.#pos;
    this.#pos += 4;
    return ((d[p] << 24) | (d[p + 1] << 16) | (d[p + 2] << 8) | d[p + 3]) >>> 0;
  }

  uint16(field: string): number {
    if (this.remaining < 2) this.fail(`truncated ${field}`);
    const p = this.#pos;
    this.#pos += 2;
    return (this.#data[p] << 8) | this.#data[p + 1];
  }

  byte(field: string): number {
    if (this.remaining < 1) this.fail(`missing ${field}`);
    return this.#data[this.#pos++];
  }

  // The bytes up to the next NUL, which is consumed.
  cstring(field: string): Uint8Array {
    const end = this.#data.indexOf(NUL, this.#pos);
    if (end === -1) this.fail(`${field} is not NUL-terminated`);
    const bytes = this.#data.subarray(this.#pos, end);
    this.#pos = end + 1;
    return bytes;
  }

  rest(): Uint8Array {
    const bytes = this.#data.subarray(this.#pos);
    this.#pos = this.#data.length;
    return bytes;
  }

  // NUL-terminated strings up to the end of the data.
  cstrings(field: string): Uint8Array[] {
    const out: Uint8Array[] = [];
    while (this.remaining > 0) out.push(this.cstring(field));
    return out;
  }

  end(): void {
    if (this.remaining !== 0) this.fail(`${this.remaining} unexpected trailing bytes`);
  }
}

const FAMILIES: Record<number, AddressFamily> = {
  [SMFIA_INET]: "inet",
  [SMFIA_INET6]: "inet6",
  [SMFIA_UNIX]: "unix",
  [SMFIA_UNKNOWN]: "unknown",
};

const FAMILY_BYTES: Record<AddressFamily, number> = {
  inet: SMFIA_INET,
  inet6: SMFIA_INET6,
  unix: SMFIA_UNIX,
  unknown: SMFIA_UNKNOWN,
};

/**
 * Decodes one command frame from the MTA. Throws {@link MilterProtocolError} when the data is
 * truncated or malformed (a missing NUL, a short integer, an unknown address family, an odd
 * number of macro strings); data after the fixed fields of OPTNEG and after the family byte of
 * an unknown-family CONNECT is ignored, as libmilter ignores it. The returned byte arrays share
 * memory with `frame.data`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeCommand } from "./codec.ts";
 * const data = new TextEncoder().encode("Subject\0 Hi\0");
 * const command = decodeCommand({ code: 0x4c, data });
 * assert.equal(command.type, "header");
 * if (command.type === "header") {
 *   assert.equal(command.name, "Subject");
 *   assert.deepEqual(command.value, new TextEncoder().encode(" Hi"));
 * }
 * ```
 */
export function decodeCommand(frame: Frame): Command {
  switch (frame.code) {
    case SMFIC_OPTNEG: {
      const r = new Reader(frame, "OPTNEG command");
      if (r.remaining < MILTER_OPTLEN) r.fail(`${r.remaining} bytes, expected ${MILTER_OPTLEN}`);
      return {
        type: "optneg",
        version: r.uint32("version"),
        actions: r.uint32("actions"),
        protocol: r.uint32("protocol"),
      };
    }
    case SMFIC_CONNECT: {
      const r = new Reader(frame, "CONNECT command");
      const hostname = text(r.cstring("host name"));
      const familyByte = r.byte("address family");
      const family = FAMILIES[familyByte];
      if (!family) r.fail(`unknown address family ${codeName(familyByte)}`);
      if (family === "unknown") return { type: "connect", hostname, family, port: 0, address: "" };
      const port = r.uint16("port");
      const address = text(r.cstring("address"));
      r.end();
      return { type: "connect", hostname, family, port, address };
    }
    case SMFIC_HELO: {
      const r = new Reader(frame, "HELO command");
      const name = text(r.cstring("HELO name"));
      r.end();
      return { type: "helo", name };
    }
    case SMFIC_MACRO: {
      const r = new Reader(frame, "MACRO command");
      const forCommand = r.byte("command byte");
      const strings = r.cstrings("macro");
      if (strings.length % 2 !== 0) r.fail(`macro "${text(strings.at(-1)!)}" has no value`);
      const macros: MacroPair[] = [];
      for (let i = 0; i < strings.length; i += 2) {
        macros.push([text(strings[i]), text(strings[i + 1])]);
      }
      return { type: "macro", forCommand, macros };
    }
    case SMFIC_MAIL:
    case SMFIC_RCPT: {
      const what = frame.code === SMFIC_MAIL ? "MAIL" : "RCPT";
      const r = new Reader(frame, `${what} command`);
      const args = r.cstrings("argument").map(text);
      if (args.length === 0) r.fail("no address");
      return { type: frame.code === SMFIC_MAIL ? "mail" : "rcpt", args };
    }
    case SMFIC_HEADER: {
      const r = new Reader(frame, "HEADER command");
      const name = latin1(r.cstring("header name"));
      const value = r.cstring("header value");
      r.end();
      if (name.length === 0) r.fail("empty header name");
      return { type: "header", name, value };
    }
    case SMFIC_BODY:
      return { type: "body", chunk: frame.data };
    case SMFIC_BODYEOB:
      return frame.data.length > 0 ? { type: "bodyeob", chunk: frame.data } : { type: "bodyeob" };
    case SMFIC_UNKNOWN: {
      const r = new Reader(frame, "UNKNOWN command");
      const command = text(r.cstring("command"));
      r.end();
      return { type: "unknown", command };
    }
    case SMFIC_DATA:
      return { type: "data" };
    case SMFIC_EOH:
      return { type: "eoh" };
    case SMFIC_ABORT:
      return { type: "abort" };
    case SMFIC_QUIT:
      return { type: "quit" };
    case SMFIC_QUIT_NC:
      return { type: "quit_nc" };
    default:
      return { type: "unrecognized", code: frame.code, data: frame.data };
  }
}

// Builds a whole frame: length prefix, code, then the parts.
function frame(code: number, parts: readonly Uint8Array[]): Uint8Array {
  let length = 1;
  for (const p of parts) length += p.length;
  if (length > UINT32_MAX) {
    throw new MilterProtocolError(`Milter frame too large to encode: ${length} bytes`, code);
  }
  const out = new Uint8Array(MILTER_LEN_BYTES + length);
  new DataView(out.buffer).setUint32(0, length);
  out[MILTER_LEN_BYTES] = code;
  let offset = MILTER_LEN_BYTES + 1;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

function u32(value: number, field: string, code: number): Uint8Array {
  if (!Number.isInteger(value) || value < 0 || value > UINT32_MAX) {
    throw new MilterProtocolError(
      `Cannot encode ${field} ${value}: not a 32-bit unsigned integer`,
      code,
    );
  }
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value);
  return out;
}

// A NUL-terminated string; a NUL inside would cut the field short on the other side.
function cstr(value: string | Uint8Array, field: string, code: number): Uint8Array {
  const bytes = typeof value === "string" ? utf8(value) : value;
  if (bytes.includes(NUL)) {
    throw new MilterProtocolError(`Cannot encode ${field}: it contains a NUL byte`, code);
  }
  return concat([bytes, Uint8Array.of(NUL)]);
}

// A header name: one byte per character, as decodeCommand reads it.
function nameBytes(name: string, code: number): Uint8Array {
  for (let i = 0; i < name.length; i++) {
    if (name.charCodeAt(i) > 0xff) {
      throw new MilterProtocolError(`Cannot encode header name "${name}": not 8-bit text`, code);
    }
  }
  return cstr(fromLatin1(name), `header name "${name}"`, code);
}

/**
 * Encodes a command as the MTA sends it, length prefix included: the inverse of
 * {@link decodeCommand}. Throws {@link MilterProtocolError} for a value the wire cannot carry (a
 * NUL inside a string, an integer out of range).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeCommand } from "./codec.ts";
 * assert.deepEqual(encodeCommand({ type: "eoh" }), Uint8Array.of(0, 0, 0, 1, 0x4e));
 * ```
 */
export function encodeCommand(command: Command): Uint8Array {
  switch (command.type) {
    case "optneg":
      return frame(SMFIC_OPTNEG, [
        u32(command.version, "version", SMFIC_OPTNEG),
        u32(command.actions, "actions", SMFIC_OPTNEG),
        u32(command.protocol, "protocol", SMFIC_OPTNEG),
      ]);
    case "connect": {
      const parts: Uint8Array[] = [
        cstr(command.hostname, "host name", SMFIC_CONNECT),
        Uint8Array.of(FAMILY_BYTES[command.family]),
      ];
      if (command.family !== "unknown") {
        if (!Number.isInteger(command.port) || command.port < 0 || command.port > 0xffff) {
          throw new MilterProtocolError(`Cannot encode port ${command.port}`, SMFIC_CONNECT);
        }
        parts.push(Uint8Array.of(command.port >> 8, command.port & 0xff));
        parts.push(cstr(command.address, "address", SMFIC_CONNECT));
      }
      return frame(SMFIC_CONNECT, parts);
    }
    case "helo":
      return frame(SMFIC_HELO, [cstr(command.name, "HELO name", SMFIC_HELO)]);
    case "macro": {
      const parts: Uint8Array[] = [Uint8Array.of(command.forCommand & 0xff)];
      for (const [name, value] of command.macros) {
        parts.push(cstr(name, `macro name "${name}"`, SMFIC_MACRO));
        parts.push(cstr(value, `macro "${name}"`, SMFIC_MACRO));
      }
      return frame(SMFIC_MACRO, parts);
    }
    case "mail":
    case "rcpt": {
      const code = command.type === "mail" ? SMFIC_MAIL : SMFIC_RCPT;
      return frame(code, command.args.map((a) => cstr(a, "argument", code)));
    }
    case "header":
      return frame(SMFIC_HEADER, [
        nameBytes(command.name, SMFIC_HEADER),
        cstr(command.value, `header "${command.name}"`, SMFIC_HEADER),
      ]);
    case "body":
      return frame(SMFIC_BODY, [command.chunk]);
    case "bodyeob":
      return frame(SMFIC_BODYEOB, command.chunk ? [command.chunk] : []);
    case "unknown":
      return frame(SMFIC_UNKNOWN, [cstr(command.command, "command", SMFIC_UNKNOWN)]);
    case "data":
      return frame(SMFIC_DATA, []);
    case "eoh":
      return frame(SMFIC_EOH, []);
    case "abort":
      return frame(SMFIC_ABORT, []);
    case "quit":
      return frame(SMFIC_QUIT, []);
    case "quit_nc":
      return frame(SMFIC_QUIT_NC, []);
    case "unrecognized":
      return frame(command.code, [command.data]);
  }
}

const SIMPLE_REPLIES = {
  accept: SMFIR_ACCEPT,
  continue: SMFIR_CONTINUE,
  tempfail: SMFIR_TEMPFAIL,
  reject: SMFIR_REJECT,
  discard: SMFIR_DISCARD,
  skip: SMFIR_SKIP,
  progress: SMFIR_PROGRESS,
} as const;

const SIMPLE_CODES = new Map<number, keyof typeof SIMPLE_REPLIES>(
  Object.entries(SIMPLE_REPLIES).map(([k, v]) => [v, k as keyof typeof SIMPLE_REPLIES]),
);

// RFC 5322 §3.6.8 ftext: printable US-ASCII except colon.
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]+$/;

function valueHasNul(value: HeaderValue): boolean {
  return typeof value === "string" ? value.includes("\0") : value.includes(NUL);
}

/**
 * Why `reply` cannot be sent as it is, or undefined when it can: a header name that is not RFC
 * 5322 §3.6.8 field-name text, a NUL inside a value, an index out of range, a reply code outside
 * 400-599. {@link encodeReply} throws this text; the session checks a filter's modifications with
 * it first so a bad one counts as a filter error rather than breaking the connection.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { replyProblem } from "./codec.ts";
 * assert.equal(replyProblem({ type: "addheader", name: "X-Test", value: "ok" }), undefined);
 * assert.match(replyProblem({ type: "addheader", name: "X:Test", value: "ok" }) ?? "", /name/);
 * ```
 */
export function replyProblem(reply: Reply): string | undefined {
  switch (reply.type) {
    case "addheader":
    case "insheader":
    case "chgheader": {
      if (!FIELD_NAME.test(reply.name)) {
        return `header name "${reply.name}" is not printable ASCII without a colon`;
      }
      if (valueHasNul(reply.value)) return `header "${reply.name}" value contains a NUL byte`;
      if (reply.type !== "addheader") {
        const index = reply.index;
        if (!Number.isInteger(index) || index < 0 || index > UINT32_MAX) {
          return `header index ${index} is not a 32-bit unsigned integer`;
        }
      }
      return undefined;
    }
    case "replycode":
      if (!Number.isInteger(reply.code) || reply.code < 400 || reply.code > 599) {
        return `reply code ${reply.code} is not from 400 to 599`;
      }
      if (reply.text.includes("\0")) return "reply text contains a NUL byte";
      return undefined;
    case "quarantine":
      return reply.reason.includes("\0") ? "quarantine reason contains a NUL byte" : undefined;
    case "setsymlist":
      return symbolListProblem({ stage: reply.stage, macros: reply.macros });
    case "optneg":
      for (const list of reply.symbols ?? []) {
        const problem = symbolListProblem(list);
        if (problem) return problem;
      }
      return undefined;
    default:
      return undefined;
  }
}

function symbolListProblem(list: SymbolList): string | undefined {
  if (!Number.isInteger(list.stage) || list.stage < 0 || list.stage > UINT32_MAX) {
    return `macro stage ${list.stage} is not a 32-bit unsigned integer`;
  }
  for (const m of list.macros) {
    if (m.length === 0 || /[\s\0]/.test(m)) return `macro name "${m}" is empty or has spaces`;
  }
  return undefined;
}

function symbolListBytes(list: SymbolList, code: number): Uint8Array[] {
  return [u32(list.stage, "macro stage", code), cstr(list.macros.join(" "), "macro list", code)];
}

/**
 * Encodes a reply as the filter sends it, length prefix included. The OPTNEG reply carries its
 * symbol lists after the three integers, which is where Sendmail and Postfix read them. Throws
 * {@link MilterProtocolError} with the text of {@link replyProblem} for a reply that cannot be
 * sent.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeReply } from "./codec.ts";
 * assert.deepEqual(encodeReply({ type: "continue" }), Uint8Array.of(0, 0, 0, 1, 0x63));
 * const bytes = encodeReply({ type: "addheader", name: "X-A", value: "b" });
 * assert.equal(new TextDecoder().decode(bytes.subarray(5)), "X-A\0b\0");
 * ```
 */
export function encodeReply(reply: Reply): Uint8Array {
  const problem = replyProblem(reply);
  if (problem) {
    throw new MilterProtocolError(`Cannot encode milter ${reply.type} reply: ${problem}`);
  }
  switch (reply.type) {
    case "accept":
    case "continue":
    case "tempfail":
    case "reject":
    case "discard":
    case "skip":
    case "progress":
      return frame(SIMPLE_REPLIES[reply.type], []);
    case "replycode":
      return frame(SMFIR_REPLYCODE, [
        cstr(`${reply.code} ${reply.text}`, "reply text", SMFIR_REPLYCODE),
      ]);
    case "addheader":
      return frame(SMFIR_ADDHEADER, [
        nameBytes(reply.name, SMFIR_ADDHEADER),
        cstr(reply.value, "header value", SMFIR_ADDHEADER),
      ]);
    case "insheader":
    case "chgheader": {
      const code = reply.type === "insheader" ? SMFIR_INSHEADER : SMFIR_CHGHEADER;
      return frame(code, [
        u32(reply.index, "header index", code),
        nameBytes(reply.name, code),
        cstr(reply.value, "header value", code),
      ]);
    }
    case "quarantine":
      return frame(SMFIR_QUARANTINE, [cstr(reply.reason, "reason", SMFIR_QUARANTINE)]);
    case "setsymlist":
      return frame(SMFIR_SETSYMLIST, symbolListBytes(reply, SMFIR_SETSYMLIST));
    case "optneg":
      return frame(SMFIR_OPTNEG, [
        u32(reply.version, "version", SMFIR_OPTNEG),
        u32(reply.actions, "actions", SMFIR_OPTNEG),
        u32(reply.protocol, "protocol", SMFIR_OPTNEG),
        ...(reply.symbols ?? []).flatMap((list) => symbolListBytes(list, SMFIR_OPTNEG)),
      ]);
    case "unrecognized":
      return frame(reply.code, [reply.data]);
  }
}

function splitList(bytes: Uint8Array): string[] {
  const list = text(bytes).trim();
  return list === "" ? [] : list.split(/\s+/);
}

/**
 * Decodes one reply frame from a filter, for the MTA side. Header values come back as bytes.
 * Throws {@link MilterProtocolError} for truncated or malformed data, including data after a
 * reply that carries none (Postfix refuses those too).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeReply, encodeReply } from "./codec.ts";
 * const bytes = encodeReply({ type: "replycode", code: 550, text: "5.7.1 No" });
 * const reply = decodeReply({ code: bytes[4], data: bytes.subarray(5) });
 * assert.deepEqual(reply, { type: "replycode", code: 550, text: "5.7.1 No" });
 * ```
 */
export function decodeReply(frame: Frame): Reply {
  const simple = SIMPLE_CODES.get(frame.code);
  if (simple) {
    if (frame.data.length !== 0) {
      new Reader(frame, `${simple} reply`).fail(`${frame.data.length} unexpected data bytes`);
    }
    return { type: simple };
  }
  switch (frame.code) {
    case SMFIR_REPLYCODE: {
      const r = new Reader(frame, "REPLYCODE reply");
      const line = text(r.cstring("reply text"));
      r.end();
      const match = /^([45]\d\d)(?:[ -]([^]*))?$/.exec(line);
      if (!match) return r.fail(`"${line}" does not start with a 4xx or 5xx code`);
      return { type: "replycode", code: Number(match[1]), text: match[2] ?? "" };
    }
    case SMFIR_ADDHEADER: {
      const r = new Reader(frame, "ADDHEADER reply");
      const name = latin1(r.cstring("header name"));
      const value = r.cstring("header value").slice();
      r.end();
      return { type: "addheader", name, value };
    }
    case SMFIR_INSHEADER:
    case SMFIR_CHGHEADER: {
      const type = frame.code === SMFIR_INSHEADER ? "insheader" : "chgheader";
      const r = new Reader(frame, `${type.toUpperCase()} reply`);
      const index = r.uint32("header index");
      const name = latin1(r.cstring("header name"));
      const value = r.cstring("header value").slice();
      r.end();
      return { type, index, name, value };
    }
    case SMFIR_QUARANTINE: {
      const r = new Reader(frame, "QUARANTINE reply");
      const reason = text(r.cstring("reason"));
      r.end();
      return { type: "quarantine", reason };
    }
    case SMFIR_SETSYMLIST: {
      const r = new Reader(frame, "SETSYMLIST reply");
      const stage = r.uint32("macro stage");
      const macros = splitList(r.cstring("macro list"));
      r.end();
      return { type: "setsymlist", stage, macros };
    }
    case SMFIR_OPTNEG: {
      const r = new Reader(frame, "OPTNEG reply");
      if (r.remaining < MILTER_OPTLEN) r.fail(`${r.remaining} bytes, expected ${MILTER_OPTLEN}`);
      const version = r.uint32("version");
      const actions = r.uint32("actions");
      const protocol = r.uint32("protocol");
      const symbols: SymbolList[] = [];
      while (r.remaining > 0) {
        const stage = r.uint32("macro stage");
        symbols.push({ stage, macros: splitList(r.cstring("macro list")) });
      }
      return symbols.length > 0
        ? { type: "optneg", version, actions, protocol, symbols }
        : { type: "optneg", version, actions, protocol };
    }
    default:
      return { type: "unrecognized", code: frame.code, data: frame.data.slice() };
  }
}
