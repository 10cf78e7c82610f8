import fc from "fast-check";
import assert from "node:assert/strict";
import { asciiLower, fromLatin1, latin1 } from "../../lib/bytes.ts";
import { fuzzParams } from "../helpers/fuzz.ts";
import {
  fieldValueText,
  type HeaderField,
  makeHeaderField,
  MAX_HEADER_FIELDS,
  MessageSyntaxError,
  selectHeaders,
  splitMessage,
} from "../../lib/dkim/header.ts";

Deno.test("splitMessage() keeps every byte of each field, folds included", () => {
  const text = "From: a@b\r\nSubject: one\r\n\ttwo\r\nX-8bit: caf\xe9\r\n\r\nbody\r\n";
  const { fields, bodyOffset } = splitMessage(fromLatin1(text));
  assert.deepEqual(fields.map((f) => latin1(f.raw)), [
    "From: a@b",
    "Subject: one\r\n\ttwo",
    "X-8bit: caf\xe9",
  ]);
  assert.equal(latin1(fromLatin1(text).subarray(bodyOffset)), "body\r\n");
});

Deno.test("splitMessage() handles a message without body, without blank line, and empty header", () => {
  assert.equal(splitMessage(fromLatin1("A: 1\r\n\r\n")).bodyOffset, 8);
  const noBlank = splitMessage(fromLatin1("A: 1\r\nB: 2\r\n"));
  assert.deepEqual(noBlank.fields.map((f) => f.name), ["A", "B"]);
  assert.equal(noBlank.bodyOffset, 12);
  const noCrlf = splitMessage(fromLatin1("A: 1"));
  assert.equal(latin1(noCrlf.fields[0].raw), "A: 1");
  const bodyOnly = splitMessage(fromLatin1("\r\nbody"));
  assert.deepEqual(bodyOnly.fields, []);
  assert.equal(bodyOnly.bodyOffset, 2);
});

Deno.test("splitMessage() trims whitespace between name and colon from the name only", () => {
  const { fields } = splitMessage(fromLatin1("Subject : x\r\n\r\n"));
  assert.equal(fields[0].name, "Subject");
  assert.equal(latin1(fields[0].raw), "Subject : x");
});

Deno.test("splitMessage() rejects lines that are not header fields, naming the line", () => {
  assert.throws(
    () => splitMessage(fromLatin1("From: a\r\nnot a header\r\n\r\n")),
    (e) =>
      e instanceof MessageSyntaxError && e.line === 2 &&
      /line 2 is not a header field/.test(e.message),
  );
  assert.throws(
    () => splitMessage(fromLatin1(" continued\r\n\r\n")),
    (e) => e instanceof MessageSyntaxError && e.line === 1,
  );
  assert.throws(() => splitMessage(fromLatin1(": no name\r\n\r\n")), MessageSyntaxError);
});

Deno.test("splitMessage() bounds the number of header fields", () => {
  const many = "X: 1\r\n".repeat(MAX_HEADER_FIELDS + 1) + "\r\n";
  assert.throws(() => splitMessage(fromLatin1(many)), /more than 1000 header fields/);
});

Deno.test("selectHeaders() picks instances bottom-up and skips exhausted names (RFC 6376 §5.4.2)", () => {
  const { fields } = splitMessage(
    fromLatin1("Received: r1\r\nTo: t1\r\nSubject: s\r\nto: t2\r\nReceived: r2\r\n\r\n"),
  );
  const picked = selectHeaders(fields, ["TO", "to", "To", "subject", "received", "missing"]);
  assert.deepEqual(picked.map((f) => latin1(f.raw)), [
    "to: t2",
    "To: t1",
    "Subject: s",
    "Received: r2",
  ]);
});

Deno.test("makeHeaderField() and fieldValueText() round-trip a milter header", () => {
  const f = makeHeaderField("Subject", fromLatin1(" a\r\n b "));
  assert.equal(latin1(f.raw), "Subject: a\r\n b ");
  assert.equal(fieldValueText(f), "a b");
});

Deno.test("selectHeaders() picks what the map of every name it used before picked, small and large", () => {
  // The implementation before issue 20, which the large case still is.
  const viaMap = (fields: readonly HeaderField[], names: readonly string[]) => {
    const byName = new Map<string, HeaderField[]>();
    for (const f of fields) {
      const key = asciiLower(f.name);
      let list = byName.get(key);
      if (!list) byName.set(key, list = []);
      list.push(f);
    }
    return names.flatMap((n) => byName.get(asciiLower(n))?.pop() ?? []);
  };
  const name = fc.constantFrom("From", "from", "FROM", "To", "Subject", "x-\xc9", "X-\xc9", "Cc");
  fc.assert(
    fc.property(
      fc.array(name, { maxLength: 40 }),
      fc.array(name, { maxLength: 40 }),
      (fieldNames, names) => {
        const fields = fieldNames.map((n, i) => ({ name: n, raw: fromLatin1(`${n}: ${i}`) }));
        assert.deepEqual(selectHeaders(fields, names), viaMap(fields, names));
      },
    ),
    fuzzParams(3000),
  );
});
