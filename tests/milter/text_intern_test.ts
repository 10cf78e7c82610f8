import fc from "fast-check";
import assert from "node:assert/strict";
import { latin1 } from "../../lib/bytes.ts";
import { INTERN_MAX_BYTES, TextIntern } from "../../lib/milter/text_intern.ts";
import { fuzzParams } from "../helpers/fuzz.ts";

Deno.test("TextIntern.latin1() gives the text of the bytes, whatever the table held", () => {
  // One table for the whole run: slots collide and are taken over many times.
  const intern = new TextIntern();
  const bytes = fc.uint8Array({ maxLength: INTERN_MAX_BYTES + 8 });
  fc.assert(
    fc.property(bytes, fc.nat(8), fc.nat(8), (data, a, b) => {
      const start = Math.min(a, data.length);
      const end = Math.max(start, Math.min(data.length - b, start + INTERN_MAX_BYTES));
      assert.equal(intern.latin1(data, start, end), latin1(data.subarray(start, end)));
    }),
    fuzzParams(5000),
  );
});

Deno.test("TextIntern.latin1() gives names seen before from other bytes and offsets", () => {
  const intern = new TextIntern();
  const names = ["From", "To", "Subject", "DKIM-Signature", "Received", "i", "{auth_type}"];
  const encode = (text: string) => new TextEncoder().encode(text);
  assert.deepEqual(names.map((n) => intern.latin1(encode(n), 0, n.length)), names);
  assert.deepEqual(names.map((n) => intern.latin1(encode(`.${n}.`), 1, n.length + 1)), names);
  // A name one byte off is not taken for the one in the table.
  assert.deepEqual(
    names.map((n) => intern.latin1(encode(`${n}x`), 0, n.length + 1)),
    names.map((n) => `${n}x`),
  );
});
