// The BigInt RSASSA-PKCS1-v1_5 verifier (RFC 8017 §8.2.2) against WebCrypto, the reference: the
// same answer on thousands of valid, tampered, mis-sized and out-of-range signatures over keys of
// every size DKIM meets and several public exponents; a Bleichenbacher e = 3 forgery that a
// parsing verifier accepts and ours refuses; and the default backend really using it.

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createPrivateKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import fc from "fast-check";
import { concat, utf8 } from "../../lib/bytes.ts";
import { WEBCRYPTO_ENGINE } from "../../lib/crypto/crypto_backend.ts";
import { digest, type HashAlgorithm } from "../../lib/crypto/hash.ts";
import { importPrivateKey } from "../../lib/crypto/private_key.ts";
import { importPublicKey, RSA_ALGORITHM } from "../../lib/crypto/public_key.ts";
import {
  DIGEST_INFO_PREFIX,
  os2ip,
  RsaPublicVerifier,
  rsaPublicVerifierSelfTest,
} from "../../lib/crypto/rsa_public_verify.ts";

const KEYS = new URL("../testdata/keys/", import.meta.url);
const HASHES = ["sha256", "sha1"] as const;
const WEB_HASH = { sha256: "SHA-256", sha1: "SHA-1" } as const;

/** A key pair: WebCrypto signs and verifies (the reference), ours verifies. */
interface TestKey {
  readonly name: string;
  readonly n: bigint;
  readonly e: bigint;
  /** Modulus length in bytes. */
  readonly k: number;
  readonly ours: RsaPublicVerifier;
  sign(hash: HashAlgorithm, data: Uint8Array): Promise<Uint8Array>;
  webVerify(hash: HashAlgorithm, data: Uint8Array, signature: Uint8Array): Promise<boolean>;
}

async function testKey(name: string, privateKey: KeyObject): Promise<TestKey> {
  const jwk = privateKey.export({ format: "jwk" });
  const nBytes = new Uint8Array(Buffer.from(jwk.n!, "base64url"));
  const eBytes = new Uint8Array(Buffer.from(jwk.e!, "base64url"));
  const pkcs8 = new Uint8Array(privateKey.export({ type: "pkcs8", format: "der" }));
  const { createPublicKey } = await import("node:crypto");
  const spki = new Uint8Array(createPublicKey(privateKey).export({ type: "spki", format: "der" }));
  const signers = new Map<HashAlgorithm, CryptoKey>();
  const verifiers = new Map<HashAlgorithm, CryptoKey>();
  for (const hash of HASHES) {
    const params = { name: RSA_ALGORITHM, hash: WEB_HASH[hash] };
    signers.set(hash, await crypto.subtle.importKey("pkcs8", pkcs8, params, false, ["sign"]));
    verifiers.set(hash, await crypto.subtle.importKey("spki", spki, params, false, ["verify"]));
  }
  const n = os2ip(nBytes);
  return {
    name,
    n,
    e: os2ip(eBytes),
    k: Math.ceil(n.toString(2).length / 8),
    ours: new RsaPublicVerifier(nBytes, eBytes),
    async sign(hash, data) {
      return new Uint8Array(
        await crypto.subtle.sign(RSA_ALGORITHM, signers.get(hash)!, new Uint8Array(data)),
      );
    },
    webVerify(hash, data, signature) {
      return crypto.subtle.verify(
        RSA_ALGORITHM,
        verifiers.get(hash)!,
        new Uint8Array(signature),
        new Uint8Array(data),
      );
    },
  };
}

const fileKey = (name: string) =>
  testKey(name, createPrivateKey(Deno.readTextFileSync(new URL(name, KEYS))));
const freshKey = (bits: number, e: number) =>
  testKey(
    `fresh ${bits} bits, e = ${e}`,
    generateKeyPairSync("rsa", { modulusLength: bits, publicExponent: e }).privateKey,
  );

/** I2OSP (RFC 8017 §4.1) into exactly `length` bytes; `x` must fit. */
function i2osp(x: bigint, length: number): Uint8Array {
  const hex = x.toString(16).padStart(length * 2, "0");
  assert.equal(hex.length, length * 2, "the integer fits");
  return new Uint8Array(Buffer.from(hex, "hex"));
}

/** A seeded xorshift32, so every run checks the same cases and a failure replays. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

let keys: Promise<TestKey[]> | undefined;
/** Every key of the suite, made once: the file keys cover odd sizes and 3072/4096 bits. */
function allKeys(): Promise<TestKey[]> {
  keys ??= (async () => [
    await fileKey("rsa1023.pem"),
    await fileKey("rsa1024.pem"),
    await fileKey("rsa2047.pem"),
    await fileKey("rsa2048_pkcs8.pem"),
    await fileKey("rsa3072.pem"),
    await fileKey("rsa4096.pem"),
    await freshKey(1024, 65537),
    await freshKey(1024, 3),
    await freshKey(1024, 5),
    await freshKey(1024, 17),
    await freshKey(2048, 3),
  ])();
  return keys;
}

/** Checks ours against WebCrypto on one case, and against the expected answer. */
async function agree(
  key: TestKey,
  hash: HashAlgorithm,
  data: Uint8Array,
  signature: Uint8Array,
  want: boolean,
  what: string,
): Promise<void> {
  const theirs = await key.webVerify(hash, data, signature);
  const ours = key.ours.verify(hash, data, signature);
  assert.equal(theirs, want, `WebCrypto, ${key.name}, ${hash}: ${what}`);
  assert.equal(ours, want, `ours, ${key.name}, ${hash}: ${what}`);
}

Deno.test("RsaPublicVerifier agrees with WebCrypto on valid and bit-flipped signatures and tampered data", async () => {
  const next = prng(20);
  let cases = 0;
  for (const key of await allKeys()) {
    for (const hash of HASHES) {
      for (let message = 0; message < 4; message++) {
        const data = new Uint8Array(next() % 300).map(() => next());
        const signature = await key.sign(hash, data);
        await agree(key, hash, data, signature, true, "the valid signature");
        // Every bit of the first and last bytes, then 32 bits anywhere.
        const bits = [
          ...Array.from({ length: 8 }, (_, i) => i),
          ...Array.from({ length: 8 }, (_, i) => (key.k - 1) * 8 + i),
          ...Array.from({ length: 32 }, () => next() % (key.k * 8)),
        ];
        for (const bit of bits) {
          const flipped = signature.slice();
          flipped[bit >> 3] ^= 0x80 >> (bit & 7);
          await agree(key, hash, data, flipped, false, `signature bit ${bit} flipped`);
        }
        const tampered = concat([data, Uint8Array.of(0)]);
        await agree(key, hash, tampered, signature, false, "one byte appended to the data");
        if (data.length > 0) {
          const changed = data.slice();
          changed[next() % data.length] ^= 1 << (next() % 8);
          await agree(key, hash, changed, signature, false, "one data bit flipped");
        }
        const other = hash === "sha256" ? "sha1" : "sha256";
        await agree(key, other, data, signature, false, `checked as ${other}`);
        cases += bits.length + 4;
      }
    }
  }
  assert.ok(cases > 4000, `${cases} cases`);
});

Deno.test("RsaPublicVerifier refuses wrong lengths and out-of-range representatives as WebCrypto does", async () => {
  for (const key of await allKeys()) {
    for (const hash of HASHES) {
      const data = utf8(`out of range, ${key.name}`);
      const signature = await key.sign(hash, data);
      // RFC 8017 §8.2.2 step 1: length k only, even when the integer is the same.
      await agree(key, hash, data, signature.subarray(1), false, "k-1 bytes");
      await agree(key, hash, data, concat([Uint8Array.of(0), signature]), false, "k+1 bytes");
      await agree(key, hash, data, new Uint8Array(0), false, "no bytes");
      // RFC 8017 §5.2.2 step 1: s must be below n.
      const s = os2ip(signature);
      const top = (1n << BigInt(8 * key.k)) - 1n;
      for (
        const [what, x] of [
          ["s = n", key.n],
          ["s = n + 1", key.n + 1n],
          ["s = n + valid s", key.n + s <= top ? key.n + s : key.n],
          ["s = 256^k - 1", top],
          ["s = 0", 0n],
          ["s = 1", 1n],
          ["s = n - 1", key.n - 1n],
        ] as const
      ) {
        await agree(key, hash, data, i2osp(x, key.k), false, what);
      }
    }
  }
});

/** Integer cube root, rounded down (Newton's method). */
function cubeRoot(x: bigint): bigint {
  let r = 1n << BigInt(Math.ceil(x.toString(2).length / 3) + 1);
  for (;;) {
    const next = (2n * r + x / (r * r)) / 3n;
    if (next >= r) break;
    r = next;
  }
  while (r * r * r > x) r--;
  while ((r + 1n) ** 3n <= x) r++;
  return r;
}

/**
 * The flawed check Bleichenbacher forged against (CVE-2006-4339): it parses the decrypted block
 * (00 01 FF… 00, DigestInfo, hash) and ignores whatever follows the hash.
 */
function parsingVerify(key: TestKey, hash: HashAlgorithm, data: Uint8Array, sig: Uint8Array) {
  let m = 1n;
  for (let i = 0n; i < key.e; i++) m = (m * os2ip(sig)) % key.n;
  const em = i2osp(m, key.k);
  if (em[0] !== 0 || em[1] !== 1) return false;
  let i = 2;
  while (em[i] === 0xff) i++;
  if (em[i++] !== 0) return false;
  const t = concat([DIGEST_INFO_PREFIX[hash], digest(hash, data)]);
  return t.every((b, j) => em[i + j] === b);
}

Deno.test("RsaPublicVerifier refuses a Bleichenbacher e = 3 forgery with garbage after the hash", async () => {
  const key = (await allKeys()).find((k) => k.e === 3n && k.k === 256)!;
  for (const hash of HASHES) {
    const data = utf8("From: forger@example.com\r\nSubject: wire the money\r\n");
    const t = concat([DIGEST_INFO_PREFIX[hash], digest(hash, data)]);
    // 00 01, the eight FF bytes §9.2 requires at least, 00, T, then garbage to the end: the cube
    // root of that block, rounded up, cubes back to the same leading bytes.
    const head = concat([Uint8Array.of(0, 1), new Uint8Array(8).fill(0xff), Uint8Array.of(0), t]);
    const target = os2ip(concat([head, new Uint8Array(key.k - head.length)]));
    let s = cubeRoot(target);
    if (s ** 3n < target) s++;
    const forged = i2osp(s, key.k);
    assert.ok(s ** 3n < key.n, "no reduction mod n: the forgery needs no private key");
    assert.deepEqual(i2osp(s ** 3n, key.k).subarray(0, head.length), head);
    assert.equal(parsingVerify(key, hash, data, forged), true, "the forgery fools a parser");
    await agree(key, hash, data, forged, false, "the Bleichenbacher forgery");
  }
});

Deno.test("RsaPublicVerifier agrees with WebCrypto on random signatures and random data (property)", async () => {
  const key = (await allKeys()).find((k) => k.name === "rsa1024.pem")!;
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...HASHES),
      fc.uint8Array({ maxLength: 200 }),
      fc.uint8Array({ minLength: key.k, maxLength: key.k }),
      async (hash, data, signature) => {
        assert.equal(key.ours.verify(hash, data, signature), false);
        assert.equal(await key.webVerify(hash, data, signature), false);
      },
    ),
    { numRuns: 300 },
  );
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...HASHES),
      fc.uint8Array({ maxLength: 200 }),
      fc.nat(),
      fc.integer({ min: 1, max: 255 }),
      async (hash, data, at, xor) => {
        const signature = await key.sign(hash, data);
        assert.equal(key.ours.verify(hash, data, signature), true);
        signature[at % key.k] ^= xor;
        assert.equal(key.ours.verify(hash, data, signature), false);
        assert.equal(await key.webVerify(hash, data, signature), false);
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("RsaPublicVerifier accepts no signature when the modulus is too short for EMSA-PKCS1-v1_5", () => {
  // RFC 8017 §9.2 step 3: k < tLen + 11 is "intended encoded message length too short". A
  // 256-bit modulus (k = 32) cannot hold SHA-256's 51-byte T; every m then fails to compare.
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 512 });
  const jwk = privateKey.export({ format: "jwk" });
  const n = new Uint8Array(Buffer.from(jwk.n!, "base64url"));
  const verifier = new RsaPublicVerifier(
    n.subarray(0, 32).map((b, i) => i === 31 ? b | 1 : b),
    Uint8Array.of(3),
  );
  assert.equal(verifier.modulusBytes, 32);
  for (let s = 0n; s < 64n; s++) {
    assert.equal(verifier.verify("sha256", utf8("x"), i2osp(s, 32)), false);
  }
});

/** Counts calls of crypto.subtle.verify while `body` runs. */
async function countSubtleVerify(body: () => Promise<void>): Promise<number> {
  const subtle = crypto.subtle;
  const original = subtle.verify;
  let calls = 0;
  subtle.verify = function (this: SubtleCrypto, ...args: Parameters<SubtleCrypto["verify"]>) {
    calls++;
    return original.apply(this, args);
  };
  try {
    await body();
  } finally {
    subtle.verify = original;
  }
  return calls;
}

Deno.test("the default backend verifies RSA with the BigInt verifier, not crypto.subtle.verify", async () => {
  assert.equal(await rsaPublicVerifierSelfTest(), true);
  const signer = await importPrivateKey(Deno.readFileSync(new URL("rsa2048_pkcs8.der", KEYS)));
  const data = utf8("from:Joe SixPack <joe@football.example.com>\r\n");
  const signature = await signer.sign(data);
  const tampered = signature.slice();
  tampered[100] ^= 4;
  for (const importer of [importPublicKey, WEBCRYPTO_ENGINE.importPublicKey]) {
    const key = await importer("rsa", Deno.readFileSync(new URL("rsa2048_pub.der", KEYS)));
    assert.equal((key as unknown as { verifier: string }).verifier, "bigint");
    const calls = await countSubtleVerify(async () => {
      assert.equal(await key.verify("sha256", data, signature), true);
      assert.equal(await key.verify("sha256", data, tampered), false);
      assert.equal(await key.verify("sha1", data, signature), false);
    });
    assert.equal(calls, 0);
  }
  // The counter sees WebCrypto when it is used: Ed25519 stays there.
  const ed = await importPrivateKey(Deno.readFileSync(new URL("ed25519.pem", KEYS)));
  const edKey = await importPublicKey("ed25519", ed.publicKey);
  const edCalls = await countSubtleVerify(async () => {
    assert.equal(await edKey.verify("sha256", data, await ed.sign(data)), true);
  });
  assert.equal(edCalls, 1);
});

Deno.test("RSA keys keep WebCrypto when the BigInt verifier's self-test fails", async () => {
  // A fresh process whose WebCrypto verify is broken (accepts everything): the self-test sees
  // the two disagree, and keys fall back to WebCrypto.
  const publicKey = new URL("../../lib/crypto/public_key.ts", import.meta.url).href;
  const verifier = new URL("../../lib/crypto/rsa_public_verify.ts", import.meta.url).href;
  const script = `
    crypto.subtle.verify = () => Promise.resolve(true);
    const { importPublicKey } = await import(${JSON.stringify(publicKey)});
    const { rsaPublicVerifierSelfTest } = await import(${JSON.stringify(verifier)});
    const key = await importPublicKey("rsa", Deno.readFileSync(${
    JSON.stringify(new URL("rsa2048_pub.der", KEYS).pathname)
  }));
    console.log(JSON.stringify([await rsaPublicVerifierSelfTest(), key.verifier]));
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", script],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.equal(out.code, 0);
  assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), [false, "webcrypto"]);
});
