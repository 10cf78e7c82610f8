/**
 * The CryptoBackend setting's two engines behind one interface: `webcrypto` (Deno's own, the
 * default) and `openssl` (the system's libcrypto 3 by FFI, lib/crypto/openssl.ts) for RSA.
 * Keys are always read, checked and self-tested by the WebCrypto path first (private_key.ts,
 * public_key.ts); the OpenSSL backend then gives an RSA key a native twin that signs or
 * verifies, after checking that both engines give the same signature byte for byte. Ed25519
 * stays with WebCrypto, whose Ed25519 is as fast as OpenSSL's through FFI. Under either engine an
 * imported RSA public key verifies with the BigInt RFC 8017 verifier (rsa_public_verify.ts) once
 * its self-test against WebCrypto has passed; the OpenSSL engine replaces that with its twin.
 *
 * @module
 */

import type { HashAlgorithm } from "./hash.ts";
import { KeyError } from "./key_error.ts";
import { type Libcrypto, openLibcrypto, type OpensslRsaVerifier } from "./openssl.ts";
import { parsePem } from "./pem.ts";
import { importPrivateKey, type SigningKey } from "./private_key.ts";
import {
  importPublicKey,
  type PublicKeyOptions,
  RSA_ALGORITHM,
  type VerifyingKey,
} from "./public_key.ts";
import type { KeyType } from "./key_type.ts";

/** The CryptoBackend setting: which engine does RSA. */
export type CryptoBackendName = "openssl" | "webcrypto";

/** Every {@link CryptoBackendName}. */
export const CRYPTO_BACKENDS: readonly CryptoBackendName[] = ["webcrypto", "openssl"];

/** The default CryptoBackend: Deno's WebCrypto, which needs no FFI. */
export const CRYPTO_BACKEND_DEFAULT: CryptoBackendName = "webcrypto";

/** The crypto a configuration's keys are imported with. */
export interface CryptoEngine {
  /** The backend actually in use. */
  readonly name: CryptoBackendName;
  /** Reads a private key (any form {@link importPrivateKey} takes). */
  importPrivateKey(input: Uint8Array | string, source?: string): Promise<SigningKey>;
  /** Imports a key record's public key (as {@link importPublicKey}). */
  importPublicKey(type: KeyType, p: Uint8Array, options?: PublicKeyOptions): Promise<VerifyingKey>;
}

/**
 * WebCrypto for every private key and Ed25519; RSA public keys verify with the BigInt verifier
 * after its self-test (public_key.ts), else WebCrypto.
 */
export const WEBCRYPTO_ENGINE: CryptoEngine = {
  name: "webcrypto",
  importPrivateKey,
  importPublicKey,
};

const SELF_TEST_DATA = new TextEncoder().encode("dkimd OpenSSL self-test");

class OpensslSigningKey implements SigningKey {
  readonly type: KeyType;
  readonly bits: number;
  readonly publicKey: Uint8Array;
  readonly spki: Uint8Array;
  readonly #webcrypto: SigningKey;
  readonly #native: { sign(data: Uint8Array): Promise<Uint8Array> };

  constructor(webcrypto: SigningKey, native: { sign(data: Uint8Array): Promise<Uint8Array> }) {
    this.type = webcrypto.type;
    this.bits = webcrypto.bits;
    this.publicKey = webcrypto.publicKey;
    this.spki = webcrypto.spki;
    this.#webcrypto = webcrypto;
    this.#native = native;
  }

  sign(data: Uint8Array): Promise<Uint8Array> {
    return this.#native.sign(data);
  }

  toPem(): Promise<string> {
    return this.#webcrypto.toPem();
  }
}

class OpensslVerifyingKey implements VerifyingKey {
  readonly type = "rsa" as const;
  readonly bits: number;
  readonly spki: Uint8Array;
  readonly #native: OpensslRsaVerifier;

  constructor(webcrypto: VerifyingKey, native: OpensslRsaVerifier) {
    this.bits = webcrypto.bits;
    this.spki = webcrypto.spki;
    this.#native = native;
  }

  verify(hash: HashAlgorithm, data: Uint8Array, signature: Uint8Array): Promise<boolean> {
    if (hash !== "sha256" && hash !== "sha1") {
      return Promise.reject(
        new KeyError("unsupported", `hash "${hash}" is not "sha256" or "sha1"`),
      );
    }
    // RFC 8017 §8.2.2 step 1, as the WebCrypto key checks it.
    if (signature.length !== Math.ceil(this.bits / 8)) return Promise.resolve(false);
    return Promise.resolve(this.#native.verify(hash, data, signature));
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The OpenSSL engine over an opened libcrypto. */
class OpensslEngine implements CryptoEngine {
  readonly name = "openssl" as const;
  readonly #lib: Libcrypto;

  constructor(lib: Libcrypto) {
    this.#lib = lib;
  }

  async importPrivateKey(input: Uint8Array | string, source?: string): Promise<SigningKey> {
    const key = await importPrivateKey(input, source);
    if (key.type !== "rsa") return key;
    const der = parsePem(await key.toPem())[0].der;
    let native;
    try {
      native = this.#lib.privateKey(der);
    } catch (cause) {
      throw new KeyError("invalid", "OpenSSL refused the RSA private key", {
        source,
        subject: "inline key",
        cause,
      });
    }
    // The self-test: OpenSSL must sign exactly as WebCrypto does (PKCS#1 v1.5 is
    // deterministic), or the key is not used through it.
    const [ours, theirs] = await Promise.all([
      native.sign(SELF_TEST_DATA),
      key.sign(SELF_TEST_DATA),
    ]);
    if (!sameBytes(ours, theirs)) {
      throw new KeyError("invalid", "OpenSSL and WebCrypto sign differently with the key", {
        source,
        subject: "inline key",
      });
    }
    return new OpensslSigningKey(key, native);
  }

  async importPublicKey(
    type: KeyType,
    p: Uint8Array,
    options?: PublicKeyOptions,
  ): Promise<VerifyingKey> {
    const key = await importPublicKey(type, p, options);
    if (key.type !== "rsa") return key;
    let native: OpensslRsaVerifier;
    try {
      native = this.#lib.publicKey(key.spki);
    } catch (cause) {
      throw new KeyError("invalid", "OpenSSL refused the RSA public key", {
        source: options?.source,
        subject: "public key",
        cause,
      });
    }
    return new OpensslVerifyingKey(key, native);
  }
}

/**
 * Opens the OpenSSL engine and tests it against WebCrypto: a fresh RSA-1024 key signs the same
 * bytes through both, OpenSSL verifies the signature (SHA-256 and SHA-1) and refuses it once
 * tampered with. Throws an `OpensslUnavailableError` (openssl.ts) when libcrypto is missing,
 * too old or not allowed, and a plain `Error` when the self-test fails.
 *
 * @example
 * ```ts ignore
 * import { openOpensslEngine } from "./crypto_backend.ts";
 * const engine = await openOpensslEngine();
 * const key = await engine.importPrivateKey(await Deno.readFile("/etc/dkimd/keys/s.private"));
 * ```
 */
export async function openOpensslEngine(paths?: readonly string[]): Promise<CryptoEngine> {
  const lib = openLibcrypto(paths);
  const pair = await crypto.subtle.generateKey(
    {
      name: RSA_ALGORITHM,
      modulusLength: 1024,
      publicExponent: Uint8Array.of(1, 0, 1),
      hash: "SHA-256",
    },
    true,
    ["sign", "verify"],
  );
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", pair.publicKey));
  const signer = lib.privateKey(pkcs8);
  const verifier = lib.publicKey(spki);
  const ours = await signer.sign(SELF_TEST_DATA);
  const theirs = new Uint8Array(
    await crypto.subtle.sign(RSA_ALGORITHM, pair.privateKey, SELF_TEST_DATA),
  );
  const tampered = ours.slice();
  tampered[tampered.length - 1] ^= 1;
  const sha1 = await crypto.subtle.importKey(
    "pkcs8",
    await crypto.subtle.exportKey("pkcs8", pair.privateKey),
    { name: RSA_ALGORITHM, hash: "SHA-1" },
    false,
    ["sign"],
  );
  const sha1Signature = new Uint8Array(
    await crypto.subtle.sign(RSA_ALGORITHM, sha1, SELF_TEST_DATA),
  );
  const passed = sameBytes(ours, theirs) &&
    verifier.verify("sha256", SELF_TEST_DATA, ours) &&
    !verifier.verify("sha256", SELF_TEST_DATA, tampered) &&
    verifier.verify("sha1", SELF_TEST_DATA, sha1Signature) &&
    !verifier.verify("sha1", SELF_TEST_DATA, ours);
  if (!passed) {
    throw new Error(
      `The self-test of libcrypto "${lib.path}" failed: its RSA signatures differ from WebCrypto's`,
    );
  }
  return new OpensslEngine(lib);
}
