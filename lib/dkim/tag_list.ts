/**
 * DKIM tag=value lists (RFC 6376 §3.2), the syntax of both DKIM-Signature fields and key
 * records.
 *
 * @module
 */

/**
 * A tag list that breaks the RFC 6376 §3.2 grammar. `offset` is the character offset in the
 * parsed text where the problem was found.
 */
export class TagListError extends SyntaxError {
  /** Character offset of the problem in the parsed text. */
  readonly offset: number;

  /** Makes an error for the problem `message` at `offset`. */
  constructor(message: string, offset: number) {
    super(message);
    this.name = "TagListError";
    this.offset = offset;
  }
}

/** Most tags accepted in one list: a bound on work for hostile input (real lists have < 20). */
export const MAX_TAGS = 64;

const TAG_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

// What checkValue's loop refuses: a control but HTAB, CR and LF; a CR followed neither by
// whitespace nor by LF and whitespace; an LF not followed by whitespace.
// deno-lint-ignore no-control-regex
const BAD_VALUE_CHAR = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n?[ \t])|\n(?![ \t])/;

/**
 * Parses a tag list into an ordered map of tag name to value. Names are case-sensitive (RFC 6376
 * §3.2); values have their surrounding folding whitespace removed but keep inner whitespace (the
 * caller strips it where a tag's own grammar allows, as for base64 in `b=` and `bh=`). A
 * duplicate tag makes the whole list invalid (§3.2). Empty segments (as in `a=1;;b=2` or a
 * trailing `;`) are ignored, as Mail::DKIM and dkimpy ignore them. Values may hold 8-bit
 * characters (RFC 8616 allows UTF-8 in some tags); control characters other than folding
 * whitespace are refused.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTagList } from "./tag_list.ts";
 * const tags = parseTagList("v=1; a=rsa-sha256;\r\n\td=example.com; b=ab\r\n cd");
 * assert.equal(tags.get("d"), "example.com");
 * assert.equal(tags.get("b"), "ab\r\n cd");
 * assert.throws(() => parseTagList("a=1; a=2"), /duplicate tag "a"/);
 * ```
 */
export function parseTagList(text: string): Map<string, string> {
  const tags = new Map<string, string>();
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf(";", start);
    if (end === -1) end = text.length;
    const segment = text.slice(start, end);
    if (trimFws(segment) !== "") {
      const eq = segment.indexOf("=");
      if (eq === -1) {
        throw new TagListError(
          `Tag list segment "${shorten(segment)}" has no "="`,
          start,
        );
      }
      const name = trimFws(segment.slice(0, eq));
      if (!TAG_NAME.test(name)) {
        throw new TagListError(`Invalid tag name "${shorten(name)}"`, start);
      }
      const value = trimFws(segment.slice(eq + 1));
      checkValue(name, value, start + eq + 1);
      if (tags.has(name)) throw new TagListError(`Tag list has a duplicate tag "${name}"`, start);
      if (tags.size >= MAX_TAGS) {
        throw new TagListError(`Tag list has more than ${MAX_TAGS} tags`, start);
      }
      tags.set(name, value);
    }
    start = end + 1;
  }
  return tags;
}

// tag-value = [ tval *( 1*(WSP / FWS) tval ) ], tval = 1*VALCHAR (%x21-3A / %x3C-7E): no
// control characters inside a value except the folding whitespace between tvals.
function checkValue(name: string, value: string, offset: number): void {
  // One native scan finds what the loop below refuses (a control character, a line break not
  // followed by whitespace); the loop, which costs more on a folded b=, only runs to say where
  // (issue 20).
  if (!BAD_VALUE_CHAR.test(value)) return;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x20 || c === 0x09) continue;
    if (c === 0x0d || c === 0x0a) {
      // A fold must be followed by whitespace; a bare line break inside a value is not FWS.
      const next = value.charCodeAt(c === 0x0d && value.charCodeAt(i + 1) === 0x0a ? i + 2 : i + 1);
      if (next === 0x20 || next === 0x09) continue;
      throw new TagListError(`Tag "${name}" has a line break that is not folding`, offset + i);
    }
    if (c < 0x20 || c === 0x7f) {
      throw new TagListError(`Tag "${name}" has a control character in its value`, offset + i);
    }
  }
}

function shorten(text: string): string {
  const clean = text.replace(/[\r\n\t ]+/g, " ").trim();
  return clean.length > 40 ? `${clean.slice(0, 37)}...` : clean;
}

/**
 * Removes folding whitespace (RFC 6376 §3.2 FWS: SP, HTAB, CR, LF; bare LF folds are tolerated,
 * since milter header values can arrive with LF line ends) from both ends of `text`. A loop,
 * not a regular expression: `/[ \t\r\n]+$/` backtracks over every inner whitespace run, which
 * makes a 100 KB value with one long run inside take seconds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { trimFws } from "./tag_list.ts";
 * assert.equal(trimFws("\r\n\t a  b \r\n "), "a  b");
 * ```
 */
export function trimFws(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && isFws(text.charCodeAt(start))) start++;
  while (end > start && isFws(text.charCodeAt(end - 1))) end--;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}

function isFws(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}

/** Removes all whitespace from a tag value, as base64 tags (`b=`, `bh=`, `p=`) allow FWS inside. */
export function stripWhitespace(value: string): string {
  return value.replace(/[ \t\r\n]+/g, "");
}
