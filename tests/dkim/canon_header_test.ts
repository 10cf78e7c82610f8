import assert from "node:assert/strict";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import { canonicalizeHeader } from "../../lib/dkim/canon_header.ts";
import { splitMessage } from "../../lib/dkim/header.ts";

// RFC 6376 §3.4.2 (relaxed) and §3.4.1 (simple); the first two are the RFC's §3.4.5 example.
const cases: { name: string; field: string; relaxed: string }[] = [
  { name: "RFC 6376 §3.4.5 A", field: "A: X", relaxed: "a:X\r\n" },
  { name: "RFC 6376 §3.4.5 B", field: "B : Y\t\r\n\tZ  ", relaxed: "b:Y Z\r\n" },
  { name: "fold right after the colon", field: "Subject:\r\n hello", relaxed: "subject:hello\r\n" },
  { name: "empty value", field: "X-Empty:", relaxed: "x-empty:\r\n" },
  { name: "whitespace-only value", field: "X-Empty: \t ", relaxed: "x-empty:\r\n" },
  { name: "tabs inside", field: "To: a\t\tb", relaxed: "to:a b\r\n" },
  { name: "upper-case name", field: "MESSAGE-ID: <x@y>", relaxed: "message-id:<x@y>\r\n" },
  {
    name: "8-bit value kept",
    field: "Subject: caf\xc3\xa9  !",
    relaxed: "subject:caf\xc3\xa9 !\r\n",
  },
  { name: "several folds", field: "To: a,\r\n  b,\r\n\tc", relaxed: "to:a, b, c\r\n" },
];

for (const c of cases) {
  Deno.test(`canonicalizeHeader() relaxes ${c.name}`, () => {
    const { fields } = splitMessage(fromLatin1(`${c.field}\r\n\r\n`));
    assert.equal(fields.length, 1);
    assert.equal(latin1(canonicalizeHeader(fields[0], "relaxed")), c.relaxed);
    assert.equal(latin1(canonicalizeHeader(fields[0], "simple")), `${c.field}\r\n`);
  });
}
