/** RSA signatures on signing threads: made there once the threads are up, and on the calling thread whenever they are not. */
import assert from "node:assert/strict";
import { generateSigningKey, importPublicKey, type SigningKey } from "../../lib/crypto/keys.ts";
import { SigningThreads } from "../../lib/crypto/sign_threads.ts";

const data = new TextEncoder().encode("From: a@example.com\r\nSubject: hi\r\n");
let rsa: Promise<SigningKey> | undefined;
const rsaKey = () => rsa ??= generateSigningKey("rsa", 2048);

async function verifies(key: SigningKey, signature: Uint8Array): Promise<boolean> {
  return await (await importPublicKey("rsa", key.publicKey)).verify("sha256", data, signature);
}

Deno.test("SigningThreads.offload() signs on the threads once they are up", async () => {
  const threads = new SigningThreads({ threads: 2 });
  try {
    assert.equal(await threads.start(), true);
    const key = threads.offload(await rsaKey());
    assert.equal(threads.offload(await rsaKey()), key);
    const signatures = await Promise.all(Array.from({ length: 6 }, () => key.sign(data)));
    for (const s of signatures) assert.equal(await verifies(key, s), true);
    assert.deepEqual(threads.counts, { threaded: 6, local: 0 });
  } finally {
    threads.close();
  }
});

Deno.test("SigningThreads.offload() signs on the calling thread while the threads start", async () => {
  const threads = new SigningThreads({ threads: 1 });
  try {
    const key = threads.offload(await rsaKey());
    const signature = await key.sign(data);
    assert.equal(await verifies(key, signature), true);
    assert.equal(threads.counts.local, 1);
  } finally {
    threads.close();
  }
});

Deno.test("SigningThreads gives up on a thread that does not answer in time and signs locally", async () => {
  // A 0 ms timer fires before a thread can sign and send its answer back.
  const threads = new SigningThreads({ threads: 1, timeoutMs: 0 });
  try {
    assert.equal(await threads.start(), true);
    const key = threads.offload(await rsaKey());
    const signatures = await Promise.all([key.sign(data), key.sign(data)]);
    for (const s of signatures) assert.equal(await verifies(key, s), true);
    assert.equal(threads.broken, true);
    assert.equal(threads.counts.local >= 1, true);
    assert.equal(await verifies(key, await key.sign(data)), true);
  } finally {
    threads.close();
  }
});

Deno.test("SigningThreads leaves Ed25519 keys on the calling thread and signs locally after close()", async () => {
  const threads = new SigningThreads({ threads: 1 });
  const ed = await generateSigningKey("ed25519");
  assert.equal(threads.offload(ed), ed);
  const key = threads.offload(await rsaKey());
  threads.close();
  assert.equal(await threads.start(), false);
  assert.equal(await verifies(key, await key.sign(data)), true);
  assert.deepEqual(threads.counts, { threaded: 0, local: 1 });
});

Deno.test("SigningThreads refuses a bad thread count", () => {
  assert.throws(() => new SigningThreads({ threads: 0 }), RangeError);
});
