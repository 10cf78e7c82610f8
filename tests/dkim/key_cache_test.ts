import assert from "node:assert/strict";
import type { VerifyingKey } from "../../lib/crypto/public_key.ts";
import {
  importRecordKey,
  KEY_CACHE_MAX_BYTES_DEFAULT,
  KEY_CACHE_SIZE_DEFAULT,
  KeyCache,
} from "../../lib/dkim/key_cache.ts";
import { textDigest } from "../../lib/dkim/digest_cache.ts";
import { parseKeyRecord } from "../../lib/dkim/key_record.ts";

/** A stand-in key: the cache never looks inside one. */
const fakeKey = (name: string) => ({ name }) as unknown as VerifyingKey;

/** A loader that counts its calls, per record text. */
function loader() {
  const calls: string[] = [];
  return {
    calls,
    load: (text: string) => () => {
      calls.push(text);
      return Promise.resolve(fakeKey(text));
    },
  };
}

Deno.test("KeyCache.get() imports a record's key once and shares it", async () => {
  const cache = new KeyCache();
  const { calls, load } = loader();
  const first = cache.get("p=A", load("p=A"));
  const again = cache.get("p=A", load("p=A"));
  assert.equal(again, first, "the same promise, even before it settles");
  assert.equal(await first, await cache.get("p=A", load("p=A")));
  await cache.get("p=B", load("p=B"));
  assert.deepEqual(calls, ["p=A", "p=B"]);
});

Deno.test("KeyCache.get() forgets a failed import, so the next message tries again", async () => {
  const cache = new KeyCache();
  let calls = 0;
  const failing = () => (calls++, Promise.reject(new Error("bad key")));
  await assert.rejects(cache.get("p=X", failing), /bad key/);
  await assert.rejects(cache.get("p=X", failing), /bad key/);
  assert.equal(calls, 2);
  const key = fakeKey("p=X");
  assert.equal(await cache.get("p=X", () => Promise.resolve(key)), key);
  assert.equal(await cache.get("p=X", failing), key);
  assert.equal(calls, 2);
});

Deno.test("KeyCache keeps the most recently used keys, at most its size", async () => {
  const cache = new KeyCache(2);
  const { calls, load } = loader();
  await cache.get("a", load("a"));
  await cache.get("b", load("b"));
  await cache.get("a", load("a")); // a is now the most recent
  await cache.get("c", load("c")); // evicts b
  await cache.get("a", load("a"));
  await cache.get("c", load("c"));
  assert.deepEqual(calls, ["a", "b", "c"]);
  await cache.get("b", load("b")); // evicts a
  await cache.get("a", load("a"));
  assert.deepEqual(calls, ["a", "b", "c", "b", "a"]);
});

Deno.test("KeyCache holds at least one key, and KEY_CACHE_SIZE_DEFAULT by default", async () => {
  for (const size of [0, -5]) {
    const cache = new KeyCache(size);
    const { calls, load } = loader();
    await cache.get("a", load("a"));
    await cache.get("a", load("a"));
    await cache.get("b", load("b"));
    await cache.get("a", load("a"));
    assert.deepEqual(calls, ["a", "b", "a"], String(size));
  }
  const cache = new KeyCache();
  const { calls, load } = loader();
  for (let i = 0; i <= KEY_CACHE_SIZE_DEFAULT; i++) await cache.get(`k${i}`, load(`k${i}`));
  await cache.get(`k${KEY_CACHE_SIZE_DEFAULT}`, load("again"));
  await cache.get("k1", load("again"));
  await cache.get("k0", load("k0 again"));
  assert.equal(calls.length, KEY_CACHE_SIZE_DEFAULT + 2);
  assert.equal(calls.at(-1), "k0 again");
});

/** A stand-in key with a SubjectPublicKeyInfo of `bytes` bytes, which the cache charges. */
const sizedKey = (bytes: number) => ({ spki: new Uint8Array(bytes) }) as unknown as VerifyingKey;

Deno.test("KeyCache holds at most maxBytes of keys, charged by key size, not by record text", async () => {
  // Each key: 1 KiB plus twice its 500-byte SPKI, 2024 bytes; five fit in 10 KiB.
  const cache = new KeyCache(1000, 10 * 1024);
  const texts = Array.from({ length: 8 }, (_, i) => `v=DKIM1; n=${"x".repeat(8000)}${i}; p=A`);
  const calls: number[] = [];
  for (const [i, text] of texts.entries()) {
    await cache.get(text, () => (calls.push(i), Promise.resolve(sizedKey(500))));
  }
  assert.equal(cache.size, 5);
  assert.equal(cache.bytes, 5 * 2024);
  await cache.get(texts[7], () => (calls.push(7), Promise.resolve(sizedKey(500))));
  await cache.get(texts[0], () => (calls.push(0), Promise.resolve(sizedKey(500))));
  assert.deepEqual(calls, [0, 1, 2, 3, 4, 5, 6, 7, 0]);
  assert.ok(KEY_CACHE_MAX_BYTES_DEFAULT >= 1000 * (1024 + 2 * 294), "1000 RSA-2048 keys fit");
});

Deno.test("importRecordKey() finds a record's key by the digest of its type and text", async () => {
  const text = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
  let imports = 0;
  const cache = new KeyCache(10, KEY_CACHE_MAX_BYTES_DEFAULT, () => {
    imports++;
    return Promise.resolve(fakeKey(`import ${imports}`));
  });
  const record = parseKeyRecord(text);
  const first = await importRecordKey(cache, record, 4096);
  assert.equal(await importRecordKey(cache, record, 4096), first);
  // Another record object of the same text (the record cache evicted it and parsed it again)
  // finds the same key, as does KeyCache.get() with the text the digest is of.
  assert.equal(await importRecordKey(cache, parseKeyRecord(text), 4096), first);
  assert.equal(await cache.get(`ed25519:${text}`, () => Promise.reject(new Error("miss"))), first);
  assert.equal(
    await cache.getByDigest(textDigest(`ed25519:${text}`), () => Promise.reject(new Error("miss"))),
    first,
  );
  assert.equal(imports, 1);
  // A different text is a different key.
  await importRecordKey(cache, parseKeyRecord(`${text} `), 4096);
  assert.equal(imports, 2);
});
