import assert from "node:assert/strict";
import fc from "fast-check";
import { parseTagList, stripWhitespace, TagListError } from "../../lib/dkim/tag_list.ts";

// RFC 6376 §3.2 grammar, case by case.
const good: { name: string; input: string; want: [string, string][] }[] = [
  { name: "simple list", input: "a=1; b=2", want: [["a", "1"], ["b", "2"]] },
  { name: "trailing semicolon", input: "a=1;", want: [["a", "1"]] },
  {
    name: "FWS around everything",
    input: " a \r\n\t= 1 ;\r\n b=\t2\t",
    want: [["a", "1"], ["b", "2"]],
  },
  { name: "inner folding kept", input: "b=ab\r\n cd", want: [["b", "ab\r\n cd"]] },
  { name: "empty value", input: "p=; k=rsa", want: [["p", ""], ["k", "rsa"]] },
  { name: "empty segments ignored", input: "a=1;; b=2; ;", want: [["a", "1"], ["b", "2"]] },
  { name: "case-sensitive names", input: "A=1; a=2", want: [["A", "1"], ["a", "2"]] },
  { name: "name with digits and underscore", input: "x_1=v", want: [["x_1", "v"]] },
  { name: "value with equals signs", input: "bh=abc==", want: [["bh", "abc=="]] },
  { name: "8-bit value kept", input: "n=caf\xe9", want: [["n", "caf\xe9"]] },
  { name: "empty list", input: "", want: [] },
];

for (const c of good) {
  Deno.test(`parseTagList() parses ${c.name}`, () => {
    assert.deepEqual([...parseTagList(c.input)], c.want);
  });
}

const bad: { name: string; input: string; message: RegExp }[] = [
  { name: "a duplicate tag", input: "a=1; a=2", message: /duplicate tag "a"/ },
  { name: "a segment without =", input: "a=1; junk", message: /has no "="/ },
  { name: "a name starting with a digit", input: "1a=1", message: /Invalid tag name "1a"/ },
  { name: "an empty name", input: "=1", message: /Invalid tag name ""/ },
  { name: "a name with a space inside", input: "a b=1", message: /Invalid tag name "a b"/ },
  { name: "a control character", input: "a=1\x00", message: /control character/ },
  { name: "a bare line break in a value", input: "a=1\r\n2", message: /not folding/ },
];

for (const c of bad) {
  Deno.test(`parseTagList() rejects ${c.name}`, () => {
    assert.throws(
      () => parseTagList(c.input),
      (e) => e instanceof TagListError && c.message.test(e.message),
    );
  });
}

Deno.test("parseTagList() bounds the number of tags", () => {
  const many = Array.from({ length: 65 }, (_, i) => `t${i}=1`).join(";");
  assert.throws(() => parseTagList(many), /more than 64 tags/);
});

Deno.test("stripWhitespace() removes folding from base64 values", () => {
  assert.equal(stripWhitespace(" ab\r\n\tcd =\r\n ="), "abcd==");
});

Deno.test("parseTagList() accepts and refuses values as the character loop alone did (fast-check)", () => {
  // checkValue's loop, which now runs only when a value has a line break or control character.
  const loopAccepts = (value: string): boolean => {
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i);
      if (c === 0x20 || c === 0x09) continue;
      if (c === 0x0d || c === 0x0a) {
        const next = value.charCodeAt(
          c === 0x0d && value.charCodeAt(i + 1) === 0x0a ? i + 2 : i + 1,
        );
        if (next === 0x20 || next === 0x09) continue;
        return false;
      }
      if (c < 0x20 || c === 0x7f) return false;
    }
    return true;
  };
  const char = fc.oneof(
    fc.constantFrom("a", "Z", "0", "+", "/", "=", " ", "\t", "\r", "\n", "\r\n ", "\x7f", "\x80"),
    fc.integer({ min: 0, max: 0xff }).map((c) => String.fromCharCode(c)),
  );
  const value = fc.array(char, { maxLength: 20 }).map((a) => a.join("").replaceAll(";", ""));
  fc.assert(
    fc.property(value, (v) => {
      const text = `x=y${v}z`;
      let accepted = true;
      try {
        parseTagList(text);
      } catch (e) {
        if (!(e instanceof TagListError)) throw e;
        accepted = false;
      }
      assert.equal(accepted, loopAccepts(`y${v}z`), JSON.stringify(text));
    }),
    { numRuns: 5000 },
  );
});
