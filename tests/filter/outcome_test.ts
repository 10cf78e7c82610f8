import assert from "node:assert/strict";
import { type Actions, DEFAULT_ACTIONS } from "../../lib/config/defaults.ts";
import type { MilterAction } from "../../lib/config/values.ts";
import type { Verdict } from "../../lib/dkim/result.ts";
import {
  type HeaderLimit,
  type HeaderLimitAnswer,
  headerLimitAnswer,
  milterAction,
  type Outcome,
  verifyOutcome,
} from "../../lib/filter/outcome.ts";

// Verdicts as the verifier gives them; only the fields verifyOutcome() reads matter.
const pass = { result: "pass", signature: {} } as unknown as Verdict;
const fail: Verdict = { result: "fail", reason: "body hash did not verify" };
const temp: Verdict = { result: "temperror", reason: "key query failed: DNS timeout" };
const noKey: Verdict = { result: "permerror", reason: "no key for signature" };
const badKey: Verdict = { result: "permerror", reason: "key syntax error (bad p=)" };
const policy: Verdict = { result: "policy", reason: "h= does not include From" };
const testing = (v: Verdict): Verdict => ({
  ...v,
  key: { type: "rsa", bits: 2048, testing: true },
});

Deno.test("verifyOutcome() picks the On-* setting: a pass settles it, else the worst problem", () => {
  const cases: { name: string; verdicts: Verdict[]; want: Outcome }[] = [
    { name: "no signature", verdicts: [], want: "noSignature" },
    { name: "one pass", verdicts: [pass], want: "pass" },
    { name: "a pass among failures", verdicts: [fail, temp, pass], want: "pass" },
    { name: "a pass with a testing key", verdicts: [testing(pass)], want: "pass" },
    { name: "a failed signature", verdicts: [fail], want: "badSignature" },
    { name: "a policy result", verdicts: [policy], want: "badSignature" },
    { name: "a malformed key", verdicts: [badKey], want: "badSignature" },
    { name: "a DNS failure beats a bad signature", verdicts: [fail, temp], want: "dnsError" },
    { name: "a DNS failure beats a missing key", verdicts: [noKey, temp], want: "dnsError" },
    { name: "only missing keys", verdicts: [noKey, noKey], want: "keyNotFound" },
    { name: "a missing key and a bad one", verdicts: [noKey, fail], want: "badSignature" },
    // RFC 6376 §3.6.1: t=y signatures count as none.
    { name: "only testing keys", verdicts: [testing(fail), testing(temp)], want: "noSignature" },
    { name: "testing keys are not counted", verdicts: [testing(temp), noKey], want: "keyNotFound" },
  ];
  for (const c of cases) assert.equal(verifyOutcome(c.verdicts), c.want, c.name);
});

Deno.test("verifyOutcome(): a signature dkimd does not implement (unknown a=, rsa-sha1) is ignored, as if absent (RFC 6376 §6.1.1, §6.1)", () => {
  const unknownA: Verdict = {
    result: "permerror",
    reason: 'unsupported algorithm "rsa-sha512"',
    ignored: "unsupported",
  };
  assert.equal(verifyOutcome([unknownA]), "noSignature");
  assert.equal(verifyOutcome([unknownA, unknownA]), "noSignature");
  // Beside others it changes nothing: their worst problem decides.
  assert.equal(verifyOutcome([unknownA, fail]), "badSignature");
  assert.equal(verifyOutcome([unknownA, noKey]), "keyNotFound");
  assert.equal(verifyOutcome([unknownA, pass]), "pass");
  // An unusable key is still a bad signature: the field itself was well-formed.
  assert.equal(verifyOutcome([badKey]), "badSignature");
});

Deno.test("verifyOutcome(): a malformed signature field (a syntax error) is ignored as an unsupported one is (RFC 6376 §6.1.1 names syntax errors)", () => {
  const noBh: Verdict = {
    result: "permerror",
    reason: "signature missing required tag (bh=)",
    ignored: "malformed",
  };
  assert.equal(verifyOutcome([noBh]), "noSignature");
  assert.equal(verifyOutcome([noBh, fail]), "badSignature");
  assert.equal(verifyOutcome([noBh, noKey]), "keyNotFound");
  assert.equal(verifyOutcome([noBh, temp]), "dnsError");
  assert.equal(verifyOutcome([noBh, pass]), "pass");
  // The same permerror without the mark (a key problem found later) still counts.
  assert.equal(verifyOutcome([{ result: "permerror", reason: noBh.reason }]), "badSignature");
});

Deno.test("milterAction() answers each action: SMTP 550 5.7.1 or 451 4.7.1, quarantine with a reason", () => {
  const outcomes: (keyof Actions)[] = [
    "noSignature",
    "badSignature",
    "keyNotFound",
    "dnsError",
    "internalError",
    "security",
    "signatureError",
  ];
  for (const outcome of outcomes) {
    assert.deepEqual(milterAction(outcome, "accept"), { action: "accept" }, outcome);
    assert.deepEqual(milterAction(outcome, "discard"), { action: "discard" }, outcome);
    const reject = milterAction(outcome, "reject").action;
    assert.ok(typeof reject === "object", outcome);
    assert.deepEqual([reject.replycode, reject.xcode], [550, "5.7.1"], outcome);
    const tempfail = milterAction(outcome, "tempfail").action;
    assert.ok(typeof tempfail === "object", outcome);
    assert.deepEqual([tempfail.replycode, tempfail.xcode], [451, "4.7.1"], outcome);
    const quarantine = milterAction(outcome, "quarantine");
    assert.equal(quarantine.action, "accept", outcome);
    assert.deepEqual(quarantine.modification, {
      type: "quarantine",
      reason: `dkimd: ${reject.text}`,
    });
  }
});

Deno.test("milterAction() says in the reply text what went wrong", () => {
  const cases: [keyof Actions, MilterAction, string][] = [
    ["noSignature", "reject", "No DKIM signature"],
    ["badSignature", "reject", "DKIM signature verification failed"],
    ["badSignature", "tempfail", "DKIM verification failed, try later"],
    ["keyNotFound", "tempfail", "DKIM key not found, try later"],
    ["dnsError", "tempfail", "DKIM key lookup failed, try later"],
    ["internalError", "tempfail", "DKIM filter error, try later"],
    ["security", "reject", "Message refused for security reasons"],
    ["security", "tempfail", "Message deferred for security reasons"],
    ["signatureError", "reject", "DKIM signing failed"],
  ];
  for (const [outcome, action, text] of cases) {
    const answer = milterAction(outcome, action).action;
    assert.ok(typeof answer === "object" && answer.text === text, `${outcome} ${action}`);
  }
});

Deno.test("headerLimitAnswer() answers each On-Security action, naming the limit crossed", () => {
  const config = (security: MilterAction) => ({
    maximumHeaders: 200,
    maximumHeaderFields: 5,
    actions: { ...DEFAULT_ACTIONS, security },
  });
  const cases: [MilterAction, HeaderLimit, Partial<HeaderLimitAnswer>][] = [
    ["tempfail", "MaximumHeaders", {
      now: { replycode: 451, xcode: "4.3.4", text: "Message header block too large" },
      log: "header block exceeds MaximumHeaders (200 bytes); deferring (On-Security tempfail)",
    }],
    ["reject", "MaximumHeaderFields", {
      now: { replycode: 552, xcode: "5.3.4", text: "Too many header fields" },
      log: "more than MaximumHeaderFields (5) header fields; rejecting (On-Security reject)",
    }],
    ["accept", "MaximumHeaders", { now: "accept" }],
    ["discard", "MaximumHeaders", { now: "discard" }],
    ["quarantine", "MaximumHeaderFields", {
      now: undefined,
      held: {
        modifications: [{ type: "quarantine", reason: "dkimd: Too many header fields" }],
        action: "accept",
      },
    }],
  ];
  for (const [action, limit, want] of cases) {
    const got = headerLimitAnswer(limit, config(action));
    assert.equal(got.action, action);
    for (const [k, v] of Object.entries(want)) {
      assert.deepEqual(got[k as keyof HeaderLimitAnswer], v, `${action} ${k}`);
    }
  }
});
