/**
 * Activation's edit of a KeyTable file: the one line of the rotated entry gets the new selector
 * and key file, everything else (comments, order, other entries, the key name the SigningTable
 * refers to) stays as it was, so the SigningTable needs no change. Pure: text in, text out.
 *
 * @module
 */

/** The line could not be edited: it is not the entry the rotation expects. */
export class KeyTableEditError extends Error {
  /** Says which file and line, and what was found there. */
  constructor(message: string) {
    super(message);
    this.name = "KeyTableEditError";
  }
}

/** What to change in one KeyTable line. */
export interface KeyTableEdit {
  /** The entry's name (first field). */
  readonly keyName: string;
  /** Its domain. */
  readonly domain: string;
  /** The selector the line must hold now. */
  readonly fromSelector: string;
  /** The selector it gets. */
  readonly toSelector: string;
  /** The key file it gets. */
  readonly toKeyFile: string;
}

/**
 * Rewrites line `line` (1-based) of the KeyTable file `text` (named `file` in errors): its value
 * `DOMAIN:SELECTOR:KEYFILE[:ALGORITHM]` gets `toSelector` and `toKeyFile`. Already edited (the
 * line holds `toSelector`): the text comes back unchanged, so a repeated activation is harmless.
 * Throws {@link KeyTableEditError} when the line is another entry.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { editKeyTableLine } from "./key_table_edit.ts";
 * const text = "# keys\nmain example.com:old:/keys/old.private\n";
 * const edit = { keyName: "main", domain: "example.com", fromSelector: "old", toSelector: "new", toKeyFile: "/keys/new.private" };
 * assert.equal(editKeyTableLine(text, "/kt", 2, edit), "# keys\nmain example.com:new:/keys/new.private\n");
 * ```
 */
export function editKeyTableLine(
  text: string,
  file: string,
  line: number,
  edit: KeyTableEdit,
): string {
  const lines = text.split("\n");
  const at = `${file}:${line}`;
  const current = lines[line - 1];
  if (current === undefined) throw new KeyTableEditError(`Cannot activate at ${at}: no such line`);
  const m = /^(\s*)(\S+)(\s+)([^:\s]+):([^:\s]+):([^:\s]+)(:[^\s]*)?(.*)$/.exec(current);
  if (!m || m[2] !== edit.keyName || m[4].toLowerCase() !== edit.domain.toLowerCase()) {
    throw new KeyTableEditError(
      `Cannot activate at ${at}: expected the entry "${edit.keyName}" for ${edit.domain}, found "${current.trim()}"`,
    );
  }
  const selector = m[5];
  if (selector === edit.toSelector) return text;
  if (selector !== edit.fromSelector) {
    throw new KeyTableEditError(
      `Cannot activate at ${at}: the entry "${edit.keyName}" has selector "${selector}", not "${edit.fromSelector}" (changed by hand?)`,
    );
  }
  if (/[\s:]/.test(edit.toKeyFile)) {
    throw new KeyTableEditError(
      `Cannot activate at ${at}: the key path "${edit.toKeyFile}" has a space or colon`,
    );
  }
  lines[line - 1] = `${m[1]}${m[2]}${m[3]}${m[4]}:${edit.toSelector}:${edit.toKeyFile}${
    m[7] ?? ""
  }${m[8]}`;
  return lines.join("\n");
}
