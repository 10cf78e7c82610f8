/** logVerdicts(): the log lines of a verified message, in OpenDKIM's words. */
import assert from "node:assert/strict";
import type { Verdict } from "../../lib/dkim/result.ts";
import { logVerdicts } from "../../lib/filter/verdict_log.ts";
import { MemoryLogger } from "../helpers/milter_logger.ts";

const QUIET = { syslogSuccess: false, logResults: false, logWhy: false, maximumKeyBits: 4096 };
const where = { domain: "example.com", selector: "s", algorithm: "rsa-sha256" };

function logged(config: typeof QUIET, verdicts: readonly Verdict[], failures = new Map()) {
  const log = new MemoryLogger();
  logVerdicts(log, config, verdicts, "4AB12C", failures);
  return log.lines.map((l) => `${l.level} ${l.message}`);
}

Deno.test("logVerdicts() says why each signature failed, with the DNS error behind a lookup", () => {
  const verdicts: Verdict[] = [
    { ...where, result: "temperror", reason: "key query failed: DNS error (servfail)" },
    { ...where, selector: "gone", result: "permerror", reason: "no key for signature" },
    { ...where, selector: "big", result: "permerror", reason: "key too large (8192 bits)" },
    { ...where, selector: "bad", result: "fail", reason: "body hash did not verify" },
  ];
  const failures = new Map([["s._domainkey.example.com", "SERVFAIL from 192.0.2.53"]]);
  assert.deepEqual(logged(QUIET, verdicts, failures), [
    "warn 4AB12C: key retrieval failed (s=s d=example.com): key query failed: DNS error " +
    "(servfail): SERVFAIL from 192.0.2.53",
    "info 4AB12C: s=gone d=example.com: key not found",
    "info 4AB12C: bad signature data (s=big d=example.com): key too large (8192 bits): over " +
    "MaximumKeyBits (4096)",
    "info 4AB12C: bad signature data (s=bad d=example.com): body hash did not verify",
  ]);
});

Deno.test("logVerdicts() logs each result with LogResults, success with SyslogSuccess", () => {
  const failed: Verdict = { ...where, result: "fail", reason: "signature did not verify" };
  assert.deepEqual(logged({ ...QUIET, logResults: true }, [failed]).slice(0, 1), [
    'info 4AB12C: s=s d=example.com a=rsa-sha256 result=fail reason="signature did not verify"',
  ]);
  assert.deepEqual(logged({ ...QUIET, syslogSuccess: true }, []), [
    "info 4AB12C: no signature data",
  ]);
  assert.deepEqual(logged(QUIET, []), []);
});

Deno.test("logVerdicts() cuts and escapes what a signature chose: s=, d=, a= and quoted values", () => {
  const long = "x".repeat(300);
  const verdicts: Verdict[] = [{
    domain: `${long}.example`,
    selector: "s\xe9l",
    algorithm: long,
    result: "neutral",
    reason: `unsupported algorithm "${long}"`,
  }];
  const cut = `${"x".repeat(95)}[...]`;
  assert.deepEqual(logged({ ...QUIET, logResults: true }, verdicts), [
    `info 4AB12C: s=s\\xe9l d=${cut} a=${cut} result=neutral reason="unsupported algorithm "${cut}""`,
    `info 4AB12C: bad signature data (s=s\\xe9l d=${cut}): unsupported algorithm "${cut}"`,
  ]);
});
