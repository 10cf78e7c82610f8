/**
 * The check of an LDAP data set's filter (RFC 4515) at configuration time, without the LDAP
 * client: the rules, and the messages, of npm `ldapts`'s `FilterParser.parseString()` (8.2.0,
 * src/FilterParser.ts), which parses the filter again when a query is sent. Loading `ldapts`
 * only to read a configuration would put the whole client (about 0.5 MiB of JavaScript) into
 * every dkimd, most of which have no LDAP data set; tests/tables/ldap_filter_syntax_test.ts
 * checks that this check and `ldapts` accept and refuse the same filters, with the same message.
 *
 * @module
 */

/**
 * Throws an Error, with `ldapts`'s message, when `ldapts` could not parse `filter`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkLdapFilter } from "./ldap_filter_syntax.ts";
 * checkLdapFilter("(&(objectClass=dkimKey)(dkimKeyName=example.com))");
 * assert.throws(() => checkLdapFilter("(cn=x"), /^Error: Unbalanced parens: \(cn=x\./);
 * ```
 */
export function checkLdapFilter(filter: string): void {
  if (!filter) throw new Error("Filter cannot be empty");
  const text = filter.startsWith("(") ? filter : `(${filter})`;
  const end = parseItem(text, 0, text);
  if (end < text.length - 1) throw new Error(`Unbalanced parens in filter string: ${text}`);
}

// One parenthesised filter starting at `start`; returns the index of its closing parenthesis
// (as ldapts's `_parseString()`, whose quirks it keeps: a missing `)` after a set ends the
// set at the end of the text).
function parseItem(text: string, start: number, full: string): number {
  let cursor = start;
  if (text[cursor] !== "(") throw new Error(`Missing paren: ${text}. Full string: ${full}`);
  cursor += 1;
  switch (text[cursor]) {
    case "&":
    case "|": {
      cursor += 1;
      do {
        cursor = parseItem(text, cursor, full) + 1;
      } while (cursor < text.length && text[cursor] !== ")");
      return cursor;
    }
    case "!":
      return parseItem(text, cursor + 1, full) + 1;
    default: {
      const end = text.indexOf(")", cursor);
      if (end === -1) throw new Error(`Unbalanced parens: ${text}. Full string: ${full}`);
      checkItem(text.substring(cursor, end));
      return end;
    }
  }
}

// attr=*, attr=value, attr=sub*strings, attr>=, attr<=, attr~=, or an extensible match.
function checkItem(item: string): void {
  let rest: string;
  if (item.startsWith(":")) {
    rest = item;
  } else {
    const m = /^[\w-]+/.exec(item);
    if (!m) throw new Error(`Invalid attribute name: ${item}`);
    rest = item.slice(m[0].length);
  }
  if (rest === "=*") return;
  if (rest.startsWith("=")) {
    const value = rest.slice(1);
    if (!value.includes("*")) return checkValue(value);
    // A substring filter: each piece between the stars is a value, checked in ldapts's order
    // (the initial, the final, then the middle ones) so the same one is named.
    const pieces = value.split("*");
    for (const piece of [pieces[0], pieces[pieces.length - 1], ...pieces.slice(1, -1)]) {
      checkValue(piece);
    }
    return;
  }
  if (/^[><~]=/.test(rest)) return checkValue(rest.slice(2));
  if (rest.startsWith(":")) return checkExtensible(rest);
  throw new Error(`Invalid expression: ${item}`);
}

// `[:dn][:rule]:=value` (RFC 4515 §3, extensible).
function checkExtensible(text: string): void {
  const fields = text.split(":");
  fields.shift();
  if (fields[0]?.toLowerCase() === "dn") fields.shift();
  if (fields.length && !fields[0]?.startsWith("=")) fields.shift();
  if (fields.length && !fields[0]?.startsWith("=")) {
    throw new Error(`Missing := in extensible filter: ${text}`);
  }
  checkValue(fields.join(":").slice(1));
}

// A value: no bare `(`, and every `\` followed by two hex digits (RFC 4515 §3).
function checkValue(value: string): void {
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === "(") throw new Error(`Illegal unescaped character: ${c} in value: ${value}`);
    if (c === "\\") {
      const hex = value.slice(i + 1, i + 3);
      if (!/^[\dA-Fa-f]{2}$/.test(hex)) {
        throw new Error(`Invalid escaped hex character: ${hex} in value: ${value}`);
      }
      i += 2;
    }
  }
}
