import assert from "node:assert/strict";
import { generateSigningKey } from "../../lib/crypto/private_key.ts";
import { importPublicKey } from "../../lib/crypto/public_key.ts";

// CPU milliseconds (user + system) from a /proc stat file, read on the calling thread.
function cpuMs(path: string): number {
  const fields = Deno.readTextFileSync(path).split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

// dkimd computes RSA signatures with WebCrypto and relies on Deno running them off the event
// loop's thread (its blocking pool): a milter that signed on the event loop would stall every
// other connection for about 2 ms per signature and leave the second core idle. This guards that
// assumption across Deno upgrades, with CPU time (not wall time, which a busy machine stretches):
// the thread that asks for the signatures must spend a small part of the CPU they cost. Were they
// computed in the call (as Ed25519 signatures are), it would spend all of it.
Deno.test("RSA signatures are computed off the calling thread", async () => {
  const key = await generateSigningKey("rsa", 2048);
  const data = new TextEncoder().encode("header hash input");
  await key.sign(data); // Warm up.
  const thread0 = cpuMs("/proc/thread-self/stat");
  const process0 = cpuMs("/proc/self/stat");
  const signatures = await Promise.all(Array.from({ length: 128 }, () => key.sign(data)));
  const thread = cpuMs("/proc/thread-self/stat") - thread0;
  const all = cpuMs("/proc/self/stat") - process0;
  // 128 signatures cost about 250 ms of CPU; the asking thread spends a few ms of it (the work
  // of the calls themselves), against about two fifths when Ed25519 keys sign in the call.
  assert.ok(all >= 50, `the signatures took ${all} ms of CPU`);
  assert.ok(thread <= all / 5, `the calling thread spent ${thread} ms of the ${all} ms`);
  const pub = await importPublicKey("rsa", key.publicKey);
  for (const s of signatures) assert.equal(await pub.verify("sha256", data, s), true);
});
