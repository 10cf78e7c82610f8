import fc from "fast-check";
import assert from "node:assert/strict";
import { fuzzParams } from "../helpers/fuzz.ts";
import { concat, fromLatin1, latin1, utf8 } from "../../lib/bytes.ts";
import { decodeCommand, decodeCommandAt, encodeCommand } from "../../lib/milter/command.ts";
import {
  SMFIC_CONNECT,
  SMFIC_HEADER,
  SMFIC_HELO,
  SMFIC_MACRO,
  SMFIC_MAIL,
  SMFIC_OPTNEG,
  SMFIC_RCPT,
  SMFIC_UNKNOWN,
} from "../../lib/milter/constants.ts";
import { MilterProtocolError } from "../../lib/milter/protocol_error.ts";
import { assertOnlyProtocolErrors, COMMANDS, frameOf } from "./wire_samples.ts";

Deno.test("encodeCommand() and decodeCommand() round-trip every command", () => {
  for (const command of COMMANDS) {
    assert.deepEqual(decodeCommand(frameOf(encodeCommand(command))), command, command.type);
  }
});

Deno.test("encodeCommand() lays out CONNECT as libmilter and Postfix do", () => {
  const bytes = encodeCommand({
    type: "connect",
    hostname: "mx",
    family: "inet",
    port: 0x1234,
    address: "10.0.0.1",
  });
  const data = concat([utf8("mx\0"), utf8("4"), Uint8Array.of(0x12, 0x34), utf8("10.0.0.1\0")]);
  assert.deepEqual(bytes, concat([Uint8Array.of(0, 0, 0, data.length + 1, SMFIC_CONNECT), data]));
  const unknown = encodeCommand({
    type: "connect",
    hostname: "h",
    family: "unknown",
    port: 0,
    address: "",
  });
  assert.deepEqual(unknown, Uint8Array.of(0, 0, 0, 4, SMFIC_CONNECT, 0x68, 0, 0x55));
});

Deno.test("decodeCommand() throws MilterProtocolError for malformed payloads", () => {
  const cases: Array<{ name: string; code: number; data: Uint8Array; message: RegExp }> = [
    { name: "short OPTNEG", code: SMFIC_OPTNEG, data: new Uint8Array(11), message: /11 bytes/ },
    { name: "CONNECT without NUL", code: SMFIC_CONNECT, data: utf8("host"), message: /host name/ },
    { name: "CONNECT without family", code: SMFIC_CONNECT, data: utf8("h\0"), message: /family/ },
    { name: "CONNECT bad family", code: SMFIC_CONNECT, data: utf8("h\0X"), message: /"X"/ },
    { name: "CONNECT short port", code: SMFIC_CONNECT, data: utf8("h\x004\x00"), message: /port/ },
    {
      name: "CONNECT address without NUL",
      code: SMFIC_CONNECT,
      data: concat([utf8("h\x004"), Uint8Array.of(0, 25), utf8("1.2.3.4")]),
      message: /address/,
    },
    {
      name: "CONNECT trailing bytes",
      code: SMFIC_CONNECT,
      data: concat([utf8("h\x004"), Uint8Array.of(0, 25), utf8("1.2.3.4\0x")]),
      message: /trailing/,
    },
    { name: "HELO without NUL", code: SMFIC_HELO, data: utf8("mx"), message: /HELO/ },
    { name: "HELO with two strings", code: SMFIC_HELO, data: utf8("a\0b\0"), message: /trailing/ },
    { name: "empty MACRO", code: SMFIC_MACRO, data: new Uint8Array(0), message: /command byte/ },
    { name: "MACRO odd", code: SMFIC_MACRO, data: utf8("Mi\0x\0j\0"), message: /"j"/ },
    { name: "MACRO no NUL", code: SMFIC_MACRO, data: utf8("Mi"), message: /NUL/ },
    { name: "MAIL empty", code: SMFIC_MAIL, data: new Uint8Array(0), message: /no address/ },
    { name: "RCPT no NUL", code: SMFIC_RCPT, data: utf8("<a@b>"), message: /NUL/ },
    { name: "HEADER no value", code: SMFIC_HEADER, data: utf8("Subject\0"), message: /value/ },
    { name: "HEADER empty name", code: SMFIC_HEADER, data: utf8("\0v\0"), message: /empty/ },
    { name: "HEADER trailing", code: SMFIC_HEADER, data: utf8("A\0b\0c"), message: /trailing/ },
    { name: "UNKNOWN no NUL", code: SMFIC_UNKNOWN, data: utf8("XYZ"), message: /NUL/ },
  ];
  for (const { name, code, data, message } of cases) {
    assert.throws(() => decodeCommand({ code, data }), (error: unknown) => {
      assert.ok(error instanceof MilterProtocolError, name);
      assert.equal(error.name, "MilterProtocolError");
      assert.equal(error.code, code);
      assert.match(error.message, message, name);
      return true;
    });
  }
});

Deno.test("decodeCommand() only ever throws MilterProtocolError", () => {
  assertOnlyProtocolErrors(decodeCommand);
});

Deno.test("decodeCommand() keeps every byte of a header value and name", () => {
  const name = fromLatin1("X-\xe9t\xe9");
  const value = new Uint8Array(255).map((_, i) => i + 1);
  const data = concat([name, Uint8Array.of(0), value, Uint8Array.of(0)]);
  const command = decodeCommand({ code: SMFIC_HEADER, data });
  assert.equal(command.type, "header");
  if (command.type !== "header") return;
  assert.equal(command.name, "X-\xe9t\xe9");
  assert.deepEqual(command.value, value);
  assert.deepEqual(
    encodeCommand(command).subarray(5),
    data,
    "re-encoding gives the same bytes",
  );
});

Deno.test("decodeCommand() ignores data after an unknown family's family byte", () => {
  const command = decodeCommand({ code: SMFIC_CONNECT, data: utf8("h\0U\0\0junk\0") });
  assert.deepEqual(command, {
    type: "connect",
    hostname: "h",
    family: "unknown",
    port: 0,
    address: "",
  });
});

Deno.test("encodeCommand() refuses values the wire cannot carry", () => {
  assert.throws(() => encodeCommand({ type: "helo", name: "a\0b" }), MilterProtocolError);
  assert.throws(
    () => encodeCommand({ type: "optneg", version: -1, actions: 0, protocol: 0 }),
    MilterProtocolError,
  );
  assert.throws(
    () =>
      encodeCommand({
        type: "connect",
        hostname: "h",
        family: "inet",
        port: 70000,
        address: "1.2.3.4",
      }),
    MilterProtocolError,
  );
  assert.throws(
    () => encodeCommand({ type: "header", name: "X-\u0100", value: new Uint8Array(0) }),
    /8-bit/,
  );
});

Deno.test("decodeCommand() reads any HEADER data as the field-by-field reading does", () => {
  // The field-by-field reading: name NUL value NUL, nothing after, a name of at least one byte.
  const reference = (data: Uint8Array): { name: string; value: Uint8Array } | "error" => {
    const nul = data.indexOf(0);
    if (nul <= 0) return "error";
    const end = data.indexOf(0, nul + 1);
    if (end !== data.length - 1) return "error";
    return { name: latin1(data.subarray(0, nul)), value: data.slice(nul + 1, end) };
  };
  const bytes = fc.array(fc.constantFrom(0, 0x41, 0x3a, 0x20, 0xe9, 0x0a), { maxLength: 80 });
  fc.assert(
    fc.property(bytes, fc.nat(90), (list, longName) => {
      // Names around the interned length (64) too.
      const data = Uint8Array.from([...new Array(longName % 3 ? 0 : longName).fill(0x58), ...list]);
      const want = reference(data);
      let got: ReturnType<typeof reference>;
      try {
        const command = decodeCommand({ code: SMFIC_HEADER, data });
        assert.equal(command.type, "header");
        got = command.type === "header"
          ? { name: command.name, value: command.value.slice() }
          : "error";
      } catch (e) {
        assert.ok(e instanceof MilterProtocolError);
        got = "error";
      }
      assert.deepEqual(got, want);
    }),
    fuzzParams(2000),
  );
});

Deno.test("decodeCommandAt() reads MACRO, MAIL and RCPT data anywhere in a buffer as fields", () => {
  // The field-by-field reading: NUL-terminated strings to the end; MACRO has its command byte
  // first and an even number of strings, MAIL and RCPT at least one.
  const strings = (data: Uint8Array): string[] | "error" => {
    const out: string[] = [];
    for (let pos = 0; pos < data.length;) {
      const nul = data.indexOf(0, pos);
      if (nul === -1) return "error";
      out.push(new TextDecoder().decode(data.subarray(pos, nul)));
      pos = nul + 1;
    }
    return out;
  };
  const reference = (code: number, data: Uint8Array): unknown => {
    if (code === SMFIC_MACRO) {
      if (data.length === 0) return "error";
      const list = strings(data.subarray(1));
      if (list === "error" || list.length % 2 !== 0) return "error";
      const macros = [];
      for (let i = 0; i < list.length; i += 2) macros.push([list[i], list[i + 1]]);
      return { type: "macro", forCommand: data[0], macros };
    }
    const args = strings(data);
    if (args === "error" || args.length === 0) return "error";
    return { type: code === SMFIC_MAIL ? "mail" : "rcpt", args };
  };
  const bytes = fc.array(fc.constantFrom(0, 0x41, 0x7b, 0x20, 0xc3, 0xa9, 0xff), { maxLength: 40 });
  fc.assert(
    fc.property(
      fc.constantFrom(SMFIC_MACRO, SMFIC_MAIL, SMFIC_RCPT),
      bytes,
      fc.nat(4),
      (code, list, offset) => {
        const data = Uint8Array.from(list);
        const buffer = new Uint8Array(offset + data.length + 3).fill(0x5a);
        buffer.set(data, offset);
        let got: unknown;
        try {
          got = decodeCommandAt(code, buffer, offset, offset + data.length);
        } catch (e) {
          assert.ok(e instanceof MilterProtocolError);
          got = "error";
        }
        assert.deepEqual(got, reference(code, data));
      },
    ),
    fuzzParams(3000),
  );
});
