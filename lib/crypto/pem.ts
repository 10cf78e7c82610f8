/**
 * PEM armour (RFC 7468 textual encodings, with the RFC 1421 headers that OpenSSL's traditional
 * encrypted keys carry): reading every `-----BEGIN label-----` block of a text, and writing one
 * block with 64-column lines as OpenSSL and opendkim-genkey do.
 *
 * @module
 */

import { fromBase64, toBase64 } from "../bytes.ts";

/** One decoded PEM block. */
export interface PemBlock {
  /** The label between `BEGIN ` and the dashes, such as `PRIVATE KEY`. */
  readonly label: string;
  /**
   * RFC 1421 headers before the body, such as `Proc-Type: 4,ENCRYPTED` on an OpenSSL
   * traditional encrypted key; names as written, values trimmed.
   */
  readonly headers: ReadonlyMap<string, string>;
  /** The decoded body. */
  readonly der: Uint8Array;
  /** 1-based line of the BEGIN line. */
  readonly line: number;
}

/**
 * Text that is not well-formed PEM: a BEGIN line without its END, mismatched labels, or a body
 * that is not base64. `line` is the 1-based line where the problem was found.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parsePem, PemError } from "./pem.ts";
 * assert.throws(() => parsePem("-----BEGIN PRIVATE KEY-----\nAAAA\n"), PemError);
 * ```
 */
export class PemError extends SyntaxError {
  /** 1-based line of the problem. */
  readonly line: number;

  /** Makes an error for a problem on `line`. */
  constructor(message: string, line: number, options?: ErrorOptions) {
    super(`Invalid PEM at line ${line}: ${message}`, options);
    this.name = "PemError";
    this.line = line;
  }
}

const BEGIN = /^-----BEGIN ([\x21-\x2c\x2e-\x7e](?:[ -]?[\x21-\x2c\x2e-\x7e])*)?-----$/;
const END = /^-----END ([\x21-\x2c\x2e-\x7e](?:[ -]?[\x21-\x2c\x2e-\x7e])*)?-----$/;
const HEADER = /^([A-Za-z0-9-]+):[ \t]*(.*)$/;

/**
 * True when `text` holds a PEM BEGIN line, so it should be read with {@link parsePem} rather
 * than as bare base64.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { looksLikePem } from "./pem.ts";
 * assert.equal(looksLikePem("\n-----BEGIN PRIVATE KEY-----\n"), true);
 * assert.equal(looksLikePem("MC4CAQAwBQYDK2VwBCIEIA=="), false);
 * ```
 */
export function looksLikePem(text: string): boolean {
  return text.includes("-----BEGIN ");
}

/**
 * Most PEM blocks read from one text: a key file holds one or two (OpenSSL's `ecparam -genkey`
 * writes parameters before the key); more means the text is not a key file.
 */
export const MAX_PEM_BLOCKS = 16;

/**
 * Reads every PEM block in `text`, in order. Text outside blocks is ignored, as OpenSSL ignores
 * the explanatory text some tools write before a block (RFC 7468 §2); lines may end in LF or
 * CRLF and may carry trailing whitespace. Throws {@link PemError} for a malformed block and for
 * text with no block at all.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parsePem } from "./pem.ts";
 * const [block] = parsePem("-----BEGIN NOTHING-----\r\nAAEC\r\n-----END NOTHING-----\r\n");
 * assert.equal(block.label, "NOTHING");
 * assert.deepEqual(block.der, Uint8Array.of(0, 1, 2));
 * ```
 */
export function parsePem(text: string): PemBlock[] {
  const lines = text.split(/\r?\n|\r/);
  const blocks: PemBlock[] = [];
  let i = 0;
  while (i < lines.length) {
    const begin = BEGIN.exec(lines[i].trim());
    i++;
    if (!begin) continue;
    const beginLine = i;
    const label = begin[1] ?? "";
    if (blocks.length >= MAX_PEM_BLOCKS) {
      throw new PemError(`more than ${MAX_PEM_BLOCKS} PEM blocks`, beginLine);
    }
    const headers = new Map<string, string>();
    // RFC 1421 headers come first, ended by a blank line; a continuation line starts with
    // whitespace.
    let lastHeader: string | undefined;
    while (i < lines.length) {
      const raw = lines[i];
      const header = HEADER.exec(raw.trim());
      if (header) {
        lastHeader = header[1];
        headers.set(lastHeader, header[2].trim());
      } else if (lastHeader !== undefined && /^[ \t]/.test(raw) && raw.trim() !== "") {
        headers.set(lastHeader, `${headers.get(lastHeader)} ${raw.trim()}`);
      } else {
        break;
      }
      i++;
    }
    if (headers.size > 0) {
      if (i < lines.length && lines[i].trim() === "") i++;
    }
    const body: string[] = [];
    let endLabel: string | undefined;
    while (i < lines.length) {
      const line = lines[i].trim();
      i++;
      const end = END.exec(line);
      if (end) {
        endLabel = end[1] ?? "";
        break;
      }
      if (line.startsWith("-----")) {
        throw new PemError(`unexpected "${line}" inside "${label}" block`, i);
      }
      body.push(line);
    }
    if (endLabel === undefined) {
      throw new PemError(`"BEGIN ${label}" has no matching END line`, beginLine);
    }
    if (endLabel !== label) {
      throw new PemError(`"BEGIN ${label}" ends with "END ${endLabel}"`, i);
    }
    let der: Uint8Array;
    try {
      der = fromBase64(body.join(""));
    } catch (cause) {
      throw new PemError(`the body of "${label}" is not base64`, beginLine, { cause });
    }
    blocks.push({ label, headers, der, line: beginLine });
  }
  if (blocks.length === 0) throw new PemError("no BEGIN line found", 1);
  return blocks;
}

/**
 * Writes one PEM block: BEGIN line, base64 body in 64-column lines (RFC 7468 §2, as OpenSSL
 * writes), END line, each ending in LF.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodePem } from "./pem.ts";
 * assert.equal(encodePem("X", Uint8Array.of(0, 1, 2)), "-----BEGIN X-----\nAAEC\n-----END X-----\n");
 * ```
 */
export function encodePem(label: string, der: Uint8Array): string {
  const b64 = toBase64(der);
  let out = `-----BEGIN ${label}-----\n`;
  for (let i = 0; i < b64.length; i += 64) out += `${b64.slice(i, i + 64)}\n`;
  return `${out}-----END ${label}-----\n`;
}
