/**
 * The table edits of a rotation with `RotationOverlap`: for that long the new key signs beside
 * the old one (MultipleSignatures), so receivers see both selectors before the old one stops.
 * The new key gets its own KeyTable entry, {@link overlapKeyName}, on the line after the old
 * entry, and every SigningTable line that names the old entry gets a twin naming the new one.
 *
 * The order of the writes keeps every moment safe: on the way in the KeyTable line comes first
 * (an entry nothing names signs nothing), then the SigningTable twins; on the way out the twins
 * go first, then the KeyTable switches the old entry to the new key and drops the extra line in
 * one write. Each edit is idempotent, so a killed run repeats it harmlessly.
 *
 * @module
 */

import { KeyTableEditError } from "./key_table_edit.ts";

/**
 * The KeyTable name of the new key while both sign: the rotated entry's name and the new
 * selector, which no admin's entry is expected to have.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { overlapKeyName } from "./overlap_edit.ts";
 * assert.equal(overlapKeyName("main", "202612-rsa"), "main.rotate-202612-rsa");
 * ```
 */
export function overlapKeyName(keyName: string, newSelector: string): string {
  return `${keyName}.rotate-${newSelector}`;
}

/** The lines of `text` (a table file) whose first field is `name`, 0-based. */
function linesNamed(lines: readonly string[], name: string): number[] {
  const out: number[] = [];
  lines.forEach((l, i) => {
    if (/^\s*(\S+)/.exec(l)?.[1] === name) out.push(i);
  });
  return out;
}

/**
 * The KeyTable `text` with the overlap entry `name domain:selector:keyFile` on the line after
 * line `line` (1-based, the rotated entry's); unchanged when it is there already.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { addOverlapKey } from "./overlap_edit.ts";
 * const text = "main example.com:old:/k/old\nother example.org:s:/k/s\n";
 * const added = addOverlapKey(text, "/kt", 1, { name: "main.rotate-new", domain: "example.com", selector: "new", keyFile: "/k/new" });
 * assert.equal(added, "main example.com:old:/k/old\nmain.rotate-new example.com:new:/k/new\nother example.org:s:/k/s\n");
 * assert.equal(addOverlapKey(added, "/kt", 1, { name: "main.rotate-new", domain: "example.com", selector: "new", keyFile: "/k/new" }), added);
 * ```
 */
export function addOverlapKey(
  text: string,
  file: string,
  line: number,
  entry: { name: string; domain: string; selector: string; keyFile: string },
): string {
  const lines = text.split("\n");
  if (linesNamed(lines, entry.name).length > 0) return text;
  if (lines[line - 1] === undefined) {
    throw new KeyTableEditError(`Cannot add the overlap key at ${file}:${line}: no such line`);
  }
  if (/[\s:]/.test(entry.keyFile)) {
    throw new KeyTableEditError(
      `Cannot add the overlap key at ${file}:${line}: the key path "${entry.keyFile}" has a space or colon`,
    );
  }
  lines.splice(line, 0, `${entry.name} ${entry.domain}:${entry.selector}:${entry.keyFile}`);
  return lines.join("\n");
}

/**
 * The KeyTable `text` without the overlap entry `name`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { removeOverlapKey } from "./overlap_edit.ts";
 * assert.equal(removeOverlapKey("a x:s:/k\nm.rotate-n x:n:/n\n", "m.rotate-n"), "a x:s:/k\n");
 * ```
 */
export function removeOverlapKey(text: string, name: string): string {
  const lines = text.split("\n");
  const drop = new Set(linesNamed(lines, name));
  return lines.filter((_, i) => !drop.has(i)).join("\n");
}

/** A SigningTable line's value `keyname[:signer]` split, with the text around it. */
function signingValue(line: string): { head: string; key: string; rest: string } | undefined {
  const m = /^(\s*[^#\s]\S*\s+)([^:\s]+)(\S*\s*)$/.exec(line);
  return m ? { head: m[1], key: m[2], rest: m[3] } : undefined;
}

/**
 * The SigningTable `text` with, after each line naming the KeyTable entry `keyName`, a twin
 * naming `overlapName` (same pattern, same signer); unchanged when the twins are there. Throws
 * when no line names `keyName`: the new key would never sign.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { addOverlapSigners } from "./overlap_edit.ts";
 * const text = "# who signs\n*@example.com main\n*@example.org other\n";
 * const added = addOverlapSigners(text, "/st", "main", "main.rotate-new");
 * assert.equal(added, "# who signs\n*@example.com main\n*@example.com main.rotate-new\n*@example.org other\n");
 * assert.equal(addOverlapSigners(added, "/st", "main", "main.rotate-new"), added);
 * ```
 */
export function addOverlapSigners(
  text: string,
  file: string,
  keyName: string,
  overlapName: string,
): string {
  const lines = text.split("\n");
  if (lines.some((l) => signingValue(l)?.key === overlapName)) return text;
  const out: string[] = [];
  let found = false;
  for (const l of lines) {
    out.push(l);
    const v = signingValue(l);
    if (v?.key === keyName) {
      found = true;
      out.push(`${v.head}${overlapName}${v.rest}`);
    }
  }
  if (!found) {
    throw new KeyTableEditError(
      `Cannot sign with both keys: no line of the SigningTable ${file} names the KeyTable entry "${keyName}"`,
    );
  }
  return out.join("\n");
}

/**
 * The SigningTable `text` without the lines naming `overlapName`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { removeOverlapSigners } from "./overlap_edit.ts";
 * assert.equal(removeOverlapSigners("*@x main\n*@x main.rotate-n\n", "main.rotate-n"), "*@x main\n");
 * ```
 */
export function removeOverlapSigners(text: string, overlapName: string): string {
  return text.split("\n").filter((l) => signingValue(l)?.key !== overlapName).join("\n");
}
