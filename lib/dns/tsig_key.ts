/**
 * TSIG keys (RFC 8945) as the DNS servers write them, so the file an admin already has works as
 * `DNSUpdateKey`: BIND's `key "name" { algorithm hmac-sha256; secret "base64"; };` (what
 * `tsig-keygen` and `ddns-confgen` print, also read by `nsupdate -k` and `knsupdate -k`), and the
 * `key:` list of knot.conf that `keymgr -t` prints. A key file holds a shared secret that can
 * rewrite the zone, so it is read like a private key: the caller passes a reader that applies
 * RequireSafeKeys' rule (`readPrivateKeyFile()` in lib/config), since lib/dns may not import it.
 *
 * @module
 */

import { fromBase64 } from "../bytes.ts";

/** The HMAC algorithms a TSIG key may name (RFC 8945 §6), by their on-the-wire names. */
export const TSIG_ALGORITHMS = {
  "hmac-sha256": "sha256",
  "hmac-sha384": "sha384",
  "hmac-sha512": "sha512",
} as const;

/** A TSIG algorithm dkimd signs with. */
export type TsigAlgorithm = keyof typeof TSIG_ALGORITHMS;

/**
 * Algorithms refused although servers still accept them: RFC 8945 §6 lists HMAC-MD5 and
 * HMAC-SHA1 only for interoperability with old servers; a new key has no reason to use them.
 */
const WEAK_ALGORITHMS = ["hmac-md5", "hmac-md5.sig-alg.reg.int", "hmac-sha1", "hmac-sha224"];

/** Fewest secret bytes accepted: RFC 8945 §6 asks for at least half the hash's output length. */
export const MIN_TSIG_SECRET_BYTES = 16;

/** One TSIG key. */
export interface TsigKey {
  /** The key name, as the TSIG record's owner name: lower case, no trailing dot. */
  readonly name: string;
  /** The HMAC algorithm. */
  readonly algorithm: TsigAlgorithm;
  /** The shared secret, decoded from base64. */
  readonly secret: Uint8Array;
}

/** A key file that cannot be read as a TSIG key; names the file and line. */
export class TsigKeyFileError extends SyntaxError {
  /** The file, as given. */
  readonly file: string;
  /** The 1-based line, or 0 when the problem is the file as a whole. */
  readonly line: number;

  /** Makes the error: `Cannot read the TSIG key in FILE:LINE: DETAIL`. */
  constructor(file: string, line: number, detail: string, options?: ErrorOptions) {
    super(`Cannot read the TSIG key in ${file}${line > 0 ? `:${line}` : ""}: ${detail}`, options);
    this.name = "TsigKeyFileError";
    this.file = file;
    this.line = line;
  }
}

interface Token {
  readonly text: string;
  readonly quoted: boolean;
  readonly line: number;
}

/** Splits BIND's named.conf syntax into words, quoted strings and `{ } ;`, dropping comments. */
function tokenize(text: string, file: string): Token[] {
  const out: Token[] = [];
  let line = 1;
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === "\n") {
      line++;
      i++;
    } else if (/\s/.test(c)) i++;
    else if (c === "#" || (c === "/" && text[i + 1] === "/")) {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      if (end < 0) throw new TsigKeyFileError(file, line, "a /* comment is not closed");
      for (let k = i; k < end; k++) if (text[k] === "\n") line++;
      i = end + 2;
    } else if (c === '"') {
      const end = text.indexOf('"', i + 1);
      if (end < 0 || text.slice(i + 1, end).includes("\n")) {
        throw new TsigKeyFileError(file, line, "a quoted string is not closed on its line");
      }
      out.push({ text: text.slice(i + 1, end), quoted: true, line });
      i = end + 1;
    } else if (c === "{" || c === "}" || c === ";") {
      out.push({ text: c, quoted: false, line });
      i++;
    } else {
      let end = i;
      while (end < text.length && !/[\s{};"#]/.test(text[end])) end++;
      out.push({ text: text.slice(i, end), quoted: false, line });
      i = end;
    }
  }
  return out;
}

function keyName(raw: string, file: string, line: number): string {
  const name = (raw.endsWith(".") ? raw.slice(0, -1) : raw).toLowerCase();
  if (!/^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(name) || name.length > 253) {
    throw new TsigKeyFileError(file, line, `"${raw}" is not a valid key name`);
  }
  return name;
}

function algorithmOf(raw: string, file: string, line: number): TsigAlgorithm {
  const name = raw.toLowerCase().replace(/\.$/, "");
  if (name in TSIG_ALGORITHMS) return name as TsigAlgorithm;
  const known = Object.keys(TSIG_ALGORITHMS).join(", ");
  if (WEAK_ALGORITHMS.includes(name)) {
    throw new TsigKeyFileError(
      file,
      line,
      `algorithm "${raw}" is too weak for a key that can rewrite the zone: make a new key with hmac-sha256 (tsig-keygen -a hmac-sha256, or keymgr -t NAME hmac-sha256)`,
    );
  }
  throw new TsigKeyFileError(file, line, `unknown algorithm "${raw}": expected one of ${known}`);
}

function secretOf(raw: string, file: string, line: number): Uint8Array {
  const compact = raw.replace(/\s+/g, "");
  let bytes: Uint8Array;
  try {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) throw new Error("not base64");
    bytes = fromBase64(compact);
  } catch (cause) {
    throw new TsigKeyFileError(file, line, "the secret is not valid base64", { cause });
  }
  if (bytes.length < MIN_TSIG_SECRET_BYTES) {
    throw new TsigKeyFileError(
      file,
      line,
      `the secret has ${bytes.length} bytes, fewer than ${MIN_TSIG_SECRET_BYTES} (RFC 8945 §6)`,
    );
  }
  return bytes;
}

/** Reads BIND's `key "name" { ... };` statements. */
function parseBind(text: string, file: string): TsigKey[] {
  const tokens = tokenize(text, file);
  const keys: TsigKey[] = [];
  let i = 0;
  const lastLine = () => tokens[tokens.length - 1]?.line ?? 1;
  const next = (what: string): Token => {
    const t = tokens[i++];
    if (!t) throw new TsigKeyFileError(file, lastLine(), `the file ends where ${what} should be`);
    return t;
  };
  const expect = (symbol: string, after: string) => {
    const t = next(`"${symbol}"`);
    if (t.quoted || t.text !== symbol) {
      throw new TsigKeyFileError(
        file,
        t.line,
        `expected "${symbol}" after ${after}, found "${t.text}"`,
      );
    }
  };
  while (i < tokens.length) {
    const start = next("a key statement");
    if (start.quoted || start.text !== "key") {
      throw new TsigKeyFileError(
        file,
        start.line,
        `expected a "key" statement, found "${start.text}" (other named.conf statements do not belong in a key file)`,
      );
    }
    const nameToken = next("the key name");
    const name = keyName(nameToken.text, file, nameToken.line);
    expect("{", `key "${nameToken.text}"`);
    let algorithm: TsigAlgorithm | undefined;
    let secret: Uint8Array | undefined;
    for (;;) {
      const t = next('"}"');
      if (!t.quoted && t.text === "}") break;
      const value = next(`the value of "${t.text}"`);
      if (t.text === "algorithm") algorithm = algorithmOf(value.text, file, value.line);
      else if (t.text === "secret") secret = secretOf(value.text, file, value.line);
      else {
        throw new TsigKeyFileError(
          file,
          t.line,
          `unknown key option "${t.text}": a key has "algorithm" and "secret"`,
        );
      }
      expect(";", `"${t.text} ${value.text.length > 20 ? "..." : value.text}"`);
    }
    expect(";", `the "}" of key "${nameToken.text}"`);
    if (!algorithm) {
      throw new TsigKeyFileError(file, start.line, `key "${name}" has no "algorithm"`);
    }
    if (!secret) throw new TsigKeyFileError(file, start.line, `key "${name}" has no "secret"`);
    keys.push({ name, algorithm, secret });
  }
  return keys;
}

/** Reads knot.conf's `key:` section (`- id: NAME`, `algorithm:`, `secret:`), as keymgr -t prints. */
function parseKnot(text: string, file: string): TsigKey[] {
  interface Partial {
    name?: string;
    algorithm?: TsigAlgorithm;
    secret?: Uint8Array;
    line: number;
  }
  const partial: Partial[] = [];
  const lines = text.split("\n");
  let inKeys = false;
  for (let n = 0; n < lines.length; n++) {
    const line = n + 1;
    const raw = lines[n].replace(/\s+#.*$|^\s*#.*$/, "").trimEnd();
    if (raw.trim() === "") continue;
    if (/^\S/.test(raw)) {
      if (raw !== "key:") {
        throw new TsigKeyFileError(
          file,
          line,
          `expected "key:", found "${raw}" (other knot.conf sections do not belong in a key file)`,
        );
      }
      inKeys = true;
      continue;
    }
    if (!inKeys) throw new TsigKeyFileError(file, line, 'expected "key:" first');
    const m = /^\s+(-\s+)?([a-z-]+):\s*(.*)$/.exec(raw);
    if (!m) throw new TsigKeyFileError(file, line, `cannot read "${raw.trim()}"`);
    const [, dash, option, rawValue] = m;
    const value = rawValue.replace(/^"(.*)"$/, "$1");
    if (dash) partial.push({ line });
    const key = partial[partial.length - 1];
    if (!key) throw new TsigKeyFileError(file, line, 'expected "- id: NAME" first');
    if (option === "id") key.name = keyName(value, file, line);
    else if (option === "algorithm") key.algorithm = algorithmOf(value, file, line);
    else if (option === "secret") key.secret = secretOf(value, file, line);
    else {
      throw new TsigKeyFileError(
        file,
        line,
        `unknown key option "${option}": a key has "id", "algorithm" and "secret"`,
      );
    }
  }
  return partial.map((k) => {
    for (const option of ["name", "algorithm", "secret"] as const) {
      if (k[option] === undefined) {
        const label = option === "name" ? "id" : option;
        throw new TsigKeyFileError(file, k.line, `the key has no "${label}"`);
      }
    }
    return { name: k.name!, algorithm: k.algorithm!, secret: k.secret! };
  });
}

/**
 * Reads every TSIG key in a key file's text, in BIND form (`key "n" { algorithm A; secret "S"; };`)
 * or knot.conf form (`key:` then `- id: n`, `algorithm: A`, `secret: S`). Throws
 * {@link TsigKeyFileError} naming `file` and the line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTsigKeys } from "./tsig_key.ts";
 * const [key] = parseTsigKeys(
 *   'key "dkim-update." {\n  algorithm hmac-sha256;\n  secret "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0";\n};\n',
 *   "/etc/dkimd/update.key",
 * );
 * assert.equal(key.name, "dkim-update");
 * assert.equal(key.algorithm, "hmac-sha256");
 * assert.throws(
 *   () => parseTsigKeys('key "k" {\n  algorithm hmac-md5;\n', "/k.key"),
 *   /\/k\.key:2: algorithm "hmac-md5" is too weak/,
 * );
 * ```
 */
export function parseTsigKeys(text: string, file: string): TsigKey[] {
  const firstCode = text.split("\n").map((l) => l.replace(/#.*$/, "").trim()).find((l) => l);
  const keys = firstCode === "key:" ? parseKnot(text, file) : parseBind(text, file);
  if (keys.length === 0) throw new TsigKeyFileError(file, 0, "the file holds no key");
  return keys;
}

/**
 * Reads the one TSIG key of the file at `path` through `read` (which applies the key-file
 * safety rule and the size limit: pass `readPrivateKeyFile()` from lib/config). A file holding
 * several keys is refused, since nothing says which to use.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readTsigKeyFile } from "./tsig_key.ts";
 * const text = "key:\n  - id: rotate\n    algorithm: hmac-sha256\n    secret: c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0\n";
 * const key = await readTsigKeyFile("/k", () => Promise.resolve(new TextEncoder().encode(text)));
 * assert.equal(key.name, "rotate");
 * ```
 */
export async function readTsigKeyFile(
  path: string,
  read: (path: string) => Promise<Uint8Array>,
): Promise<TsigKey> {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(await read(path));
  } catch (error) {
    if (error instanceof TypeError) {
      throw new TsigKeyFileError(path, 0, "the file is not text", { cause: error });
    }
    throw error;
  }
  const keys = parseTsigKeys(text, path);
  if (keys.length > 1) {
    throw new TsigKeyFileError(
      path,
      0,
      `the file holds ${keys.length} keys (${
        keys.map((k) => `"${k.name}"`).join(", ")
      }): keep only the one dkimd updates with`,
    );
  }
  return keys[0];
}
