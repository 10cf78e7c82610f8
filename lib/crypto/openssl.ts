/**
 * RSA through the system's libcrypto (OpenSSL 3) by `Deno.dlopen`: RSASSA-PKCS1-v1_5 signing
 * and verification (RFC 8017 §8.2), the one part of DKIM where WebCrypto is slow. Deno's
 * WebCrypto signs with the Rust `rsa` crate, about 2 ms of CPU per RSA-2048 signature; OpenSSL
 * takes about 0.25 ms. PKCS#1 v1.5 is deterministic, so both give the same bytes
 * (tests/crypto/openssl_test.ts checks thousands).
 *
 * Each key is parsed by OpenSSL once (`d2i_PrivateKey_bio`, `d2i_PUBKEY_bio`) into an `EVP_PKEY`
 * that lives as long as the JavaScript key object, freed by a `FinalizationRegistry` once
 * nothing can use it (a reload drops the old keys). A signature is one `EVP_PKEY_sign` over the
 * SHA-256 `DigestInfo`, on a context prepared once (padding and digest set) and reused: the
 * sign call is `nonblocking`, so it runs on Deno's blocking thread pool like WebCrypto's, and
 * the event loop goes on serving other connections. Verifying (about 0.02 ms) runs on the
 * calling thread: a trip to the pool would cost more than the operation.
 *
 * @module
 */

import { digest, type HashAlgorithm } from "./hash.ts";

/**
 * Where libcrypto 3 lives on the systems dkimd supports, tried in order: Debian and Ubuntu
 * (amd64, arm64), then RHEL, CentOS, Fedora and SUSE. deno.json's `start` and `compile` tasks
 * allow FFI on exactly these paths (lib/ops/self_command.ts `SERVICE_DENO_FLAGS`).
 */
export const LIBCRYPTO_PATHS: readonly string[] = [
  "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
  "/usr/lib/aarch64-linux-gnu/libcrypto.so.3",
  "/usr/lib64/libcrypto.so.3",
];

/**
 * The oldest libcrypto used: 3.0.0, whose `EVP_PKEY_CTX_set_rsa_padding` and
 * `EVP_PKEY_CTX_set_signature_md` are functions (in 1.1 they were macros dlopen cannot find).
 */
export const MIN_OPENSSL_VERSION = 0x30000000n;

const RSA_PKCS1_PADDING = 1;

const SYMBOLS = {
  OpenSSL_version_num: { parameters: [], result: "u64" },
  BIO_new_mem_buf: { parameters: ["buffer", "i32"], result: "pointer" },
  BIO_free: { parameters: ["pointer"], result: "i32" },
  d2i_PrivateKey_bio: { parameters: ["pointer", "pointer"], result: "pointer" },
  d2i_PUBKEY_bio: { parameters: ["pointer", "pointer"], result: "pointer" },
  EVP_PKEY_free: { parameters: ["pointer"], result: "void" },
  EVP_PKEY_get_bits: { parameters: ["pointer"], result: "i32" },
  EVP_PKEY_get_size: { parameters: ["pointer"], result: "i32" },
  EVP_PKEY_get_base_id: { parameters: ["pointer"], result: "i32" },
  EVP_PKEY_CTX_new: { parameters: ["pointer", "pointer"], result: "pointer" },
  EVP_PKEY_CTX_free: { parameters: ["pointer"], result: "void" },
  EVP_PKEY_sign_init: { parameters: ["pointer"], result: "i32" },
  EVP_PKEY_verify_init: { parameters: ["pointer"], result: "i32" },
  EVP_PKEY_CTX_set_rsa_padding: { parameters: ["pointer", "i32"], result: "i32" },
  EVP_PKEY_CTX_set_signature_md: { parameters: ["pointer", "pointer"], result: "i32" },
  EVP_sha256: { parameters: [], result: "pointer" },
  EVP_sha1: { parameters: [], result: "pointer" },
  EVP_PKEY_sign: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "usize"],
    result: "i32",
    nonblocking: true,
  },
  EVP_PKEY_verify: {
    parameters: ["pointer", "buffer", "usize", "buffer", "usize"],
    result: "i32",
  },
  ERR_get_error: { parameters: [], result: "u64" },
  ERR_error_string_n: { parameters: ["u64", "buffer", "usize"], result: "void" },
  ERR_clear_error: { parameters: [], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

type Symbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** `EVP_PKEY_RSA` (NID rsaEncryption). */
const EVP_PKEY_RSA = 6;

/** libcrypto cannot be used: missing, too old, or not allowed (no `--allow-ffi` for it). */
export class OpensslUnavailableError extends Error {
  /** Makes the error, saying why. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "OpensslUnavailableError";
  }
}

/** A native handle freed when its JavaScript owner is collected. */
interface Handles {
  readonly pkey: Deno.PointerObject;
  readonly contexts: Deno.PointerObject[];
}

/**
 * An opened libcrypto: makes RSA keys that sign and verify natively. Open it with
 * {@link openLibcrypto}; one per process is enough.
 */
export class Libcrypto {
  /** The path it was opened from. */
  readonly path: string;
  /** `OpenSSL_version_num()`, such as `0x30000130` for 3.0.19. */
  readonly version: bigint;
  readonly #lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  readonly #s: Symbols;
  readonly #sha256: Deno.PointerValue;
  readonly #sha1: Deno.PointerValue;
  readonly #freer: FinalizationRegistry<Handles>;

  /** Wraps an opened library; use {@link openLibcrypto}. */
  constructor(path: string, lib: Deno.DynamicLibrary<typeof SYMBOLS>) {
    this.path = path;
    this.#lib = lib;
    this.#s = lib.symbols;
    this.version = BigInt(this.#s.OpenSSL_version_num());
    this.#sha256 = this.#s.EVP_sha256();
    this.#sha1 = this.#s.EVP_sha1();
    const s = this.#s;
    this.#freer = new FinalizationRegistry((h: Handles) => {
      for (const ctx of h.contexts) s.EVP_PKEY_CTX_free(ctx);
      s.EVP_PKEY_free(h.pkey);
    });
  }

  /**
   * Parses an RSA private key from DER (PKCS#8 or PKCS#1) into a native signing key. The DER
   * is zeroed once OpenSSL has read it, so the key bytes live on in OpenSSL's memory only, for
   * as long as the returned key is reachable.
   */
  privateKey(der: Uint8Array): OpensslRsaSigner {
    const pkey = this.#parse("d2i_PrivateKey_bio", der);
    der.fill(0);
    return new OpensslRsaSigner(this, pkey);
  }

  /** Parses an RSA SubjectPublicKeyInfo (DER) into a native verifying key. */
  publicKey(spki: Uint8Array): OpensslRsaVerifier {
    return new OpensslRsaVerifier(this, this.#parse("d2i_PUBKEY_bio", spki));
  }

  #parse(fn: "d2i_PrivateKey_bio" | "d2i_PUBKEY_bio", der: Uint8Array): Deno.PointerObject {
    // Through a memory BIO over the bytes (no copy): d2i_* would want a pointer to a pointer,
    // and taking a buffer's address needs FFI permission for every path, not only libcrypto's.
    const bio = this.#s.BIO_new_mem_buf(der as Uint8Array<ArrayBuffer>, der.length);
    if (bio === null) throw this.error("BIO_new_mem_buf failed");
    const pkey = this.#s[fn](bio, null);
    this.#s.BIO_free(bio);
    if (pkey === null) throw this.error(`OpenSSL cannot read the key (${fn})`);
    if (this.#s.EVP_PKEY_get_base_id(pkey) !== EVP_PKEY_RSA) {
      this.#s.EVP_PKEY_free(pkey);
      throw new OpensslUnavailableError("OpenSSL read a key that is not RSA");
    }
    return pkey;
  }

  /** A context for `pkey` ready to sign (or verify) PKCS#1 v1.5 with `hash`. */
  context(pkey: Deno.PointerObject, purpose: "sign" | "verify", hash: HashAlgorithm) {
    const s = this.#s;
    const ctx = s.EVP_PKEY_CTX_new(pkey, null);
    if (ctx === null) throw this.error("EVP_PKEY_CTX_new failed");
    const ok = (purpose === "sign" ? s.EVP_PKEY_sign_init(ctx) : s.EVP_PKEY_verify_init(ctx)) ===
        1 &&
      s.EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) === 1 &&
      s.EVP_PKEY_CTX_set_signature_md(ctx, hash === "sha1" ? this.#sha1 : this.#sha256) === 1;
    if (!ok) {
      s.EVP_PKEY_CTX_free(ctx);
      throw this.error(`cannot prepare an RSA ${purpose} context`);
    }
    return ctx;
  }

  /** Frees `handles` when `owner` is collected. */
  track(owner: object, handles: Handles): void {
    this.#freer.register(owner, handles);
  }

  /** The symbols, for the key classes of this module. */
  get symbols(): Symbols {
    return this.#s;
  }

  /** An error carrying OpenSSL's queued error text for this thread, which it then clears. */
  error(what: string): OpensslUnavailableError {
    const codes: string[] = [];
    const buf = new Uint8Array(256);
    for (let e = this.#s.ERR_get_error(); e !== 0n && codes.length < 4;) {
      this.#s.ERR_error_string_n(e, buf, BigInt(buf.length));
      codes.push(new TextDecoder().decode(buf.subarray(0, buf.indexOf(0))));
      e = this.#s.ERR_get_error();
    }
    this.#s.ERR_clear_error();
    return new OpensslUnavailableError(codes.length ? `${what}: ${codes.join("; ")}` : what);
  }

  /** Closes the library; keys made from it must not be used afterwards (tests only). */
  close(): void {
    this.#lib.close();
  }
}

/** An RSA private key in OpenSSL, signing RSASSA-PKCS1-v1_5 with SHA-256 off the event loop. */
export class OpensslRsaSigner {
  /** Modulus bits. */
  readonly bits: number;
  readonly #lib: Libcrypto;
  readonly #pkey: Deno.PointerObject;
  readonly #size: number;
  /** Contexts not in use: one per signature running at once, so threads never share one. */
  readonly #idle: Deno.PointerObject[] = [];
  readonly #all: Deno.PointerObject[] = [];

  /** Wraps `pkey`, which this object then owns; use {@link Libcrypto.privateKey}. */
  constructor(lib: Libcrypto, pkey: Deno.PointerObject) {
    this.#lib = lib;
    this.#pkey = pkey;
    this.bits = lib.symbols.EVP_PKEY_get_bits(pkey);
    this.#size = lib.symbols.EVP_PKEY_get_size(pkey);
    lib.track(this, { pkey, contexts: this.#all });
  }

  /** The signature of SHA-256(`data`), on Deno's blocking thread pool. */
  async sign(data: Uint8Array): Promise<Uint8Array> {
    const ctx = this.#idle.pop() ?? this.#newContext();
    const hash = digest("sha256", data);
    const signature = new Uint8Array(this.#size);
    const length = new BigUint64Array([BigInt(this.#size)]);
    let ok: number;
    try {
      ok = await this.#lib.symbols.EVP_PKEY_sign(ctx, signature, length, hash, BigInt(32));
    } finally {
      this.#idle.push(ctx);
    }
    // The failure's error text is on the pool thread's queue, out of reach: say what failed.
    if (ok !== 1) throw new OpensslUnavailableError("OpenSSL could not sign (EVP_PKEY_sign)");
    return Number(length[0]) === this.#size ? signature : signature.subarray(0, Number(length[0]));
  }

  #newContext(): Deno.PointerObject {
    const ctx = this.#lib.context(this.#pkey, "sign", "sha256");
    this.#all.push(ctx);
    return ctx;
  }
}

/** An RSA public key in OpenSSL, verifying RSASSA-PKCS1-v1_5 with SHA-256 or SHA-1. */
export class OpensslRsaVerifier {
  /** Modulus bits. */
  readonly bits: number;
  readonly #lib: Libcrypto;
  readonly #pkey: Deno.PointerObject;
  readonly #contexts = new Map<HashAlgorithm, Deno.PointerObject>();
  readonly #all: Deno.PointerObject[] = [];

  /** Wraps `pkey`, which this object then owns; use {@link Libcrypto.publicKey}. */
  constructor(lib: Libcrypto, pkey: Deno.PointerObject) {
    this.#lib = lib;
    this.#pkey = pkey;
    this.bits = lib.symbols.EVP_PKEY_get_bits(pkey);
    lib.track(this, { pkey, contexts: this.#all });
  }

  /** True when `signature` is valid for `data` under `hash`; on the calling thread. */
  verify(hash: HashAlgorithm, data: Uint8Array, signature: Uint8Array): boolean {
    let ctx = this.#contexts.get(hash);
    if (ctx === undefined) {
      ctx = this.#lib.context(this.#pkey, "verify", hash);
      this.#contexts.set(hash, ctx);
      this.#all.push(ctx);
    }
    const d = digest(hash, data);
    const ok = this.#lib.symbols.EVP_PKEY_verify(
      ctx,
      signature as Uint8Array<ArrayBuffer>,
      BigInt(signature.length),
      d,
      BigInt(d.length),
    );
    // A bad signature queues an error; drop it so the queue does not grow.
    if (ok !== 1) this.#lib.symbols.ERR_clear_error();
    return ok === 1;
  }
}

/**
 * Opens libcrypto 3 from `paths` (the first that opens), or throws an
 * {@link OpensslUnavailableError} saying why none could: missing, too old, or FFI not allowed
 * for it.
 *
 * @example
 * ```ts ignore
 * import { openLibcrypto } from "./openssl.ts";
 * const lib = openLibcrypto();
 * console.log(lib.path, lib.version.toString(16));
 * ```
 */
export function openLibcrypto(paths: readonly string[] = LIBCRYPTO_PATHS): Libcrypto {
  const why: string[] = [];
  for (const path of paths) {
    let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
    try {
      lib = Deno.dlopen(path, SYMBOLS);
    } catch (e) {
      why.push(`"${path}": ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`);
      continue;
    }
    const opened = new Libcrypto(path, lib);
    if (opened.version < MIN_OPENSSL_VERSION) {
      lib.close();
      why.push(`"${path}" is OpenSSL ${opened.version.toString(16)}, older than 3.0`);
      continue;
    }
    return opened;
  }
  throw new OpensslUnavailableError(`Cannot use libcrypto 3: ${why.join("; ")}`);
}
