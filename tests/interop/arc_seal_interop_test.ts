/**
 * What `dkimd arc seal` writes, judged by the real ARC verifiers: dkimpy (`arc_verify`) and
 * Mail::DKIM::ARC::Verifier, with the keys served by a DNS server on loopback. Chains of 1 and
 * 2 dkimd sets, and of 3 with a Mail::DKIM::ARC::Signer set in the middle, pass in both; a body
 * or header changed after sealing, and a chain sealed with cv=fail, do not (and dkimd seals no
 * more after it).
 *
 * RSA only: Mail::DKIM has no Ed25519 and dkimpy's ARC verifier refuses a=ed25519-sha256 (the
 * Ed25519 seal is checked against its public key in tests/arc/seal_test.ts).
 */
import assert from "node:assert/strict";
import { concat, fromLatin1, latin1, toBase64 } from "../../lib/bytes.ts";
import { edit, KEYS_DIR, loadKey, MESSAGE } from "../helpers/dkim_fixtures.ts";
import { startFakeDnsServer } from "../helpers/fake_dns_server.ts";
import { arcSealWithPeer, arcVerifyWithPeer } from "../helpers/arc_peers.ts";
import { runCli } from "../helpers/run_cli.ts";

const KEY = new URL("rsa2048_pkcs8.pem", KEYS_DIR).pathname;
const HOPS = ["forwarder.example", "list.example", "gateway.example"];

/** One hop: its own Authentication-Results on top, then `dkimd arc seal` as that hop. */
async function dkimdHop(message: Uint8Array, hop: string, cv: string): Promise<Uint8Array> {
  const withAr = concat([
    fromLatin1(`Authentication-Results: mx.${hop}; arc=${cv}\r\n`),
    message,
  ]);
  const args = ["arc", "seal", "-d", hop, "-s", "arc", "-k", KEY, "--authserv-id", `mx.${hop}`];
  const r = await runCli(cv === "none" ? args : [...args, "--cv", cv], { stdin: withAr });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

async function withKeys(use: (nameserver: string) => Promise<void>): Promise<void> {
  const key = await loadKey("rsa2048_pkcs8.pem");
  const record = `v=DKIM1; k=rsa; p=${toBase64(key.publicKey)}`;
  const zone = Object.fromEntries(HOPS.map((h) => [`arc._domainkey.${h}`, { txt: [record] }]));
  const server = await startFakeDnsServer(zone);
  try {
    await use(`127.0.0.1@${server.port}`);
  } finally {
    await server.close();
  }
}

async function verdicts(messages: Uint8Array[], nameserver: string) {
  const [dkimpy, mailDkim] = await Promise.all([
    arcVerifyWithPeer("dkimpy", messages, { nameserver }),
    arcVerifyWithPeer("Mail::DKIM", messages, { nameserver }),
  ]);
  return messages.map((_, i) => ({ dkimpy: dkimpy[i], mailDkim: mailDkim[i] }));
}

Deno.test("dkimd arc seal: chains of 1, 2 and 3 sets (one by Mail::DKIM) pass in dkimpy and Mail::DKIM", async () => {
  await withKeys(async (nameserver) => {
    const one = await dkimdHop(MESSAGE, HOPS[0], "none");
    const two = await dkimdHop(one, HOPS[1], "pass");
    // Mail::DKIM writes its own Authentication-Results (arc=pass) on top, then seals.
    const byMailDkim = await arcSealWithPeer("Mail::DKIM", one, [{
      domain: HOPS[1],
      selector: "arc",
      key: await Deno.readTextFile(KEY),
      authservId: `mx.${HOPS[1]}`,
      chain: "pass",
      timestamp: Math.floor(Date.now() / 1000),
    }], { nameserver });
    assert.match(latin1(byMailDkim), /^ARC-Seal: i=2;/);
    const three = await dkimdHop(byMailDkim, HOPS[2], "pass");
    assert.match(latin1(three), /^ARC-Seal: i=3; a=rsa-sha256; t=\d+; cv=pass;/);
    const got = await verdicts([one, two, byMailDkim, three], nameserver);
    for (const [i, v] of got.entries()) {
      assert.equal(v.dkimpy.result, "pass", `chain ${i}: dkimpy: ${v.dkimpy.detail}`);
      assert.equal(v.mailDkim.result, "pass", `chain ${i}: Mail::DKIM: ${v.mailDkim.detail}`);
    }
  });
});

Deno.test("dkimd arc seal: a body, header or seal changed after sealing fails in dkimpy and Mail::DKIM", async () => {
  await withKeys(async (nameserver) => {
    const two = await dkimdHop(await dkimdHop(MESSAGE, HOPS[0], "none"), HOPS[1], "pass");
    const tampered = [
      edit(two, "Noon at", "Two at"),
      edit(two, "Subject: Lunch", "Subject: Dinner"),
      edit(two, "cv=pass;", "cv=none;"),
      edit(two, "i=1; mx.forwarder.example; arc=none", "i=1; mx.forwarder.example; arc=pass"),
    ];
    const got = await verdicts(tampered, nameserver);
    for (const [i, v] of got.entries()) {
      assert.notEqual(v.dkimpy.result, "pass", `case ${i}: dkimpy`);
      assert.equal(v.mailDkim.result, "fail", `case ${i}: Mail::DKIM: ${v.mailDkim.detail}`);
    }
    // The same messages untouched pass: the failures come from the changes.
    const [clean] = await verdicts([two], nameserver);
    assert.equal(clean.dkimpy.result, "pass", clean.dkimpy.detail);
    assert.equal(clean.mailDkim.result, "pass", clean.mailDkim.detail);
  });
});

Deno.test("dkimd arc seal --cv fail ends the chain for dkimpy and Mail::DKIM", async () => {
  await withKeys(async (nameserver) => {
    const one = await dkimdHop(MESSAGE, HOPS[0], "none");
    const failed = await dkimdHop(one, HOPS[1], "fail");
    const got = await verdicts([failed], nameserver);
    for (const [i, v] of got.entries()) {
      assert.notEqual(v.dkimpy.result, "pass", `case ${i}: dkimpy: ${v.dkimpy.detail}`);
      assert.equal(v.mailDkim.result, "fail", `case ${i}: Mail::DKIM: ${v.mailDkim.detail}`);
    }
    // dkimd itself never continues a failed chain (RFC 8617 §5.1 step 1): not with cv=pass, not
    // with cv=fail, and not with the cv= its own verification gives.
    for (const cv of [["--cv", "pass"], ["--cv", "fail"], ["--nameserver", nameserver]]) {
      const r = await runCli(
        ["arc", "seal", "-d", HOPS[2], "-s", "arc", "-k", KEY, ...cv],
        { stdin: failed },
      );
      assert.equal(r.code, 2, cv.join(" "));
      assert.match(r.stderr, /ARC set 2 says cv=fail: the chain has ended/);
      assert.equal(r.stdout.length, 0);
    }
  });
});
