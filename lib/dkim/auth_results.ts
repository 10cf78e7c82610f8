/**
 * Authentication-Results (RFC 8601) for DKIM: rendering a verdict list, and reading the
 * authserv-id of an existing field so forged ones can be removed (RFC 8601 §5).
 *
 * @module
 */
import { messageReason, messageValue } from "./message_value.ts";
import type { Verdict } from "./result.ts";
import { dnssecWord } from "./key_security.ts";

/** The field name. */
export const AUTH_RESULTS_FIELD = "Authentication-Results";

/** Characters of `b=` shown in `header.b`: RFC 6008 §4 asks for at least 8. */
export const HEADER_B_LENGTH = 8;

/** How to render. */
export interface AuthResultsOptions {
  /** Leave out `header.b` (OpenDKIM's NoHeaderB). */
  readonly noHeaderB?: boolean;
  /** Leave out `header.a` and `header.s` (older readers know only d, i and b). */
  readonly brief?: boolean;
  /**
   * More results after the DKIM ones, each its properties in order (such as ARC's
   * `["arc=pass", "header.oldest-pass=0"]`): one field carries every result of one pass.
   */
  readonly extra?: readonly (readonly string[])[];
}

// RFC 2045 token: printable ASCII except space and tspecials.
const TOKEN = /^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$/;
// RFC 8601 pvalue forms that need no quoting: a domain name, or [local-part] "@" domain-name
// with a dot-atom local part.
const DOT_ATOM = "[!#$%&'*+\\-/=?^_`{|}~0-9A-Za-z]+(?:\\.[!#$%&'*+\\-/=?^_`{|}~0-9A-Za-z]+)*";
const DOMAIN = "[0-9A-Za-z_](?:[0-9A-Za-z_.-]*[0-9A-Za-z_])?";
const ADDRESS_LIKE = new RegExp(`^(?:${DOT_ATOM})?@${DOMAIN}$|^${DOMAIN}$`);

/**
 * A value as RFC 8601 wants it: bare when it is a token (or address-like), else quoted. Verdict
 * text can come from a hostile signature (an `i=` of `x=0D=0AX-Injected:=20yes@example.com`
 * decodes to a line break), and a quoted-string may hold only printable text and whitespace
 * (RFC 5322 §3.2.4): a fold is unfolded and every other control character becomes `?`, so the
 * value can neither end the field nor smuggle a new one in.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { quoteValue } from "./auth_results.ts";
 * assert.equal(quoteValue("mx.example.org"), "mx.example.org");
 * assert.equal(quoteValue('a "b"'), '"a \\"b\\""');
 * assert.equal(quoteValue("x\r\nX-Injected: yes@example.com", true), '"x??X-Injected: yes@example.com"');
 * ```
 */
export function quoteValue(value: string, addressLike = false): string {
  if (TOKEN.test(value) || (addressLike && ADDRESS_LIKE.test(value))) return value;
  return `"${printable(value).replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

function comment(text: string): string {
  return `(${printable(text).replace(/[()\\]/g, (c) => `\\${c}`)})`;
}

// RFC 5322 §3.2.2: unfolding removes a CRLF (or the bare LF milter values may carry) before
// whitespace; any other control character cannot appear in a quoted-string or comment.
function printable(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/\r?\n(?=[ \t])/g, "").replace(/[\0-\x08\x0a-\x1f\x7f]/g, "?");
}

/**
 * One `dkim=` result (a resinfo, RFC 8601 §2.2): the result, a comment with the key size, test
 * mode and any body content past `l=` the signature leaves unsigned (RFC 6376 §8.2), `reason=` for a failure, then `header.d`, `header.i`, `header.s`, `header.a` and
 * `header.b` (RFC 6008).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatDkimResult } from "./auth_results.ts";
 * const text = formatDkimResult({
 *   result: "fail", reason: "body hash did not verify", domain: "example.com",
 *   identity: "@example.com", selector: "s1", algorithm: "rsa-sha256", b: "ab/cdEFGhijk",
 *   key: { type: "rsa", bits: 2048, testing: false },
 * });
 * assert.equal(text, 'dkim=fail (2048-bit key) reason="body hash did not verify" header.d=example.com header.i=@example.com header.s=s1 header.a=rsa-sha256 header.b="ab/cdEFG"');
 * ```
 */
export function formatDkimResult(verdict: Verdict, options: AuthResultsOptions = {}): string {
  return dkimResultParts(verdict, options).join(" ");
}

/** Longest line of a header field, CRLF excluded (RFC 5322 §2.1.1). */
export const MAX_FIELD_LINE = 998;

// The properties of one resinfo, each value taken from the message cut and escaped
// (messageValue), so that none is longer than a few hundred characters.
function dkimResultParts(verdict: Verdict, options: AuthResultsOptions): string[] {
  const parts = [`dkim=${verdict.result}`];
  const notes: string[] = [];
  if (verdict.key && verdict.key.bits > 0) {
    // OpenDKIM's comment: "(2048-bit key; secure)", the DNSSEC word after the size.
    const dnssec = verdict.key.dnssec;
    notes.push(`${verdict.key.bits}-bit key${dnssec ? `; ${dnssecWord(dnssec)}` : ""}`);
  }
  if (verdict.key?.testing) notes.push("test mode");
  // A refused (policy) signature's reason already says how much of the body is unsigned.
  if (
    verdict.result === "pass" && verdict.unsignedBodyBytes !== undefined &&
    verdict.signature?.length !== undefined
  ) {
    notes.push(
      `${verdict.unsignedBodyBytes} unsigned body bytes after l=${verdict.signature.length}`,
    );
  }
  if (notes.length > 0) parts.push(comment(notes.join("; ")));
  if (verdict.reason !== undefined) {
    parts.push(`reason=${quoteValue(messageReason(verdict.reason))}`);
  }
  const value = (text: string, addressLike = false) => quoteValue(messageValue(text), addressLike);
  if (verdict.domain !== undefined) parts.push(`header.d=${value(verdict.domain, true)}`);
  if (verdict.identity !== undefined) parts.push(`header.i=${value(verdict.identity, true)}`);
  if (!options.brief) {
    if (verdict.selector !== undefined) parts.push(`header.s=${value(verdict.selector)}`);
    if (verdict.algorithm !== undefined) parts.push(`header.a=${value(verdict.algorithm)}`);
  }
  if (!options.noHeaderB && verdict.b) {
    parts.push(`header.b=${value(verdict.b.slice(0, HEADER_B_LENGTH))}`);
  }
  return parts;
}

/**
 * The line a header field should keep within where it can, CRLF excluded (RFC 5322 §2.1.1: "SHOULD
 * be no more than 78 characters"). A tab counts as one character: RFC 5322 counts characters, not
 * display columns.
 */
export const PREFERRED_FIELD_LINE = 78;

// What the first line holds before the value: the field name, the colon and the space dkimd
// puts after it.
const FIELD_PREFIX = AUTH_RESULTS_FIELD.length + 2;

// A field value from its groups of parts, each group starting a new line (a CRLF and a tab;
// the first after the field name), its parts joined by a space, and folded again before a part
// that would take the line past PREFERRED_FIELD_LINE: folds fall only at the whitespace RFC 8601
// allows between properties, so a part longer than a line stays whole on its own. No part is
// near MAX_FIELD_LINE (values from the message are cut), so no line passes it.
function foldGroups(groups: readonly (readonly string[])[]): string {
  const lines: string[] = [];
  for (const group of groups) {
    let line = "";
    for (const part of group) {
      const indent = lines.length === 0 ? FIELD_PREFIX : 1;
      if (line !== "" && indent + line.length + 1 + part.length > PREFERRED_FIELD_LINE) {
        lines.push(line);
        line = part;
      } else line = line === "" ? part : `${line} ${part}`;
    }
    lines.push(line);
  }
  return lines.join("\r\n\t");
}

/**
 * The value of an Authentication-Results field for a verdict list: the authserv-id, then one
 * `dkim=` result per signature, each starting a new line, folded again between properties where
 * the line, with the field name before the first, would pass {@link PREFERRED_FIELD_LINE}; a
 * property longer than that stays whole on its own line, within {@link MAX_FIELD_LINE} since
 * values taken from the message are cut and escaped (see `message_value.ts`). `dkim=none` when
 * the list is empty (RFC 8601 §2.7.1). Lines end in CRLF, as a message has them; the milter
 * sends them to the MTA as LF.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatAuthResults } from "./auth_results.ts";
 * assert.equal(formatAuthResults("mx.example.org", []), "mx.example.org; dkim=none");
 * ```
 */
export function formatAuthResults(
  authservId: string,
  verdicts: readonly Verdict[],
  options: AuthResultsOptions = {},
): string {
  const id = quoteValue(authservId, true);
  const extra = (options.extra ?? []).map((parts) => [...parts]);
  const results = verdicts.length === 0
    ? [["dkim=none"], ...extra]
    : [...verdicts.map((v) => dkimResultParts(v, options)), ...extra];
  // The ";" after each resinfo but the last is counted in its line.
  results.forEach((parts, n) => {
    if (n < results.length - 1) parts[parts.length - 1] += ";";
  });
  // No signature: "dkim=none" stays on the authserv-id's line.
  if (verdicts.length === 0) return foldGroups([[`${id};`, ...results[0]], ...results.slice(1)]);
  return foldGroups([[`${id};`], ...results]);
}

/**
 * The authserv-id of an Authentication-Results field value (RFC 8601 §2.2), or undefined when
 * the value does not start with one. Comments and folding whitespace around it are skipped; a
 * quoted-string is unquoted.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseAuthservId } from "./auth_results.ts";
 * assert.equal(parseAuthservId(" (forged) mx.example.org 1; dkim=pass"), "mx.example.org");
 * assert.equal(parseAuthservId('"mx.example.org"; none'), "mx.example.org");
 * assert.equal(parseAuthservId("  ; dkim=pass"), undefined);
 * ```
 */
export function parseAuthservId(value: string): string | undefined {
  let i = skipCfws(value, 0);
  if (i < 0 || i >= value.length) return undefined;
  if (value[i] === '"') {
    let out = "";
    for (i++; i < value.length; i++) {
      const c = value[i];
      if (c === "\\") {
        if (i + 1 < value.length) out += value[++i];
        continue;
      }
      if (c === '"') return out === "" ? undefined : out;
      out += c;
    }
    return undefined;
  }
  let end = i;
  while (end < value.length && !/[\s;()"]/.test(value[end])) end++;
  const token = value.slice(i, end);
  return token === "" ? undefined : token;
}

// Index after whitespace and (nested) comments from `i`, or -1 for an unclosed comment.
function skipCfws(text: string, start: number): number {
  let i = start;
  let depth = 0;
  while (i < text.length) {
    const c = text[i];
    if (depth > 0) {
      if (c === "\\") i++;
      else if (c === "(") depth++;
      else if (c === ")") depth--;
      i++;
      continue;
    }
    if (c === "(") {
      depth = 1;
      i++;
    } else if (c === " " || c === "\t" || c === "\r" || c === "\n") {
      i++;
    } else {
      return i;
    }
  }
  return depth > 0 ? -1 : i;
}
