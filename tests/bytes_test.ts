import assert from "node:assert/strict";
import {
  asciiEqualsIgnoreCase,
  asciiLower,
  concat,
  equals,
  fromBase64,
  fromLatin1,
  indexOf,
  latin1,
  toBase64,
  utf8,
} from "../lib/bytes.ts";

Deno.test("latin1() and fromLatin1() round-trip every byte value", () => {
  const all = new Uint8Array(256).map((_, i) => i);
  assert.deepEqual(fromLatin1(latin1(all)), all);
  const big = new Uint8Array(20000).map((_, i) => (i * 7) & 0xff);
  assert.deepEqual(fromLatin1(latin1(big)), big);
});

Deno.test("indexOf() finds needles at the start, middle, end and not at all", () => {
  const h = utf8("ab\r\n\r\ncd\r\n\r\n");
  const n = utf8("\r\n\r\n");
  assert.equal(indexOf(h, n), 2);
  assert.equal(indexOf(h, n, 3), 8);
  assert.equal(indexOf(h, n, 9), -1);
  assert.equal(indexOf(utf8("\r\n\r"), n), -1);
  assert.equal(indexOf(h, utf8("ab")), 0);
  assert.equal(indexOf(h, new Uint8Array(0), 4), 4);
});

Deno.test("concat() and equals() agree on the joined bytes", () => {
  assert.ok(equals(concat([utf8("a"), utf8(""), utf8("bc")]), utf8("abc")));
  assert.ok(!equals(utf8("abc"), utf8("abd")));
  assert.ok(!equals(utf8("ab"), utf8("abc")));
});

Deno.test("fromBase64() ignores folding whitespace and rejects junk", () => {
  assert.deepEqual(fromBase64("aG\r\n\t k="), utf8("hi"));
  assert.deepEqual(fromBase64("aGk"), utf8("hi"));
  assert.equal(toBase64(utf8("hi")), "aGk=");
  assert.throws(() => fromBase64("a*b="), SyntaxError);
  assert.throws(() => fromBase64("abcde"), SyntaxError);
});

Deno.test("asciiEqualsIgnoreCase() folds ASCII letters only", () => {
  assert.ok(asciiEqualsIgnoreCase("DKIM-Signature", "dkim-signature"));
  assert.ok(!asciiEqualsIgnoreCase("\u00c9", "\u00e9"));
});

Deno.test("asciiLower() folds A-Z only, for every one- and two-character Latin-1 string", () => {
  const want = (t: string) =>
    Array.from(t, (ch) => ch >= "A" && ch <= "Z" ? String.fromCharCode(ch.charCodeAt(0) + 32) : ch)
      .join("");
  for (let a = 0; a < 0x100; a++) {
    const one = String.fromCharCode(a);
    assert.equal(asciiLower(one), want(one));
    for (let b = 0; b < 0x100; b += 7) {
      const two = one + String.fromCharCode(b);
      assert.equal(asciiLower(two), want(two));
    }
  }
  assert.equal(asciiLower("DKIM-Signature"), "dkim-signature");
  assert.equal(asciiLower("Ä-From-\u0100"), "Ä-from-\u0100");
});
