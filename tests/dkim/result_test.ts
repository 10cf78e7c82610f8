import assert from "node:assert/strict";
import { KeyError, type KeyErrorCode } from "../../lib/crypto/key_error.ts";
import { DkimError } from "../../lib/dkim/dkim_error.ts";
import { resultOf } from "../../lib/dkim/result.ts";
import { DnsError, type DnsErrorCode } from "../../lib/dns/resolver.ts";

Deno.test("resultOf() keeps a DkimError's own result and reason", () => {
  assert.deepEqual(resultOf(new DkimError("fail", "body hash did not verify")), {
    result: "fail",
    reason: "body hash did not verify",
  });
  assert.deepEqual(resultOf(new DkimError("policy", "h= does not include From")), {
    result: "policy",
    reason: "h= does not include From",
  });
});

Deno.test("resultOf() makes a missing or oversized key a permerror and a failed query a temperror", () => {
  const cases: [DnsErrorCode, "permerror" | "temperror", string][] = [
    ["nxdomain", "permerror", "no key for signature"],
    ["nodata", "permerror", "no key for signature"],
    ["timeout", "temperror", "key query failed: DNS timeout"],
    ["servfail", "temperror", "key query failed: DNS error (servfail)"],
    ["refused", "temperror", "key query failed: DNS error (refused)"],
    ["malformed", "temperror", "key query failed: DNS error (malformed)"],
    ["network", "temperror", "key query failed: DNS error (network)"],
    // An oversized record is published that way: asking again gives the same answer.
    ["toolarge", "permerror", "key record over DNSMaxAnswerBytes"],
  ];
  for (const [code, result, reason] of cases) {
    assert.deepEqual(resultOf(new DnsError(code, "s._domainkey.example.com")), { result, reason });
  }
});

Deno.test("resultOf() makes every key problem a permerror, saying which", () => {
  const cases: [KeyErrorCode, string][] = [
    ["revoked", "key revoked"],
    ["too-large", "key too large (8192 bits)"],
    ["too-small", "key too small (8192 bits)"],
    ["wrong-type", "key type mismatch (8192 bits)"],
    ["syntax", "key syntax error (8192 bits)"],
    ["unsupported", "key syntax error (8192 bits)"],
    ["invalid", "key syntax error (8192 bits)"],
    ["encrypted", "key syntax error (8192 bits)"],
  ];
  for (const [code, reason] of cases) {
    const error = new KeyError(code, "8192 bits", { subject: "public key" });
    assert.deepEqual(resultOf(error), { result: "permerror", reason }, code);
  }
  // The detail stays whole after the key's name, whatever the source.
  const named = new KeyError("too-small", "512 bits: below 1024", { source: "s._domainkey.x" });
  assert.deepEqual(resultOf(named), {
    result: "permerror",
    reason: "key too small (512 bits: below 1024)",
  });
});

Deno.test("resultOf() makes anything else an internal temperror", () => {
  const cases: [unknown, string][] = [
    [new TypeError("x is not a function"), "internal error: x is not a function"],
    ["a string", "internal error: a string"],
    [undefined, "internal error: undefined"],
    [Object.create(null), "internal error: a value that cannot be shown"],
  ];
  for (const [error, reason] of cases) {
    assert.deepEqual(resultOf(error), { result: "temperror", reason });
  }
});
