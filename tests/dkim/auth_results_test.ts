import assert from "node:assert/strict";
import {
  formatAuthResults,
  formatDkimResult,
  parseAuthservId,
  quoteValue,
} from "../../lib/dkim/auth_results.ts";
import type { Verdict } from "../../lib/dkim/result.ts";

const pass = {
  result: "pass",
  domain: "example.com",
  identity: "@example.com",
  selector: "sel",
  algorithm: "ed25519-sha256",
  b: "AbCdEfGhIjKl",
  key: { type: "ed25519", bits: 256, testing: false },
} as unknown as Verdict;

Deno.test("formatAuthResults() renders one dkim= result per signature on folded lines", () => {
  const fail = {
    ...pass,
    result: "temperror",
    reason: "key query failed: DNS timeout",
    key: undefined,
  } as Verdict;
  assert.equal(
    formatAuthResults("mx.example.org", [pass, fail]),
    "mx.example.org;\r\n\tdkim=pass (256-bit key) header.d=example.com header.i=@example.com " +
      "header.s=sel header.a=ed25519-sha256 header.b=AbCdEfGh;\r\n\tdkim=temperror " +
      'reason="key query failed: DNS timeout" header.d=example.com header.i=@example.com ' +
      "header.s=sel header.a=ed25519-sha256 header.b=AbCdEfGh",
  );
});

Deno.test("formatDkimResult() honours NoHeaderB, brief form and test mode", () => {
  const testing = { ...pass, key: { type: "rsa", bits: 2048, testing: true } } as Verdict;
  assert.equal(
    formatDkimResult(testing, { noHeaderB: true, brief: true }),
    "dkim=pass (2048-bit key; test mode) header.d=example.com header.i=@example.com",
  );
});

Deno.test("quoteValue() quotes only what RFC 8601 needs quoted", () => {
  assert.equal(quoteValue("mx.example.org"), "mx.example.org");
  assert.equal(quoteValue("ab/cd+=="), '"ab/cd+=="');
  assert.equal(quoteValue("user.name@example.com", true), "user.name@example.com");
  assert.equal(quoteValue("@example.com", true), "@example.com");
  assert.equal(quoteValue('we "quote"'), '"we \\"quote\\""');
  assert.equal(quoteValue("a b@example.com", true), '"a b@example.com"');
});

Deno.test("parseAuthservId() reads the authserv-id whatever surrounds it", () => {
  const cases: [string, string | undefined][] = [
    ["mx.example.org; dkim=pass", "mx.example.org"],
    [" MX.Example.Org 1 ; spf=pass", "MX.Example.Org"],
    ["(comment (nested)) mx.example.org;", "mx.example.org"],
    ['"quoted\\"id"; none', 'quoted"id'],
    ["\r\n\tmx.example.org;dkim=none", "mx.example.org"],
    ["mx.example.org", "mx.example.org"],
    ["", undefined],
    ["(unclosed comment mx.example.org;", undefined],
    ['"unclosed', undefined],
    ["; dkim=pass", undefined],
  ];
  for (const [value, want] of cases) {
    assert.equal(parseAuthservId(value), want, JSON.stringify(value));
  }
});
