import assert from "node:assert/strict";
import fc from "fast-check";
import {
  formatAuthResults,
  formatDkimResult,
  MAX_FIELD_LINE,
  parseAuthservId,
  quoteValue,
} from "../../lib/dkim/auth_results.ts";
import type { Verdict } from "../../lib/dkim/result.ts";
import { assertFoldedField, lineItems, unfold } from "../helpers/folding.ts";
import { fuzzParams } from "../helpers/fuzz.ts";

const pass = {
  result: "pass",
  domain: "example.com",
  identity: "@example.com",
  selector: "sel",
  algorithm: "ed25519-sha256",
  b: "AbCdEfGhIjKl",
  key: { type: "ed25519", bits: 256, testing: false },
} as unknown as Verdict;

Deno.test("formatAuthResults() renders one dkim= result per signature on folded lines", () => {
  const fail = {
    ...pass,
    result: "temperror",
    reason: "key query failed: DNS timeout",
    key: undefined,
  } as Verdict;
  assert.equal(
    formatAuthResults("mx.example.org", [pass, fail]),
    "mx.example.org;\r\n" +
      "\tdkim=pass (256-bit key) header.d=example.com header.i=@example.com\r\n" +
      "\theader.s=sel header.a=ed25519-sha256 header.b=AbCdEfGh;\r\n" +
      '\tdkim=temperror reason="key query failed: DNS timeout" header.d=example.com\r\n' +
      "\theader.i=@example.com header.s=sel header.a=ed25519-sha256 header.b=AbCdEfGh",
  );
});

Deno.test("formatAuthResults() folds at 78 characters counting the field name and a tab as one, and keeps a longer property whole", () => {
  const id = `${"m".repeat(60)}.example`; // "Authentication-Results: " + 69 characters passes 78
  assert.equal(formatAuthResults("m.example", []), "m.example; dkim=none");
  assert.equal(formatAuthResults(id, []), `${id};\r\n\tdkim=none`);
  // "Authentication-Results: " (24) + 43 + "; dkim=none" (11) is 78: full, not over.
  const full = `${"m".repeat(35)}.example`;
  assert.equal(formatAuthResults(full, []), `${full}; dkim=none`);
  assert.equal(formatAuthResults(`m${full}`, []), `m${full};\r\n\tdkim=none`);
  // A continuation line of exactly 78: the tab and 77 characters.
  const d = `${"d".repeat(77 - "dkim=pass header.d=".length - ".example".length)}.example`;
  const exact = { result: "pass", domain: d } as unknown as Verdict;
  assert.equal(formatAuthResults("m", [exact]), `m;\r\n\tdkim=pass header.d=${d}`);
  const over = { result: "pass", domain: `d${d}` } as unknown as Verdict;
  assert.equal(formatAuthResults("m", [over]), `m;\r\n\tdkim=pass\r\n\theader.d=d${d}`);
  // A quoted reason longer than a line is not split, and what follows goes on.
  const reason = `signature expired ${"x".repeat(70)}`;
  const expired = { ...pass, result: "fail", reason, key: undefined } as Verdict;
  assert.equal(
    formatAuthResults("m", [expired], { brief: true, noHeaderB: true }),
    `m;\r\n\tdkim=fail\r\n\treason="${reason}"\r\n\theader.d=example.com header.i=@example.com`,
  );
});

Deno.test("formatDkimResult() honours NoHeaderB, brief form and test mode", () => {
  const testing = { ...pass, key: { type: "rsa", bits: 2048, testing: true } } as Verdict;
  assert.equal(
    formatDkimResult(testing, { noHeaderB: true, brief: true }),
    "dkim=pass (2048-bit key; test mode) header.d=example.com header.i=@example.com",
  );
});

Deno.test("quoteValue() quotes only what RFC 8601 needs quoted", () => {
  assert.equal(quoteValue("mx.example.org"), "mx.example.org");
  assert.equal(quoteValue("ab/cd+=="), '"ab/cd+=="');
  assert.equal(quoteValue("user.name@example.com", true), "user.name@example.com");
  assert.equal(quoteValue("@example.com", true), "@example.com");
  assert.equal(quoteValue('we "quote"'), '"we \\"quote\\""');
  assert.equal(quoteValue("a b@example.com", true), '"a b@example.com"');
});

Deno.test("parseAuthservId() reads the authserv-id whatever surrounds it", () => {
  const cases: [string, string | undefined][] = [
    ["mx.example.org; dkim=pass", "mx.example.org"],
    [" MX.Example.Org 1 ; spf=pass", "MX.Example.Org"],
    ["(comment (nested)) mx.example.org;", "mx.example.org"],
    ['"quoted\\"id"; none', 'quoted"id'],
    ["\r\n\tmx.example.org;dkim=none", "mx.example.org"],
    ["mx.example.org", "mx.example.org"],
    ["", undefined],
    ["(unclosed comment mx.example.org;", undefined],
    ['"unclosed', undefined],
    ["; dkim=pass", undefined],
  ];
  for (const [value, want] of cases) {
    assert.equal(parseAuthservId(value), want, JSON.stringify(value));
  }
});

Deno.test("formatAuthResults() cuts values from the message at 100 characters and escapes 8-bit ones", () => {
  const long = "a".repeat(300);
  const value = formatAuthResults("mx.example.org", [{
    ...pass,
    domain: `${long}.example`,
    identity: `\xe9@${long}.example`,
    selector: long,
    reason: `unsupported algorithm "${long}"`,
  } as Verdict]);
  const cut = `${"a".repeat(95)}[...]`;
  assert.ok(value.includes(`header.d="${cut}"`), value);
  assert.ok(value.includes(`header.i="\\\\xe9@${"a".repeat(90)}[...]"`), value);
  assert.ok(value.includes(`header.s="${cut}"`), value);
  assert.ok(value.includes(`reason="unsupported algorithm \\"${cut}\\""`), value);
});

Deno.test("formatAuthResults(): any verdicts give ASCII lines of at most 998 bytes, folded only before whitespace (property)", () => {
  const text = fc.string({ unit: "binary", maxLength: 1200 });
  const verdict = fc.record({
    result: fc.constantFrom("pass", "fail", "neutral", "policy", "permerror", "temperror"),
    reason: fc.option(text, { nil: undefined }),
    domain: text,
    identity: text,
    selector: text,
    algorithm: text,
    b: text,
  });
  fc.assert(
    fc.property(fc.array(verdict, { maxLength: 4 }), fc.boolean(), (verdicts, brief) => {
      const value = formatAuthResults("mx.example.org", verdicts as Verdict[], { brief });
      // deno-lint-ignore no-control-regex
      assert.match(value, /^[\x00-\x7f]*$/, "8-bit characters are escaped");
      const lines = value.split("\r\n");
      // "Authentication-Results: " comes before the first line.
      assert.ok(24 + lines[0].length <= MAX_FIELD_LINE);
      for (const line of lines) {
        assert.ok(line.length <= MAX_FIELD_LINE, `a line of ${line.length} characters`);
        assert.doesNotMatch(line, /[\r\n]/, "no bare CR or LF");
      }
      for (const line of lines.slice(1)) assert.match(line, /^\t/);
    }),
    { numRuns: 300 },
  );
});

Deno.test("formatAuthResults(): lines of at most 78 characters but where one property is longer, 998 always, and unfolding gives back the same tokens (property)", () => {
  // Values of every length around the fold points: short and long words, quoted reasons with
  // spaces, 8-bit and control characters, and ids longer than a line.
  const word = fc.oneof(
    fc.stringMatching(/^[a-z0-9.-]{1,12}$/),
    fc.stringMatching(/^[a-z0-9.-]{20,90}$/),
  );
  const phrase = fc.array(word, { minLength: 1, maxLength: 12 }).map((w) => w.join(" "));
  const text = fc.oneof(word, phrase, fc.string({ unit: "binary", maxLength: 300 }));
  const verdict = fc.record({
    result: fc.constantFrom("pass", "fail", "neutral", "policy", "permerror", "temperror"),
    reason: fc.option(text, { nil: undefined }),
    domain: fc.option(text, { nil: undefined }),
    identity: fc.option(text, { nil: undefined }),
    selector: fc.option(text, { nil: undefined }),
    algorithm: fc.option(text, { nil: undefined }),
    b: fc.option(text, { nil: undefined }),
    key: fc.option(
      fc.record({
        type: fc.constantFrom("rsa", "ed25519"),
        bits: fc.integer({ min: 0, max: 1 << 20 }),
        testing: fc.boolean(),
      }),
      { nil: undefined },
    ),
    unsignedBodyBytes: fc.option(fc.nat(), { nil: undefined }),
    signature: fc.option(fc.record({ length: fc.nat() }), { nil: undefined }),
  });
  const options = fc.record({ noHeaderB: fc.boolean(), brief: fc.boolean() });
  fc.assert(
    fc.property(word, fc.array(verdict, { maxLength: 4 }), options, (id, list, opts) => {
      const verdicts = list as unknown as Verdict[];
      const value = formatAuthResults(id, verdicts, opts);
      assertFoldedField(`Authentication-Results: ${value}`);
      assert.doesNotMatch(value, /\r(?!\n\t)|(?<!\r)\n|\n(?!\t)/, "folds are CRLF and a tab");
      // Unfolded, the field holds what it held on one line: the id, then each result.
      const oneLine = verdicts.length === 0
        ? `${quoteValue(id, true)}; dkim=none`
        : [quoteValue(id, true), ...verdicts.map((v) => formatDkimResult(v, opts))].join("; ");
      assert.deepEqual(lineItems(unfold(value)), lineItems(oneLine));
      assert.equal(value.replaceAll("\r\n\t", " "), oneLine, "each fold stands for one space");
      assert.equal(parseAuthservId(value), id);
    }),
    fuzzParams(500),
  );
});
