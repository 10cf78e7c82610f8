import assert from "node:assert/strict";
import { fromLatin1, latin1, utf8 } from "../../lib/bytes.ts";
import {
  cstringField,
  decodeText,
  FieldReader,
  headerNameField,
  uint32Field,
} from "../../lib/milter/frame_fields.ts";
import { MilterProtocolError } from "../../lib/milter/protocol_error.ts";

const CODE = 0x43; // SMFIC_CONNECT

const reader = (...bytes: number[]) =>
  new FieldReader({ code: CODE, data: Uint8Array.of(...bytes) }, "CONNECT command");

/** Asserts that `fn` throws the protocol error of the CONNECT frame, saying `detail`. */
function assertMalformed(fn: () => unknown, detail: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof MilterProtocolError);
    assert.equal(e.code, CODE);
    assert.equal(e.message, `Malformed milter CONNECT command: ${detail}`);
    return true;
  });
}

Deno.test("FieldReader reads big-endian integers, bytes and NUL-terminated strings in order", () => {
  const r = reader(0xff, 0xff, 0xff, 0xfe, 0x1f, 0x90, 0x34, 0x61, 0x62, 0, 0, 0x63, 0, 0x64, 0);
  assert.equal(r.remaining, 15);
  assert.equal(r.uint32("version"), 0xfffffffe);
  assert.equal(r.uint16("port"), 8080);
  assert.equal(r.byte("family"), 0x34);
  assert.equal(latin1(r.cstring("host")), "ab");
  assert.deepEqual(r.cstrings("macros").map(latin1), ["", "c", "d"]);
  assert.equal(r.remaining, 0);
  r.end();
});

Deno.test("FieldReader names the frame and the field it runs short of", () => {
  assertMalformed(() => reader(0, 0, 1).uint32("version"), "truncated version");
  assertMalformed(() => reader(1).uint16("port"), "truncated port");
  assertMalformed(() => reader().byte("family"), "missing family");
  assertMalformed(() => reader(0x61, 0x62).cstring("host name"), "host name is not NUL-terminated");
  assertMalformed(() => reader(0x61, 0, 0x62).cstrings("macros"), "macros is not NUL-terminated");
  const r = reader(0x61, 0, 1, 2);
  r.cstring("host name");
  assertMalformed(() => r.end(), "2 unexpected trailing bytes");
  assertMalformed(() => r.fail("bad family"), "bad family");
});

Deno.test("uint32Field() writes four big-endian bytes and refuses what is not a uint32", () => {
  assert.deepEqual(uint32Field(0, "version", CODE), Uint8Array.of(0, 0, 0, 0));
  assert.deepEqual(uint32Field(0x01020304, "version", CODE), Uint8Array.of(1, 2, 3, 4));
  assert.deepEqual(uint32Field(0xffffffff, "version", CODE), Uint8Array.of(255, 255, 255, 255));
  for (const bad of [-1, 2 ** 32, 1.5, NaN]) {
    assert.throws(
      () => uint32Field(bad, "version", CODE),
      (e: unknown) =>
        e instanceof MilterProtocolError && e.code === CODE &&
        e.message === `Cannot encode version ${bad}: not a 32-bit unsigned integer`,
      String(bad),
    );
  }
});

Deno.test("cstringField() writes UTF-8 text or bytes with a NUL, refusing a NUL inside", () => {
  assert.deepEqual(cstringField("mx", "host name", CODE), Uint8Array.of(0x6d, 0x78, 0));
  assert.deepEqual(cstringField("é", "host name", CODE), Uint8Array.of(0xc3, 0xa9, 0));
  assert.deepEqual(cstringField(Uint8Array.of(0xe9), "value", CODE), Uint8Array.of(0xe9, 0));
  assert.deepEqual(cstringField("", "value", CODE), Uint8Array.of(0));
  assert.throws(
    () => cstringField("a\0b", "header value", CODE),
    (e: unknown) =>
      e instanceof MilterProtocolError &&
      e.message === "Cannot encode header value: it contains a NUL byte",
  );
});

Deno.test("headerNameField() writes a name one byte a character, refusing one above U+00FF", () => {
  assert.deepEqual(headerNameField("X-Caf\xe9", CODE), fromLatin1("X-Caf\xe9\0"));
  assert.throws(
    () => headerNameField("X-Ĉ", CODE),
    (e: unknown) =>
      e instanceof MilterProtocolError && e.code === CODE &&
      e.message === 'Cannot encode header name "X-Ĉ": not 8-bit text',
  );
  assert.throws(() => headerNameField("X\0Y", CODE), /it contains a NUL byte/);
});

Deno.test("decodeText() reads UTF-8, with U+FFFD for bytes that are not, short or long", () => {
  const cases: [Uint8Array, string][] = [
    [utf8("mx.example.com"), "mx.example.com"],
    [utf8("café"), "café"],
    [Uint8Array.of(0x61, 0xff, 0x62), "a\ufffdb"],
    [new Uint8Array(), ""],
    [utf8("a".repeat(300)), "a".repeat(300)],
    [utf8("é".repeat(200)), "é".repeat(200)],
    [Uint8Array.of(...utf8("a".repeat(300)), 0xc3), "a".repeat(300) + "\ufffd"],
  ];
  for (const [bytes, want] of cases) assert.equal(decodeText(bytes), want, want.slice(0, 20));
});
