import assert from "node:assert/strict";
import { toBase64 } from "../../lib/bytes.ts";
import { DkimError } from "../../lib/dkim/dkim_error.ts";
import {
  KEY_RECORD_CACHE_MAX_BYTES_DEFAULT,
  KeyRecordCache,
} from "../../lib/dkim/key_record_cache.ts";

const P = toBase64(new Uint8Array(32).fill(7));

Deno.test("KeyRecordCache.parse() parses a text once and returns the same record again", () => {
  const cache = new KeyRecordCache();
  const text = `v=DKIM1; k=ed25519; p=${P}`;
  const first = cache.parse(text);
  assert.equal(cache.parse(`${text}`), first);
  assert.equal(first.keyType, "ed25519");
  assert.equal(cache.size, 1);
  assert.throws(() => cache.parse("v=DKIM2; p=AAAA"), DkimError);
  assert.equal(cache.size, 1, "a record that does not parse is not kept");
});

Deno.test("KeyRecordCache holds at most maxBytes of records, each charged its text", () => {
  const cache = new KeyRecordCache(1000, 100_000);
  for (let i = 0; i < 50; i++) cache.parse(`v=DKIM1; n=${"x".repeat(8000)}${i}; k=ed25519; p=${P}`);
  // Each record: about 8 KiB of text, 32 key bytes and 512 more: eleven fit in 100,000.
  assert.equal(cache.size, 11);
  assert.ok(cache.bytes <= 100_000, String(cache.bytes));
  const big = new KeyRecordCache();
  for (let i = 0; i < 1000; i++) big.parse(`v=DKIM1; n=${"x".repeat(8000)}${i}; k=ed25519; p=${P}`);
  assert.ok(big.bytes <= KEY_RECORD_CACHE_MAX_BYTES_DEFAULT);
  assert.ok(big.size < 260, String(big.size));
});
