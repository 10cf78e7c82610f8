/**
 * Why a key could not be used: the one error type of lib/crypto's key reading, private
 * (`private_key.ts`) and public (`public_key.ts`) alike, so callers catch one class and read
 * one `code`.
 *
 * @module
 */

/**
 * Why a key could not be used.
 * - `syntax`: not a key in any format read here (bad PEM, base64 or DER, wrong length).
 * - `unsupported`: a well-formed key of a kind DKIM cannot use (EC, DSA, RSA-PSS, Ed448...).
 * - `encrypted`: a passphrase-protected private key; DKIM signers need the key in clear.
 * - `wrong-type`: a public key or certificate where a private key was expected, or a key of the
 *   other DKIM type than `k=` names.
 * - `too-large`: an RSA modulus above the verifier's limit (RFC 8301 §3.2).
 * - `too-small`: an RSA modulus below the verifier's minimum.
 * - `revoked`: an empty public key: `p=` with no value revokes the key (RFC 6376 §3.6.1).
 * - `invalid`: parses, but the numbers do not make a working key (WebCrypto refused it, or its
 *   public half does not match its private half).
 */
export type KeyErrorCode =
  | "syntax"
  | "unsupported"
  | "encrypted"
  | "wrong-type"
  | "too-large"
  | "too-small"
  | "revoked"
  | "invalid";

/** Options of a {@link KeyError}. */
export interface KeyErrorOptions extends ErrorOptions {
  /** The file, DNS name or other place the key came from. */
  readonly source?: string;
  /** What to call the key in the message when there is no `source`; "key" by default. */
  readonly subject?: string;
}

/**
 * Why a key could not be used; `source` names the file or DNS name it came from. The message
 * reads `Cannot use key "<source>": <detail>`, or `Cannot use inline key: <detail>` for a key
 * given without a source.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KeyError } from "./key_error.ts";
 * const e = new KeyError("encrypted", "the key is encrypted", { source: "/k.private" });
 * assert.equal(e.message, 'Cannot use key "/k.private": the key is encrypted');
 * assert.equal(e.code, "encrypted");
 * ```
 */
export class KeyError extends Error {
  /** What kind of problem it is. */
  readonly code: KeyErrorCode;
  /** Where the key came from, when known. */
  readonly source?: string;

  /** Makes an error of `code` with the human `detail`. */
  constructor(code: KeyErrorCode, detail: string, options: KeyErrorOptions = {}) {
    const { source, subject, ...errorOptions } = options;
    const what = source !== undefined ? `key "${source}"` : (subject ?? "key");
    super(`Cannot use ${what}: ${detail}`, errorOptions);
    this.name = "KeyError";
    this.code = code;
    if (source !== undefined) this.source = source;
  }
}

/** Makes the {@link KeyError} of one key: its source and subject are bound once. */
export type KeyFail = (code: KeyErrorCode, detail: string, cause?: unknown) => KeyError;

/**
 * The {@link KeyFail} of the key from `source`, called `subject` when there is no source, so
 * every check of one key names it the same way.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { keyFail } from "./key_error.ts";
 * const fail = keyFail(undefined, "public key");
 * assert.equal(fail("revoked", "p= is empty").message, "Cannot use public key: p= is empty");
 * ```
 */
export function keyFail(source: string | undefined, subject: string): KeyFail {
  return (code, detail, cause) =>
    new KeyError(code, detail, { source, subject, ...(cause === undefined ? {} : { cause }) });
}
