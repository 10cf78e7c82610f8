/**
 * DKIM signing keys: private keys read in every form the tools people already use write, with
 * the format detected, never asked for, and imported into WebCrypto to sign with
 * RSASSA-PKCS1-v1_5 (RFC 6376 §3.3.1) or Ed25519 over a SHA-256 prehash (RFC 8463 §3); and new
 * keys made as opendkim-genkey and dknewkey make them.
 *
 * The forms: PEM PKCS#8 (opendkim-genkey 2.11 and `openssl genpkey`), PEM PKCS#1 (older
 * opendkim-genkey, `openssl genrsa -traditional`), base64 DER without armour (OpenDKIM KeyTable
 * inline keys), raw DER, and the bare base64 Ed25519 seed that dkimpy's
 * `dknewkey --ktype ed25519` writes. PKCS#1 is wrapped into PKCS#8 by our own DER code because
 * WebCrypto imports only PKCS#8.
 *
 * @module
 */

import { equals, fromBase64, latin1 } from "../bytes.ts";
import {
  bitLength,
  DerError,
  DerReader,
  DerTag,
  OID_ED25519,
  OID_RSA_ENCRYPTION,
  readAlgorithmIdentifier,
  readRsaParameters,
  rsaSpki,
  wrapEd25519Seed,
  wrapRsaPrivateKey,
} from "./der.ts";
import { digest } from "./hash.ts";
import { type KeyError, type KeyFail, keyFail } from "./key_error.ts";
import {
  DKIM_KEY_TYPES,
  ED25519_KEY_BITS,
  ED25519_KEY_BYTES,
  type KeyType,
  MAX_RSA_BITS_REQUIRED,
  MIN_RSA_BITS,
  RECOMMENDED_RSA_BITS,
  unsupportedAlgorithm,
} from "./key_type.ts";
import { encodePem, looksLikePem, parsePem, type PemBlock, PemError } from "./pem.ts";
import { bufferSource, checkRsaNumbers, makeVerifyingKey, RSA_ALGORITHM } from "./public_key.ts";

/** RSA key size {@link generateSigningKey} makes by default, as opendkim-genkey on Debian does. */
export const DEFAULT_RSA_BITS = RECOMMENDED_RSA_BITS;

/**
 * Largest private key input, in bytes, whether a key file or an inline key: a 16384-bit RSA key
 * in PEM is about 12 KiB, so anything past this is not a key and is refused before it is parsed.
 */
export const MAX_PRIVATE_KEY_INPUT_BYTES = 64 * 1024;

/**
 * Largest RSA private key dkimd loads, in bits. The administrator's key, but a typing slip or a
 * wrong file must not stall start-up or a reload: the load-time self-check signature grows with
 * the cube of the size (about 2 ms at 2048 bits, 1 s at 16384, a minute at 65536). Far above
 * what any verifier accepts (RFC 8301 §3.2 asks for 1024 to 4096; dkimd's MaximumKeyBits
 * defaults to 4096).
 */
export const MAX_PRIVATE_KEY_BITS = 16384;

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

/** The key parts read from a private key's encoding, before WebCrypto sees them. */
type ParsedPrivateKey =
  | { readonly type: "rsa"; readonly pkcs1: Uint8Array; readonly modulus: Uint8Array }
  | { readonly type: "ed25519"; readonly seed: Uint8Array; readonly publicKey?: Uint8Array };

function bytesOf(buffer: ArrayBuffer): Uint8Array {
  return new Uint8Array(buffer);
}

function fromBase64Url(text: string): Uint8Array {
  return fromBase64(text.replace(/-/g, "+").replace(/_/g, "/"));
}

/** Reads a PKCS#1 RSAPrivateKey (RFC 8017 §A.1.2) strictly, returning its modulus. */
function parseRsaPrivateKey(pkcs1: Uint8Array, fail: KeyFail): Uint8Array {
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

/** Reads a PKCS#8 PrivateKeyInfo / OneAsymmetricKey (RFC 5208 §5, RFC 5958 §2). */
function parsePkcs8(r: DerReader, version: number, fail: KeyFail): ParsedPrivateKey {
  if (version > 1) throw fail("unsupported", `PKCS#8 version ${version} is not supported`);
  const { oid, params } = readAlgorithmIdentifier(r);
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
  if (oid === OID_RSA_ENCRYPTION) {
    readRsaParameters(params);
    return { type: "rsa", pkcs1: privateKey, modulus: parseRsaPrivateKey(privateKey, fail) };
  }
  if (oid === OID_ED25519) {
    // RFC 8410 §3: the parameters MUST be absent.
    params.end();
    const inner = new DerReader(privateKey);
    const seed = inner.readOctetString();
    inner.end();
    if (seed.length !== ED25519_KEY_BYTES) {
      throw fail(
        "syntax",
        `the Ed25519 private key is ${seed.length} bytes, not ${ED25519_KEY_BYTES}`,
      );
    }
    if (publicKey !== undefined && publicKey.length !== ED25519_KEY_BYTES) {
      throw fail(
        "syntax",
        `the Ed25519 public key is ${publicKey.length} bytes, not ${ED25519_KEY_BYTES}`,
      );
    }
    return { type: "ed25519", seed, publicKey };
  }
  throw fail("unsupported", unsupportedAlgorithm(oid));
}

/** Reads a DER private key of any supported encoding, or says precisely what it is instead. */
function parsePrivateDer(der: Uint8Array, fail: KeyFail): ParsedPrivateKey {
  const outer = new DerReader(der);
  const r = outer.readSequence();
  outer.end();
  if (r.peekTag() === DerTag.SEQUENCE) {
    // EncryptedPrivateKeyInfo (RFC 5958 §3) or SubjectPublicKeyInfo (RFC 5280 §4.1).
    const { oid } = readAlgorithmIdentifier(r);
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
    throw fail("unsupported", `it is an EC private key (SEC 1); ${DKIM_KEY_TYPES}`);
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
      throw fail("unsupported", `it is a DSA private key; ${DKIM_KEY_TYPES}`);
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
function parsePrivatePem(blocks: PemBlock[], fail: KeyFail): ParsedPrivateKey {
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
      throw fail("unsupported", `PEM "${label}" is an EC key; ${DKIM_KEY_TYPES}`);
    case "DSA PRIVATE KEY":
      throw fail("unsupported", `PEM "${label}" is a DSA key; ${DKIM_KEY_TYPES}`);
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
function parsePrivateKeyInput(input: Uint8Array | string, fail: KeyFail): ParsedPrivateKey {
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
      seed: der.subarray(0, ED25519_KEY_BYTES),
      publicKey: der.subarray(ED25519_KEY_BYTES),
    };
  }
  return parseDerInput(der, fail);
}

function tooBig(length: number, fail: KeyFail): KeyError {
  return fail(
    "syntax",
    `it is ${length} bytes; a key is at most ${MAX_PRIVATE_KEY_INPUT_BYTES} bytes`,
  );
}

function parseDerInput(der: Uint8Array, fail: KeyFail): ParsedPrivateKey {
  return withDerErrors(() => parsePrivateDer(der, fail), fail);
}

function withDerErrors<T>(parse: () => T, fail: KeyFail): T {
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
  // sign (tests/crypto/private_key_test.ts). Ed25519 (under 0.1 ms) runs on the calling
  // thread.
  async sign(data: Uint8Array): Promise<Uint8Array> {
    if (this.type === "rsa") {
      return bytesOf(await crypto.subtle.sign(RSA_ALGORITHM, this.#key, bufferSource(data)));
    }
    // RFC 8463 §3: Ed25519 signs the SHA-256 hash of the data, not the data.
    return bytesOf(
      await crypto.subtle.sign("Ed25519", this.#key, bufferSource(digest("sha256", data))),
    );
  }

  toPem(): Promise<string> {
    return Promise.resolve(encodePem("PRIVATE KEY", this.#pkcs8));
  }
}

/** A parsed key imported into WebCrypto, with its PKCS#8 and the bytes of its `p=`. */
interface ImportedKey {
  readonly cryptoKey: CryptoKey;
  readonly pkcs8: Uint8Array;
  readonly publicKey: Uint8Array;
}

/**
 * Imports a parsed key into WebCrypto, and reads its public half back (as a JWK): the RSA
 * modulus and exponent as the SubjectPublicKeyInfo opendkim-genkey publishes, or Ed25519's raw
 * 32 bytes (RFC 8463 §4).
 */
async function importParsed(parsed: ParsedPrivateKey, fail: KeyFail): Promise<ImportedKey> {
  const pkcs8 = parsed.type === "rsa"
    ? wrapRsaPrivateKey(parsed.pkcs1)
    : wrapEd25519Seed(parsed.seed);
  const algorithm = parsed.type === "rsa"
    ? { name: RSA_ALGORITHM, hash: "SHA-256" }
    : { name: "Ed25519" };
  let cryptoKey: CryptoKey;
  let jwk: JsonWebKey;
  try {
    cryptoKey = await crypto.subtle.importKey("pkcs8", bufferSource(pkcs8), algorithm, true, [
      "sign",
    ]);
    jwk = await crypto.subtle.exportKey("jwk", cryptoKey);
  } catch (cause) {
    const name = parsed.type === "rsa" ? "RSA" : "Ed25519";
    throw fail("invalid", `WebCrypto refused the ${name} private key`, cause);
  }
  if (parsed.type === "rsa") {
    const publicKey = rsaSpki(fromBase64Url(jwk.n ?? ""), fromBase64Url(jwk.e ?? ""));
    return { cryptoKey, pkcs8, publicKey };
  }
  const publicKey = fromBase64Url(jwk.x ?? "");
  if (parsed.publicKey !== undefined && !equals(parsed.publicKey, publicKey)) {
    throw fail("invalid", "the public key stored with the Ed25519 seed does not match it");
  }
  return { cryptoKey, pkcs8, publicKey };
}

async function makeSigningKey(parsed: ParsedPrivateKey, fail: KeyFail): Promise<SigningKey> {
  const { cryptoKey, pkcs8, publicKey } = await importParsed(parsed, fail);
  // The key's size and SubjectPublicKeyInfo are what a verifier reads from its p=.
  const verifier = await makeVerifyingKey(parsed.type, publicKey, Infinity, 0, fail);
  const key = new WebCryptoSigningKey(
    parsed.type,
    verifier.bits,
    publicKey,
    verifier.spki,
    cryptoKey,
    pkcs8,
  );
  // A damaged key (a flipped bit in a prime, say) imports fine and then signs garbage that no
  // verifier accepts, or WebCrypto parses it only when it first signs; one signature at load
  // time finds either before any mail is signed.
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
 * import { importPrivateKey } from "./private_key.ts";
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
  const fail = keyFail(source, "inline key");
  return await makeSigningKey(parsePrivateKeyInput(input, fail), fail);
}

/**
 * Makes a new private key, as `opendkim-genkey` or `dknewkey` would: RSA with `bits` bits
 * (2048 by default, {@link MIN_RSA_BITS}..{@link MAX_RSA_BITS_REQUIRED}, public
 * exponent 65537), or Ed25519 (`bits` absent or 256). Throws a `RangeError` for another size.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateSigningKey } from "./private_key.ts";
 * import { importPublicKey } from "./public_key.ts";
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
    if (!Number.isInteger(size) || size < MIN_RSA_BITS || size > MAX_RSA_BITS_REQUIRED) {
      throw new RangeError(
        `Cannot generate an RSA key of "${size}" bits: expected ${MIN_RSA_BITS} to ${MAX_RSA_BITS_REQUIRED}`,
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
    if (bits !== undefined && bits !== ED25519_KEY_BITS) {
      throw new RangeError(
        `Cannot generate an Ed25519 key of "${bits}" bits: it has ${ED25519_KEY_BITS}`,
      );
    }
    pair = await crypto.subtle.generateKey("Ed25519", true, ["sign", "verify"]) as CryptoKeyPair;
  } else {
    throw new RangeError(`Cannot generate a key of type "${type}": expected "rsa" or "ed25519"`);
  }
  const pkcs8 = bytesOf(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  const fail = keyFail(undefined, "generated key");
  return await makeSigningKey(parsePrivateKeyInput(pkcs8, fail), fail);
}
