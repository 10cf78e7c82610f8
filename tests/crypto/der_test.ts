import assert from "node:assert/strict";
import fc from "fast-check";
import { concat } from "../../lib/bytes.ts";
import {
  bitLength,
  derBitString,
  DerError,
  derInteger,
  derNull,
  derOctetString,
  derOid,
  DerReader,
  derSequence,
  DerTag,
  encodeDer,
  MAX_DER_LENGTH_OCTETS,
  readDer,
  wrapRsaPrivateKey,
} from "../../lib/crypto/der.ts";
import { fuzzParams } from "../helpers/fuzz.ts";

const KEYS = new URL("../testdata/keys/", import.meta.url);
const rsaPkcs8 = Deno.readFileSync(new URL("rsa2048_pkcs8.der", KEYS));
const rsaPkcs1 = Deno.readFileSync(new URL("rsa2048_pkcs1.der", KEYS));

/** Reads every element of a DER tree, descending into SEQUENCEs. */
function walk(bytes: Uint8Array): number {
  const r = new DerReader(bytes);
  let count = 0;
  while (!r.done) {
    const el = r.read();
    count++;
    if (el.tag === DerTag.SEQUENCE) count += walk(el.value);
  }
  return count;
}

Deno.test("DerReader reads a PKCS#8 RSA key written by OpenSSL", () => {
  const outer = new DerReader(rsaPkcs8);
  const info = outer.readSequence();
  outer.end();
  assert.equal(info.readSmallInteger(), 0);
  const alg = info.readSequence();
  assert.equal(alg.readOid(), "1.2.840.113549.1.1.1");
  alg.readNull();
  alg.end();
  assert.deepEqual(info.readOctetString(), rsaPkcs1);
  info.end();
  const key = new DerReader(rsaPkcs1).readSequence();
  assert.equal(key.readSmallInteger(), 0);
  assert.equal(bitLength(key.readUnsignedInteger()), 2048);
  assert.deepEqual(key.readUnsignedInteger(), Uint8Array.of(1, 0, 1));
});

Deno.test("readDer() rejects every truncation of a valid key", () => {
  for (const der of [rsaPkcs8, rsaPkcs1]) {
    for (let n = 0; n < der.length; n++) {
      assert.throws(() => readDer(der.subarray(0, n)), DerError, `prefix of ${n} bytes`);
    }
    assert.equal(readDer(der).encoded.length, der.length);
  }
});

Deno.test("readDer() rejects trailing data after the element", () => {
  for (const extra of [Uint8Array.of(0), Uint8Array.of(0x05, 0x00), new Uint8Array(100)]) {
    assert.throws(() => readDer(concat([rsaPkcs8, extra])), /trailing/);
  }
});

Deno.test("DerReader rejects lengths that are not minimal definite DER", () => {
  const cases: { name: string; bytes: number[]; want: RegExp }[] = [
    { name: "indefinite", bytes: [0x30, 0x80, 0x00, 0x00], want: /indefinite/ },
    {
      name: "more length octets than allowed",
      bytes: [0x04, 0x80 | (MAX_DER_LENGTH_OCTETS + 1), 0, 0, 0, 0, 1, 0],
      want: /too long/,
    },
    { name: "huge length", bytes: [0x04, 0x84, 0xff, 0xff, 0xff, 0xff, 0], want: /past the end/ },
    { name: "leading zero length octet", bytes: [0x04, 0x82, 0x00, 0x80], want: /leading zero/ },
    { name: "short length in long form", bytes: [0x04, 0x81, 0x01, 0xaa], want: /short length/ },
    { name: "missing length", bytes: [0x04], want: /truncated length/ },
    { name: "missing length octets", bytes: [0x04, 0x82, 0x01], want: /truncated length/ },
    { name: "contents past the end", bytes: [0x04, 0x05, 1, 2], want: /past the end/ },
    { name: "high tag number", bytes: [0x1f, 0x81, 0x00, 0x00], want: /high tag/ },
    { name: "empty input", bytes: [], want: /found the end/ },
  ];
  for (const { name, bytes, want } of cases) {
    assert.throws(() => readDer(Uint8Array.from(bytes)), (e: unknown) => {
      assert.ok(e instanceof DerError, name);
      assert.ok(e instanceof SyntaxError, name);
      assert.match(e.message, want, name);
      return true;
    });
  }
});

Deno.test("DerReader.readInteger() rejects empty and non-minimal INTEGERs", () => {
  const bad = [[0x02, 0x00], [0x02, 0x02, 0x00, 0x01], [0x02, 0x02, 0xff, 0x80]];
  for (const bytes of bad) {
    assert.throws(() => new DerReader(Uint8Array.from(bytes)).readInteger(), DerError);
  }
  assert.deepEqual(
    new DerReader(Uint8Array.of(0x02, 0x02, 0x00, 0x80)).readInteger(),
    Uint8Array.of(0, 0x80),
  );
  assert.deepEqual(
    new DerReader(Uint8Array.of(0x02, 0x02, 0x00, 0x80)).readUnsignedInteger(),
    Uint8Array.of(0x80),
  );
  assert.throws(
    () => new DerReader(Uint8Array.of(0x02, 0x01, 0x80)).readUnsignedInteger(),
    /negative/,
  );
  assert.throws(
    () => new DerReader(derInteger(new Uint8Array(5).fill(1))).readSmallInteger(),
    /too large/,
  );
});

Deno.test("DerReader checks tags, NULL, BIT STRING and OID contents", () => {
  assert.throws(() => new DerReader(derNull()).readInteger(), /expected INTEGER, found NULL/);
  assert.throws(() => new DerReader(new Uint8Array(0)).readSequence(), /found the end/);
  assert.throws(() => new DerReader(Uint8Array.of(0x05, 0x01, 0x00)).readNull(), /NULL with/);
  assert.throws(() => new DerReader(Uint8Array.of(0x03, 0x00)).readBitString(), /unused-bits/);
  assert.throws(
    () => new DerReader(Uint8Array.of(0x03, 0x02, 0x01, 0xfe)).readBitString(),
    /whole number/,
  );
  assert.throws(() => new DerReader(Uint8Array.of(0x06, 0x00)).readOid(), /empty/);
  assert.throws(
    () => new DerReader(Uint8Array.of(0x06, 0x02, 0x2a, 0x81)).readOid(),
    /truncated OBJECT/,
  );
  assert.throws(
    () => new DerReader(Uint8Array.of(0x06, 0x02, 0x80, 0x01)).readOid(),
    /leading zero/,
  );
  assert.throws(
    () => new DerReader(Uint8Array.of(0x06, 0x06, 0x2a, 0x81, 0x81, 0x81, 0x81, 0x01)).readOid(),
    /too large/,
  );
});

Deno.test("DerError offsets point into the outermost input", () => {
  // SEQUENCE { NULL, INTEGER (empty) }: the empty INTEGER is at offset 4.
  const bytes = Uint8Array.of(0x30, 0x04, 0x05, 0x00, 0x02, 0x00);
  const seq = new DerReader(bytes).readSequence();
  seq.readNull();
  assert.throws(() => seq.readInteger(), (e: unknown) => e instanceof DerError && e.offset === 4);
});

Deno.test("writers and DerReader round-trip every supported type", () => {
  const modulus = new Uint8Array(300).fill(0xab);
  const encoded = derSequence(
    derInteger(0),
    derInteger(65537),
    derInteger(modulus),
    derNull(),
    derOid("1.3.101.112"),
    derOid("2.999.3"),
    derBitString(Uint8Array.of(1, 2, 3)),
    derOctetString(new Uint8Array(200)),
  );
  const outer = new DerReader(encoded);
  const r = outer.readSequence();
  outer.end();
  assert.equal(r.readSmallInteger(), 0);
  assert.equal(r.readSmallInteger(), 65537);
  assert.deepEqual(r.readUnsignedInteger(), modulus);
  r.readNull();
  assert.equal(r.readOid(), "1.3.101.112");
  assert.equal(r.readOid(), "2.999.3");
  assert.deepEqual(r.readBitString(), Uint8Array.of(1, 2, 3));
  assert.deepEqual(r.readOctetString(), new Uint8Array(200));
  r.end();
  assert.equal(r.peekTag(), -1);
});

Deno.test("encodeDer() uses the shortest length form", () => {
  const cases: [number, number[]][] = [
    [0, [0x04, 0x00]],
    [127, [0x04, 0x7f]],
    [128, [0x04, 0x81, 0x80]],
    [255, [0x04, 0x81, 0xff]],
    [256, [0x04, 0x82, 0x01, 0x00]],
    [65536, [0x04, 0x83, 0x01, 0x00, 0x00]],
  ];
  for (const [length, header] of cases) {
    const el = encodeDer(DerTag.OCTET_STRING, new Uint8Array(length));
    assert.deepEqual(Array.from(el.subarray(0, header.length)), header, `length ${length}`);
    assert.equal(el.length, header.length + length);
    assert.equal(readDer(el).value.length, length);
  }
});

Deno.test("derInteger() and derOid() refuse values they cannot encode", () => {
  assert.throws(() => derInteger(-1), RangeError);
  assert.throws(() => derInteger(1.5), RangeError);
  for (const oid of ["1", "3.1", "1.40", "1.2.x", "", "1..2"]) {
    assert.throws(() => derOid(oid), SyntaxError, oid);
  }
  assert.deepEqual(derInteger(new Uint8Array(3)), Uint8Array.of(0x02, 0x01, 0x00));
  assert.deepEqual(derInteger(256), Uint8Array.of(0x02, 0x02, 0x01, 0x00));
});

Deno.test("bitLength() counts significant bits of a magnitude", () => {
  const cases: [number[], number][] = [
    [[], 0],
    [[0, 0], 0],
    [[1], 1],
    [[0x80], 8],
    [[0x00, 0x7f, 0xff], 15],
    [[0x01, 0x00, 0x00], 17],
  ];
  for (const [bytes, want] of cases) assert.equal(bitLength(Uint8Array.from(bytes)), want);
});

Deno.test("DerReader throws only DerError on arbitrary bytes", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      try {
        walk(bytes);
      } catch (e) {
        assert.ok(e instanceof DerError, String(e));
      }
    }),
    fuzzParams(2000),
  );
});

Deno.test("DerReader throws only DerError on mutated keys", () => {
  fc.assert(
    fc.property(
      fc.nat({ max: rsaPkcs8.length - 1 }),
      fc.integer({ min: 0, max: 255 }),
      (at, value) => {
        const bytes = rsaPkcs8.slice();
        bytes[at] = value;
        try {
          walk(bytes);
        } catch (e) {
          assert.ok(e instanceof DerError, String(e));
        }
      },
    ),
    fuzzParams(2000),
  );
});

Deno.test("wrapRsaPrivateKey() turns PKCS#1 into OpenSSL's PKCS#8 byte for byte", () => {
  assert.deepEqual(
    wrapRsaPrivateKey(rsaPkcs1),
    rsaPkcs8,
  );
});
