/**
 * Header fields as raw bytes: splitting a message into its header fields and body, and picking
 * the fields a signature covers (RFC 6376 §5.4.2).
 *
 * @module
 */
import { asciiLower, COLON, CR, isWsp, latin1, LF } from "../bytes.ts";

/**
 * One header field exactly as it appears in the message: `raw` is the whole field, name, colon,
 * value and any folding line breaks, without the CRLF that ends it. Bytes are kept as they are
 * (8-bit bytes included, RFC 6532).
 */
export interface HeaderField {
  /** The field name as written (case kept), without surrounding whitespace. */
  readonly name: string;
  /** The whole field without its final CRLF. */
  readonly raw: Uint8Array;
}

/** A message that cannot be split into header fields and a body. */
export class MessageSyntaxError extends SyntaxError {
  /** 1-based line number of the problem in the message. */
  readonly line: number;

  /** Makes an error for line `line`. */
  constructor(message: string, line: number) {
    super(message);
    this.name = "MessageSyntaxError";
    this.line = line;
  }
}

/** Most header fields accepted in one message: a DoS guard (OpenDKIM's default is 64 KiB of headers). */
export const MAX_HEADER_FIELDS = 1000;

/**
 * Makes a header field from its name and value bytes (the value as it follows the colon, with
 * its leading space if any), as a milter receives them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { makeHeaderField } from "./header.ts";
 * import { latin1, utf8 } from "../bytes.ts";
 * const f = makeHeaderField("Subject", utf8(" hi"));
 * assert.equal(latin1(f.raw), "Subject: hi");
 * assert.equal(makeHeaderField("Subject ", utf8(" hi")).name, "Subject");
 * ```
 */
export function makeHeaderField(name: string, value: Uint8Array): HeaderField {
  const raw = new Uint8Array(name.length + 1 + value.length);
  for (let i = 0; i < name.length; i++) raw[i] = name.charCodeAt(i) & 0xff;
  raw[name.length] = COLON;
  raw.set(value, name.length + 1);
  // `name` has no surrounding whitespace, as splitMessage() gives it: an MTA may pass on the
  // whitespace of "Subject :" (RFC 5322 §4.5.2 obs-optional), and h= must still find the field.
  return { name: trimNameEnd(name), raw };
}

/** The value of a header field: the bytes after the first colon. */
export function fieldValue(field: HeaderField): Uint8Array {
  const colon = field.raw.indexOf(COLON);
  return field.raw.subarray(colon + 1);
}

/**
 * The value of a header field as text with one character per byte, unfolded (line breaks
 * removed) and trimmed: the form tag-list parsing and address extraction want.
 */
export function fieldValueText(field: HeaderField): string {
  return latin1(fieldValue(field)).replace(/\r?\n(?=[ \t])/g, "").replace(/\r?\n$/, "").trim();
}

/** The result of {@link splitMessage}. */
export interface SplitMessage {
  /** The header fields in message order. */
  readonly fields: HeaderField[];
  /** Offset of the first body byte (after the empty line), or the message length if none. */
  readonly bodyOffset: number;
}

/**
 * Splits a message with CRLF line ends into header fields and the body offset. A line starting
 * with whitespace continues the field above it. The header block ends at the first empty line;
 * a message without one is all header. A line without a colon, or a continuation line with no
 * field to continue, is a {@link MessageSyntaxError} naming the line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { splitMessage } from "./header.ts";
 * import { utf8 } from "../bytes.ts";
 * const { fields, bodyOffset } = splitMessage(utf8("From: a@b\r\nSubject: x\r\n y\r\n\r\nHi\r\n"));
 * assert.deepEqual(fields.map((f) => f.name), ["From", "Subject"]);
 * assert.equal(bodyOffset, 29);
 * ```
 */
export function splitMessage(message: Uint8Array): SplitMessage {
  const fields: HeaderField[] = [];
  let pos = 0;
  let fieldStart = -1;
  let line = 0;
  const end = message.length;
  while (pos < end) {
    line++;
    let eol = message.indexOf(LF, pos);
    if (eol === -1) eol = end;
    // Line content excludes the CRLF (or a bare LF, tolerated here).
    const contentEnd = eol > pos && message[eol - 1] === CR ? eol - 1 : eol;
    if (contentEnd === pos) {
      // Empty line: end of the header block.
      if (fieldStart !== -1) pushField(fields, message, fieldStart, lineEndBefore(message, pos));
      return { fields, bodyOffset: Math.min(eol + 1, end) };
    }
    if (isWsp(message[pos])) {
      if (fieldStart === -1) {
        throw new MessageSyntaxError(
          `Message line ${line} continues a header field, but no field precedes it`,
          line,
        );
      }
    } else {
      if (fieldStart !== -1) pushField(fields, message, fieldStart, lineEndBefore(message, pos));
      const colon = message.subarray(pos, contentEnd).indexOf(COLON);
      if (colon <= 0) {
        throw new MessageSyntaxError(
          `Message line ${line} is not a header field (no name and colon): "${
            printable(message.subarray(pos, Math.min(contentEnd, pos + 40)))
          }"`,
          line,
        );
      }
      fieldStart = pos;
      if (fields.length >= MAX_HEADER_FIELDS) {
        throw new MessageSyntaxError(
          `Message has more than ${MAX_HEADER_FIELDS} header fields`,
          line,
        );
      }
    }
    pos = eol + 1;
  }
  if (fieldStart !== -1) pushField(fields, message, fieldStart, trimLineEnd(message, end));
  return { fields, bodyOffset: end };
}

// The offset just before the line break that precedes `lineStart`.
function lineEndBefore(message: Uint8Array, lineStart: number): number {
  let e = lineStart - 1; // the LF
  if (e > 0 && message[e - 1] === CR) e--;
  return e;
}

function trimLineEnd(message: Uint8Array, end: number): number {
  let e = end;
  if (e > 0 && message[e - 1] === LF) e--;
  if (e > 0 && message[e - 1] === CR) e--;
  return e;
}

function pushField(fields: HeaderField[], message: Uint8Array, start: number, end: number): void {
  const raw = message.subarray(start, end);
  const colon = raw.indexOf(COLON);
  fields.push({ name: trimNameEnd(latin1(raw.subarray(0, colon))), raw });
}

// The name without whitespace before the colon. A loop: /[ \t]+$/ backtracks over every inner
// whitespace run, which is quadratic in a hostile name.
function trimNameEnd(name: string): string {
  let end = name.length;
  while (end > 0 && isWsp(name.charCodeAt(end - 1))) end--;
  return end === name.length ? name : name.slice(0, end);
}

function printable(bytes: Uint8Array): string {
  return latin1(bytes).replace(/[^\x20-\x7e]/g, "?");
}

/**
 * Picks the fields a signature's `h=` list names, in `h=` order. For a name listed several times,
 * each listing takes the next instance from the bottom of the header block up (RFC 6376 §5.4.2);
 * a listing with no instance left stands for a null field and contributes nothing (which is how
 * oversigning protects against added fields). Names compare case-insensitively.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { selectHeaders, splitMessage } from "./header.ts";
 * import { latin1, utf8 } from "../bytes.ts";
 * const { fields } = splitMessage(utf8("To: 1\r\nTo: 2\r\nFrom: f\r\n\r\n"));
 * const picked = selectHeaders(fields, ["from", "to", "to", "to"]);
 * assert.deepEqual(picked.map((f) => latin1(f.raw)), ["From: f", "To: 2", "To: 1"]);
 * ```
 */
export function selectHeaders(
  fields: readonly HeaderField[],
  names: readonly string[],
): HeaderField[] {
  // Real messages (some 20 fields, some 10 names): a scan from the bottom per name, with no
  // map and no list per name. A hostile h= against many fields takes the map below instead,
  // which stays linear.
  if (names.length * fields.length <= SMALL_SELECTION) return selectSmall(fields, names);
  const byName = new Map<string, HeaderField[]>();
  for (const f of fields) {
    const key = asciiLower(f.name);
    let list = byName.get(key);
    if (!list) byName.set(key, list = []);
    list.push(f);
  }
  const picked: HeaderField[] = [];
  for (const name of names) {
    const list = byName.get(asciiLower(name));
    const f = list?.pop();
    if (f) picked.push(f);
  }
  return picked;
}

// Most names × fields for which selectSmall()'s quadratic scan is used.
const SMALL_SELECTION = 1024;

function selectSmall(fields: readonly HeaderField[], names: readonly string[]): HeaderField[] {
  const taken = new Uint8Array(fields.length);
  const picked: HeaderField[] = [];
  for (const name of names) {
    const key = asciiLower(name);
    for (let i = fields.length - 1; i >= 0; i--) {
      const f = fields[i];
      if (taken[i] === 0 && f.name.length === key.length && asciiLower(f.name) === key) {
        taken[i] = 1;
        picked.push(f);
        break;
      }
    }
  }
  return picked;
}

/** True when `field` is named `name`, compared as header names are: ASCII case-insensitively. */
export function isField(field: HeaderField, name: string): boolean {
  return field.name.length === name.length && asciiLower(field.name) === asciiLower(name);
}
