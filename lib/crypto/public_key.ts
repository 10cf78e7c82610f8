/**
 * Public keys from DKIM key records (`p=`, RFC 6376 §3.6.1) made ready to check signatures:
 * RSASSA-PKCS1-v1_5 with SHA-256 or SHA-1 (RFC 6376 §3.3.1, RFC 8301) in BigInt
 * (rsa_public_verify.ts) once its self-test against WebCrypto has passed in the process, else
 * through WebCrypto; and Ed25519 over a SHA-256 prehash (RFC 8463 §3) through WebCrypto.
 *
 * Public keys come from DNS and are hostile: their size is read from the DER before any import,
 * so an oversized key costs nothing (RFC 8301 §3.2).
 *
 * @module
 */

import {
  bitLength,
  DerError,
  DerReader,
  DerTag,
  ed25519Spki,
  OID_ED25519,
  OID_RSA_ENCRYPTION,
  readAlgorithmIdentifier,
  readRsaParameters,
  rsaSpki,
} from "./der.ts";
import { digest, type HashAlgorithm } from "./hash.ts";
import { KeyError, type KeyFail, keyFail } from "./key_error.ts";
import { RsaPublicVerifier, rsaPublicVerifierSelfTest } from "./rsa_public_verify.ts";
import {
  ED25519_KEY_BITS,
  ED25519_KEY_BYTES,
  type KeyType,
  MAX_RSA_BITS_REQUIRED,
  MAX_RSA_EXPONENT_BITS,
  unsupportedAlgorithm,
} from "./key_type.ts";

/**
 * Largest RSA modulus, in bits, that a verifier imports by default: the largest RFC 8301 §3.2
 * obliges verifiers to handle; bigger keys are a CPU DoS from whoever publishes them.
 */
export const MAX_RSA_BITS_DEFAULT = MAX_RSA_BITS_REQUIRED;

/** WebCrypto's name for RSASSA-PKCS1-v1_5 (RFC 8017 §8.2), the RSA scheme of DKIM. */
export const RSA_ALGORITHM = "RSASSA-PKCS1-v1_5";

/** A public key from a DKIM key record, ready to check signatures. */
export interface VerifyingKey {
  /** The key type. */
  readonly type: KeyType;
  /** RSA modulus bits; 256 for Ed25519. */
  readonly bits: number;
  /** SubjectPublicKeyInfo DER of the key, for comparisons. */
  readonly spki: Uint8Array;
  /**
   * RSA: RSASSA-PKCS1-v1_5 with `hash` over `data`. Ed25519: over SHA-256(`data`); `hash` must
   * be `sha256` (RFC 8463 §3), else it throws a {@link KeyError} of code `unsupported`. Never
   * throws for a bad signature: returns false.
   */
  verify(hash: HashAlgorithm, data: Uint8Array, signature: Uint8Array): Promise<boolean>;
}

/** Options of {@link importPublicKey}. */
export interface PublicKeyOptions {
  /** Largest RSA modulus accepted, in bits; {@link MAX_RSA_BITS_DEFAULT} by default. */
  readonly maxBits?: number;
  /** Smallest RSA modulus accepted, in bits (OpenDKIM's MinimumKeyBits); none by default. */
  readonly minBits?: number;
  /** Where the key came from, such as `s._domainkey.example.com`, for error messages. */
  readonly source?: string;
}

/**
 * The bytes as WebCrypto's BufferSource type wants them; copied only if they view a shared
 * buffer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bufferSource } from "./public_key.ts";
 * const bytes = Uint8Array.of(1, 2);
 * assert.equal(bufferSource(bytes), bytes);
 * ```
 */
export function bufferSource(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer
    ? bytes as Uint8Array<ArrayBuffer>
    : new Uint8Array(bytes);
}

/**
 * Checks an RSA modulus and public exponent (RFC 8017 §3.1), from a public or a private key:
 * an odd positive modulus, and an odd exponent of at least 3 and at most
 * {@link MAX_RSA_EXPONENT_BITS} bits. Throws through `fail`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { keyFail } from "./key_error.ts";
 * import { checkRsaNumbers } from "./public_key.ts";
 * const fail = keyFail(undefined, "key");
 * checkRsaNumbers(Uint8Array.of(0xc5), Uint8Array.of(1, 0, 1), fail);
 * assert.throws(() => checkRsaNumbers(Uint8Array.of(0xc4), Uint8Array.of(3), fail), { code: "invalid" });
 * ```
 */
export function checkRsaNumbers(modulus: Uint8Array, exponent: Uint8Array, fail: KeyFail): void {
  const bits = bitLength(modulus);
  if (bits === 0 || (modulus[modulus.length - 1] & 1) === 0) {
    throw fail("invalid", "the RSA modulus is not an odd positive number");
  }
  const eBits = bitLength(exponent);
  if (eBits > MAX_RSA_EXPONENT_BITS) {
    throw fail(
      "unsupported",
      `the RSA public exponent has ${eBits} bits; at most ${MAX_RSA_EXPONENT_BITS} are accepted`,
    );
  }
  if (eBits < 2 || (exponent[exponent.length - 1] & 1) === 0) {
    throw fail("invalid", "the RSA public exponent is not an odd number of at least 3");
  }
}

class RsaVerifyingKey implements VerifyingKey {
  readonly type = "rsa" as const;
  readonly bits: number;
  readonly spki: Uint8Array;
  /** Which code checks signatures: the BigInt verifier after its self-test, else WebCrypto. */
  readonly verifier: "bigint" | "webcrypto";
  readonly #modulusBytes: number;
  readonly #keys = new Map<HashAlgorithm, Promise<CryptoKey>>();
  readonly #bigint: RsaPublicVerifier | undefined;

  constructor(bits: number, spki: Uint8Array, bigint: RsaPublicVerifier | undefined) {
    this.bits = bits;
    this.spki = spki;
    this.#modulusBytes = Math.ceil(bits / 8);
    this.#bigint = bigint;
    this.verifier = bigint === undefined ? "webcrypto" : "bigint";
  }

  /** The WebCrypto key for `hash`, imported on first use: WebCrypto binds the hash to the key. */
  key(hash: HashAlgorithm): Promise<CryptoKey> {
    let key = this.#keys.get(hash);
    if (key === undefined) {
      key = crypto.subtle.importKey(
        "spki",
        bufferSource(this.spki),
        { name: RSA_ALGORITHM, hash: hash === "sha1" ? "SHA-1" : "SHA-256" },
        false,
        ["verify"],
      );
      this.#keys.set(hash, key);
    }
    return key;
  }

  verify(hash: HashAlgorithm, data: Uint8Array, signature: Uint8Array): Promise<boolean> {
    if (hash !== "sha256" && hash !== "sha1") {
      return Promise.reject(
        new KeyError("unsupported", `hash "${hash}" is not "sha256" or "sha1"`),
      );
    }
    // RFC 8017 §8.2.2 step 1: a signature of any other length is invalid.
    if (signature.length !== this.#modulusBytes) return Promise.resolve(false);
    // The BigInt verifier is synchronous (about 0.06 ms for RSA-2048): the interface stays a
    // Promise for WebCrypto, OpenSSL and Ed25519, and this answer comes already resolved.
    if (this.#bigint !== undefined) {
      return Promise.resolve(this.#bigint.verify(hash, data, signature));
    }
    return this.#webcryptoVerify(hash, data, signature);
  }

  async #webcryptoVerify(
    hash: HashAlgorithm,
    data: Uint8Array,
    signature: Uint8Array,
  ): Promise<boolean> {
    let key: CryptoKey;
    try {
      key = await this.key(hash);
    } catch (cause) {
      throw new KeyError("invalid", "WebCrypto refused the RSA public key", {
        subject: "public key",
        cause,
      });
    }
    try {
      return await crypto.subtle.verify(
        RSA_ALGORITHM,
        key,
        bufferSource(signature),
        bufferSource(data),
      );
    } catch {
      return false;
    }
  }
}

class Ed25519VerifyingKey implements VerifyingKey {
  readonly type = "ed25519" as const;
  readonly bits = ED25519_KEY_BITS;
  readonly spki: Uint8Array;
  readonly #key: CryptoKey;

  constructor(spki: Uint8Array, key: CryptoKey) {
    this.spki = spki;
    this.#key = key;
  }

  async verify(hash: HashAlgorithm, data: Uint8Array, signature: Uint8Array): Promise<boolean> {
    if (hash !== "sha256") {
      throw new KeyError(
        "unsupported",
        `Ed25519 signs SHA-256 digests only (RFC 8463 §3), not "${hash}"`,
        { subject: "Ed25519 key" },
      );
    }
    if (signature.length !== 64) return false;
    try {
      return await crypto.subtle.verify(
        "Ed25519",
        this.#key,
        bufferSource(signature),
        bufferSource(digest("sha256", data)),
      );
    } catch {
      return false;
    }
  }
}

/** Reads the modulus and exponent of an RSA `p=`: SubjectPublicKeyInfo or bare RSAPublicKey. */
function parseRsaPublicKey(p: Uint8Array, fail: KeyFail): { n: Uint8Array; e: Uint8Array } {
  try {
    const outer = new DerReader(p);
    let r = outer.readSequence();
    outer.end();
    if (r.peekTag() === DerTag.SEQUENCE) {
      const { oid, params } = readAlgorithmIdentifier(r);
      const bits = r.readBitString();
      r.end();
      if (oid === OID_ED25519) {
        throw fail("wrong-type", "it is an Ed25519 key, but the record says k=rsa");
      }
      if (oid !== OID_RSA_ENCRYPTION) throw fail("unsupported", unsupportedAlgorithm(oid));
      readRsaParameters(params);
      const inner = new DerReader(bits);
      r = inner.readSequence();
      inner.end();
    }
    // RSAPublicKey (RFC 8017 §A.1.1), bare or from inside the SubjectPublicKeyInfo.
    const n = r.readUnsignedInteger();
    const e = r.readUnsignedInteger();
    r.end();
    return { n, e };
  } catch (cause) {
    if (!(cause instanceof DerError)) throw cause;
    if (p.length === ED25519_KEY_BYTES) {
      throw fail(
        "wrong-type",
        `it is ${ED25519_KEY_BYTES} bytes, an Ed25519 key, but the record says k=rsa`,
        cause,
      );
    }
    throw fail("syntax", `it is not an RSA public key: ${cause.message}`, cause);
  }
}

/**
 * Makes a verifying key from the decoded `p=` bytes of a DKIM key record (RFC 6376 §3.6.1).
 * For `rsa`, SubjectPublicKeyInfo DER (the normal form) or a bare PKCS#1 RSAPublicKey, which some
 * publishers use; its modulus size is read from the DER and checked against `maxBits` before any
 * import. For `ed25519`, exactly the 32 raw bytes (RFC 8463 §4). Rejects with a {@link KeyError}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { importPublicKey } from "./public_key.ts";
 * // RFC 8463 Appendix A.2, the p= of "brisbane._domainkey.football.example.com".
 * const p = Uint8Array.from(atob("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="), (c) => c.charCodeAt(0));
 * const key = await importPublicKey("ed25519", p);
 * assert.equal(key.bits, 256);
 * await assert.rejects(importPublicKey("rsa", p), { code: "wrong-type" });
 * ```
 */
export async function importPublicKey(
  type: KeyType,
  p: Uint8Array,
  options: PublicKeyOptions = {},
): Promise<VerifyingKey> {
  const fail = keyFail(options.source, "public key");
  const maxBits = options.maxBits ?? MAX_RSA_BITS_DEFAULT;
  return await makeVerifyingKey(type, p, maxBits, options.minBits ?? 0, fail);
}

/**
 * {@link importPublicKey} with its limits and its {@link KeyFail} given: a signing key checks
 * itself with it, under its own name and without a size limit.
 */
export async function makeVerifyingKey(
  type: KeyType,
  p: Uint8Array,
  maxBits: number,
  minBits: number,
  fail: KeyFail,
): Promise<VerifyingKey> {
  if (p.length === 0) {
    throw fail("revoked", "p= is empty, so the key is revoked (RFC 6376 §3.6.1)");
  }
  if (type === "ed25519") {
    if (p.length !== ED25519_KEY_BYTES) {
      if (p[0] === DerTag.SEQUENCE) {
        let oid: string | undefined;
        try {
          const outer = new DerReader(p);
          const r = outer.readSequence();
          oid = readAlgorithmIdentifier(r).oid;
        } catch {
          // Not SubjectPublicKeyInfo either; the length message below says enough.
        }
        if (oid === OID_RSA_ENCRYPTION) {
          throw fail("wrong-type", "it is an RSA key, but the record says k=ed25519");
        }
        if (oid === OID_ED25519) {
          throw fail(
            "syntax",
            `it is a SubjectPublicKeyInfo; RFC 8463 §4 publishes the raw ${ED25519_KEY_BYTES}-byte key`,
          );
        }
      }
      throw fail(
        "syntax",
        `it is ${p.length} bytes; an Ed25519 key is ${ED25519_KEY_BYTES} (RFC 8463 §4)`,
      );
    }
    let key: CryptoKey;
    try {
      key = await crypto.subtle.importKey("raw", bufferSource(p), "Ed25519", false, ["verify"]);
    } catch (cause) {
      throw fail("invalid", "WebCrypto refused the Ed25519 public key", cause);
    }
    return new Ed25519VerifyingKey(ed25519Spki(p), key);
  }
  if (type !== "rsa") {
    throw fail("unsupported", `key type "${type}" is not "rsa" or "ed25519"`);
  }
  const { n, e } = parseRsaPublicKey(p, fail);
  const bits = bitLength(n);
  if (bits > maxBits) {
    throw fail("too-large", `the RSA key has ${bits} bits; at most ${maxBits} are accepted`);
  }
  if (bits < minBits) {
    throw fail("too-small", `the RSA key has ${bits} bits; at least ${minBits} are required`);
  }
  checkRsaNumbers(n, e, fail);
  // Verification is public-key math on public data: the BigInt verifier does it once it has
  // agreed with WebCrypto in this process (rsa_public_verify.ts), five times cheaper.
  const bigint = await rsaPublicVerifierSelfTest() ? new RsaPublicVerifier(n, e) : undefined;
  const key = new RsaVerifyingKey(bits, rsaSpki(n, e), bigint);
  // SHA-256 is what nearly every signature uses: importing it now both caches it for the
  // WebCrypto path and finds a key WebCrypto refuses before any signature is checked, as before
  // the BigInt verifier (the same keys are accepted either way).
  try {
    await key.key("sha256");
  } catch (cause) {
    throw fail("invalid", "WebCrypto refused the RSA public key", cause);
  }
  return key;
}
