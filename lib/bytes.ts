/**
 * Byte helpers shared by every layer: CRLF constants, concatenation, comparison and search, and
 * ASCII classification. Message data stays `Uint8Array` from socket to hash (DESIGN.md, "Bytes,
 * not strings"); these helpers let the rest of the code do that without re-encoding.
 *
 * @module
 */

/** Carriage return, 0x0D. */
export const CR = 0x0d;
/** Line feed, 0x0A. */
export const LF = 0x0a;
/** Space, 0x20. */
export const SP = 0x20;
/** Horizontal tab, 0x09. */
export const HTAB = 0x09;
/** Colon, 0x3A. */
export const COLON = 0x3a;
/** The two bytes CR LF that end every line of an Internet message (RFC 5322 §2.1). */
export const CRLF: Uint8Array = Uint8Array.of(CR, LF);
/** A zero-length byte array, shared so callers need not allocate one. */
export const EMPTY: Uint8Array = new Uint8Array(0);

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

/**
 * Encodes text as UTF-8 bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { utf8 } from "./bytes.ts";
 * assert.deepEqual(utf8("Hi\r\n"), Uint8Array.of(72, 105, 13, 10));
 * ```
 */
export function utf8(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}

/**
 * Decodes UTF-8 bytes to text, replacing invalid sequences with U+FFFD. Use it for log text
 * only; message data is never re-encoded.
 */
export function fromUtf8(bytes: Uint8Array): string {
  return utf8Decoder.decode(bytes);
}

/**
 * Decodes bytes one-to-one to the code points U+0000..U+00FF ("binary" or ISO-8859-1 text), so
 * that every byte survives and {@link fromLatin1} gives the same bytes back. Used to parse tag
 * lists and header names without losing 8-bit bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fromLatin1, latin1 } from "./bytes.ts";
 * const bytes = Uint8Array.of(0x61, 0xe9, 0xff);
 * assert.deepEqual(fromLatin1(latin1(bytes)), bytes);
 * ```
 */
export function latin1(bytes: Uint8Array): string {
  // Most text is one chunk: no view of it needed.
  if (bytes.length <= 8192) {
    return String.fromCharCode.apply(null, bytes as unknown as number[]);
  }
  let out = "";
  // String.fromCharCode with many arguments is fast; chunk to stay under the argument limit.
  for (let i = 0; i < bytes.length; i += 8192) {
    out += String.fromCharCode.apply(
      null,
      bytes.subarray(i, i + 8192) as unknown as number[],
    );
  }
  return out;
}

/**
 * Encodes text whose code points are all below U+0100 as one byte each: the inverse of
 * {@link latin1}. Code points above U+00FF are replaced by "?", which never happens for text that
 * came from {@link latin1}.
 */
export function fromLatin1(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    out[i] = c < 0x100 ? c : 0x3f;
  }
  return out;
}

/**
 * Joins byte arrays into one new array.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { concat, utf8 } from "./bytes.ts";
 * assert.equal(concat([utf8("a"), utf8("bc")]).length, 3);
 * ```
 */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** True when both arrays hold the same bytes. */
export function equals(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The first index at or after `from` where `needle` occurs in `haystack`, or -1.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { indexOf, utf8 } from "./bytes.ts";
 * assert.equal(indexOf(utf8("a\r\n\r\nb"), utf8("\r\n\r\n")), 1);
 * ```
 */
export function indexOf(haystack: Uint8Array, needle: Uint8Array, from = 0): number {
  const n = needle.length;
  if (n === 0) return from <= haystack.length ? from : -1;
  const first = needle[0];
  const last = haystack.length - n;
  outer: for (let i = Math.max(0, from); i <= last; i++) {
    i = haystack.indexOf(first, i);
    if (i === -1 || i > last) return -1;
    for (let j = 1; j < n; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** True for the RFC 5234 WSP bytes: space and horizontal tab. */
export function isWsp(byte: number): boolean {
  return byte === SP || byte === HTAB;
}

/**
 * Lower-cases ASCII letters only, leaving every other character as it is (`toLowerCase` alone
 * would also fold Latin-1 letters such as "É", which header bytes read as Latin-1 can hold).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { asciiLower } from "./bytes.ts";
 * assert.equal(asciiLower("Content-Type"), "content-type");
 * assert.equal(asciiLower("X-\u00c9t\u00c9"), "x-\u00c9t\u00c9");
 * ```
 */
export function asciiLower(text: string): string {
  // Header names and tags are short and mostly ASCII: one scan decides, and the common cases
  // (nothing to fold; ASCII only) avoid the regular expression and its callback.
  let upper = false;
  let ascii = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) upper = true;
    else if (c >= 0x80) ascii = false;
  }
  if (!upper) return text;
  if (ascii) return text.toLowerCase();
  return text.replace(/[A-Z]+/g, (s) => s.toLowerCase());
}

/** Case-insensitive comparison of ASCII text, as header names and tag values are compared. */
export function asciiEqualsIgnoreCase(a: string, b: string): boolean {
  return a.length === b.length && asciiLower(a) === asciiLower(b);
}

/**
 * Base64 of bytes (RFC 4648 §4, with padding), as DKIM's `b=` and `bh=` tags carry them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { toBase64, utf8 } from "./bytes.ts";
 * assert.equal(toBase64(utf8("hi")), "aGk=");
 * ```
 */
export function toBase64(bytes: Uint8Array): string {
  return btoa(latin1(bytes));
}

/**
 * Decodes base64 after removing whitespace (DKIM tag values may be folded, RFC 6376 §3.5).
 * Throws a `SyntaxError` when what is left is not base64.
 */
export function fromBase64(text: string): Uint8Array {
  const clean = text.replace(/[\s]+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean) || clean.length % 4 === 1) {
    throw new SyntaxError("Invalid base64 data");
  }
  let padded = clean;
  while (padded.length % 4 !== 0) padded += "=";
  // Validated and padded above, so the native decoder gives atob's bytes, without a string
  // between (a tenth of the time for a signature's b=, issue 20).
  return Uint8Array.fromBase64(padded);
}
