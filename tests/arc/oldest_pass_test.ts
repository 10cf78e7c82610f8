/**
 * `header.oldest-pass` (RFC 8617 §5.2 step 5, the A-R property of §10.1's `arc` method): walking
 * the ARC-Message-Signatures down from instance N-1, the lowest instance from which every AMS up
 * to N still verifies, or 0 when all of them do. The walk stops at the first AMS that fails: an
 * older one verifying again below it does not count (the message changed between them). This is
 * how OpenARC computes it (libopenarc arc.c: `arc_oldest_pass = i + 1` for the first failing i
 * going down, 0 when all pass), and it is written on `arc=pass` only (nothing is claimed for a
 * chain that failed). dkimpy and Mail::DKIM compute no oldest-pass.
 */
import assert from "node:assert/strict";
import { concat, CRLF, toBase64 } from "../../lib/bytes.ts";
import { arcResultParts } from "../../lib/arc/arc_auth_result.ts";
import { sealMessage, type SealOptions } from "../../lib/arc/seal.ts";
import { verifyArcMessage } from "../../lib/arc/verify.ts";
import { edit, edKey, MESSAGE } from "../helpers/dkim_fixtures.ts";
import { ZoneResolver } from "../helpers/zone_resolver.ts";

const NOW = 1_800_000_000;

async function setup() {
  const key = await edKey();
  const resolver = new ZoneResolver({
    "arc._domainkey.hop.example": [`v=DKIM1; k=ed25519; p=${toBase64(key.publicKey)}`],
  });
  const hop = async (message: Uint8Array, extra: Partial<SealOptions>) => {
    const set = await sealMessage(message, {
      domain: "hop.example",
      selector: "arc",
      key,
      authservId: "mx.hop.example",
      results: "dkim=pass header.d=example.com",
      cv: "pass",
      ...extra,
    }, { now: () => NOW });
    return concat([...set.flatMap((f) => [f.raw, CRLF]), message]);
  };
  return { resolver, hop };
}

Deno.test("ArcVerifier oldest-pass: 0 when every AMS verifies, else one above the first AMS to fail walking down from N-1 (RFC 8617 §5.2 step 5)", async () => {
  const { resolver, hop } = await setup();
  // Set 1 signs From alone; set 2 signs Subject too; then Subject changes; then set 3.
  const one = await hop(MESSAGE, { cv: "none", signHeaders: ["from"] });
  const two = await hop(one, { signHeaders: ["from", "subject"] });
  const whole = await hop(two, {});
  const all = await verifyArcMessage(whole, { resolver, now: () => NOW });
  assert.equal(all.result, "pass", all.reason ?? "");
  assert.equal(all.oldestPass, 0);

  const changed = edit(two, "Subject: Lunch", "Subject: [list] Lunch");
  const three = await hop(changed, {});
  const verdict = await verifyArcMessage(three, { resolver, now: () => NOW });
  assert.equal(verdict.result, "pass", verdict.reason ?? "");
  // AMS 3 verifies, AMS 2 does not (it signed the old Subject): oldest-pass is 3, although
  // AMS 1 (From and the body only) would verify again below it.
  assert.equal(verdict.oldestPass, 3);
  assert.deepEqual(arcResultParts(verdict), ["arc=pass", "header.oldest-pass=3"]);

  // A body change below set 2 breaks AMS 1 and 2 alike: oldest-pass 3 again.
  const footer = await hop(edit(two, "\r\n\r\n", "\r\n\r\nfooter\r\n"), {});
  assert.equal((await verifyArcMessage(footer, { resolver, now: () => NOW })).oldestPass, 3);
  // AMS 1 does survive the Subject change: sealed after it directly, set 2 over set 1 says 0.
  const direct = await hop(edit(one, "Subject: Lunch", "Subject: [list] Lunch"), {});
  assert.equal((await verifyArcMessage(direct, { resolver, now: () => NOW })).oldestPass, 0);
});

Deno.test("arcResultParts() writes header.oldest-pass on arc=pass only", () => {
  const fail = { result: "fail", instances: 2, reason: "x", sets: [] } as const;
  assert.ok(!arcResultParts(fail).some((p) => p.startsWith("header.oldest-pass")));
  const none = { result: "none", instances: 0, sets: [] } as const;
  assert.deepEqual(arcResultParts(none), ["arc=none"]);
});
