/**
 * `t=` and `x=` in ARC (RFC 8617 §4.1.2: an ARC-Message-Signature has a DKIM-Signature's tags,
 * so RFC 6376 §3.5's `t=` and `x=` with their meaning; §4.1.3: an ARC-Seal has `t=` and no
 * `x=`). dkimd treats them as its DKIM verification does (ClockDrift, default 300 s): an AMS
 * past its `x=`, or made in the future, does not verify, which fails the chain when it is the
 * newest AMS (dkimpy's arc_verify and Mail::DKIM::ARC::Verifier fail an expired AMS too) and ends
 * `oldest-pass` when it is an older one; a seal made in the future fails the chain. dkimd's own
 * sets carry `t=` and no `x=`, as dkimpy writes them.
 */
import assert from "node:assert/strict";
import { concat, CRLF, fromLatin1, latin1, toBase64 } from "../../lib/bytes.ts";
import { ArcSyntaxError, parseArcMessageSignature } from "../../lib/arc/arc_set.ts";
import { sealMessage } from "../../lib/arc/seal.ts";
import { verifyArcMessage } from "../../lib/arc/verify.ts";
import { splitMessage } from "../../lib/dkim/header.ts";
import type { SigningKey } from "../../lib/crypto/private_key.ts";
import { edKey, MESSAGE } from "../helpers/dkim_fixtures.ts";
import { ZoneResolver } from "../helpers/zone_resolver.ts";

const NOW = 1_800_000_000;

function resolverFor(key: SigningKey) {
  return new ZoneResolver({
    "arc._domainkey.hop.example": [`v=DKIM1; k=ed25519; p=${toBase64(key.publicKey)}`],
  });
}

async function seal(
  key: SigningKey,
  message: Uint8Array,
  at: number,
  cv: "none" | "pass",
  ttl?: number,
) {
  const set = await sealMessage(message, {
    domain: "hop.example",
    selector: "arc",
    key,
    authservId: "mx.hop.example",
    results: "dkim=pass",
    cv,
    ...(ttl !== undefined ? { ttl } : {}),
  }, { now: () => at });
  return concat([...set.flatMap((f) => [f.raw, CRLF]), message]);
}

Deno.test("sealMessage() writes t= in the AMS and the seal, and no x=", async () => {
  const key = await edKey();
  const text = latin1(await seal(key, MESSAGE, NOW, "none"));
  assert.match(text, /^ARC-Seal: [^]*?t=1800000000;/m);
  assert.match(text, /^ARC-Message-Signature: [^]*?t=1800000000;/m);
  assert.doesNotMatch(text.slice(0, text.indexOf("\r\nFrom:")), /\bx=/);
});

Deno.test("parseArcMessageSignature() reads t= and x=, and refuses an x= not after t= (RFC 6376 §3.5)", () => {
  const ams = (tags: string) => ({
    name: "ARC-Message-Signature",
    raw: fromLatin1(
      `ARC-Message-Signature: i=1; a=rsa-sha256; d=a.example; s=s; h=from; bh=AAAA; b=AAAA${tags}`,
    ),
  });
  const parsed = parseArcMessageSignature(ams("; t=100; x=200"));
  assert.deepEqual([parsed.timestamp, parsed.expiration], [100, 200]);
  assert.throws(
    () => parseArcMessageSignature(ams("; t=200; x=200")),
    (e) => e instanceof ArcSyntaxError && /x= is not after t=/.test(e.message),
  );
});

Deno.test("ArcVerifier fails a chain whose newest AMS has expired or is from the future, allowing ClockDrift", async () => {
  const key = await edKey();
  const resolver = resolverFor(key);
  const sealed = await seal(key, MESSAGE, NOW, "none", 3600);
  assert.match(latin1(sealed), /^ARC-Message-Signature: [^]*?t=1800000000; x=1800003600;/m);
  const at = (now: number, clockDrift?: number) =>
    verifyArcMessage(sealed, { resolver, now: () => now, clockDrift });
  assert.equal((await at(NOW + 3600)).result, "pass");
  assert.equal((await at(NOW + 3600 + 300)).result, "pass", "within ClockDrift");
  const expired = await at(NOW + 3600 + 301);
  assert.deepEqual(
    [expired.result, expired.reason],
    ["fail", "ARC-Message-Signature i=1 signature expired"],
  );
  assert.equal((await at(NOW + 3601, 0)).result, "fail");
  const early = await at(NOW - 301);
  assert.deepEqual(
    [early.result, early.reason],
    ["fail", "ARC-Message-Signature i=1 signature timestamp in the future"],
  );
  assert.equal((await at(NOW - 299)).result, "pass", "within ClockDrift");
  // Without x=, age alone never fails it.
  const lasting = await seal(key, MESSAGE, NOW, "none");
  const year = await verifyArcMessage(lasting, { resolver, now: () => NOW + 365 * 86_400 });
  assert.equal(year.result, "pass", year.reason ?? "");
});

Deno.test("ArcVerifier: an expired older AMS ends oldest-pass, a seal from the future fails the chain", async () => {
  const key = await edKey();
  const resolver = resolverFor(key);
  // Set 1 expires an hour after it was made; set 2 is sealed two hours later without x=.
  const one = await seal(key, MESSAGE, NOW, "none", 3600);
  const two = await seal(key, one, NOW + 7200, "pass");
  const verdict = await verifyArcMessage(two, { resolver, now: () => NOW + 7200 });
  assert.equal(verdict.result, "pass", verdict.reason ?? "");
  assert.equal(verdict.oldestPass, 2);
  // Before set 1 expired, both pass.
  const fresh = await verifyArcMessage(two, { resolver, now: () => NOW + 7200, clockDrift: 4000 });
  assert.equal(fresh.oldestPass, 0);
  // Set 2 made in the future: its AMS, the newest, fails first.
  const ahead = await seal(key, one, NOW + 10_000, "pass");
  const v = await verifyArcMessage(ahead, { resolver, now: () => NOW + 1000 });
  assert.deepEqual(
    [v.result, v.reason],
    ["fail", "ARC-Message-Signature i=2 signature timestamp in the future"],
  );
  // Only a seal's t= ahead (rewritten: the check comes before its signature's).
  const { fields } = splitMessage(one);
  const sealText = latin1(fields[0].raw);
  assert.match(sealText, /^ARC-Seal: /);
  const future = fromLatin1(
    latin1(one).replace(sealText, sealText.replace("t=1800000000", "t=1900000000")),
  );
  const s = await verifyArcMessage(future, { resolver, now: () => NOW });
  assert.deepEqual([s.result, s.reason], ["fail", "ARC-Seal i=1 timestamp in the future"]);
});
