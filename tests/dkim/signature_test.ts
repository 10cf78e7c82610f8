import fc from "fast-check";
import assert from "node:assert/strict";
import { fuzzParams } from "../helpers/fuzz.ts";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import { DkimError } from "../../lib/dkim/dkim_error.ts";
import {
  appendSignatureValue,
  decodeQuotedPrintable,
  encodeQuotedPrintable,
  isDomainName,
  isSelector,
  parseCanonicalization,
  parseSignature,
  summarizeSignature,
  withoutSignatureValue,
} from "../../lib/dkim/signature.ts";

function field(value: string) {
  return { name: "DKIM-Signature", raw: fromLatin1(`DKIM-Signature: ${value}`) };
}

const BASE = "v=1; a=rsa-sha256; d=example.com; s=sel; h=From:To; bh=AAAA; b=AAAA";

Deno.test("parseSignature() reads every tag and its default", () => {
  const sig = parseSignature(
    field(`${BASE}; c=relaxed; i=a=40b@Sub.Example.com; l=0010; t=1; x=2`),
  );
  assert.equal(sig.headerCanonicalization, "relaxed");
  assert.equal(sig.bodyCanonicalization, "simple");
  assert.equal(sig.identity, "a@b@Sub.Example.com");
  assert.equal(sig.length, 10);
  assert.equal(sig.timestamp, 1);
  assert.equal(sig.expiration, 2);
  assert.deepEqual(sig.headers, ["From", "To"]);
});

Deno.test("parseSignature() rejects numbers too large to be exact", () => {
  assert.throws(() => parseSignature(field(`${BASE}; l=99999999999999999999`)), /l= is too large/);
  assert.throws(() => parseSignature(field(`${BASE}; t=-1`)), /t= is not a number/);
});

Deno.test("parseSignature() rejects bad d= and s= values", () => {
  assert.throws(
    () => parseSignature(field(BASE.replace("d=example.com", "d=exa_mple..com"))),
    /invalid d=/,
  );
  assert.throws(() => parseSignature(field(BASE.replace("s=sel", "s=a/b"))), /invalid s=/);
  assert.throws(() => parseSignature(field(BASE.replace("b=AAAA", "b="))), /empty b=/);
});

Deno.test("parseCanonicalization() takes header/body and header alone", () => {
  assert.deepEqual(parseCanonicalization("relaxed/relaxed"), ["relaxed", "relaxed"]);
  assert.deepEqual(parseCanonicalization(" Relaxed "), ["relaxed", "simple"]);
  assert.throws(() => parseCanonicalization("relaxed/simple/x"), DkimError);
  assert.throws(() => parseCanonicalization("nofws"), /unsupported canonicalization "nofws"/);
});

Deno.test("withoutSignatureValue() empties only b=, never bh=", () => {
  const cases: [string, string][] = [
    ["v=1; bh=abc=; b=xyz", "v=1; bh=abc=; b="],
    ["b = xy\r\n z ; bh=abc=", "b =; bh=abc="],
    ["v=1; bh=abc=;\r\n b=xyz;", "v=1; bh=abc=;\r\n b=;"],
    ["v=1; bh=abc=", "v=1; bh=abc="],
  ];
  for (const [value, want] of cases) {
    assert.equal(latin1(withoutSignatureValue(field(value)).raw), `DKIM-Signature: ${want}`);
  }
});

Deno.test("appendSignatureValue() folds b= without passing 78 columns", () => {
  const text = appendSignatureValue(
    "DKIM-Signature: v=1; a=x;\r\n\th=from; bh=abc=; b=",
    "A".repeat(344),
  );
  for (const line of text.split("\r\n")) assert.ok(line.length <= 78, line);
  assert.equal(text.replace(/^.*b=/s, "").replace(/\r\n\t/g, ""), "A".repeat(344));
});

Deno.test("dkim-quoted-printable round-trips identities (RFC 6376 §2.11)", () => {
  const id = "user;name=x é@example.com";
  assert.equal(encodeQuotedPrintable(id), "user=3Bname=3Dx=20=E9@example.com");
  assert.equal(decodeQuotedPrintable(encodeQuotedPrintable(id)), id);
});

Deno.test("summarizeSignature() reports what it can of a broken signature", () => {
  assert.deepEqual(summarizeSignature(field("v=1; d=Example.com; s=x; b=ab cd")), {
    domain: "example.com",
    selector: "x",
    identity: "@example.com",
    algorithm: undefined,
    b: "abcd",
  });
  assert.deepEqual(summarizeSignature(field("d=a; d=b")), {});
});

Deno.test("withoutSignatureValue() deletes what the text search deleted, on any field", () => {
  // The text form withoutSignatureValue() had before it worked on the bytes.
  const viaText = (text: string): string => {
    let pos = text.indexOf(":") + 1;
    while (pos > 0 && pos <= text.length) {
      let end = text.indexOf(";", pos);
      if (end === -1) end = text.length;
      const eq = text.slice(pos, end).indexOf("=");
      if (eq !== -1 && text.slice(pos, pos + eq).replace(/[ \t\r\n]+/g, "") === "b") {
        return text.slice(0, pos + eq + 1) + text.slice(end);
      }
      pos = end + 1;
    }
    return text;
  };
  const pieces = fc.constantFrom("b", "bh", "=", ";", ":", " ", "\r\n ", "\t", "x", "b b", "\xe9");
  fc.assert(
    fc.property(fc.array(pieces, { maxLength: 20 }), (parts) => {
      const text = `DKIM-Signature:${parts.join("")}`;
      const field = { name: "DKIM-Signature", raw: fromLatin1(text) };
      assert.equal(latin1(withoutSignatureValue(field).raw), viaText(text));
    }),
    fuzzParams(1000),
  );
});

Deno.test("isDomainName() accepts what the regular expressions it replaced accepted", () => {
  // The implementation before issue 20: split on ".", each label against two expressions.
  const viaRegex = (name: string) => {
    if (name.length === 0 || name.length > 253) return false;
    return name.split(".").every((label) =>
      /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/i.test(label) || /^xn--[a-z0-9-]+$/i.test(label)
    );
  };
  for (
    const name of [
      "example.com",
      "EXAMPLE.COM",
      "a",
      "-",
      "_",
      "a-",
      "-a",
      "a_b",
      "_dmarc.example",
      "xn--bcher-kva.example",
      "XN--A",
      "xn--",
      "xn--a_b",
      "xn---",
      "a..b",
      ".a",
      "a.",
      "a".repeat(63),
      "a".repeat(64),
      `xn--${"a".repeat(70)}`,
      `${"a".repeat(63)}.`.repeat(4).slice(0, 253),
      `${"a".repeat(63)}.`.repeat(4).slice(0, 254),
      "a\nb",
      "\u212a",
      "\u017f",
      "\xe9.example",
    ]
  ) {
    assert.equal(isDomainName(name), viaRegex(name), JSON.stringify(name));
    assert.equal(isSelector(name), viaRegex(name), JSON.stringify(name));
  }
  const pieces = fc.oneof(
    fc.constantFrom("a", "Z", "0", "9", "-", "_", ".", "xn--", "XN--", "x", "n", "\u212a", "\xe9"),
    fc.constantFrom(" ", "\r", "\n", "\x00", "\x7f", "\x10", "\x1a", "/", ":", "@", "`", "{"),
    fc.string({ maxLength: 3 }),
    fc.constantFrom("a".repeat(61), "b".repeat(62), "c".repeat(63), "d".repeat(64)),
  );
  fc.assert(
    fc.property(fc.array(pieces, { maxLength: 12 }), (parts) => {
      const name = parts.join("");
      assert.equal(isDomainName(name), viaRegex(name), JSON.stringify(name));
    }),
    fuzzParams(5000),
  );
});
