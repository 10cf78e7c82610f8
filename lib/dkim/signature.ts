/**
 * The DKIM-Signature header field (RFC 6376 §3.5): parsing and validation for verifiers, and
 * building and folding for signers.
 *
 * @module
 */
import { asciiLower, COLON, CR, fromBase64, fromLatin1, HTAB, latin1, LF, SP } from "../bytes.ts";
import { slabBytes } from "../byte_slab.ts";
import type { HashAlgorithm } from "../crypto/hash.ts";
import type { KeyType } from "../crypto/key_type.ts";
import type { Canonicalization } from "./canon_header.ts";
import { fieldValue, type HeaderField } from "./header.ts";
import { MalformedSignatureError, UnsupportedSignatureError } from "./dkim_error.ts";
import { parseTagList, stripWhitespace, TagListError, trimFws } from "./tag_list.ts";

/** What is known about a signature even when it could not be parsed in full. */
export interface SignatureSummary {
  /** `d=`, lower-cased. */
  readonly domain?: string;
  /** `s=`. */
  readonly selector?: string;
  /** `i=`, or `@` + `d=` when absent. */
  readonly identity?: string;
  /** `a=`. */
  readonly algorithm?: string;
  /** `b=` without whitespace, for `header.b` (RFC 6008). */
  readonly b?: string;
}

/** The name of the field, as signers write it. */
export const SIGNATURE_FIELD = "DKIM-Signature";

/** A signing algorithm (`a=`): its key type and hash. */
export interface SigningAlgorithm {
  /** The `a=` value, e.g. `rsa-sha256`. */
  readonly name: AlgorithmName;
  /** Key type. */
  readonly keyType: KeyType;
  /** Hash algorithm. */
  readonly hash: HashAlgorithm;
}

/** The `a=` values dkimd knows: RFC 6376 §3.3 and RFC 8463 §3. */
export type AlgorithmName = "rsa-sha256" | "rsa-sha1" | "ed25519-sha256";

/** Every known algorithm by name. */
export const ALGORITHMS: Readonly<Record<AlgorithmName, SigningAlgorithm>> = {
  "rsa-sha256": { name: "rsa-sha256", keyType: "rsa", hash: "sha256" },
  "rsa-sha1": { name: "rsa-sha1", keyType: "rsa", hash: "sha1" },
  "ed25519-sha256": { name: "ed25519-sha256", keyType: "ed25519", hash: "sha256" },
};

/** A parsed, validated DKIM-Signature field. */
export interface Signature {
  /** The field it came from. */
  readonly field: HeaderField;
  /** All tags as parsed. */
  readonly tags: ReadonlyMap<string, string>;
  /** `a=`. */
  readonly algorithm: SigningAlgorithm;
  /** `b=`, decoded. */
  readonly signature: Uint8Array;
  /** `b=` as written, whitespace removed. */
  readonly b: string;
  /** `bh=`, decoded. */
  readonly bodyHash: Uint8Array;
  /** `c=` header part (default simple). */
  readonly headerCanonicalization: Canonicalization;
  /** `c=` body part (default simple). */
  readonly bodyCanonicalization: Canonicalization;
  /** `d=`, lower-cased. */
  readonly domain: string;
  /** `s=`. */
  readonly selector: string;
  /** `h=`: the signed field names, in order, as written. */
  readonly headers: readonly string[];
  /** `i=` decoded from dkim-quoted-printable, or `@` + `d=` when absent (RFC 6376 §3.5). */
  readonly identity: string;
  /** `l=`, when present. */
  readonly length?: number;
  /** `t=`, seconds since the epoch, when present. */
  readonly timestamp?: number;
  /** `x=`, seconds since the epoch, when present. */
  readonly expiration?: number;
}

/** Longest `l=`, `t=` or `x=` value accepted: beyond 2^53 numbers lose precision in JavaScript. */
const MAX_SAFE_DIGITS = 15;

/**
 * What can be read from a DKIM-Signature field without validating it, for reporting a
 * signature that fails to parse.
 */
export function summarizeSignature(field: HeaderField): SignatureSummary {
  try {
    const tags = parseTagList(latin1(fieldValue(field)));
    const domain = tags.get("d");
    return {
      domain: domain === undefined ? undefined : asciiLower(domain),
      selector: tags.get("s"),
      identity: tags.get("i") ?? (domain === undefined ? undefined : `@${asciiLower(domain)}`),
      algorithm: tags.get("a"),
      b: tags.has("b") ? stripWhitespace(tags.get("b")!) : undefined,
    };
  } catch {
    return {};
  }
}

/**
 * Parses and validates a DKIM-Signature field (RFC 6376 §3.5, §6.1.1). Problems throw one of
 * the two errors of a field RFC 6376 §6.1.1 ignores (`permerror`, and the message treated as if
 * the field were absent): {@link MalformedSignatureError} for syntax errors (missing or
 * malformed required tags, a tag twice, `i=` not in `d=`, `h=` without From, `x=` not after
 * `t=`), {@link UnsupportedSignatureError} for well-formed values dkimd does not implement
 * (`v=` other than 1, unknown `a=`, `c=` or `q=`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSignature } from "./signature.ts";
 * import { utf8 } from "../bytes.ts";
 * const raw = utf8("DKIM-Signature: v=1; a=rsa-sha256; d=Example.com; s=sel;\r\n h=from:to; bh=AAAA; b=AAAA");
 * const sig = parseSignature({ name: "DKIM-Signature", raw });
 * assert.equal(sig.domain, "example.com");
 * assert.equal(sig.identity, "@example.com");
 * assert.equal(sig.headerCanonicalization, "simple");
 * ```
 */
export function parseSignature(field: HeaderField): Signature {
  let tags: Map<string, string>;
  try {
    tags = parseTagList(latin1(fieldValue(field)));
  } catch (e) {
    if (e instanceof TagListError) {
      throw new MalformedSignatureError(`signature syntax error: ${e.message}`, { cause: e });
    }
    throw e;
  }
  const required = (name: string): string => {
    const v = tags.get(name);
    if (v === undefined) {
      throw new MalformedSignatureError(`signature missing required tag (${name}=)`);
    }
    return v;
  };
  const version = required("v");
  if (version !== "1") {
    throw new UnsupportedSignatureError(`unsupported signature version "${version}"`);
  }

  const aName = asciiLower(required("a"));
  const algorithm = ALGORITHMS[aName as AlgorithmName];
  if (!algorithm) throw new UnsupportedSignatureError(`unsupported algorithm "${aName}"`);

  const b = stripWhitespace(required("b"));
  const signature = decodeBase64Tag("b", b);
  if (signature.length === 0) throw new MalformedSignatureError("signature syntax error: empty b=");
  const bodyHash = decodeBase64Tag("bh", stripWhitespace(required("bh")));

  const [headerCanonicalization, bodyCanonicalization] = parseCanonicalization(
    tags.get("c") ?? "simple/simple",
  );

  const domain = asciiLower(required("d"));
  if (!isDomainName(domain)) {
    throw new MalformedSignatureError(`signature syntax error: invalid d= "${domain}"`);
  }
  const selector = required("s");
  if (!isSelector(selector)) {
    throw new MalformedSignatureError(`signature syntax error: invalid s= "${selector}"`);
  }

  const headers = required("h").split(":").map(trimFws);
  if (headers.some((h) => !/^[\x21-\x39\x3b-\x7e]+$/.test(h))) {
    throw new MalformedSignatureError("signature syntax error: invalid h= list");
  }
  if (!headers.some((h) => asciiLower(h) === "from")) {
    throw new MalformedSignatureError("From field not signed");
  }

  const rawIdentity = tags.get("i");
  const identity = rawIdentity === undefined
    ? `@${domain}`
    : decodeQuotedPrintable(stripWhitespace(rawIdentity));
  const at = identity.lastIndexOf("@");
  if (at === -1) {
    throw new MalformedSignatureError(`signature syntax error: invalid i= "${identity}"`);
  }
  const identityDomain = asciiLower(identity.slice(at + 1));
  if (identityDomain !== domain && !identityDomain.endsWith(`.${domain}`)) {
    throw new MalformedSignatureError("i= domain not within d= domain");
  }

  const query = tags.get("q");
  if (query !== undefined && !query.split(":").some((q) => asciiLower(q.trim()) === "dns/txt")) {
    throw new UnsupportedSignatureError(`unsupported query method "${query}"`);
  }

  const length = optionalNumber(tags, "l");
  const timestamp = optionalNumber(tags, "t");
  const expiration = optionalNumber(tags, "x");
  if (timestamp !== undefined && expiration !== undefined && expiration <= timestamp) {
    throw new MalformedSignatureError("signature syntax error: x= is not after t=");
  }

  return {
    field,
    tags,
    algorithm,
    signature,
    b,
    bodyHash,
    headerCanonicalization,
    bodyCanonicalization,
    domain,
    selector,
    headers,
    identity,
    length,
    timestamp,
    expiration,
  };
}

/**
 * The field with the value of its `b=` tag deleted, surrounding whitespace included, as the
 * header hash sees it (RFC 6376 §3.5 `b=`, §3.7). Every other byte is kept as it is.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { withoutSignatureValue } from "./signature.ts";
 * import { latin1, utf8 } from "../bytes.ts";
 * const raw = utf8("DKIM-Signature: v=1; bh=X=; b= ab\r\n cd ; d=e");
 * const f = withoutSignatureValue({ name: "DKIM-Signature", raw });
 * assert.equal(latin1(f.raw), "DKIM-Signature: v=1; bh=X=; b=; d=e");
 * ```
 */
export function withoutSignatureValue(field: HeaderField): HeaderField {
  // On the bytes: a round trip through text (latin1 and back) cost more than the search.
  const raw = field.raw;
  let pos = raw.indexOf(COLON) + 1;
  while (pos > 0 && pos <= raw.length) {
    let end = raw.indexOf(SEMICOLON, pos);
    if (end === -1) end = raw.length;
    // Search for "=" within the segment only: from `pos` to the end of the field would make a
    // field of many "="-less segments quadratic.
    let eq = -1;
    for (let i = pos; i < end; i++) {
      if (raw[i] === EQUALS) {
        eq = i - pos;
        break;
      }
    }
    if (eq >= 0 && isTagB(raw, pos, pos + eq)) {
      const out = slabBytes(pos + eq + 1 + raw.length - end);
      out.set(raw.subarray(0, pos + eq + 1));
      out.set(raw.subarray(end), pos + eq + 1);
      return { name: field.name, raw: out };
    }
    pos = end + 1;
  }
  return field;
}

// True when raw[from, to) is the tag name "b" with folding whitespace around it.
function isTagB(raw: Uint8Array, from: number, to: number): boolean {
  let b = 0;
  for (let i = from; i < to; i++) {
    const c = raw[i];
    if (c === SP || c === HTAB || c === CR || c === LF) continue;
    if (c !== LOWER_B || ++b > 1) return false;
  }
  return b === 1;
}

const SEMICOLON = 0x3b;
const EQUALS = 0x3d;
const LOWER_B = 0x62;

/**
 * Parses a `c=` value (or OpenDKIM's `Canonicalization` setting): `header/body`, or `header`
 * alone meaning `header/simple` (RFC 6376 §3.5).
 */
export function parseCanonicalization(value: string): [Canonicalization, Canonicalization] {
  const parts = asciiLower(value.trim()).split("/");
  const check = (c: string | undefined): Canonicalization => {
    if (c === "simple" || c === "relaxed") return c;
    throw new UnsupportedSignatureError(`unsupported canonicalization "${value.trim()}"`);
  };
  if (parts.length > 2) check(undefined);
  return [check(parts[0]), parts.length === 2 ? check(parts[1]) : "simple"];
}

function decodeBase64Tag(name: string, value: string): Uint8Array {
  try {
    return fromBase64(value);
  } catch (e) {
    throw new MalformedSignatureError(`signature syntax error: ${name}= is not base64`, {
      cause: e,
    });
  }
}

function optionalNumber(tags: ReadonlyMap<string, string>, name: string): number | undefined {
  const v = tags.get(name);
  if (v === undefined) return undefined;
  if (!/^[0-9]+$/.test(v)) {
    throw new MalformedSignatureError(`signature syntax error: ${name}= is not a number`);
  }
  const digits = v.replace(/^0+(?=.)/, "");
  if (digits.length > MAX_SAFE_DIGITS) {
    throw new MalformedSignatureError(`signature syntax error: ${name}= is too large`);
  }
  return Number(digits);
}

/**
 * True for a domain name as `d=` allows: dot-separated labels of letters, digits and hyphens.
 * A label is 1 to 63 letters, digits, `_` and `-`, neither starting nor ending with `-`; or an
 * A-label, `xn--` and at least one letter, digit or `-`, of any length.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isDomainName } from "./signature.ts";
 * assert.ok(isDomainName("mail.Example.com"));
 * assert.ok(isDomainName("xn--bcher-kva.example"));
 * assert.ok(!isDomainName("-a.example"));
 * assert.ok(!isDomainName("a..example"));
 * ```
 */
export function isDomainName(name: string): boolean {
  // One scan, no split() and no regular expressions: it runs for every signature verified and
  // every message signed (the profile of issue 20 had the old one at 3.6 % of signing).
  const n = name.length;
  if (n === 0 || n > 253) return false;
  let start = 0;
  while (start <= n) {
    let end = name.indexOf(".", start);
    if (end === -1) end = n;
    if (!isLabel(name, start, end)) return false;
    start = end + 1;
  }
  return true;
}

// name[from, to) as a label of isDomainName().
function isLabel(name: string, from: number, to: number): boolean {
  const length = to - from;
  if (length === 0) return false;
  let hyphens = false;
  let underscores = false;
  for (let i = from; i < to; i++) {
    const c = name.charCodeAt(i);
    if (c === HYPHEN) hyphens = true;
    else if (c === UNDERSCORE) underscores = true;
    else if (!isAsciiLetterOrDigit(c)) return false;
  }
  const plain = length <= 63 &&
    (!hyphens || (name.charCodeAt(from) !== HYPHEN && name.charCodeAt(to - 1) !== HYPHEN));
  if (plain) return true;
  // An A-label: "xn--", then one or more letters, digits or "-", of any length.
  return !underscores && length >= 5 && (name.charCodeAt(from) | 0x20) === 0x78 &&
    (name.charCodeAt(from + 1) | 0x20) === 0x6e && name.charCodeAt(from + 2) === HYPHEN &&
    name.charCodeAt(from + 3) === HYPHEN;
}

function isAsciiLetterOrDigit(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39);
}

const HYPHEN = 0x2d;
const UNDERSCORE = 0x5f;

/** True for a selector (`s=`): one or more labels as in a domain name (RFC 6376 §3.1). */
export function isSelector(selector: string): boolean {
  return isDomainName(selector);
}

/** Decodes dkim-quoted-printable (RFC 6376 §2.11): `=XX` hex escapes, whitespace removed. */
export function decodeQuotedPrintable(text: string): string {
  return latin1(
    fromLatin1(
      text.replace(
        /=([0-9A-Fa-f]{2})/g,
        (_, hex: string) => String.fromCharCode(parseInt(hex, 16)),
      ),
    ),
  );
}

/**
 * Encodes text as dkim-quoted-printable (RFC 6376 §2.11) for `i=` and `z=`: bytes outside
 * %x21-3A / %x3C / %x3E-7E (that is, controls, space, `;`, `=`, and 8-bit) become `=XX`.
 */
export function encodeQuotedPrintable(text: string): string {
  let out = "";
  for (const byte of fromLatin1(text)) {
    const ok = byte >= 0x21 && byte <= 0x7e && byte !== 0x3b && byte !== 0x3d;
    out += ok ? String.fromCharCode(byte) : `=${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** The tags of a signature to write, in the order they are written. `b` is filled in last. */
export interface SignatureTags {
  readonly algorithm: AlgorithmName;
  readonly headerCanonicalization: Canonicalization;
  readonly bodyCanonicalization: Canonicalization;
  readonly domain: string;
  readonly selector: string;
  readonly identity?: string;
  readonly length?: number;
  readonly timestamp?: number;
  readonly expiration?: number;
  /** `r=y`: failure reports requested (RFC 6651 §4), written after `x=`. */
  readonly reportRequest?: boolean;
  /** Extension tags (RFC 6376 §3.2; a Lua script's `odkim.xtag()`), written after `r=`. */
  readonly extraTags?: readonly (readonly [string, string])[];
  readonly headers: readonly string[];
  /** `z=` (RFC 6376 §3.5) as tokens that may be folded between (copied_headers.ts). */
  readonly copiedHeaders?: readonly string[];
  readonly bodyHash: string;
  /**
   * The field name and the tags before `a=`: by default `DKIM-Signature` and `v=1`; an ARC
   * message signature is `ARC-Message-Signature` with `i=N` (RFC 8617 §4.1.2).
   */
  readonly field?: { readonly name: string; readonly leading: readonly string[] };
}

/** Width at which signature fields are folded: RFC 5322 §2.1.1's recommended 78 characters. */
export const FOLD_WIDTH = 78;

/**
 * Builds the text of a DKIM-Signature field up to and including `b=`, folded at
 * {@link FOLD_WIDTH} columns with CRLF + TAB, ready for the signature value to be appended with
 * {@link appendSignatureValue}. Tags are written in the order OpenDKIM uses: `v a c d s i l t x
 * h bh b`, with `r=y` (RFC 6651) after `x=`, among OpenDKIM's extra tags.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatSignaturePrefix } from "./signature.ts";
 * const text = formatSignaturePrefix({
 *   algorithm: "ed25519-sha256", headerCanonicalization: "relaxed", bodyCanonicalization: "relaxed",
 *   domain: "example.com", selector: "sel", headers: ["from", "to"], bodyHash: "abc=",
 * });
 * assert.equal(text, "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.com;\r\n\ts=sel; h=from:to; bh=abc=; b=");
 * ```
 */
export function formatSignaturePrefix(tags: SignatureTags): string {
  const items: string[] = [
    ...(tags.field?.leading ?? ["v=1"]),
    `a=${tags.algorithm}`,
    `c=${tags.headerCanonicalization}/${tags.bodyCanonicalization}`,
    `d=${tags.domain}`,
    `s=${tags.selector}`,
  ];
  if (tags.identity !== undefined) items.push(`i=${encodeQuotedPrintable(tags.identity)}`);
  if (tags.length !== undefined) items.push(`l=${tags.length}`);
  if (tags.timestamp !== undefined) items.push(`t=${tags.timestamp}`);
  if (tags.expiration !== undefined) items.push(`x=${tags.expiration}`);
  if (tags.reportRequest) items.push("r=y");
  for (const [name, value] of tags.extraTags ?? []) items.push(`${name}=${value}`);
  const folder = new Folder(`${tags.field?.name ?? SIGNATURE_FIELD}: `);
  for (const item of items) folder.word(`${item};`);
  // h= may be longer than a line: fold before a colon (FWS is allowed around ":", §3.5).
  const names = tags.headers;
  names.forEach((name, i) => {
    const first = i === 0 ? "h=" : ":";
    const last = i === names.length - 1 ? ";" : "";
    folder.word(`${first}${name}${last}`, i > 0);
  });
  if (tags.copiedHeaders !== undefined) folder.tokens("z=", [...tags.copiedHeaders, ";"]);
  folder.splittable("bh=", `${tags.bodyHash};`);
  folder.word("b=");
  return folder.text;
}

/**
 * Appends the base64 signature to a prefix from {@link formatSignaturePrefix}, folding it at
 * {@link FOLD_WIDTH}. Folding inside `b=` is allowed (§3.5) and ignored by verifiers, which
 * delete the whole value before hashing.
 */
export function appendSignatureValue(prefix: string, b: string): string {
  const lastLine = prefix.length - prefix.lastIndexOf("\n") - 1;
  let out = prefix;
  let column = lastLine;
  let rest = b;
  while (rest.length > 0) {
    const room = FOLD_WIDTH - column;
    if (room < 8) {
      out += "\r\n\t";
      column = 1;
      continue;
    }
    out += rest.slice(0, room);
    column += Math.min(room, rest.length);
    rest = rest.slice(room);
  }
  return out;
}

// Greedy line filling for header text: words separated by a space, or glued (h= names).
class Folder {
  text: string;
  #column: number;

  constructor(start: string) {
    this.text = start;
    this.#column = start.length;
  }

  word(word: string, glued = false): void {
    const sep = glued || this.#column === 0 || this.text.endsWith(": ") ? "" : " ";
    if (this.#column + sep.length + word.length > FOLD_WIDTH && this.#column > 1) {
      this.text += "\r\n\t" + word;
      this.#column = 1 + word.length;
    } else {
      this.text += sep + word;
      this.#column += sep.length + word.length;
    }
  }

  // A tag whose value may be broken between any two tokens (z=: never inside an =XX escape).
  tokens(head: string, tokens: readonly string[]): void {
    this.word(head);
    for (const t of tokens) {
      if (this.#column + t.length > FOLD_WIDTH) {
        this.text += "\r\n\t";
        this.#column = 1;
      }
      this.text += t;
      this.#column += t.length;
    }
  }

  // A tag whose value may be broken anywhere (base64): start it on this line if a useful
  // part fits, and fill each following line to the width.
  splittable(head: string, value: string): void {
    let sep = " ";
    if (this.#column + sep.length + head.length + 8 > FOLD_WIDTH) {
      this.text += "\r\n\t";
      this.#column = 1;
      sep = "";
    }
    this.text += sep + head;
    this.#column += sep.length + head.length;
    let rest = value;
    while (rest.length > 0) {
      const room = FOLD_WIDTH - this.#column;
      if (room <= 0) {
        this.text += "\r\n\t";
        this.#column = 1;
        continue;
      }
      const piece = rest.slice(0, room);
      this.text += piece;
      this.#column += piece.length;
      rest = rest.slice(piece.length);
    }
  }
}
