// RFC 5322 §3.6's field counts, as StrictHeaders and RequiredHeaders apply them.
import assert from "node:assert/strict";
import { fromLatin1 } from "../../lib/bytes.ts";
import { FIELD_COUNT_RULES, fieldCountProblem, SINGLE_FROM } from "../../lib/dkim/field_counts.ts";
import { splitMessage } from "../../lib/dkim/header.ts";

const fields = (header: string) => splitMessage(fromLatin1(`${header}\r\nbody\r\n`)).fields;

const BASE = "From: a@example.com\r\nDate: Fri, 27 Nov 2026 12:00:00 +0000\r\n";

Deno.test("FIELD_COUNT_RULES holds RFC 5322 §3.6's once-only fields, Date and From required", () => {
  assert.deepEqual(FIELD_COUNT_RULES.map((r) => `${r.name}:${r.min}`), [
    "From:1",
    "Date:1",
    "Sender:0",
    "Reply-To:0",
    "To:0",
    "Cc:0",
    "Bcc:0",
    "Message-ID:0",
    "In-Reply-To:0",
    "References:0",
    "Subject:0",
  ]);
});

Deno.test("fieldCountProblem() finds a second instance of each once-only field", () => {
  assert.equal(fieldCountProblem(fields(BASE), FIELD_COUNT_RULES), undefined);
  for (const rule of FIELD_COUNT_RULES) {
    const twice = `${BASE}${rule.name}: x\r\n${rule.name.toUpperCase()}: y\r\n`;
    const want = `message has ${rule.min === 1 ? 3 : 2} ${rule.name} fields`;
    // From and Date are in BASE already, so a third instance is added for them.
    assert.equal(fieldCountProblem(fields(twice), FIELD_COUNT_RULES), want, rule.name);
  }
});

Deno.test("fieldCountProblem() finds a missing Date or From, as OpenDKIM's StrictHeaders does", () => {
  assert.equal(
    fieldCountProblem(fields("From: a@example.com\r\n"), FIELD_COUNT_RULES),
    "message has no Date field",
  );
  assert.equal(
    fieldCountProblem(fields("Date: Fri, 27 Nov 2026 12:00:00 +0000\r\n"), FIELD_COUNT_RULES),
    "message has no From field",
  );
});

Deno.test("fieldCountProblem() with SINGLE_FROM minds only a second From", () => {
  assert.equal(fieldCountProblem(fields("Subject: a\r\nSubject: b\r\n"), SINGLE_FROM), undefined);
  assert.equal(fieldCountProblem(fields("Subject: a\r\n"), SINGLE_FROM), undefined);
  assert.equal(
    fieldCountProblem(fields("From: a@x.example\r\nfrom: b@y.example\r\n"), SINGLE_FROM),
    "message has 2 From fields",
  );
});

Deno.test("fieldCountProblem() reports From before the other fields", () => {
  const both = `${BASE}Subject: a\r\nSubject: b\r\nFrom: m@evil.example\r\n`;
  assert.equal(fieldCountProblem(fields(both), FIELD_COUNT_RULES), "message has 2 From fields");
});
