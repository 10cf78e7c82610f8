/**
 * Header folding for tests: unfolding a field (RFC 5322 §2.2.3), so a test can match a field's
 * text whatever its folding, and checking a folded field's lines against RFC 5322 §2.1.1 (at most
 * 998 characters; at most 78 where possible).
 *
 * @module
 */
import assert from "node:assert/strict";

/** The line RFC 5322 §2.1.1 says SHOULD not be exceeded, CRLF excluded. */
export const PREFERRED_LINE = 78;

/** The line RFC 5322 §2.1.1 says MUST not be exceeded, CRLF excluded. */
export const MAX_LINE = 998;

/**
 * `text` unfolded (RFC 5322 §2.2.3): every CRLF (or the bare LF an MTA stores lines with) that
 * comes before whitespace removed; the whitespace stays.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { unfold } from "./folding.ts";
 * assert.equal(unfold("a;\r\n\tb c\n d"), "a;\tb c d");
 * ```
 */
export function unfold(text: string): string {
  return text.replace(/\r?\n(?=[ \t])/g, "");
}

/**
 * The items of one line of a structured field: what whitespace outside quoted strings and
 * comments separates (RFC 5322 §3.2.2, §3.2.4), so a quoted reason with spaces is one item.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lineItems } from "./folding.ts";
 * assert.deepEqual(lineItems('\tdkim=fail (1 (2) \\)) reason="a \\" b"'), [
 *   "dkim=fail", "(1 (2) \\))", 'reason="a \\" b"',
 * ]);
 * ```
 */
export function lineItems(line: string): string[] {
  const items: string[] = [];
  let item = "";
  let quoted = false;
  let depth = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if ((quoted || depth > 0) && c === "\\") {
      item += c + (line[++i] ?? "");
      continue;
    }
    if (quoted) {
      if (c === '"') quoted = false;
    } else if (c === '"' && depth === 0) {
      quoted = true;
    } else if (c === "(") {
      depth++;
    } else if (c === ")" && depth > 0) {
      depth--;
    } else if ((c === " " || c === "\t") && depth === 0) {
      if (item !== "") items.push(item);
      item = "";
      continue;
    }
    item += c;
  }
  if (item !== "") items.push(item);
  return items;
}

/**
 * Asserts that a whole header field (`Name: value`, lines ending in CRLF or LF) is folded as RFC
 * 5322 §2.1.1 asks: no line over {@link MAX_LINE} characters, and none over
 * {@link PREFERRED_LINE} unless it holds a single item (the field name on the first line not
 * counted), which cannot be folded; every line after the first starts with whitespace. A tab
 * counts as one character, as RFC 5322 counts characters.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { assertFoldedField } from "./folding.ts";
 * assertFoldedField(`X: a;\r\n\t${"b".repeat(90)}`);
 * assert.throws(() => assertFoldedField(`X: a;${" b".repeat(40)}`));
 * ```
 */
export function assertFoldedField(field: string): void {
  const lines = field.replace(/\r?\n$/, "").split(/\r?\n/);
  lines.forEach((line, n) => {
    const where = `line ${n + 1} of ${JSON.stringify(field)}`;
    assert.ok(line.length <= MAX_LINE, `${where}: ${line.length} characters`);
    if (n > 0) assert.match(line, /^[ \t]/, `${where}: a continuation line starts with whitespace`);
    const items = lineItems(n === 0 ? line.replace(/^[^:]*:/, "") : line);
    assert.ok(
      line.length <= PREFERRED_LINE || items.length <= 1,
      `${where}: ${line.length} characters in ${items.length} items`,
    );
  });
}
