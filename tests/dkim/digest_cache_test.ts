import assert from "node:assert/strict";
import { DigestCache, textDigest } from "../../lib/dkim/digest_cache.ts";

Deno.test("textDigest() is 44 characters for any text and tells texts apart", () => {
  const texts = ["", "a", "A", "\xe9", "é".normalize("NFD"), "x".repeat(65535)];
  const digests = texts.map(textDigest);
  assert.ok(digests.every((d) => d.length === 44));
  assert.equal(new Set(digests).size, texts.length);
  assert.equal(textDigest("a"), textDigest("a"));
});

Deno.test("DigestCache evicts the least recently used past maxEntries or maxBytes", () => {
  const cache = new DigestCache<number>(3, 100);
  cache.set("a", 1, 10);
  cache.set("b", 2, 10);
  cache.set("c", 3, 10);
  assert.equal(cache.get("a"), 1); // a is now the most recent
  cache.set("d", 4, 10); // four entries: b goes
  assert.deepEqual(["a", "b", "c", "d"].map((k) => cache.get(k)), [1, undefined, 3, 4]);
  cache.set("e", 5, 75); // 105 bytes: the oldest (a) goes
  assert.equal(cache.get("a"), undefined);
  assert.equal(cache.size, 3);
  assert.equal(cache.bytes, 95);
  cache.set("e", 6, 20); // replacing an entry replaces its charge
  assert.equal(cache.bytes, 40);
});

Deno.test("DigestCache keeps the newest entry alone however large, and charges later sizes", () => {
  const cache = new DigestCache<string>(10, 100);
  cache.set("small", "s", 10);
  cache.set("huge", "h", 1000);
  assert.deepEqual([cache.get("small"), cache.get("huge"), cache.size], [undefined, "h", 1]);
  const small = new DigestCache<string>(10, 100);
  small.set("a", "A", 40);
  small.set("b", "B", 40);
  small.charge("b", "other", 50); // another value now: ignored
  assert.equal(small.bytes, 80);
  small.charge("b", "B", 50); // 130 bytes: a goes
  assert.deepEqual([small.get("a"), small.get("b"), small.bytes], [undefined, "B", 90]);
  small.delete("b", "other");
  assert.equal(small.size, 1);
  small.delete("b", "B");
  assert.deepEqual([small.size, small.bytes], [0, 0]);
});
