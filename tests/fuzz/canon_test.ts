// Canonicalization against the RFC 6376 §3.4 reference (tests/helpers/fuzz.ts) on the full byte
// range, on long inputs and at arbitrary chunk splits (empty chunks included). Complements the
// small-alphabet seeded test in tests/dkim/canon_body_test.ts.
import assert from "node:assert/strict";
import fc from "fast-check";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import { BodyHashes } from "../../lib/dkim/body_hasher.ts";
import { BodyCanonicalizer } from "../../lib/dkim/canon_body.ts";
import { type Canonicalization, canonicalizeHeader } from "../../lib/dkim/canon_header.ts";
import { createHash } from "node:crypto";
import {
  cuts,
  fuzzParams,
  latin1Text,
  referenceHeader,
  referenceRelaxedBody,
  referenceSimpleBody,
  splitAt,
} from "../helpers/fuzz.ts";

const CANONS: readonly Canonicalization[] = ["simple", "relaxed"];

function canonicalize(canon: Canonicalization, pieces: readonly Uint8Array[]): string {
  const out: string[] = [];
  const c = new BodyCanonicalizer(canon);
  for (const p of pieces) c.push(p, (b) => out.push(latin1(b)));
  c.finish((b) => out.push(latin1(b)));
  return out.join("");
}

function reference(canon: Canonicalization, body: string): string {
  return canon === "simple" ? referenceSimpleBody(body) : referenceRelaxedBody(body);
}

// Bodies where whitespace and line ends cluster, runs of one byte, and uniform random bytes.
const whitespaceHeavy = latin1Text(200, [" \r\n", "\t\t", "\r\r\n", " \t \r\n\r\n", "\r\n \r\n"]);
const runs = fc.array(
  fc.tuple(fc.constantFrom(" ", "\t", "\r", "\n", "\r\n", "x", "\xa0", "\0"), fc.nat(300)),
  { maxLength: 8, size: "max" },
).map((parts) => parts.map(([s, n]) => s.repeat(n)).join(""));
const anyBytes = fc.uint8Array({ maxLength: 3000, size: "max" }).map(latin1);
const body = fc.oneof(whitespaceHeavy, runs, anyBytes);

Deno.test("BodyCanonicalizer equals the reference on any bytes at any splits", () => {
  fc.assert(
    fc.property(body, cuts(20), (text, points) => {
      const pieces = splitAt(fromLatin1(text), points);
      for (const canon of CANONS) {
        assert.equal(canonicalize(canon, pieces), reference(canon, text), canon);
      }
    }),
    fuzzParams(3000),
  );
});

// Long bodies: repeated blocks (a base64 part, a text part, whitespace) past the 64 KiB milter
// chunk, cut into a few large pieces as a socket delivers them.
const longBody = fc.tuple(
  fc.array(fc.oneof(latin1Text(30), fc.uint8Array({ maxLength: 200, size: "max" }).map(latin1)), {
    minLength: 1,
    maxLength: 6,
    size: "max",
  }),
  fc.integer({ min: 50, max: 2000 }),
).map(([blocks, times]) => blocks.join("").repeat(times).slice(0, 400_000));

Deno.test("BodyCanonicalizer equals the reference on long bodies", () => {
  fc.assert(
    fc.property(longBody, cuts(6), (text, points) => {
      const pieces = splitAt(fromLatin1(text), points);
      for (const canon of CANONS) {
        assert.equal(canonicalize(canon, pieces), reference(canon, text), canon);
      }
    }),
    fuzzParams(100),
  );
});

Deno.test("BodyHashes hashes the reference canonical body cut to l=", () => {
  fc.assert(
    fc.property(
      body,
      cuts(8),
      fc.constantFrom(...CANONS),
      fc.option(fc.nat(4000), { nil: undefined }),
      (text, points, canon, length) => {
        const hashes = new BodyHashes();
        const spec = { canonicalization: canon, algorithm: "sha256" as const, length };
        hashes.add(spec);
        for (const piece of splitAt(fromLatin1(text), points)) hashes.push(piece);
        hashes.finish();
        const full = reference(canon, text);
        const signed = length === undefined ? full : full.slice(0, length);
        const result = hashes.result(spec);
        assert.equal(result.canonicalLength, full.length);
        assert.deepEqual(
          result.hash,
          new Uint8Array(createHash("sha256").update(fromLatin1(signed)).digest()),
        );
      },
    ),
    fuzzParams(500),
  );
});

const fieldName = fc.oneof(
  fc.constantFrom("Subject", "FROM", "x-Mixed-CASE", "DKIM-Signature", "A", "\xc9t\xe9"),
  fc.string({ unit: "binary-ascii", minLength: 1, maxLength: 10 }).map((s) =>
    s.replaceAll(":", "-").replace(/^[ \t\r\n]/, "X")
  ),
);
const fieldValue = fc.oneof(
  latin1Text(30, ["\r\n ", "\r\n\t", " \r\n \r\n\t"]),
  fc.uint8Array({ maxLength: 100, size: "max" }).map(latin1),
);

Deno.test("canonicalizeHeader() equals the reference on any field bytes", () => {
  fc.assert(
    fc.property(
      fieldName,
      fc.constantFrom("", " ", "\t", "  \t"),
      fieldValue,
      (name, beforeColon, value) => {
        const raw = `${name}${beforeColon}:${value}`;
        const field = { name, raw: fromLatin1(raw) };
        for (const canon of CANONS) {
          assert.equal(latin1(canonicalizeHeader(field, canon)), referenceHeader(raw, canon));
        }
      },
    ),
    fuzzParams(3000),
  );
});
