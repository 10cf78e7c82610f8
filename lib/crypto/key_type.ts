/**
 * The two kinds of DKIM key, RSA (RFC 6376 §3.3.1) and Ed25519 (RFC 8463), with the sizes the
 * RFCs set for them (RFC 8301 §3.2 for RSA), and the words for every other kind of key a key
 * file may hold. Each size is written once here; signing, verifying, `genkey`, `testkey` and the
 * configuration loader all read it from here.
 *
 * @module
 */

/** The DKIM key types (`k=` tag): `rsa` (RFC 6376 §3.6.1) and `ed25519` (RFC 8463 §4). */
export type KeyType = "rsa" | "ed25519";

/**
 * Smallest RSA key DKIM allows, in bits: "Signers MUST use RSA keys of at least 1024 bits"
 * (RFC 8301 §3.2), and verifiers need accept no smaller.
 */
export const MIN_RSA_BITS = 1024;

/** RSA key size RFC 8301 §3.2 recommends: "Signers SHOULD use RSA keys of at least 2048 bits". */
export const RECOMMENDED_RSA_BITS = 2048;

/**
 * Largest RSA key every verifier handles, in bits: "Verifiers MUST be able to validate
 * signatures with keys ranging from 1024 bits to 4096 bits" (RFC 8301 §3.2); a bigger key fails
 * at some of them.
 */
export const MAX_RSA_BITS_REQUIRED = 4096;

/**
 * Largest RSA public exponent, in bits: verifying costs grow with the exponent, and OpenSSL
 * refuses larger ones for big moduli; real keys use 65537 (17 bits).
 */
export const MAX_RSA_EXPONENT_BITS = 64;

/** Length of an Ed25519 seed (private key) and public key (RFC 8032 §5.1.5, RFC 8463 §4). */
export const ED25519_KEY_BYTES = 32;

/** The size of every Ed25519 key, in bits, where an RSA key gives its modulus size. */
export const ED25519_KEY_BITS = ED25519_KEY_BYTES * 8;

/** The end of every message about a key of another kind. */
export const DKIM_KEY_TYPES = "DKIM keys are RSA (RFC 6376) or Ed25519 (RFC 8463)";

/** Algorithm OIDs that appear in key files but cannot be DKIM keys, named with an article. */
const UNSUPPORTED_OIDS: Readonly<Record<string, string>> = {
  "1.2.840.10045.2.1": "an EC",
  "1.2.840.10040.4.1": "a DSA",
  "1.2.840.113549.1.1.10": "an RSA-PSS",
  "1.3.101.110": "an X25519",
  "1.3.101.111": "an X448",
  "1.3.101.113": "an Ed448",
  "1.2.840.113549.1.3.1": "a DH",
  "1.2.840.10046.2.1": "a DH",
};

/**
 * Says what a key of algorithm `oid` (not RSA or Ed25519) is, for a `KeyError` of code
 * `unsupported`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { unsupportedAlgorithm } from "./key_type.ts";
 * assert.equal(
 *   unsupportedAlgorithm("1.2.840.10045.2.1"),
 *   "it is an EC key; DKIM keys are RSA (RFC 6376) or Ed25519 (RFC 8463)",
 * );
 * ```
 */
export function unsupportedAlgorithm(oid: string): string {
  const name = UNSUPPORTED_OIDS[oid];
  return name !== undefined
    ? `it is ${name} key; ${DKIM_KEY_TYPES}`
    : `its algorithm "${oid}" is not RSA or Ed25519; ${DKIM_KEY_TYPES}`;
}
