import assert from "node:assert/strict";
import fc from "fast-check";
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

Deno.test("fromBase64() gives what atob gave, and throws where it threw (fast-check)", () => {
  // The decoder before issue 20: validation, padding, then atob and a byte per character.
  const before = (text: string): Uint8Array => {
    const clean = text.replace(/[\s]+/g, "");
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean) || clean.length % 4 === 1) {
      throw new SyntaxError("Invalid base64 data");
    }
    let padded = clean;
    while (padded.length % 4 !== 0) padded += "=";
    return fromLatin1(atob(padded));
  };
  // Where atob threw, it was a DOMException for a few paddings ("A="), a SyntaxError for the
  // rest; now always the SyntaxError the doc promises.
  const outcome = (f: () => Uint8Array) => {
    try {
      return f();
    } catch {
      return "throws";
    }
  };
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= \r\n\t*";
  const text = fc.oneof(
    // Encoded bytes, cut or folded anywhere: valid, short and overlong padding, nonzero tail bits.
    fc.tuple(fc.uint8Array({ maxLength: 300 }), fc.nat(4), fc.nat(300)).map(([b, cut, at]) => {
      const s = toBase64(b);
      const t = s.slice(0, Math.max(0, s.length - cut));
      return `${t.slice(0, at)}\r\n ${t.slice(at)}`;
    }),
    fc.array(fc.constantFrom(...alphabet), { maxLength: 40 }).map((a) => a.join("")),
  );
  fc.assert(
    fc.property(text, (t) => {
      assert.deepEqual(outcome(() => fromBase64(t)), outcome(() => before(t)));
      try {
        fromBase64(t);
      } catch (e) {
        assert.ok(e instanceof SyntaxError, String(e));
      }
    }),
    { numRuns: 5000 },
  );
});
