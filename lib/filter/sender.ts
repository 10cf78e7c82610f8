/**
 * Finding the sender of a message: the first address in the first of the SenderHeaders fields
 * present (From by default), as OpenDKIM's signing decision uses it (opendkim(8) OPERATION).
 *
 * @module
 */
import { asciiLower } from "../bytes.ts";
import { fieldValueText, type HeaderField } from "../dkim/header.ts";

/** An address split at its last `@`. */
export interface Address {
  /** The local part, unquoted. */
  readonly user: string;
  /** The domain, lower-cased, without a trailing dot. */
  readonly domain: string;
}

/** Longest header value parsed for an address: a bound on work for hostile input. */
export const MAX_ADDRESS_FIELD_CHARS = 8192;

/**
 * The first mailbox address in an RFC 5322 address list: the text in angle brackets when there
 * is any, else the first word with an `@`. Comments (nested), quoted strings, display names and
 * groups are skipped. Returns undefined when no address can be found.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseAddress } from "./sender.ts";
 * assert.deepEqual(parseAddress('"Doe, Joe" (boss) <Joe@Example.COM>'), { user: "Joe", domain: "example.com" });
 * assert.deepEqual(parseAddress("joe@example.com (Joe)"), { user: "joe", domain: "example.com" });
 * assert.deepEqual(parseAddress("Team: a@example.org, b@example.org;"), { user: "a", domain: "example.org" });
 * assert.equal(parseAddress("undisclosed-recipients:;"), undefined);
 * ```
 */
export function parseAddress(value: string): Address | undefined {
  const text = value.length > MAX_ADDRESS_FIELD_CHARS
    ? value.slice(0, MAX_ADDRESS_FIELD_CHARS)
    : value;
  // Tokenize: quoted strings and comments are kept apart from the rest.
  let angle: string | undefined;
  let plain = "";
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === "(") {
      let depth = 1;
      i++;
      while (i < text.length && depth > 0) {
        if (text[i] === "\\") i++;
        else if (text[i] === "(") depth++;
        else if (text[i] === ")") depth--;
        i++;
      }
      plain += " ";
      continue;
    }
    if (c === '"') {
      let quoted = "";
      i++;
      while (i < text.length && text[i] !== '"') {
        if (text[i] === "\\" && i + 1 < text.length) i++;
        quoted += text[i];
        i++;
      }
      i++;
      // A quoted local part stays with what follows it ("a b"@example.com).
      plain += text[i] === "@" ? quoted.replace(/\s/g, "\u0000") : " ";
      continue;
    }
    if (c === "<") {
      const end = text.indexOf(">", i);
      if (end === -1) break;
      angle ??= text.slice(i + 1, end);
      i = end + 1;
      plain += " ";
      continue;
    }
    plain += c;
    i++;
  }
  const candidate = angle ?? plain.split(/[\s,;:]+/).find((w) => w.includes("@"));
  if (candidate === undefined) return undefined;
  // A source route (<@a,@b:user@example.com>) is obsolete syntax; keep what follows it.
  const spec = candidate.replace(/^@[^:]*:/, "").trim().replaceAll("\u0000", " ");
  const at = spec.lastIndexOf("@");
  if (at <= 0 || at === spec.length - 1) return undefined;
  const user = spec.slice(0, at).replace(/^"|"$/g, "");
  const domain = asciiLower(spec.slice(at + 1)).replace(/\.$/, "");
  if (!/^[a-z0-9_.-]+$/.test(domain) && !/^\[.*\]$/.test(domain)) return undefined;
  return { user, domain };
}

/** Where the sender came from. */
export interface Sender extends Address {
  /** The header field that named it. */
  readonly field: string;
}

/**
 * The sender a macro names (SenderMacro, such as `{mail_addr}`), as OpenDKIM reads it at end of
 * headers: undefined when the MTA did not send the macro or sent it empty, so the header fields
 * decide; otherwise its address, or `null` when it has none (OpenDKIM then falls back to nothing:
 * "can't parse macro").
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { macroSender } from "./sender.ts";
 * const macros = (name: string) => name === "mail_addr" ? "alice@example.com" : undefined;
 * assert.deepEqual(macroSender("{mail_addr}", macros), { user: "alice", domain: "example.com", field: "macro {mail_addr}" });
 * assert.equal(macroSender("{auth_authen}", macros), undefined);
 * ```
 */
export function macroSender(
  macro: string,
  macros: (name: string) => string | undefined,
): Sender | null | undefined {
  const name = macroName(macro);
  const value = macros(name);
  if (value === undefined || value.trim() === "") return undefined;
  const address = parseAddress(value);
  return address ? { ...address, field: `macro {${name}}` } : null;
}

/** A macro's name without braces, as the milter layer keys macros: `{mail_addr}` → `mail_addr`. */
export function macroName(macro: string): string {
  return macro.replace(/^\{(.*)\}$/, "$1");
}

/**
 * The sender of a message: the first address in the first field of `senderHeaders` (in that
 * order) that the message has. For a name present several times, the first (topmost) instance is
 * used, as OpenDKIM does.
 */
export function findSender(
  fields: readonly HeaderField[],
  senderHeaders: readonly string[],
): Sender | undefined {
  for (const name of senderHeaders) {
    const lower = asciiLower(name);
    const field = fields.find((f) => asciiLower(f.name) === lower);
    if (!field) continue;
    const address = parseAddress(fieldValueText(field));
    if (address) return { ...address, field: field.name };
  }
  return undefined;
}
