/**
 * DKIM signing and verifying keys through WebCrypto: RSASSA-PKCS1-v1_5 (RFC 6376 §3.3.1, with
 * RFC 8301's key sizes) and Ed25519 over a SHA-256 prehash (RFC 8463 §3).
 *
 * Private keys are read in every form the tools people already use write, with the format
 * detected, never asked for: PEM PKCS#8 (opendkim-genkey 2.11 and `openssl genpkey`), PEM PKCS#1
 * (older opendkim-genkey, `openssl genrsa -traditional`), base64 DER without armour (OpenDKIM
 * KeyTable inline keys), raw DER, and the bare base64 Ed25519 seed that dkimpy's
 * `dknewkey --ktype ed25519` writes. PKCS#1 is wrapped into PKCS#8 by our own DER code because
 * WebCrypto imports only PKCS#8.
 *
 * Public keys come from DNS and are hostile: their size is read from the DER before any import,
 * so an oversized key costs nothing (RFC 8301 §3.2).
 *
 * @module
 */

import { equals, fromBase64, latin1 } from "../bytes.ts";
import {
  bitLength,
  derBitString,
  DerError,
  derInteger,
  derNull,
  derOctetString,
  derOid,
  DerReader,
  derSequence,
  DerTag,
} from "./der.ts";
import { digest, type HashAlgorithm } from "./hash.ts";
import { encodePem, looksLikePem, parsePem, type PemBlock, PemError } from "./pem.ts";

/** The DKIM key types (`k=` tag): `rsa` (RFC 6376 §3.6.1) and `ed25519` (RFC 8463 §4). */
export type KeyType = "rsa" | "ed25519";

/**
 * Largest RSA modulus, in bits, that a verifier imports by default. RFC 8301 §3.2: verifiers
 * must handle 1024..4096 bits; bigger keys are a CPU DoS from whoever publishes them.
 */
export const MAX_RSA_BITS_DEFAULT = 4096;

/** Smallest RSA key {@link generateSigningKey} makes: RFC 8301 §3.2, signers MUST use 1024 bits. */
export const MIN_RSA_BITS_GENERATE = 1024;

/**
 * Largest RSA key {@link generateSigningKey} makes: verifiers need only handle 4096 bits
 * (RFC 8301 §3.2), so a bigger key would fail at many of them.
 */
export const MAX_RSA_BITS_GENERATE = 4096;

/** RSA key size {@link generateSigningKey} makes by default, as opendkim-genkey on Debian does. */
export const DEFAULT_RSA_BITS = 2048;

/**
 * Largest RSA public exponent, in bits: verifying costs grow with the exponent, and OpenSSL
 * refuses larger ones for big moduli; real keys use 65537 (17 bits).
 */
export const MAX_RSA_EXPONENT_BITS = 64;

/**
 * Largest private key input, in bytes: a 16384-bit RSA key in PEM is about 12 KiB, so anything
 * past this is not a key file and is refused before it is parsed.
 */
export const MAX_PRIVATE_KEY_INPUT_BYTES = 65536;

/** Length of an Ed25519 seed (private key) and public key (RFC 8032 §5.1.5, RFC 8463 §4). */
export const ED25519_KEY_BYTES = 32;

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
 * import { KeyError } from "./keys.ts";
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

/** A private key ready to sign DKIM signatures. */
export interface SigningKey {
  /** The key type, as `k=` and `a=` name it. */
  readonly type: KeyType;
  /** RSA modulus bits; 256 for Ed25519. */
  readonly bits: number;
  /**
   * The bytes to publish in `p=`: SubjectPublicKeyInfo DER for RSA (what opendkim-genkey
   * publishes), the raw 32 bytes for Ed25519 (RFC 8463 §4).
   */
  readonly publicKey: Uint8Array;
  /** SubjectPublicKeyInfo DER of the public key, for comparing with a published key. */
  readonly spki: Uint8Array;
  /**
   * RSA: RSASSA-PKCS1-v1_5 with SHA-256 over `data` (RFC 6376 §3.3.1). Ed25519: PureEdDSA over
   * SHA-256(`data`) (RFC 8463 §3).
   */
  sign(data: Uint8Array): Promise<Uint8Array>;
  /** PEM PKCS#8 (`BEGIN PRIVATE KEY`), as opendkim-genkey 2.11 writes. */
  toPem(): Promise<string>;
}

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

const OID_RSA = "1.2.840.113549.1.1.1";
const OID_ED25519 = "1.3.101.112";

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

const DKIM_TYPES = "DKIM keys are RSA (RFC 6376) or Ed25519 (RFC 8463)";

const RSA_ALGORITHM = "RSASSA-PKCS1-v1_5";

/** The key parts read from a private key's encoding, before WebCrypto sees them. */
type ParsedPrivateKey =
  | { readonly type: "rsa"; readonly pkcs1: Uint8Array; readonly modulus: Uint8Array }
  | { readonly type: "ed25519"; readonly seed: Uint8Array; readonly publicKey?: Uint8Array };

/** A KeyError factory bound to one key's source. */
type Fail = (code: KeyErrorCode, detail: string, cause?: unknown) => KeyError;

function failFor(source: string | undefined, subject: string): Fail {
  return (code, detail, cause) =>
    new KeyError(code, detail, { source, subject, ...(cause === undefined ? {} : { cause }) });
}

function bytesOf(buffer: ArrayBuffer): Uint8Array {
  return new Uint8Array(buffer);
}

function fromBase64Url(text: string): Uint8Array {
  return fromBase64(text.replace(/-/g, "+").replace(/_/g, "/"));
}

/** The bytes as WebCrypto's BufferSource type wants them; copied only if they view a shared buffer. */
function buf(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer
    ? bytes as Uint8Array<ArrayBuffer>
    : new Uint8Array(bytes);
}

/**
 * The SubjectPublicKeyInfo DER (RFC 5280 §4.1.2.7) of an RSA public key (RFC 8017 §A.1.1),
 * from the big-endian magnitudes of its modulus and exponent.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rsaSpki } from "./keys.ts";
 * const spki = rsaSpki(new Uint8Array(128).fill(0xff), Uint8Array.of(1, 0, 1));
 * assert.equal(spki.length, 162); // a 1024-bit key's p= is 162 bytes
 * ```
 */
export function rsaSpki(modulus: Uint8Array, exponent: Uint8Array): Uint8Array {
  return derSequence(
    derSequence(derOid(OID_RSA), derNull()),
    derBitString(derSequence(derInteger(modulus), derInteger(exponent))),
  );
}

/**
 * The SubjectPublicKeyInfo DER (RFC 8410 §4) of a raw 32-byte Ed25519 public key.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ed25519Spki } from "./keys.ts";
 * assert.equal(ed25519Spki(new Uint8Array(32)).length, 44);
 * ```
 */
export function ed25519Spki(publicKey: Uint8Array): Uint8Array {
  return derSequence(derSequence(derOid(OID_ED25519)), derBitString(publicKey));
}

/**
 * Wraps a PKCS#1 RSAPrivateKey (RFC 8017 §A.1.2, `BEGIN RSA PRIVATE KEY`) into a PKCS#8
 * PrivateKeyInfo (RFC 5208 §5, `BEGIN PRIVATE KEY`) with the rsaEncryption algorithm, the same
 * bytes `openssl pkey` writes. The input is not checked here; {@link importPrivateKey} does.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { wrapRsaPrivateKey } from "./keys.ts";
 * const p8 = wrapRsaPrivateKey(Uint8Array.of(0x30, 0x00));
 * assert.equal(p8[0], 0x30);
 * assert.equal(p8.length, 2 + 3 + 15 + 4);
 * ```
 */
export function wrapRsaPrivateKey(pkcs1: Uint8Array): Uint8Array {
  return derSequence(
    derInteger(0),
    derSequence(derOid(OID_RSA), derNull()),
    derOctetString(pkcs1),
  );
}

/** PKCS#8 of an Ed25519 seed (RFC 8410 §7): the form WebCrypto imports. */
function wrapEd25519Seed(seed: Uint8Array): Uint8Array {
  return derSequence(
    derInteger(0),
    derSequence(derOid(OID_ED25519)),
    derOctetString(derOctetString(seed)),
  );
}

/** Reads an AlgorithmIdentifier (RFC 5280 §4.1.1.2): its OID and whether parameters follow. */
function readAlgorithm(r: DerReader): { oid: string; params: DerReader } {
  const alg = r.readSequence();
  const oid = alg.readOid();
  return { oid, params: alg };
}

/** Checks the RSA AlgorithmIdentifier's parameters: NULL (RFC 3279 §2.3.1), or absent. */
function readRsaParams(params: DerReader): void {
  if (!params.done) params.readNull();
  params.end();
}

/**
 * Largest RSA private key dkimd loads, in bits. The administrator's key, but a typing slip or a
 * wrong file must not stall start-up or a reload: the load-time self-check signature grows with
 * the cube of the size (about 2 ms at 2048 bits, 1 s at 16384, a minute at 65536). Far above
 * what any verifier accepts (RFC 8301 §3.2 asks for 1024 to 4096; dkimd's MaximumKeyBits
 * defaults to 4096).
 */
export const MAX_PRIVATE_KEY_BITS = 16384;

/** Reads a PKCS#1 RSAPrivateKey (RFC 8017 §A.1.2) strictly, returning its modulus. */
function parseRsaPrivateKey(pkcs1: Uint8Array, fail: Fail): Uint8Array {
  const outer = new DerReader(pkcs1);
  const r = outer.readSequence();
  outer.end();
  const version = r.readSmallInteger();
  if (version !== 0) {
    throw fail("unsupported", `RSA private key version ${version} (multi-prime) is not supported`);
  }
  const modulus = r.readUnsignedInteger();
  const exponent = r.readUnsignedInteger();
  const [d, p, q, dp, dq, qi] = Array.from({ length: 6 }, () => toBigInt(r.readUnsignedInteger()));
  r.end();
  checkRsaNumbers(modulus, exponent, fail);
  const bits = bitLength(modulus);
  if (bits > MAX_PRIVATE_KEY_BITS) {
    throw fail(
      "too-large",
      `the RSA key has ${bits} bits; dkimd signs with keys of at most ${MAX_PRIVATE_KEY_BITS}`,
    );
  }
  // WebCrypto recomputes the CRT values from p, q and d and ignores the stored ones, while
  // OpenSSL and OpenDKIM use them: a key whose parts disagree would sign here and fail there.
  const n = toBigInt(modulus);
  const e = toBigInt(exponent);
  const consistent = p > 1n && q > 1n && p * q === n &&
    dp === d % (p - 1n) && dq === d % (q - 1n) && (qi * q) % p === 1n &&
    (e * d) % (p - 1n) === 1n && (e * d) % (q - 1n) === 1n;
  if (!consistent) {
    throw fail("invalid", "the numbers in the RSA private key do not agree: the key is damaged");
  }
  return modulus;
}

function toBigInt(magnitude: Uint8Array): bigint {
  let hex = "0x0";
  for (const b of magnitude) hex += b.toString(16).padStart(2, "0");
  return BigInt(hex);
}

function checkRsaNumbers(modulus: Uint8Array, exponent: Uint8Array, fail: Fail): void {
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

function unsupportedAlgorithm(oid: string, fail: Fail): KeyError {
  const name = UNSUPPORTED_OIDS[oid];
  return fail(
    "unsupported",
    name !== undefined
      ? `it is ${name} key; ${DKIM_TYPES}`
      : `its algorithm "${oid}" is not RSA or Ed25519; ${DKIM_TYPES}`,
  );
}

/** Reads a PKCS#8 PrivateKeyInfo / OneAsymmetricKey (RFC 5208 §5, RFC 5958 §2). */
function parsePkcs8(r: DerReader, version: number, fail: Fail): ParsedPrivateKey {
  if (version > 1) throw fail("unsupported", `PKCS#8 version ${version} is not supported`);
  const { oid, params } = readAlgorithm(r);
  const privateKey = r.readOctetString();
  // attributes [0] IMPLICIT SET OPTIONAL: nothing DKIM needs.
  if (r.peekTag() === 0xa0) r.read();
  // publicKey [1] IMPLICIT BIT STRING OPTIONAL, only in version 2 (encoded 1), RFC 5958 §2.
  let publicKey: Uint8Array | undefined;
  if (version === 1 && r.peekTag() === 0x81) {
    const el = r.read();
    if (el.value.length === 0 || el.value[0] !== 0) {
      throw new DerError("public key BIT STRING is not a whole number of octets", el.offset);
    }
    publicKey = el.value.subarray(1);
  }
  r.end();
  if (oid === OID_RSA) {
    readRsaParams(params);
    return { type: "rsa", pkcs1: privateKey, modulus: parseRsaPrivateKey(privateKey, fail) };
  }
  if (oid === OID_ED25519) {
    // RFC 8410 §3: the parameters MUST be absent.
    params.end();
    const inner = new DerReader(privateKey);
    const seed = inner.readOctetString();
    inner.end();
    if (seed.length !== ED25519_KEY_BYTES) {
      throw fail("syntax", `the Ed25519 private key is ${seed.length} bytes, not 32`);
    }
    if (publicKey !== undefined && publicKey.length !== ED25519_KEY_BYTES) {
      throw fail("syntax", `the Ed25519 public key is ${publicKey.length} bytes, not 32`);
    }
    return { type: "ed25519", seed, publicKey };
  }
  throw unsupportedAlgorithm(oid, fail);
}

/** Reads a DER private key of any supported encoding, or says precisely what it is instead. */
function parsePrivateDer(der: Uint8Array, fail: Fail): ParsedPrivateKey {
  const outer = new DerReader(der);
  const r = outer.readSequence();
  outer.end();
  if (r.peekTag() === DerTag.SEQUENCE) {
    // EncryptedPrivateKeyInfo (RFC 5958 §3) or SubjectPublicKeyInfo (RFC 5280 §4.1).
    const { oid } = readAlgorithm(r);
    if (r.peekTag() === DerTag.OCTET_STRING) {
      throw fail("encrypted", `it is an encrypted PKCS#8 key (algorithm "${oid}"); ${DECRYPT}`);
    }
    if (r.peekTag() === DerTag.BIT_STRING) {
      throw fail("wrong-type", "it is a public key (SubjectPublicKeyInfo), not a private key");
    }
    throw fail("syntax", "it is not a private key in PKCS#8 or PKCS#1 form");
  }
  const first = r.readInteger();
  const next = r.peekTag();
  if (next === DerTag.SEQUENCE) {
    const version = first.length === 1 ? first[0] : 0xff;
    return parsePkcs8(r, version, fail);
  }
  if (next === DerTag.OCTET_STRING && first.length === 1 && first[0] === 1) {
    throw fail("unsupported", `it is an EC private key (SEC 1); ${DKIM_TYPES}`);
  }
  if (next === DerTag.INTEGER) {
    // A SEQUENCE of INTEGERs only: 2 is an RSAPublicKey, 6 OpenSSL's DSA private key, 9 an
    // RSAPrivateKey.
    let integers = 0;
    const probe = new DerReader(der).readSequence();
    while (probe.peekTag() === DerTag.INTEGER && integers < 10) {
      probe.read();
      integers++;
    }
    if (integers === 2 && probe.done) {
      throw fail("wrong-type", "it is an RSA public key (PKCS#1), not a private key");
    }
    if (integers === 6 && probe.done) {
      throw fail("unsupported", `it is a DSA private key; ${DKIM_TYPES}`);
    }
    const pkcs1 = der;
    return { type: "rsa", pkcs1, modulus: parseRsaPrivateKey(pkcs1, fail) };
  }
  throw fail("syntax", "it is not a private key in PKCS#8 or PKCS#1 form");
}

const DECRYPT =
  'DKIM signing needs the key in clear: decrypt it with "openssl pkey -in <file> -out <new file>"';

const PRIVATE_KEY_LABELS = /PRIVATE KEY$/;

/** Picks the private key out of PEM blocks, or says why there is none to use. */
function parsePrivatePem(blocks: PemBlock[], fail: Fail): ParsedPrivateKey {
  const keys = blocks.filter((b) => PRIVATE_KEY_LABELS.test(b.label));
  if (keys.length > 1) {
    throw fail("syntax", `the PEM text holds ${keys.length} private keys; expected one`);
  }
  if (keys.length === 0) {
    const label = blocks[0].label;
    if (/PUBLIC KEY$/.test(label)) {
      throw fail("wrong-type", `PEM "${label}" is a public key, not a private key`);
    }
    if (/CERTIFICATE/.test(label)) {
      throw fail("wrong-type", `PEM "${label}" is a certificate, not a private key`);
    }
    throw fail("wrong-type", `PEM "${label}" is not a private key`);
  }
  const block = keys[0];
  const label = block.label;
  switch (label) {
    case "EC PRIVATE KEY":
      throw fail("unsupported", `PEM "${label}" is an EC key; ${DKIM_TYPES}`);
    case "DSA PRIVATE KEY":
      throw fail("unsupported", `PEM "${label}" is a DSA key; ${DKIM_TYPES}`);
    case "OPENSSH PRIVATE KEY":
      throw fail("unsupported", `PEM "${label}" is in OpenSSH's own format, not PKCS#8 or PKCS#1`);
    case "ENCRYPTED PRIVATE KEY":
      throw fail("encrypted", `PEM "${label}" is encrypted; ${DECRYPT}`);
  }
  const procType = block.headers.get("Proc-Type");
  if ((procType !== undefined && /ENCRYPTED/i.test(procType)) || block.headers.has("DEK-Info")) {
    throw fail("encrypted", `PEM "${label}" is encrypted (Proc-Type: ${procType}); ${DECRYPT}`);
  }
  if (label === "RSA PRIVATE KEY") {
    return { type: "rsa", pkcs1: block.der, modulus: parseRsaPrivateKey(block.der, fail) };
  }
  if (label === "PRIVATE KEY") return parsePrivateDer(block.der, fail);
  throw fail("unsupported", `PEM "${label}" is not a kind of private key DKIM can use`);
}

const BASE64_TEXT = /^[A-Za-z0-9+/=\s]+$/;

/** True for bytes that can only be text: printable ASCII and line whitespace. */
function isText(bytes: Uint8Array): boolean {
  for (const b of bytes) {
    if ((b < 0x20 || b > 0x7e) && b !== 0x09 && b !== 0x0a && b !== 0x0d) return false;
  }
  return true;
}

/** Detects the encoding of a private key input and reads its parts. */
function parsePrivateKeyInput(input: Uint8Array | string, fail: Fail): ParsedPrivateKey {
  let text: string;
  if (typeof input === "string") {
    if (input.length > MAX_PRIVATE_KEY_INPUT_BYTES) throw tooBig(input.length, fail);
    text = input;
  } else {
    if (input.length > MAX_PRIVATE_KEY_INPUT_BYTES) throw tooBig(input.length, fail);
    const body = input[0] === 0xef && input[1] === 0xbb && input[2] === 0xbf
      ? input.subarray(3)
      : input;
    if (!isText(body)) return parseDerInput(body, fail);
    text = latin1(body);
  }
  text = text.replace(/^\uFEFF/, "").trim();
  if (text === "") throw fail("syntax", "the key is empty");
  if (looksLikePem(text)) {
    let blocks: PemBlock[];
    try {
      blocks = parsePem(text);
    } catch (cause) {
      if (cause instanceof PemError) throw fail("syntax", cause.message, cause);
      throw cause;
    }
    return withDerErrors(() => parsePrivatePem(blocks, fail), fail);
  }
  if (!BASE64_TEXT.test(text)) {
    throw fail("syntax", "it is not PEM, base64 or DER");
  }
  let der: Uint8Array;
  try {
    der = fromBase64(text);
  } catch (cause) {
    throw fail("syntax", "it is neither PEM nor valid base64", cause);
  }
  if (der.length === ED25519_KEY_BYTES) return { type: "ed25519", seed: der };
  if (der.length === 2 * ED25519_KEY_BYTES) {
    // libsodium's 64-byte secret key: the seed, then the public key. No DER private key is
    // 64 bytes long, so this cannot shadow one.
    return {
      type: "ed25519",
      seed: der.subarray(0, 32),
      publicKey: der.subarray(32),
    };
  }
  return parseDerInput(der, fail);
}

function tooBig(length: number, fail: Fail): KeyError {
  return fail(
    "syntax",
    `it is ${length} bytes; a key is at most ${MAX_PRIVATE_KEY_INPUT_BYTES} bytes`,
  );
}

function parseDerInput(der: Uint8Array, fail: Fail): ParsedPrivateKey {
  return withDerErrors(() => parsePrivateDer(der, fail), fail);
}

function withDerErrors<T>(parse: () => T, fail: Fail): T {
  try {
    return parse();
  } catch (cause) {
    if (cause instanceof DerError) {
      throw fail("syntax", `it is not a DER private key: ${cause.message}`, cause);
    }
    throw cause;
  }
}

const SELF_CHECK = new TextEncoder().encode("dkimd key self-check");

class WebCryptoSigningKey implements SigningKey {
  readonly type: KeyType;
  readonly bits: number;
  readonly publicKey: Uint8Array;
  readonly spki: Uint8Array;
  readonly #key: CryptoKey;
  readonly #pkcs8: Uint8Array;

  constructor(
    type: KeyType,
    bits: number,
    publicKey: Uint8Array,
    spki: Uint8Array,
    key: CryptoKey,
    pkcs8: Uint8Array,
  ) {
    this.type = type;
    this.bits = bits;
    this.publicKey = publicKey;
    this.spki = spki;
    this.#key = key;
    this.#pkcs8 = pkcs8;
  }

  // Deno's WebCrypto computes an RSA signature (about 2 ms of CPU for 2048 bits) on its blocking
  // thread pool, so the event loop goes on serving other connections meanwhile and both cores
  // sign (tests/crypto/rsa_off_thread_test.ts). Ed25519 (under 0.1 ms) runs on the calling
  // thread.
  async sign(data: Uint8Array): Promise<Uint8Array> {
    if (this.type === "rsa") {
      return bytesOf(await crypto.subtle.sign(RSA_ALGORITHM, this.#key, buf(data)));
    }
    // RFC 8463 §3: Ed25519 signs the SHA-256 hash of the data, not the data.
    return bytesOf(await crypto.subtle.sign("Ed25519", this.#key, buf(digest("sha256", data))));
  }

  toPem(): Promise<string> {
    return Promise.resolve(encodePem("PRIVATE KEY", this.#pkcs8));
  }
}

async function makeSigningKey(parsed: ParsedPrivateKey, fail: Fail): Promise<SigningKey> {
  let key: SigningKey;
  if (parsed.type === "rsa") {
    const pkcs8 = wrapRsaPrivateKey(parsed.pkcs1);
    let cryptoKey: CryptoKey;
    let jwk: JsonWebKey;
    try {
      cryptoKey = await crypto.subtle.importKey(
        "pkcs8",
        buf(pkcs8),
        { name: RSA_ALGORITHM, hash: "SHA-256" },
        true,
        ["sign"],
      );
      jwk = await crypto.subtle.exportKey("jwk", cryptoKey);
    } catch (cause) {
      throw fail("invalid", "WebCrypto refused the RSA private key", cause);
    }
    const n = fromBase64Url(jwk.n ?? "");
    const e = fromBase64Url(jwk.e ?? "");
    const spki = rsaSpki(n, e);
    key = new WebCryptoSigningKey("rsa", bitLength(n), spki, spki, cryptoKey, pkcs8);
  } else {
    const pkcs8 = wrapEd25519Seed(parsed.seed);
    let cryptoKey: CryptoKey;
    let jwk: JsonWebKey;
    try {
      cryptoKey = await crypto.subtle.importKey("pkcs8", buf(pkcs8), "Ed25519", true, ["sign"]);
      jwk = await crypto.subtle.exportKey("jwk", cryptoKey);
    } catch (cause) {
      throw fail("invalid", "WebCrypto refused the Ed25519 private key", cause);
    }
    const x = fromBase64Url(jwk.x ?? "");
    if (parsed.publicKey !== undefined && !equals(parsed.publicKey, x)) {
      throw fail("invalid", "the public key stored with the Ed25519 seed does not match it");
    }
    key = new WebCryptoSigningKey("ed25519", 256, x, ed25519Spki(x), cryptoKey, pkcs8);
  }
  // A damaged key (a flipped bit in a prime, say) imports fine and then signs garbage that no
  // verifier accepts, or WebCrypto parses it only when it first signs; one signature at load
  // time finds either before any mail is signed.
  const verifier = await makeVerifyingKey(key.type, key.publicKey, Infinity, 0, fail);
  let signature: Uint8Array;
  try {
    signature = await key.sign(SELF_CHECK);
  } catch (cause) {
    throw fail("invalid", `WebCrypto cannot sign with the ${key.type} key`, cause);
  }
  if (!(await verifier.verify("sha256", SELF_CHECK, signature))) {
    throw fail(
      "invalid",
      "its signature does not verify with its own public key: the key is damaged",
    );
  }
  return key;
}

/**
 * Reads a private key in any supported form and makes it ready to sign. The format is detected:
 * PEM PKCS#8 (RSA or Ed25519), PEM PKCS#1, base64 DER without armour (OpenDKIM KeyTable inline
 * keys), raw DER, or a bare base64 Ed25519 seed (dkimpy's `dknewkey`, RFC 8463 Appendix A);
 * surrounding whitespace and CRLF line ends are fine. A key is checked once by signing and
 * verifying a test string. Rejects with a {@link KeyError} naming `source` (the file, or
 * "inline key" when no source is given).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { importPrivateKey } from "./keys.ts";
 * // RFC 8463 Appendix A.2, the private key of "brisbane._domainkey.football.example.com".
 * const key = await importPrivateKey("nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=");
 * assert.equal(key.type, "ed25519");
 * assert.equal(btoa(String.fromCharCode(...key.publicKey)), "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
 * ```
 */
export async function importPrivateKey(
  input: Uint8Array | string,
  source?: string,
): Promise<SigningKey> {
  const fail = failFor(source, "inline key");
  return await makeSigningKey(parsePrivateKeyInput(input, fail), fail);
}

class RsaVerifyingKey implements VerifyingKey {
  readonly type = "rsa" as const;
  readonly bits: number;
  readonly spki: Uint8Array;
  readonly #modulusBytes: number;
  readonly #keys = new Map<HashAlgorithm, Promise<CryptoKey>>();

  constructor(bits: number, spki: Uint8Array) {
    this.bits = bits;
    this.spki = spki;
    this.#modulusBytes = Math.ceil(bits / 8);
  }

  /** The WebCrypto key for `hash`, imported on first use: WebCrypto binds the hash to the key. */
  key(hash: HashAlgorithm): Promise<CryptoKey> {
    let key = this.#keys.get(hash);
    if (key === undefined) {
      key = crypto.subtle.importKey(
        "spki",
        buf(this.spki),
        { name: RSA_ALGORITHM, hash: hash === "sha1" ? "SHA-1" : "SHA-256" },
        false,
        ["verify"],
      );
      this.#keys.set(hash, key);
    }
    return key;
  }

  async verify(hash: HashAlgorithm, data: Uint8Array, signature: Uint8Array): Promise<boolean> {
    if (hash !== "sha256" && hash !== "sha1") {
      throw new KeyError("unsupported", `hash "${hash}" is not "sha256" or "sha1"`);
    }
    // RFC 8017 §8.2.2 step 1: a signature of any other length is invalid.
    if (signature.length !== this.#modulusBytes) return false;
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
      return await crypto.subtle.verify(RSA_ALGORITHM, key, buf(signature), buf(data));
    } catch {
      return false;
    }
  }
}

class Ed25519VerifyingKey implements VerifyingKey {
  readonly type = "ed25519" as const;
  readonly bits = 256;
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
        buf(signature),
        buf(digest("sha256", data)),
      );
    } catch {
      return false;
    }
  }
}

/** Reads the modulus and exponent of an RSA `p=`: SubjectPublicKeyInfo or bare RSAPublicKey. */
function parseRsaPublicKey(p: Uint8Array, fail: Fail): { n: Uint8Array; e: Uint8Array } {
  try {
    const outer = new DerReader(p);
    let r = outer.readSequence();
    outer.end();
    if (r.peekTag() === DerTag.SEQUENCE) {
      const { oid, params } = readAlgorithm(r);
      const bits = r.readBitString();
      r.end();
      if (oid === OID_ED25519) {
        throw fail("wrong-type", "it is an Ed25519 key, but the record says k=rsa");
      }
      if (oid !== OID_RSA) throw unsupportedAlgorithm(oid, fail);
      readRsaParams(params);
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
      throw fail("wrong-type", "it is 32 bytes, an Ed25519 key, but the record says k=rsa", cause);
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
 * import { importPublicKey } from "./keys.ts";
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
  const fail = failFor(options.source, "public key");
  const maxBits = options.maxBits ?? MAX_RSA_BITS_DEFAULT;
  return await makeVerifyingKey(type, p, maxBits, options.minBits ?? 0, fail);
}

async function makeVerifyingKey(
  type: KeyType,
  p: Uint8Array,
  maxBits: number,
  minBits: number,
  fail: Fail,
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
          oid = readAlgorithm(r).oid;
        } catch {
          // Not SubjectPublicKeyInfo either; the length message below says enough.
        }
        if (oid === OID_RSA) {
          throw fail("wrong-type", "it is an RSA key, but the record says k=ed25519");
        }
        if (oid === OID_ED25519) {
          throw fail(
            "syntax",
            "it is a SubjectPublicKeyInfo; RFC 8463 §4 publishes the raw 32-byte key",
          );
        }
      }
      throw fail("syntax", `it is ${p.length} bytes; an Ed25519 key is 32 (RFC 8463 §4)`);
    }
    let key: CryptoKey;
    try {
      key = await crypto.subtle.importKey("raw", buf(p), "Ed25519", false, ["verify"]);
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
  const key = new RsaVerifyingKey(bits, rsaSpki(n, e));
  // SHA-256 is what nearly every signature uses: importing it now both caches it and finds a
  // key WebCrypto refuses before any signature is checked.
  try {
    await key.key("sha256");
  } catch (cause) {
    throw fail("invalid", "WebCrypto refused the RSA public key", cause);
  }
  return key;
}

/**
 * Makes a new private key, as `opendkim-genkey` or `dknewkey` would: RSA with `bits` bits
 * (2048 by default, {@link MIN_RSA_BITS_GENERATE}..{@link MAX_RSA_BITS_GENERATE}, public
 * exponent 65537), or Ed25519 (`bits` absent or 256). Throws a `RangeError` for another size.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateSigningKey, importPublicKey } from "./keys.ts";
 * const key = await generateSigningKey("ed25519");
 * const data = new TextEncoder().encode("data");
 * const pub = await importPublicKey("ed25519", key.publicKey);
 * assert.equal(await pub.verify("sha256", data, await key.sign(data)), true);
 * ```
 */
export async function generateSigningKey(
  type: KeyType,
  bits?: number,
): Promise<SigningKey> {
  let pair: CryptoKeyPair;
  if (type === "rsa") {
    const size = bits ?? DEFAULT_RSA_BITS;
    if (!Number.isInteger(size) || size < MIN_RSA_BITS_GENERATE || size > MAX_RSA_BITS_GENERATE) {
      throw new RangeError(
        `Cannot generate an RSA key of "${size}" bits: expected ${MIN_RSA_BITS_GENERATE} to ${MAX_RSA_BITS_GENERATE}`,
      );
    }
    pair = await crypto.subtle.generateKey(
      {
        name: RSA_ALGORITHM,
        modulusLength: size,
        publicExponent: Uint8Array.of(1, 0, 1),
        hash: "SHA-256",
      },
      true,
      ["sign", "verify"],
    );
  } else if (type === "ed25519") {
    if (bits !== undefined && bits !== 256) {
      throw new RangeError(`Cannot generate an Ed25519 key of "${bits}" bits: it has 256`);
    }
    pair = await crypto.subtle.generateKey("Ed25519", true, ["sign", "verify"]) as CryptoKeyPair;
  } else {
    throw new RangeError(`Cannot generate a key of type "${type}": expected "rsa" or "ed25519"`);
  }
  const pkcs8 = bytesOf(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  const fail = failFor(undefined, "generated key");
  return await makeSigningKey(parsePrivateKeyInput(pkcs8, fail), fail);
}
