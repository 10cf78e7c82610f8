import assert from "node:assert/strict";
import { generateSigningKey, importPublicKey } from "../../lib/crypto/keys.ts";

// dkimd computes RSA signatures with WebCrypto and relies on Deno running them off the event
// loop's thread (its blocking pool): a milter that signed on the event loop would stall every
// other connection for about 2 ms per signature and leave the second core idle. This guards that
// assumption across Deno upgrades. Asking for a signature must return at once, long before the
// signatures are done; were they computed in the call (as Ed25519 signatures are), asking would
// take about as long as the whole batch.
Deno.test("RSA signatures are computed off the calling thread: asking returns before they are done", async () => {
  const key = await generateSigningKey("rsa", 2048);
  const data = new TextEncoder().encode("header hash input");
  await key.sign(data); // Warm up.
  const start = performance.now();
  const pending = Array.from({ length: 64 }, () => key.sign(data));
  const asked = performance.now() - start;
  const signatures = await Promise.all(pending);
  const done = performance.now() - start;
  assert.ok(asked < done / 4, `asking took ${asked.toFixed(1)} ms of the ${done.toFixed(1)} ms`);
  const pub = await importPublicKey("rsa", key.publicKey);
  for (const s of signatures) assert.equal(await pub.verify("sha256", data, s), true);
});
