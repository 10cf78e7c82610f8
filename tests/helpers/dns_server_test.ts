import assert from "node:assert/strict";
import { buildZoneFile } from "./dns_server.ts";

Deno.test("buildZoneFile() splits long strings, escapes bytes, and refuses names outside the zone", () => {
  const text = buildZoneFile(
    {
      zone: "Example.COM",
      records: { "a.example.com.": ["x".repeat(300), 'q"\\\xe9'], "b.example.com": [] },
    },
    "token",
  );
  assert.match(
    text,
    new RegExp(`a\\.example\\.com\\. TXT "${"x".repeat(255)}" "${"x".repeat(45)}"`),
  );
  assert.match(text, /a\.example\.com\. TXT "q\\"\\\\\\233"/);
  assert.match(text, /b\.example\.com\. A 192\.0\.2\.1/);
  assert.match(text, /_ready TXT "token"/);
  assert.throws(
    () => buildZoneFile({ zone: "example.com", records: { "example.org": ["x"] } }, "t"),
    /not inside/,
  );
  assert.throws(
    () => buildZoneFile({ zone: "example.com", records: { "badexample.com": ["x"] } }, "t"),
    /not inside/,
  );
  assert.throws(
    () => buildZoneFile({ zone: "example.com", records: { "a.example.com": ["x", "x"] } }, "t"),
    /only once/,
  );
});
