import assert from "node:assert/strict";
import type { VerifyingKey } from "../../lib/crypto/public_key.ts";
import { KEY_CACHE_SIZE_DEFAULT, KeyCache } from "../../lib/dkim/key_cache.ts";

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
