import assert from "node:assert/strict";
import fc from "fast-check";
import {
  CUT_MARKER,
  MESSAGE_VALUE_MAX_CHARS,
  messageReason,
  messageValue,
  REASON_MAX_CHARS,
} from "../../lib/dkim/message_value.ts";
import { fuzzParams } from "../helpers/fuzz.ts";

Deno.test("messageValue() keeps short ASCII values as they are", () => {
  for (const v of ["example.com", "@mail.example.com", "s1", "rsa-sha256", ""]) {
    assert.equal(messageValue(v), v);
  }
  assert.equal(messageValue("a".repeat(MESSAGE_VALUE_MAX_CHARS)), "a".repeat(100));
});

Deno.test("messageValue() cuts at 100 characters with a marker, never inside an escape", () => {
  assert.equal(messageValue("a".repeat(101)), "a".repeat(95) + CUT_MARKER);
  assert.equal(messageValue("\xff".repeat(40)), "\\xff".repeat(23) + CUT_MARKER);
  assert.equal(messageValue("a\xe9bcdefgh", 8), "a[...]");
  assert.equal(messageValue("\u0100"), "\\u{100}");
});

Deno.test("messageReason() cuts each quoted tag value and the whole reason", () => {
  const long = "x".repeat(500);
  assert.equal(
    messageReason(`signature syntax error: invalid d= "${long}"`),
    `signature syntax error: invalid d= "${"x".repeat(95)}${CUT_MARKER}"`,
  );
  assert.equal(messageReason(`a ${long}`).length, REASON_MAX_CHARS);
});

Deno.test("messageValue() and messageReason(): ASCII only, bounded, a prefix kept (property)", () => {
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 400 }), (text) => {
      for (const [out, max] of [[messageValue(text), 100], [messageReason(text), 200]] as const) {
        assert.ok(out.length <= max, out);
        // deno-lint-ignore no-control-regex
        assert.match(out, /^[\x00-\x7f]*$/);
      }
      const out = messageValue(text);
      if (!out.endsWith(CUT_MARKER) || text.endsWith(CUT_MARKER)) return;
      // A cut value starts as the escaped whole does.
      assert.ok(messageValue(text, 1_000_000).startsWith(out.slice(0, -CUT_MARKER.length)));
    }),
    fuzzParams(500),
  );
});
