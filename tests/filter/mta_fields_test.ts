/** makeField(), deletions() and mtaValue(): header fields between the MTA and the DKIM core. */
import fc from "fast-check";
import assert from "node:assert/strict";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import { deletions, makeField, mtaValue } from "../../lib/filter/mta_fields.ts";
import { fuzzParams } from "../helpers/fuzz.ts";

// The field as OpenDKIM rebuilds it: the space Postfix removed put back, bare LFs made CRLF.
function reference(name: string, value: string, leadingSpace: boolean): string {
  let v = value;
  if (!leadingSpace && v.length > 0 && v[0] !== " " && v[0] !== "\t") v = ` ${v}`;
  v = v.replace(/(?<!\r)\n/g, "\r\n");
  return `${name}:${v}`;
}

Deno.test("makeField() rebuilds fields as the reference does", () => {
  const table: [string, string, boolean, string][] = [
    ["Subject", "a\n\tb", false, "Subject: a\r\n\tb"],
    ["Subject", " a\r\n b", true, "Subject: a\r\n b"],
    ["X", "", false, "X:"],
    ["X", "\n x", false, "X: \r\n x"],
    ["X", "\tx", false, "X:\tx"],
    ["X", "a\r\n b\n c\r\r\n", true, "X:a\r\n b\r\n c\r\r\n"],
    ["X", "\n", true, "X:\r\n"],
  ];
  for (const [name, value, lead, want] of table) {
    assert.equal(latin1(makeField(name, fromLatin1(value), lead).raw), want, JSON.stringify(value));
    assert.equal(reference(name, value, lead), want);
  }
  // Random values from an alphabet of folds and line-end pieces.
  let seed = 42;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const alphabet = ["a", " ", "\t", "\r", "\n", "\r\n", "\xe9"];
  for (let n = 0; n < 500; n++) {
    let value = "";
    for (let i = Math.floor(next() * 12); i > 0; i--) value += alphabet[Math.floor(next() * 7)];
    for (const lead of [true, false]) {
      assert.equal(
        latin1(makeField("Name", fromLatin1(value), lead).raw),
        reference("Name", value, lead),
        JSON.stringify(value),
      );
    }
  }
});

Deno.test("makeField() names a field without the whitespace before its colon", () => {
  const f = makeField("Subject \t", fromLatin1(" x"), true);
  assert.equal(f.name, "Subject");
  assert.equal(latin1(f.raw), "Subject \t: x");
});

Deno.test("deletions() returns nothing when nothing is picked, and numbers per name otherwise", () => {
  const fields = ["A", "b", "a", "B", "a"].map((n, i) => makeField(n, fromLatin1(` ${i}`), true));
  assert.deepEqual(deletions(fields, () => false), []);
  const mods = deletions(fields, (f) => f.name === "a" || f.name === "B");
  assert.deepEqual(mods.map((m) => m.type === "chgheader" ? [m.index, m.name] : m.type), [
    [3, "a"],
    [2, "B"],
    [2, "a"],
  ]);
});

Deno.test("deletions() numbers fields per name and deletes from the highest", () => {
  const fields = [
    makeField("A", fromLatin1(" 1"), true),
    makeField("B", fromLatin1(" x"), true),
    makeField("a", fromLatin1(" 2"), true),
    makeField("A", fromLatin1(" 3"), true),
  ];
  const mods = deletions(
    fields,
    (f) => f.name.toLowerCase() === "a" && !latin1(f.raw).endsWith("2"),
  );
  assert.deepEqual(mods.map((m) => (m as { index: number }).index), [3, 1]);
});

Deno.test("makeField() restores the leading space and CRLF folds of a milter header", () => {
  assert.equal(latin1(makeField("Subject", fromLatin1("a\n\tb"), false).raw), "Subject: a\r\n\tb");
  assert.equal(latin1(makeField("Subject", fromLatin1(" a\r\n b"), true).raw), "Subject: a\r\n b");
  assert.equal(latin1(makeField("X", fromLatin1(""), false).raw), "X:");
  const spaced = makeField("Subject ", fromLatin1(" x"), true);
  assert.equal(spaced.name, "Subject");
  assert.equal(latin1(spaced.raw), "Subject : x");
});

Deno.test("mtaValue() folds with bare LF and keeps the leading space only when agreed", () => {
  const cases: [string, boolean, string][] = [
    [" v=1; a=rsa-sha256;\r\n\tb=abc", true, " v=1; a=rsa-sha256;\n\tb=abc"],
    [" v=1; a=rsa-sha256;\r\n\tb=abc", false, "v=1; a=rsa-sha256;\n\tb=abc"],
    ["  two spaces", false, " two spaces"],
    ["none", false, "none"],
    ["", true, ""],
  ];
  for (const [value, leadingSpace, want] of cases) {
    assert.equal(latin1(mtaValue(fromLatin1(value), leadingSpace)), want, JSON.stringify(value));
  }
});

Deno.test("mtaValue() edits the bytes as the text edit does (CRLF to LF, the space dropped)", () => {
  // The text form mtaValue() had before it worked on the bytes.
  const viaText = (value: string, leadingSpace: boolean): string => {
    const text = value.replaceAll("\r\n", "\n");
    return leadingSpace ? text : text.replace(/^ /, "");
  };
  const pieces = fc.constantFrom(" ", "\r", "\n", "\r\n", "\t", "a", ";", "\xe9");
  fc.assert(
    fc.property(fc.array(pieces, { maxLength: 24 }), fc.boolean(), (parts, leadingSpace) => {
      const value = parts.join("");
      assert.equal(latin1(mtaValue(fromLatin1(value), leadingSpace)), viaText(value, leadingSpace));
    }),
    fuzzParams(500),
  );
});
