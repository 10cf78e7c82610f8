import assert from "node:assert/strict";
import { DnsError, type DnsErrorCode } from "../../lib/dns/resolver.ts";

Deno.test("DnsError names the query and the code; only a missing record is permanent", () => {
  const cases: [DnsErrorCode, boolean][] = [
    ["nxdomain", true],
    ["nodata", true],
    ["servfail", false],
    ["refused", false],
    ["timeout", false],
    ["malformed", false],
    ["network", false],
    // Too large is an answer about a record that exists, not a missing one.
    ["toolarge", false],
  ];
  for (const [code, permanent] of cases) {
    const e = new DnsError(code, "s._domainkey.example.com");
    assert.ok(e instanceof Error);
    assert.equal(e.name, "DnsError");
    assert.equal(e.code, code);
    assert.equal(e.query, "s._domainkey.example.com");
    assert.equal(e.permanent, permanent, code);
    assert.equal(e.message, `DNS lookup of "s._domainkey.example.com" failed: ${code}`);
  }
});

Deno.test("DnsError adds a detail in parentheses and keeps its cause", () => {
  const cause = new Deno.errors.ConnectionRefused("connect");
  const e = new DnsError("network", "x.example", "127.0.0.1:53 refused the connection", { cause });
  assert.equal(
    e.message,
    'DNS lookup of "x.example" failed: network (127.0.0.1:53 refused the connection)',
  );
  assert.equal(e.cause, cause);
  assert.equal(
    new DnsError("timeout", "x.example", "").message,
    'DNS lookup of "x.example" failed: timeout',
  );
});
