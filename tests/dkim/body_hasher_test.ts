import assert from "node:assert/strict";
import { fromLatin1 } from "../../lib/bytes.ts";
import { digest, type HashAlgorithm } from "../../lib/crypto/hash.ts";
import { BodyHashes, type BodyHashSpec } from "../../lib/dkim/body_hasher.ts";
import { describeSplit, splits } from "../helpers/chunks.ts";

const BODY = "Hi  there \t\r\n\r\nBye\r\n\r\n\r\n";
// RFC 6376 §3.4.3 and §3.4.4: the canonical forms of BODY.
const CANONICAL = { simple: "Hi  there \t\r\n\r\nBye\r\n", relaxed: "Hi there\r\n\r\nBye\r\n" };

const specs: BodyHashSpec[] = [
  { canonicalization: "simple", algorithm: "sha256" },
  { canonicalization: "relaxed", algorithm: "sha256" },
  { canonicalization: "simple", algorithm: "sha1" },
  { canonicalization: "relaxed", algorithm: "sha1" },
  // l= counts canonical bytes (RFC 6376 §3.5): 0, inside a line, at the end, and past it.
  { canonicalization: "relaxed", algorithm: "sha256", length: 0 },
  { canonicalization: "relaxed", algorithm: "sha256", length: 5 },
  { canonicalization: "simple", algorithm: "sha256", length: 17 },
  { canonicalization: "relaxed", algorithm: "sha256", length: CANONICAL.relaxed.length },
  { canonicalization: "simple", algorithm: "sha1", length: 1000 },
];

const expected = (spec: BodyHashSpec) => {
  const canonical = CANONICAL[spec.canonicalization];
  return digest(spec.algorithm as HashAlgorithm, fromLatin1(canonical.slice(0, spec.length)));
};

Deno.test("BodyHashes hashes each canonical body, cut to l=, whatever the chunks", () => {
  for (const pieces of splits(fromLatin1(BODY))) {
    const hashes = new BodyHashes();
    for (const spec of specs) hashes.add(spec);
    for (const piece of pieces) hashes.push(piece);
    hashes.finish();
    for (const spec of specs) {
      const { hash, canonicalLength } = hashes.result(spec);
      const what = `${JSON.stringify(spec)} ${describeSplit(pieces)}`;
      assert.deepEqual(hash, expected(spec), what);
      // The whole canonical body's length, whatever l= says, to check l= against.
      assert.equal(canonicalLength, CANONICAL[spec.canonicalization].length, what);
    }
  }
});

Deno.test("BodyHashes computes each distinct canonicalization, hash and l= once", () => {
  const hashes = new BodyHashes();
  assert.equal(hashes.size, 0);
  hashes.add({ canonicalization: "relaxed", algorithm: "sha256" });
  hashes.add({ canonicalization: "relaxed", algorithm: "sha256" });
  hashes.add({ canonicalization: "relaxed", algorithm: "sha256", length: undefined });
  assert.equal(hashes.size, 1);
  hashes.add({ canonicalization: "relaxed", algorithm: "sha256", length: 3 });
  hashes.add({ canonicalization: "simple", algorithm: "sha256" });
  hashes.add({ canonicalization: "relaxed", algorithm: "sha1" });
  assert.equal(hashes.size, 4);
});

Deno.test("BodyHashes hashes an empty body as RFC 6376 §3.4.3 and §3.4.4 say", () => {
  const hashes = new BodyHashes();
  const simple = { canonicalization: "simple", algorithm: "sha256" } as const;
  const relaxed = { canonicalization: "relaxed", algorithm: "sha256" } as const;
  hashes.add(simple);
  hashes.add(relaxed);
  hashes.finish();
  assert.deepEqual(hashes.result(simple).hash, digest("sha256", fromLatin1("\r\n")));
  assert.deepEqual(hashes.result(relaxed).hash, digest("sha256", new Uint8Array()));
  assert.equal(hashes.result(relaxed).canonicalLength, 0);
});

Deno.test("BodyHashes refuses a new spec after finish() and answers only finished specs", () => {
  const spec = { canonicalization: "simple", algorithm: "sha256" } as const;
  const other = { canonicalization: "relaxed", algorithm: "sha256" } as const;
  const hashes = new BodyHashes();
  hashes.add(spec);
  hashes.push(fromLatin1("x\r\n"));
  assert.throws(() => hashes.result(spec), /No finished body hash for "simple\/sha256\/"/);
  hashes.finish();
  hashes.finish(); // A second finish() changes nothing.
  assert.deepEqual(hashes.result(spec).hash, digest("sha256", fromLatin1("x\r\n")));
  assert.doesNotThrow(() => hashes.add(spec), "a spec already there is free");
  assert.throws(() => hashes.add(other), /after finish\(\)/);
  assert.throws(() => hashes.result(other), /No finished body hash for "relaxed\/sha256\/"/);
});
