import assert from "node:assert/strict";
import { concat, fromLatin1, latin1 } from "../../lib/bytes.ts";
import { BodyCanonicalizer } from "../../lib/dkim/canon_body.ts";
import type { Canonicalization } from "../../lib/dkim/canon_header.ts";
import { describeSplit, splits } from "../helpers/chunks.ts";

function canonicalize(canon: Canonicalization, pieces: readonly Uint8Array[]): string {
  const out: Uint8Array[] = [];
  const c = new BodyCanonicalizer(canon);
  for (const p of pieces) c.push(p, (b) => out.push(b.slice()));
  c.finish((b) => out.push(b.slice()));
  return latin1(concat(out));
}

// RFC 6376 §3.4.3 (simple) and §3.4.4 (relaxed), case by case.
const cases: { name: string; input: string; simple: string; relaxed: string }[] = [
  { name: "empty body", input: "", simple: "\r\n", relaxed: "" },
  { name: "one empty line", input: "\r\n", simple: "\r\n", relaxed: "" },
  { name: "only empty lines", input: "\r\n\r\n\r\n", simple: "\r\n", relaxed: "" },
  { name: "one line", input: "Hi\r\n", simple: "Hi\r\n", relaxed: "Hi\r\n" },
  { name: "no final CRLF", input: "Hi", simple: "Hi\r\n", relaxed: "Hi\r\n" },
  { name: "trailing empty lines", input: "Hi\r\n\r\n\r\n", simple: "Hi\r\n", relaxed: "Hi\r\n" },
  {
    name: "whitespace runs and trailing whitespace",
    input: "Hi  there \t\r\n",
    simple: "Hi  there \t\r\n",
    relaxed: "Hi there\r\n",
  },
  { name: "whitespace-only body", input: " \t \r\n", simple: " \t \r\n", relaxed: "" },
  {
    name: "whitespace-only line inside",
    input: "a\r\n \r\nb\r\n",
    simple: "a\r\n \r\nb\r\n",
    relaxed: "a\r\n\r\nb\r\n",
  },
  {
    name: "trailing whitespace-only lines",
    input: "a\r\n  \r\n\t\r\n",
    simple: "a\r\n  \r\n\t\r\n",
    relaxed: "a\r\n",
  },
  {
    name: "lone LF is not a line end",
    input: "a\nb\n",
    simple: "a\nb\n\r\n",
    relaxed: "a\nb\n\r\n",
  },
  {
    name: "lone CR is not a line end",
    input: "a\rb\r",
    simple: "a\rb\r\r\n",
    relaxed: "a\rb\r\r\n",
  },
  { name: "space before a lone CR", input: "a \rb", simple: "a \rb\r\n", relaxed: "a \rb\r\n" },
  { name: "CR CR LF", input: "a\r\r\n", simple: "a\r\r\n", relaxed: "a\r\r\n" },
  { name: "CR at the very end", input: "a\r\n\r", simple: "a\r\n\r\r\n", relaxed: "a\r\n\r\r\n" },
  {
    name: "leading whitespace",
    input: "  leading",
    simple: "  leading\r\n",
    relaxed: " leading\r\n",
  },
  {
    name: "tabs and trailing blank lines",
    input: "x\t\ty \r\n\r\n  \r\n",
    simple: "x\t\ty \r\n\r\n  \r\n",
    relaxed: "x y\r\n",
  },
  {
    name: "leading empty lines",
    input: "\r\n\r\nx",
    simple: "\r\n\r\nx\r\n",
    relaxed: "\r\n\r\nx\r\n",
  },
  {
    name: "8-bit bytes are not whitespace",
    input: "caf\xe9 \xa0\r\n",
    simple: "caf\xe9 \xa0\r\n",
    relaxed: "caf\xe9 \xa0\r\n",
  },
  {
    name: "CR then space then LF",
    input: "a \r \n",
    simple: "a \r \n\r\n",
    relaxed: "a \r \n\r\n",
  },
];

for (const c of cases) {
  Deno.test(`BodyCanonicalizer canonicalizes ${c.name} at every split`, () => {
    for (const pieces of splits(fromLatin1(c.input))) {
      assert.equal(canonicalize("simple", pieces), c.simple, `simple ${describeSplit(pieces)}`);
      assert.equal(canonicalize("relaxed", pieces), c.relaxed, `relaxed ${describeSplit(pieces)}`);
    }
  });
}

// Reference implementations written straight from the RFC text, on whole strings.
function simpleReference(body: string): string {
  const stripped = body.replace(/(\r\n)+$/, "");
  return stripped === "" ? "\r\n" : `${stripped}\r\n`;
}

function relaxedReference(body: string): string {
  const lines = body.split("\r\n").map((l) => l.replace(/[ \t]+/g, " ").replace(/ $/, ""));
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines.length === 0 ? "" : `${lines.join("\r\n")}\r\n`;
}

// A small seeded generator so failures are reproducible.
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 0x100000000;
  };
}

Deno.test("BodyCanonicalizer agrees with the RFC reference on 2000 random bodies at random splits", () => {
  const random = prng(6376);
  const alphabet = ["a", "b", " ", "\t", "\r", "\n", "\r\n", "\r\n\r\n", "\xe9"];
  for (let n = 0; n < 2000; n++) {
    let body = "";
    const len = Math.floor(random() * 24);
    for (let i = 0; i < len; i++) body += alphabet[Math.floor(random() * alphabet.length)];
    const bytes = fromLatin1(body);
    const pieces: Uint8Array[] = [];
    for (let i = 0; i < bytes.length;) {
      const size = 1 + Math.floor(random() * 4);
      pieces.push(bytes.subarray(i, i + size));
      i += size;
    }
    const label = JSON.stringify(body);
    assert.equal(canonicalize("simple", pieces), simpleReference(body), `simple ${label}`);
    assert.equal(canonicalize("relaxed", pieces), relaxedReference(body), `relaxed ${label}`);
  }
});

Deno.test("BodyCanonicalizer agrees with the RFC reference on long lines with rare whitespace", () => {
  // Long runs without spaces take the native-search path; whitespace and line ends are rare.
  const random = prng(8463);
  const rare = [" ", "  ", "\t", "\r", "\n", "\r\n", "\r\n\r\n", " \r\n"];
  for (let n = 0; n < 400; n++) {
    let body = "";
    const len = Math.floor(random() * 600);
    for (let i = 0; i < len; i++) {
      body += random() < 0.97 ? "x" : rare[Math.floor(random() * rare.length)];
    }
    const bytes = fromLatin1(body);
    const pieces: Uint8Array[] = [];
    for (let i = 0; i < bytes.length;) {
      const size = 1 + Math.floor(random() * 200);
      pieces.push(bytes.subarray(i, i + size));
      i += size;
    }
    const label = JSON.stringify(body);
    assert.equal(canonicalize("simple", pieces), simpleReference(body), `simple ${label}`);
    assert.equal(canonicalize("relaxed", pieces), relaxedReference(body), `relaxed ${label}`);
  }
});

Deno.test("BodyCanonicalizer keeps memory constant for a long run of empty lines", () => {
  // 10 MB of CRLFs then one byte: the run is emitted in fixed-size blocks, never as one array.
  const c = new BodyCanonicalizer("relaxed");
  const block = fromLatin1("\r\n".repeat(32768));
  let largest = 0;
  let total = 0;
  const sink = (b: Uint8Array) => {
    largest = Math.max(largest, b.length);
    total += b.length;
  };
  for (let i = 0; i < 160; i++) c.push(block, sink);
  assert.equal(total, 0);
  c.push(fromLatin1("x"), sink);
  c.finish(sink);
  assert.equal(total, 160 * 65536 + 1 + 2);
  assert.ok(largest <= 65536, `largest piece ${largest}`);
});

Deno.test("BodyCanonicalizer.push() after finish() throws", () => {
  const c = new BodyCanonicalizer("simple");
  c.finish(() => {});
  assert.throws(() => c.push(fromLatin1("x"), () => {}), /after finish/);
});

Deno.test("BodyCanonicalizer agrees with the RFC reference on every byte value, windows-1252's C1 range included", () => {
  // The relaxed scanner reads regions as windows-1252 text ("latin1" to TextDecoder), which maps
  // 0x80-0x9F to other code points: indices must still be byte indices.
  const random = prng(1252);
  const spacing = [" ", "  ", "\t", " \r\n", "\r\n", "\r\n\r\n", " \t "];
  for (let n = 0; n < 300; n++) {
    let body = "";
    const len = Math.floor(random() * 2000);
    for (let i = 0; i < len; i++) {
      body += random() < 0.9
        ? String.fromCharCode(Math.floor(random() * 256))
        : spacing[Math.floor(random() * spacing.length)];
    }
    const bytes = fromLatin1(body);
    const pieces: Uint8Array[] = [];
    for (let i = 0; i < bytes.length;) {
      const size = 1 + Math.floor(random() * 700);
      pieces.push(bytes.subarray(i, i + size));
      i += size;
    }
    const label = JSON.stringify(body.slice(0, 80));
    assert.equal(canonicalize("relaxed", pieces), relaxedReference(body), `relaxed ${label}`);
    assert.equal(canonicalize("simple", pieces), simpleReference(body), `simple ${label}`);
  }
});

Deno.test("BodyCanonicalizer agrees with the RFC reference on whole MIME bodies in milter-sized chunks", () => {
  // Large inputs: text with many changes (more output pieces than the gathering buffer holds),
  // long runs of empty lines, and base64 that passes through, at unaligned offsets.
  const random = prng(6376);
  const text = "Dear  Bob,\t\r\n  indented line \r\nword word\t\tword   \r\n\r\n".repeat(2000);
  const b64 = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n"
    .repeat(3000);
  const bodies = [
    text,
    `${text}${b64}`,
    `${b64}${"\r\n".repeat(40000)}${text}  \r\n\r\n`,
    `x${"\t".repeat(70000)}y\r\n`,
  ];
  for (const body of bodies) {
    const bytes = fromLatin1(body);
    for (const chunkSize of [65535, 65536, 4099, 1 + Math.floor(random() * 9000)]) {
      const offset = Math.floor(random() * 4);
      const padded = new Uint8Array(bytes.length + offset);
      padded.set(bytes, offset);
      const pieces: Uint8Array[] = [];
      for (let i = offset; i < padded.length; i += chunkSize) {
        pieces.push(padded.subarray(i, Math.min(i + chunkSize, padded.length)));
      }
      const label = `${body.length} bytes in ${chunkSize}-byte chunks at offset ${offset}`;
      assert.equal(canonicalize("relaxed", pieces), relaxedReference(body), label);
    }
  }
});
