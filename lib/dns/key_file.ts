/**
 * OpenDKIM's `TestPublicKeys` file: key records read from a file instead of DNS, for tests.
 * One record a line, `name record`, e.g.
 * `sel._domainkey.example.com v=DKIM1; k=rsa; p=MIGf...`: the name, whitespace, and the rest of
 * the line as the TXT record, as libopendkim's `dkim_get_key_file()` reads it.
 *
 * @module
 */

import { asciiLower, latin1 } from "../bytes.ts";
import { DnsError, type LookupOptions, type TxtResolver } from "./resolver.ts";

/** Largest key file read: thousands of 4096-bit key records fit; this bounds a wrong path. */
export const KEY_FILE_MAX_BYTES = 16 * 1024 * 1024;

/** Key records by name (lower case, no final dot), each name's records in file order. */
export type KeyFile = Map<string, string[]>;

/**
 * A line of a key file that cannot be used. `file` and `line` say where.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KeyFileSyntaxError, parseKeyFile } from "./key_file.ts";
 * assert.throws(() => parseKeyFile("sel._domainkey.example.com\n", "keys.txt"), KeyFileSyntaxError);
 * ```
 */
export class KeyFileSyntaxError extends SyntaxError {
  /** The file name given to the parser. */
  readonly file: string;
  /** The line number, from 1. */
  readonly line: number;

  /** Makes an error for `file:line`, with `detail` saying what is wrong. */
  constructor(file: string, line: number, detail: string, options?: ErrorOptions) {
    super(`Cannot parse key record at ${file}:${line}: ${detail}`, options);
    this.name = "KeyFileSyntaxError";
    this.file = file;
    this.line = line;
  }
}

function nameKey(name: string): string {
  return asciiLower(name.endsWith(".") ? name.slice(0, -1) : name);
}

/** Why `name` is not a domain name a key could be published at, or undefined when it is. */
function nameProblem(name: string): string | undefined {
  const bare = name.endsWith(".") ? name.slice(0, -1) : name;
  if (bare.length === 0 || bare.length > 253) return `name "${name}" is not 1..253 characters`;
  if (!/^[\x21-\x7e]+$/.test(bare)) return `name "${name}" has characters other than ASCII`;
  if (bare.split(".").some((label) => label.length === 0 || label.length > 63)) {
    return `name "${name}" has an empty label or one longer than 63 characters`;
  }
  return undefined;
}

// The line without trailing blanks and CR. A loop: /[ \t\r]+$/ backtracks over every inner
// whitespace run, which makes one long line quadratic.
function trimEnd(line: string): string {
  let end = line.length;
  while (end > 0 && " \t\r".includes(line[end - 1])) end--;
  return end === line.length ? line : line.slice(0, end);
}

/**
 * Parses key file text. Blank lines and lines whose first non-blank character is `#` are
 * skipped. Names match ignoring ASCII case, as OpenDKIM's `strcasecmp` does. A name listed on
 * several lines gets several records, in file order, as several TXT records in DNS would be
 * (OpenDKIM uses only the first). Throws {@link KeyFileSyntaxError} naming `file:line` for a
 * line with no record or an invalid name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseKeyFile } from "./key_file.ts";
 * const keys = parseKeyFile("# test keys\nSel._domainkey.example.com  v=DKIM1; p=abc\n");
 * assert.deepEqual(keys.get("sel._domainkey.example.com"), ["v=DKIM1; p=abc"]);
 * ```
 */
export function parseKeyFile(text: string, file = "<text>"): KeyFile {
  const keys: KeyFile = new Map();
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = trimEnd(lines[i]);
    const body = line.replace(/^[ \t]+/, "");
    if (body === "" || body.startsWith("#")) continue;
    const m = /^(\S+)[ \t]+(.*)$/.exec(body);
    if (!m) {
      throw new KeyFileSyntaxError(file, i + 1, `expected a key record after "${body}"`);
    }
    const problem = nameProblem(m[1]);
    if (problem) throw new KeyFileSyntaxError(file, i + 1, problem);
    const key = nameKey(m[1]);
    const records = keys.get(key);
    if (records) records.push(m[2]);
    else keys.set(key, [m[2]]);
  }
  return keys;
}

/**
 * Reads and parses a key file (OpenDKIM's `TestPublicKeys`). Bytes are decoded one per
 * character, so 8-bit bytes reach the key record parser unchanged. Throws the read error, a
 * `RangeError` for a file over {@link KEY_FILE_MAX_BYTES}, or {@link KeyFileSyntaxError}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readKeyFile } from "./key_file.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "s._domainkey.example.com v=DKIM1; p=abc\n");
 * assert.equal((await readKeyFile(path)).size, 1);
 * await Deno.remove(path);
 * ```
 */
export async function readKeyFile(path: string): Promise<KeyFile> {
  using file = await Deno.open(path);
  // Read one byte past the limit so an oversized file is detected, not silently cut.
  const chunks: Uint8Array[] = [];
  let total = 0;
  while (total <= KEY_FILE_MAX_BYTES) {
    const chunk = new Uint8Array(Math.min(64 * 1024, KEY_FILE_MAX_BYTES + 1 - total));
    const n = await file.read(chunk);
    if (n === null) break;
    chunks.push(chunk.subarray(0, n));
    total += n;
  }
  if (total > KEY_FILE_MAX_BYTES) {
    throw new RangeError(
      `Cannot read "${path}": larger than the limit of ${KEY_FILE_MAX_BYTES} bytes`,
    );
  }
  return parseKeyFile(chunks.map(latin1).join(""), path);
}

/**
 * A {@link TxtResolver} answering from a key file; an unlisted name is `nxdomain`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KeyFileResolver, parseKeyFile } from "./key_file.ts";
 * const resolver = new KeyFileResolver(parseKeyFile("s._domainkey.example.com v=DKIM1; p=abc"));
 * assert.deepEqual(await resolver.resolveTxt("S._domainkey.example.com."), ["v=DKIM1; p=abc"]);
 * await assert.rejects(resolver.resolveTxt("x._domainkey.example.com"), { code: "nxdomain" });
 * ```
 */
export class KeyFileResolver implements TxtResolver {
  readonly #keys: ReadonlyMap<string, readonly string[]>;

  /** Answers from `keys`, as {@link parseKeyFile} or {@link readKeyFile} return them. */
  constructor(keys: ReadonlyMap<string, readonly string[]>) {
    this.#keys = keys;
  }

  /** The records listed for `name`; rejects with {@link DnsError} `nxdomain` when none are. */
  resolveTxt(name: string, options?: LookupOptions): Promise<string[]> {
    if (options?.signal?.aborted) {
      return Promise.reject(
        new DnsError("timeout", name, "aborted", { cause: options.signal.reason }),
      );
    }
    const records = this.#keys.get(nameKey(name));
    return records
      ? Promise.resolve([...records])
      : Promise.reject(new DnsError("nxdomain", name, "not in the key file"));
  }
}
