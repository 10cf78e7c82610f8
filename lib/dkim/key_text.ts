/**
 * Writing DKIM key records (RFC 6376 §3.6.1) as text: the record value a TXT lookup returns, and
 * the zone-file line `opendkim-genkey` puts in `SELECTOR.txt`, in the same layout so tools and
 * people that read those files keep working:
 *
 * ```text
 * dkim._domainkey	IN	TXT	( "v=DKIM1; h=sha256; k=rsa; "
 * 	  "p=MIIBIjANBgkqh...(250 characters)"
 * 	  "...rest of the key" )  ; ----- DKIM key dkim for example.com
 * ```
 *
 * A TXT record is a list of character-strings of at most 255 bytes each (RFC 1035 §3.3) that
 * verifiers join without separators (RFC 6376 §3.6.2.2); opendkim-genkey cuts `p=` every 250
 * characters, and the tags before it are cut at 255 bytes when a long note makes them longer.
 *
 * @module
 */
import { toBase64, utf8 } from "../bytes.ts";
import type { KeyType } from "../crypto/key_type.ts";

/** Longest character-string in a TXT record, in bytes: its length is one octet (RFC 1035 §3.3). */
export const MAX_CHARACTER_STRING_BYTES = 255;

/** Characters of `p=` per character-string after the first, as opendkim-genkey 2.11 writes them. */
export const KEY_CHUNK_CHARS = 250;

/**
 * Longest note (`n=`) accepted, in bytes before encoding: notes are for humans, and a long one
 * only grows every key lookup's answer (a 2048-bit record is about 420 bytes).
 */
export const MAX_NOTE_BYTES = 512;

/** The tags of a key record to write. */
export interface KeyRecordSpec {
  /** `k=`: the key type. */
  readonly keyType: KeyType;
  /** The bytes published in `p=` (SubjectPublicKeyInfo for RSA, raw 32 bytes for Ed25519). */
  readonly publicKey: Uint8Array;
  /** `h=`: the hash algorithms allowed; no `h=` tag (all allowed) when absent. */
  readonly hashes?: readonly string[];
  /** `n=`: a note for humans, written quoted as opendkim-genkey writes it. */
  readonly note?: string;
  /** `t=y`: the domain is testing DKIM (RFC 6376 §3.6.1). */
  readonly testing?: boolean;
  /** `t=s`: the `i=` domain must equal `d=`, no subdomains (RFC 6376 §3.6.1). */
  readonly noSubdomains?: boolean;
  /** `s=email`: the key is for email only. */
  readonly emailOnly?: boolean;
}

/** Where the zone-file line goes, for {@link formatZoneFileRecord}. */
export interface ZoneFileOptions {
  /** The selector: the owner name is `SELECTOR._domainkey`. */
  readonly selector: string;
  /** The signing domain, named in the trailing comment; no comment when empty. */
  readonly domain: string;
  /** Write the owner name absolute, `SELECTOR._domainkey.DOMAIN.` (opendkim-genkey `-a`). */
  readonly appendDomain?: boolean;
}

/**
 * A note the record cannot hold: longer than {@link MAX_NOTE_BYTES}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeNote, KeyNoteError } from "./key_text.ts";
 * assert.throws(() => encodeNote("x".repeat(600)), KeyNoteError);
 * ```
 */
export class KeyNoteError extends RangeError {
  /** Makes the error with `message`. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "KeyNoteError";
  }
}

/**
 * Encodes a note for `n=`, a qp-section (RFC 6376 §3.6.1, §2.11): characters outside the safe
 * set become `=XX` of their UTF-8 bytes, and so do `"` and `\`, which would need zone-file
 * escapes, and spaces at either end. Inner spaces stay, as in opendkim-genkey's notes. Throws
 * {@link KeyNoteError} for a note over {@link MAX_NOTE_BYTES} bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeNote } from "./key_text.ts";
 * assert.equal(encodeNote("rotated 2026-11"), "rotated 2026-11");
 * assert.equal(encodeNote("a;b=c café"), "a=3Bb=3Dc caf=C3=A9");
 * ```
 */
export function encodeNote(note: string): string {
  const bytes = utf8(note);
  if (bytes.length > MAX_NOTE_BYTES) {
    throw new KeyNoteError(
      `Cannot use a note of ${bytes.length} bytes: at most ${MAX_NOTE_BYTES} are allowed`,
    );
  }
  let out = "";
  bytes.forEach((b, i) => {
    const safe = b >= 0x21 && b <= 0x7e && b !== 0x3b && b !== 0x3d && b !== 0x22 && b !== 0x5c;
    const innerSpace = b === 0x20 && i > 0 && i < bytes.length - 1;
    out += safe || innerSpace
      ? String.fromCharCode(b)
      : `=${b.toString(16).toUpperCase().padStart(2, "0")}`;
  });
  return out;
}

/** The tags before `p=`, as opendkim-genkey orders and spaces them, ending with a space. */
function tagsBeforeKey(spec: KeyRecordSpec): string {
  let text = "v=DKIM1;";
  if (spec.note !== undefined) text += ` n="${encodeNote(spec.note)}";`;
  if (spec.hashes !== undefined) text += ` h=${spec.hashes.join(":")};`;
  text += ` k=${spec.keyType}; `;
  const flags = [spec.testing ? "y" : "", spec.noSubdomains ? "s" : ""].filter((f) => f !== "");
  if (flags.length > 0) text += `t=${flags.join(":")}; `;
  if (spec.emailOnly) text += "s=email; ";
  return text;
}

/**
 * Cuts ASCII text into pieces of at most `max` characters (bytes), the most a TXT
 * character-string holds; an empty text gives one empty piece.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { splitCharacterStrings } from "./key_text.ts";
 * assert.deepEqual(splitCharacterStrings("abcde", 2), ["ab", "cd", "e"]);
 * assert.deepEqual(splitCharacterStrings(""), [""]);
 * ```
 */
export function splitCharacterStrings(text: string, max = MAX_CHARACTER_STRING_BYTES): string[] {
  if (!Number.isInteger(max) || max < 1 || max > MAX_CHARACTER_STRING_BYTES) {
    throw new RangeError(
      `Invalid character-string size ${max}: expected 1..${MAX_CHARACTER_STRING_BYTES}`,
    );
  }
  const pieces: string[] = [];
  for (let i = 0; i < text.length; i += max) pieces.push(text.slice(i, i + max));
  return pieces.length > 0 ? pieces : [""];
}

/**
 * The character-strings of the key record in opendkim-genkey's layout: the tags before `p=`
 * (cut at 255 bytes if a note makes them longer), then `p=` with the first 250 base64
 * characters, then 250 characters per string. Joined, they are the record a lookup returns.
 * Throws {@link KeyNoteError} for an unusable note.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { keyRecordStrings } from "./key_text.ts";
 * const strings = keyRecordStrings({ keyType: "ed25519", publicKey: new Uint8Array(32) });
 * assert.deepEqual(strings, [
 *   "v=DKIM1; k=ed25519; ",
 *   "p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
 * ]);
 * ```
 */
export function keyRecordStrings(spec: KeyRecordSpec): string[] {
  const p = toBase64(spec.publicKey);
  const strings = splitCharacterStrings(tagsBeforeKey(spec));
  strings.push(`p=${p.slice(0, KEY_CHUNK_CHARS)}`);
  for (let i = KEY_CHUNK_CHARS; i < p.length; i += KEY_CHUNK_CHARS) {
    strings.push(p.slice(i, i + KEY_CHUNK_CHARS));
  }
  return strings;
}

/**
 * The key record as one string, as a TXT lookup joins it (RFC 6376 §3.6.2.2) and as OpenDKIM's
 * TestPublicKeys file and `dkimd verify --test-keys` take it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatKeyRecord } from "./key_text.ts";
 * import { parseKeyRecord } from "./key_record.ts";
 * const text = formatKeyRecord({
 *   keyType: "ed25519", publicKey: new Uint8Array(32), testing: true, note: "new key",
 * });
 * assert.equal(text, 'v=DKIM1; n="new key"; k=ed25519; t=y; p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=');
 * assert.deepEqual(parseKeyRecord(text).flags, ["y"]);
 * ```
 */
export function formatKeyRecord(spec: KeyRecordSpec): string {
  return keyRecordStrings(spec).join("");
}

/** A character-string in zone-file syntax: quoted, with `"` and `\` escaped (RFC 1035 §5.1). */
function quoted(text: string): string {
  return `"${text.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/**
 * The zone-file text opendkim-genkey writes to `SELECTOR.txt`: owner `SELECTOR._domainkey`
 * (absolute with `appendDomain`), tabs, the character-strings of {@link keyRecordStrings} in
 * parentheses one per line, and the comment `; ----- DKIM key SELECTOR for DOMAIN`; ends with a
 * newline. The selector and domain must already be valid names.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatZoneFileRecord } from "./key_text.ts";
 * const text = formatZoneFileRecord(
 *   { keyType: "ed25519", publicKey: new Uint8Array(32) },
 *   { selector: "ed", domain: "example.com" },
 * );
 * assert.equal(
 *   text,
 *   'ed._domainkey\tIN\tTXT\t( "v=DKIM1; k=ed25519; "\n' +
 *     '\t  "p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" )  ; ----- DKIM key ed for example.com\n',
 * );
 * ```
 */
export function formatZoneFileRecord(spec: KeyRecordSpec, options: ZoneFileOptions): string {
  const owner = `${options.selector}._domainkey` +
    (options.appendDomain ? `.${options.domain}.` : "");
  const strings = keyRecordStrings(spec).map(quoted).join("\n\t  ");
  const comment = options.domain !== ""
    ? ` ; ----- DKIM key ${options.selector} for ${options.domain}`
    : "";
  return `${owner}\tIN\tTXT\t( ${strings} ) ${comment}\n`;
}

/**
 * A zone-file TXT record that cannot be read; `offset` is where, counted from 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseZoneFileRecord, ZoneFileSyntaxError } from "./key_text.ts";
 * assert.throws(() => parseZoneFileRecord('s IN TXT ( "a"'), (e) => e instanceof ZoneFileSyntaxError);
 * ```
 */
export class ZoneFileSyntaxError extends SyntaxError {
  /** Character offset of the problem in the text. */
  readonly offset: number;

  /** Makes the error for the problem `message` at `offset`. */
  constructor(message: string, offset: number, options?: ErrorOptions) {
    super(`Cannot read the TXT record at character ${offset + 1}: ${message}`, options);
    this.name = "ZoneFileSyntaxError";
    this.offset = offset;
  }
}

/** Largest zone-file text {@link parseZoneFileRecord} reads: a TXT RDATA is at most 64 KiB. */
export const MAX_ZONE_FILE_RECORD_CHARS = 256 * 1024;

/** A TXT record read from zone-file text. */
export interface ZoneFileRecord {
  /** The owner name as written, such as `dkim._domainkey` or `dkim._domainkey.example.com.`. */
  readonly owner: string;
  /** The character-strings, unescaped, one byte per character. */
  readonly strings: readonly string[];
  /** The strings joined: the record a lookup returns (RFC 6376 §3.6.2.2). */
  readonly record: string;
}

/**
 * Reads one TXT record in zone-file syntax (RFC 1035 §5.1), as opendkim-genkey and
 * {@link formatZoneFileRecord} write it: owner, optional TTL and class, `TXT`, then quoted
 * character-strings, optionally in parentheses over several lines, with `\"`, `\\` and `\DDD`
 * escapes, and `;` comments. A string over 255 bytes is an error, as in any zone loader.
 * Throws {@link ZoneFileSyntaxError}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseZoneFileRecord } from "./key_text.ts";
 * const r = parseZoneFileRecord('s._domainkey\tIN\tTXT\t( "v=DKIM1; k=rsa; "\n\t  "p=AB" )  ; key\n');
 * assert.equal(r.owner, "s._domainkey");
 * assert.equal(r.record, "v=DKIM1; k=rsa; p=AB");
 * ```
 */
export function parseZoneFileRecord(text: string): ZoneFileRecord {
  if (text.length > MAX_ZONE_FILE_RECORD_CHARS) {
    throw new ZoneFileSyntaxError(
      `the text is longer than ${MAX_ZONE_FILE_RECORD_CHARS} characters`,
      MAX_ZONE_FILE_RECORD_CHARS,
    );
  }
  const tokens: { text: string; quoted: boolean; offset: number }[] = [];
  let depth = 0;
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === ";") {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (c === "\n") {
      if (depth === 0 && tokens.length > 0) break;
      i++;
    } else if (c === " " || c === "\t" || c === "\r") {
      i++;
    } else if (c === "(") {
      depth++;
      i++;
    } else if (c === ")") {
      if (--depth < 0) throw new ZoneFileSyntaxError('")" without "("', i);
      i++;
    } else if (c === '"') {
      const start = i++;
      let value = "";
      while (true) {
        if (i >= text.length) throw new ZoneFileSyntaxError("unterminated string", start);
        const d = text[i];
        if (d === '"') break;
        if (d === "\\") {
          const digits = text.slice(i + 1, i + 4);
          if (/^[0-9]{3}$/.test(digits)) {
            const code = Number(digits);
            if (code > 255) throw new ZoneFileSyntaxError(`escape "\\${digits}" is over 255`, i);
            value += String.fromCharCode(code);
            i += 4;
            continue;
          }
          if (i + 1 >= text.length) throw new ZoneFileSyntaxError("unterminated string", start);
          value += text[i + 1];
          i += 2;
          continue;
        }
        if (d.charCodeAt(0) > 0xff) {
          throw new ZoneFileSyntaxError("a character outside latin1 in a string", i);
        }
        value += d;
        i++;
      }
      i++;
      if (value.length > MAX_CHARACTER_STRING_BYTES) {
        throw new ZoneFileSyntaxError(
          `a string of ${value.length} bytes; at most ${MAX_CHARACTER_STRING_BYTES} fit (RFC 1035 §3.3)`,
          start,
        );
      }
      tokens.push({ text: value, quoted: true, offset: start });
    } else {
      const start = i;
      while (i < text.length && !/[\s;()"]/.test(text[i])) i++;
      tokens.push({ text: text.slice(start, i), quoted: false, offset: start });
    }
  }
  if (depth !== 0) throw new ZoneFileSyntaxError('"(" without ")"', text.length);
  const typeAt = tokens.findIndex((t) => !t.quoted && t.text.toUpperCase() === "TXT");
  if (typeAt < 1 || tokens[0].quoted) {
    throw new ZoneFileSyntaxError("expected an owner name, then TXT", tokens[0]?.offset ?? 0);
  }
  for (const t of tokens.slice(1, typeAt)) {
    if (t.quoted || !/^(?:[0-9]+|IN)$/i.test(t.text)) {
      throw new ZoneFileSyntaxError(`"${t.text}" is not a TTL or the class IN`, t.offset);
    }
  }
  const strings = tokens.slice(typeAt + 1);
  if (strings.length === 0) throw new ZoneFileSyntaxError("TXT without strings", text.length);
  const bare = strings.find((t) => !t.quoted);
  if (bare) throw new ZoneFileSyntaxError(`"${bare.text}" is not a quoted string`, bare.offset);
  return {
    owner: tokens[0].text,
    strings: strings.map((t) => t.text),
    record: strings.map((t) => t.text).join(""),
  };
}
