/**
 * The fields inside a frame's data, read and written: NUL-terminated strings and big-endian
 * integers, as libmilter lays them out. {@link FieldReader} reads them off a frame, throwing
 * {@link MilterProtocolError} naming the frame on any shortfall; the `*Field` functions write
 * them, refusing a value the wire cannot carry. The command and reply codecs are built of these.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cstringField, decodeText, FieldReader, uint32Field } from "./frame_fields.ts";
 * import { concat } from "../bytes.ts";
 * const data = concat([uint32Field(6, "version", 0x4f), cstringField("mx", "host name", 0x4f)]);
 * const reader = new FieldReader({ code: 0x4f, data }, "example");
 * assert.equal(reader.uint32("version"), 6);
 * assert.equal(decodeText(reader.cstring("host name")), "mx");
 * reader.end();
 * ```
 *
 * @module
 */

import { concat, fromLatin1, latin1, utf8 } from "../bytes.ts";
import { type Frame, UINT32_MAX } from "./frame.ts";
import { MilterProtocolError } from "./protocol_error.ts";
import { INTERN_MAX_BYTES, TextIntern } from "./text_intern.ts";

/** The byte that ends every string field. */
export const NUL = 0;

const utf8Fatal = new TextDecoder("utf-8", { fatal: false });

// Longest text given the ASCII fast path of decodeText(): macro values, addresses, host names.
const SHORT_TEXT_BYTES = 256;

/** A text field as a string: UTF-8, with invalid bytes as U+FFFD. */
export function decodeText(bytes: Uint8Array): string {
  // Most protocol text is short ASCII (macros, addresses: some twenty strings per message), which
  // reads the same as latin1 without a call into the UTF-8 decoder, and mostly repeats (macro
  // names, host names), which the intern table gives back without a new string.
  if (bytes.length <= SHORT_TEXT_BYTES) {
    let ascii = true;
    for (let i = 0; i < bytes.length; i++) {
      if (bytes[i] >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) {
      return bytes.length <= INTERN_MAX_BYTES
        ? PROTOCOL_TEXT.latin1(bytes, 0, bytes.length)
        : latin1(bytes);
    }
  }
  return utf8Fatal.decode(bytes);
}

/**
 * The text field `bytes[start, end)` as {@link decodeText} reads it, without a view of it for
 * the short ASCII text most fields are.
 */
export function decodeTextAt(bytes: Uint8Array, start: number, end: number): string {
  if (end - start <= INTERN_MAX_BYTES) {
    let ascii = true;
    for (let i = start; i < end; i++) {
      if (bytes[i] >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) return PROTOCOL_TEXT.latin1(bytes, start, end);
  }
  return decodeText(bytes.subarray(start, end));
}

/**
 * The strings of the milter's short protocol text (header names, macro names and values), one
 * table per process: they are the same on every connection.
 */
export const PROTOCOL_TEXT: TextIntern = new TextIntern();

/**
 * Reads fields from a frame's data in order, throwing {@link MilterProtocolError} naming the
 * frame (`what`, e.g. "HELO command") on any shortfall. Byte fields are views of the frame's data.
 */
export class FieldReader {
  #data: Uint8Array;
  #pos = 0;
  #what: string;
  #code: number;

  /** Starts reading at the beginning of `frame`'s data. */
  constructor(frame: Frame, what: string) {
    this.#data = frame.data;
    this.#code = frame.code;
    this.#what = what;
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.#data.length - this.#pos;
  }

  /** Throws the error for this frame, with `detail` saying what is wrong. */
  fail(detail: string): never {
    throw new MilterProtocolError(`Malformed milter ${this.#what}: ${detail}`, this.#code);
  }

  /** A 32-bit big-endian unsigned integer. */
  uint32(field: string): number {
    if (this.remaining < 4) this.fail(`truncated ${field}`);
    const d = this.#data;
    const p = this.#pos;
    this.#pos += 4;
    return ((d[p] << 24) | (d[p + 1] << 16) | (d[p + 2] << 8) | d[p + 3]) >>> 0;
  }

  /** A 16-bit big-endian unsigned integer. */
  uint16(field: string): number {
    if (this.remaining < 2) this.fail(`truncated ${field}`);
    const p = this.#pos;
    this.#pos += 2;
    return (this.#data[p] << 8) | this.#data[p + 1];
  }

  /** One byte. */
  byte(field: string): number {
    if (this.remaining < 1) this.fail(`missing ${field}`);
    return this.#data[this.#pos++];
  }

  /** The bytes up to the next NUL, which is consumed. */
  cstring(field: string): Uint8Array {
    const end = this.#data.indexOf(NUL, this.#pos);
    if (end === -1) this.fail(`${field} is not NUL-terminated`);
    const bytes = this.#data.subarray(this.#pos, end);
    this.#pos = end + 1;
    return bytes;
  }

  /** NUL-terminated strings up to the end of the data. */
  cstrings(field: string): Uint8Array[] {
    const out: Uint8Array[] = [];
    while (this.remaining > 0) out.push(this.cstring(field));
    return out;
  }

  /** Checks that nothing is left over. */
  end(): void {
    if (this.remaining !== 0) this.fail(`${this.remaining} unexpected trailing bytes`);
  }
}

/**
 * A 32-bit big-endian unsigned integer field. Throws {@link MilterProtocolError} (naming `field`
 * and the frame's `code`) for a value out of range.
 */
export function uint32Field(value: number, field: string, code: number): Uint8Array {
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

/**
 * A NUL-terminated string field, a string encoded as UTF-8. Throws {@link MilterProtocolError}
 * for a NUL inside, which would cut the field short on the other side.
 */
export function cstringField(value: string | Uint8Array, field: string, code: number): Uint8Array {
  const bytes = typeof value === "string" ? utf8(value) : value;
  if (bytes.includes(NUL)) {
    throw new MilterProtocolError(`Cannot encode ${field}: it contains a NUL byte`, code);
  }
  return concat([bytes, Uint8Array.of(NUL)]);
}

/**
 * A header name field: one byte per character, as the command decoder reads it (latin1), so
 * 8-bit names survive. Throws {@link MilterProtocolError} for a character above U+00FF.
 */
export function headerNameField(name: string, code: number): Uint8Array {
  for (let i = 0; i < name.length; i++) {
    if (name.charCodeAt(i) > 0xff) {
      throw new MilterProtocolError(`Cannot encode header name "${name}": not 8-bit text`, code);
    }
  }
  return cstringField(fromLatin1(name), `header name "${name}"`, code);
}
