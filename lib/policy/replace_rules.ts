/**
 * ReplaceRules: text replacements OpenDKIM applies to header field values as they arrive, before
 * they are signed or verified, so a signature covers what a later MTA rewrite (a masquerading
 * From) will make of them (opendkim.conf(5); `mlfi_header()` and `dkimf_load_replist()`). The
 * message itself is not changed: no field is sent back to the MTA.
 *
 * @module
 */
import { type Origin, SourceError } from "./origin.ts";

/** One rule: a POSIX basic regular expression and its literal replacement. */
export interface ReplaceRule {
  /** The expression as written. */
  readonly source: string;
  /** Its translation. */
  readonly pattern: RegExp;
  /** The text that replaces each match (no back-references, as in OpenDKIM). */
  readonly replacement: string;
}

/**
 * Most replacements one rule makes in one field value. OpenDKIM replaces until the expression no
 * longer matches, and loops forever when the replacement matches again (or the expression
 * matches the empty string); dkimd stops there.
 */
export const MAX_REPLACEMENTS_PER_RULE = 100;

/**
 * Reads a ReplaceRules file as `dkimf_load_replist()` does: `#` starts a comment anywhere, blank
 * lines are skipped, and each other line is an expression, a tab (the last one), and the
 * replacement. The rules come back in the order OpenDKIM applies them: the last line first.
 * A line without a tab, or an expression that does not compile, throws a {@link SourceError}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { applyReplaceRules, parseReplaceRules } from "./replace_rules.ts";
 * const rules = parseReplaceRules("# masquerade\n@host\\.example\\.com\t@example.com\n", "rules");
 * assert.equal(applyReplaceRules(" Al <al@host.example.com>", rules), " Al <al@example.com>");
 * ```
 */
export function parseReplaceRules(text: string, file: string): ReplaceRule[] {
  const rules: ReplaceRule[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/#.*$/, "");
    if (/^[ \t\r\f\v]*$/.test(line)) return;
    const origin: Origin = { file, line: i + 1 };
    const tab = line.lastIndexOf("\t");
    if (tab === -1) {
      throw new SourceError(
        "Cannot parse ReplaceRules",
        origin,
        "expected an expression, a tab and the replacement",
      );
    }
    const source = line.slice(0, tab);
    let pattern: RegExp;
    try {
      pattern = basicRegExp(source);
    } catch (e) {
      throw new SourceError(
        "Cannot parse ReplaceRules",
        origin,
        `"${source}" is not a regular expression`,
        { cause: e },
      );
    }
    rules.unshift({ source, pattern, replacement: line.slice(tab + 1) });
  });
  return rules;
}

/**
 * Applies `rules` in order to a field value (as the MTA sent it), each until its expression no
 * longer matches (at most {@link MAX_REPLACEMENTS_PER_RULE} times), as `mlfi_header()` does.
 */
export function applyReplaceRules(value: string, rules: readonly ReplaceRule[]): string {
  for (const rule of rules) {
    for (let n = 0; n < MAX_REPLACEMENTS_PER_RULE; n++) {
      const m = rule.pattern.exec(value);
      if (m === null) break;
      value = value.slice(0, m.index) + rule.replacement + value.slice(m.index + m[0].length);
    }
  }
  return value;
}

const CLASSES: Record<string, string> = {
  alpha: "A-Za-z",
  digit: "0-9",
  alnum: "A-Za-z0-9",
  upper: "A-Z",
  lower: "a-z",
  space: " \\t\\n\\r\\f\\v",
  blank: " \\t",
  punct: "!-\\/:-@\\[-`{-~",
  print: " -~",
  graph: "!-~",
  cntrl: "\\x00-\\x1f\\x7f",
  xdigit: "0-9A-Fa-f",
};

/**
 * Translates a POSIX basic regular expression (regcomp() without REG_EXTENDED, with glibc's
 * `\+`, `\?`, `\|`, `\<`, `\>`) to a JavaScript one. `.` matches any byte, line ends included.
 */
export function basicRegExp(bre: string): RegExp {
  let out = "";
  let i = 0;
  // Where `*` is literal and `^` an anchor: at the start and after `\(` or `\|`.
  let atStart = true;
  while (i < bre.length) {
    const c = bre[i];
    const start = atStart;
    atStart = false;
    if (c === "\\") {
      const d = bre[i + 1];
      i += 2;
      if (d === undefined) throw new SyntaxError("trailing backslash");
      if (d === "(" || d === "|") {
        out += d;
        atStart = true;
      } else if (d === ")" || d === "{" || d === "}" || d === "+" || d === "?") out += d;
      else if (/[1-9]/.test(d)) out += `\\${d}`;
      else if (d === "<" || d === ">") out += "\\b";
      else if (/[wWsSbB]/.test(d)) out += `\\${d}`;
      else out += escapeChar(d);
      continue;
    }
    if (c === "[") {
      const [text, next] = bracket(bre, i);
      out += text;
      i = next;
      continue;
    }
    i++;
    if (c === "^") out += start ? "^" : "\\^";
    else if (c === "$") out += i === bre.length || bre.startsWith("\\)", i) ? "$" : "\\$";
    else if (c === "*") out += start ? "\\*" : "*";
    else if (c === ".") out += ".";
    else out += escapeChar(c);
    if (c === "^" && start) atStart = true;
  }
  return new RegExp(out, "s");
}

function escapeChar(c: string): string {
  return /[\\^$.*+?()[\]{}|\/-]/.test(c) ? `\\${c}` : c;
}

// A bracket expression from `[` at `at`: its translation and the index after its `]`.
function bracket(bre: string, at: number): [string, number] {
  let i = at + 1;
  let out = "[";
  if (bre[i] === "^") {
    out += "^";
    i++;
  }
  let first = true;
  while (i < bre.length) {
    const c = bre[i];
    if (c === "]" && !first) return [out + "]", i + 1];
    first = false;
    if (c === "[" && bre[i + 1] === ":") {
      const end = bre.indexOf(":]", i + 2);
      const name = end === -1 ? undefined : CLASSES[bre.slice(i + 2, end)];
      if (name === undefined) throw new SyntaxError("unknown character class");
      out += name;
      i = end + 2;
      continue;
    }
    // A backslash is literal in a POSIX bracket expression; `-` keeps its meaning.
    out += c === "\\" || c === "]" || c === "[" || c === "^" ? `\\${c}` : c;
    i++;
  }
  throw new SyntaxError("unterminated bracket expression");
}
