import assert from "node:assert/strict";
import fc from "fast-check";
import { utf8 } from "../../lib/bytes.ts";
import {
  createIncrementalHash,
  digest,
  HASH_LENGTH,
  type HashAlgorithm,
} from "../../lib/crypto/hash.ts";
import { describeSplit, splits } from "../helpers/chunks.ts";
import { fuzzParams } from "../helpers/fuzz.ts";

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const ALGORITHMS: HashAlgorithm[] = ["sha256", "sha1"];

// FIPS 180-4 examples ("abc") and the empty string.
const vectors: { algorithm: HashAlgorithm; input: string; want: string }[] = [
  {
    algorithm: "sha256",
    input: "abc",
    want: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  },
  {
    algorithm: "sha256",
    input: "",
    want: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  },
  { algorithm: "sha1", input: "abc", want: "a9993e364706816aba3e25717850c26c9cd0d89d" },
  { algorithm: "sha1", input: "", want: "da39a3ee5e6b4b0d3255bfef95601890afd80709" },
];

Deno.test("digest() gives the FIPS 180-4 example digests", () => {
  for (const { algorithm, input, want } of vectors) {
    const got = digest(algorithm, utf8(input));
    assert.equal(hex(got), want, `${algorithm}("${input}")`);
    assert.equal(got.length, HASH_LENGTH[algorithm]);
    assert.equal(Object.getPrototypeOf(got), Uint8Array.prototype, "a plain Uint8Array");
  }
});

Deno.test("digest() agrees with WebCrypto", async () => {
  const data = utf8("DKIM-Signature: v=1; a=rsa-sha256\r\n".repeat(50));
  for (const [algorithm, name] of [["sha256", "SHA-256"], ["sha1", "SHA-1"]] as const) {
    const want = new Uint8Array(await crypto.subtle.digest(name, new Uint8Array(data)));
    assert.deepEqual(digest(algorithm, data), want);
  }
});

Deno.test("createIncrementalHash() gives the one-shot digest at every split point", () => {
  const input = utf8("Hi.\r\n\r\nWe lost the game.  Are you hungry yet?\r\n\r\nJoe.\r\n");
  for (const algorithm of ALGORITHMS) {
    const want = digest(algorithm, input);
    for (const pieces of splits(input)) {
      const h = createIncrementalHash(algorithm);
      for (const p of pieces) h.update(p);
      assert.deepEqual(h.digest(), want, `${algorithm} ${describeSplit(pieces)}`);
    }
  }
});

Deno.test("createIncrementalHash() equals digest() for arbitrary data in arbitrary chunks", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 4096 }),
      fc.array(fc.nat(), { maxLength: 20 }),
      fc.constantFrom(...ALGORITHMS),
      (data, cuts, algorithm) => {
        const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
        const h = createIncrementalHash(algorithm);
        let from = 0;
        for (const to of [...points, data.length]) {
          h.update(data.subarray(from, to));
          from = to;
        }
        assert.deepEqual(h.digest(), digest(algorithm, data));
      },
    ),
    fuzzParams(300),
  );
});

Deno.test("createIncrementalHash() streams a large body in 64 KiB frames", () => {
  const frame = new Uint8Array(65536).map((_, i) => (i * 31) & 0xff);
  const h = createIncrementalHash("sha256");
  const whole = new Uint8Array(frame.length * 16);
  for (let i = 0; i < 16; i++) {
    h.update(frame);
    whole.set(frame, i * frame.length);
  }
  assert.deepEqual(h.digest(), digest("sha256", whole));
});

Deno.test("createIncrementalHash() refuses use after digest()", () => {
  const h = createIncrementalHash("sha1");
  h.update(utf8("a"));
  h.digest();
  assert.throws(() => h.update(utf8("b")), TypeError);
  assert.throws(() => h.digest(), TypeError);
});

Deno.test("createIncrementalHash() and digest() refuse an unknown algorithm", () => {
  assert.throws(() => createIncrementalHash("md5" as HashAlgorithm), TypeError);
  assert.throws(() => digest("sha512" as HashAlgorithm, utf8("")), /"sha512"/);
});
