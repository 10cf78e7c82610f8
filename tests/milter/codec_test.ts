import assert from "node:assert/strict";
import fc from "fast-check";
import { concat, fromLatin1, latin1, utf8 } from "../../lib/bytes.ts";
import {
  type Command,
  decodeCommand,
  decodeReply,
  encodeCommand,
  encodeReply,
  type Frame,
  FrameDecoder,
  MAX_FRAME_BYTES_DEFAULT,
  MilterProtocolError,
  type Reply,
  replyProblem,
} from "../../lib/milter/codec.ts";
import {
  SMFIC_CONNECT,
  SMFIC_HEADER,
  SMFIC_HELO,
  SMFIC_MACRO,
  SMFIC_MAIL,
  SMFIC_OPTNEG,
  SMFIC_RCPT,
  SMFIC_UNKNOWN,
  SMFIM_CONNECT,
  SMFIM_ENVFROM,
  SMFIR_ACCEPT,
  SMFIR_ADDHEADER,
  SMFIR_CHGHEADER,
  SMFIR_CONTINUE,
  SMFIR_INSHEADER,
  SMFIR_OPTNEG,
  SMFIR_QUARANTINE,
  SMFIR_REPLYCODE,
  SMFIR_SETSYMLIST,
} from "../../lib/milter/constants.ts";

const EIGHT_BIT = Uint8Array.of(0x20, 0xe9, 0x74, 0xe9, 0xff, 0x09, 0x80); // " été\xff\t\x80"

const COMMANDS: readonly Command[] = [
  { type: "optneg", version: 6, actions: 0x1ff, protocol: 0x1fffff },
  { type: "connect", hostname: "mx.example.org", family: "inet", port: 25, address: "192.0.2.1" },
  {
    type: "connect",
    hostname: "[2001:db8::1]",
    family: "inet6",
    port: 587,
    address: "2001:db8::1",
  },
  { type: "connect", hostname: "localhost", family: "unix", port: 0, address: "/run/smtp.sock" },
  { type: "connect", hostname: "unknown", family: "unknown", port: 0, address: "" },
  { type: "helo", name: "client.example.org" },
  {
    type: "macro",
    forCommand: SMFIC_MAIL,
    macros: [["i", "4ABC123"], ["{auth_type}", "PLAIN"], ["{empty}", ""]],
  },
  { type: "macro", forCommand: SMFIC_CONNECT, macros: [] },
  { type: "mail", args: ["<user@example.org>", "SIZE=1000", "BODY=8BITMIME"] },
  { type: "rcpt", args: ["<rcpt@example.net>"] },
  { type: "data" },
  { type: "header", name: "Subject", value: EIGHT_BIT },
  { type: "header", name: "X-Empty", value: new Uint8Array(0) },
  { type: "eoh" },
  { type: "body", chunk: utf8("Hello\r\nWorld\r\n") },
  { type: "body", chunk: new Uint8Array(65535).fill(0x61) },
  { type: "bodyeob" },
  { type: "bodyeob", chunk: utf8("last\r\n") },
  { type: "abort" },
  { type: "quit" },
  { type: "quit_nc" },
  { type: "unknown", command: "XCLIENT NAME=x" },
  { type: "unrecognized", code: 0x7a, data: Uint8Array.of(1, 2, 3) },
];

const REPLIES: readonly Reply[] = [
  { type: "accept" },
  { type: "continue" },
  { type: "tempfail" },
  { type: "reject" },
  { type: "discard" },
  { type: "skip" },
  { type: "progress" },
  { type: "replycode", code: 550, text: "5.7.1 Rejected by policy" },
  { type: "replycode", code: 451, text: "" },
  { type: "addheader", name: "X-Test", value: EIGHT_BIT },
  { type: "insheader", index: 0, name: "DKIM-Signature", value: utf8(" v=1; a=rsa-sha256") },
  { type: "chgheader", index: 2, name: "Authentication-Results", value: new Uint8Array(0) },
  { type: "quarantine", reason: "suspicious" },
  { type: "setsymlist", stage: SMFIM_ENVFROM, macros: ["i", "{auth_type}"] },
  { type: "optneg", version: 6, actions: 0x11, protocol: 0x1ff0ee },
  {
    type: "optneg",
    version: 6,
    actions: 0x111,
    protocol: 0x100000,
    symbols: [
      { stage: SMFIM_CONNECT, macros: ["j", "{daemon_name}"] },
      { stage: SMFIM_ENVFROM, macros: ["i", "{auth_type}"] },
    ],
  },
  { type: "unrecognized", code: 0x2b, data: utf8("<x@example.org>\0") },
];

function decodeAll(decoder: FrameDecoder): Frame[] {
  const frames: Frame[] = [];
  for (let f = decoder.next(); f; f = decoder.next()) frames.push(f);
  return frames;
}

function frameOf(bytes: Uint8Array): Frame {
  const decoder = new FrameDecoder();
  decoder.push(bytes);
  const frame = decoder.next();
  assert.ok(frame, "one whole frame");
  assert.equal(decoder.buffered, 0);
  return frame;
}

Deno.test("encodeCommand() and decodeCommand() round-trip every command", () => {
  for (const command of COMMANDS) {
    assert.deepEqual(decodeCommand(frameOf(encodeCommand(command))), command, command.type);
  }
});

Deno.test("encodeReply() and decodeReply() round-trip every reply", () => {
  for (const reply of REPLIES) {
    assert.deepEqual(decodeReply(frameOf(encodeReply(reply))), reply, reply.type);
  }
});

Deno.test("encodeReply() sends string header values as UTF-8 and bytes untouched", () => {
  const fromString = decodeReply(frameOf(encodeReply({
    type: "addheader",
    name: "X-Name",
    value: " Jürgen",
  })));
  assert.deepEqual(fromString, { type: "addheader", name: "X-Name", value: utf8(" Jürgen") });
  const bytes = encodeReply({ type: "addheader", name: "X-Raw", value: EIGHT_BIT });
  assert.deepEqual(bytes.subarray(5), concat([utf8("X-Raw\0"), EIGHT_BIT, Uint8Array.of(0)]));
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

Deno.test("encodeReply() lays out OPTNEG with symbol lists after the three integers", () => {
  const bytes = encodeReply({
    type: "optneg",
    version: 6,
    actions: 0x101,
    protocol: 0x80,
    symbols: [{ stage: SMFIM_ENVFROM, macros: ["i", "{auth_type}"] }],
  });
  const data = concat([
    Uint8Array.of(0, 0, 0, 6, 0, 0, 1, 1, 0, 0, 0, 0x80),
    Uint8Array.of(0, 0, 0, 2),
    utf8("i {auth_type}\0"),
  ]);
  assert.deepEqual(bytes, concat([Uint8Array.of(0, 0, 0, data.length + 1, SMFIR_OPTNEG), data]));
});

Deno.test("encodeReply() lays out every header and reply-code reply", () => {
  const cases: Array<{ reply: Reply; code: number; data: Uint8Array }> = [
    { reply: { type: "accept" }, code: SMFIR_ACCEPT, data: new Uint8Array(0) },
    { reply: { type: "continue" }, code: SMFIR_CONTINUE, data: new Uint8Array(0) },
    {
      reply: { type: "replycode", code: 550, text: "5.7.1 No" },
      code: SMFIR_REPLYCODE,
      data: utf8("550 5.7.1 No\0"),
    },
    {
      reply: { type: "addheader", name: "A", value: "b" },
      code: SMFIR_ADDHEADER,
      data: utf8("A\0b\0"),
    },
    {
      reply: { type: "insheader", index: 1, name: "A", value: "b" },
      code: SMFIR_INSHEADER,
      data: concat([Uint8Array.of(0, 0, 0, 1), utf8("A\0b\0")]),
    },
    {
      reply: { type: "chgheader", index: 3, name: "A", value: "" },
      code: SMFIR_CHGHEADER,
      data: concat([Uint8Array.of(0, 0, 0, 3), utf8("A\0\0")]),
    },
    {
      reply: { type: "quarantine", reason: "why" },
      code: SMFIR_QUARANTINE,
      data: utf8("why\0"),
    },
    {
      reply: { type: "setsymlist", stage: 2, macros: ["i", "j"] },
      code: SMFIR_SETSYMLIST,
      data: concat([Uint8Array.of(0, 0, 0, 2), utf8("i j\0")]),
    },
  ];
  for (const { reply, code, data } of cases) {
    const bytes = encodeReply(reply);
    assert.deepEqual(
      bytes,
      concat([Uint8Array.of(0, 0, 0, data.length + 1, code), data]),
      reply.type,
    );
  }
});

Deno.test("FrameDecoder splits a stream at every split point and byte by byte", () => {
  const frames = COMMANDS.filter((c) => c.type !== "body" || c.chunk.length < 1000).map(
    encodeCommand,
  );
  const stream = concat(frames);
  const want = COMMANDS.filter((c) => c.type !== "body" || c.chunk.length < 1000);
  for (let split = 0; split <= stream.length; split++) {
    const decoder = new FrameDecoder();
    decoder.push(stream.subarray(0, split));
    const got = decodeAll(decoder);
    decoder.push(stream.subarray(split));
    got.push(...decodeAll(decoder));
    assert.deepEqual(got.map(decodeCommand), want, `split at ${split}`);
    assert.equal(decoder.buffered, 0);
  }
  const decoder = new FrameDecoder();
  const got: Frame[] = [];
  for (let i = 0; i < stream.length; i++) {
    decoder.push(stream.subarray(i, i + 1));
    got.push(...decodeAll(decoder));
  }
  assert.deepEqual(got.map(decodeCommand), want);
});

Deno.test("FrameDecoder reassembles a 64 KiB body frame pushed in uneven pieces", () => {
  const chunk = new Uint8Array(65535).map((_, i) => i & 0xff);
  const stream = concat([encodeCommand({ type: "body", chunk }), encodeCommand({ type: "eoh" })]);
  const decoder = new FrameDecoder();
  const got: Frame[] = [];
  for (let i = 0, step = 1; i < stream.length; i += step, step = (step * 7) % 9001 + 1) {
    decoder.push(stream.subarray(i, i + step));
    got.push(...decodeAll(decoder));
  }
  assert.deepEqual(got.map(decodeCommand), [{ type: "body", chunk }, { type: "eoh" }]);
});

Deno.test("FrameDecoder.nextView() gives the frames next() gives, at every split point", () => {
  const stream = concat(COMMANDS.map(encodeCommand));
  for (const step of [1, 7, 4096, 65536, stream.length]) {
    const decoder = new FrameDecoder();
    const got: Command[] = [];
    for (let i = 0; i < stream.length; i += step) {
      decoder.push(stream.subarray(i, i + step));
      // Decoded before the next push, as the server does: the views are valid until then.
      for (let f = decoder.nextView(); f; f = decoder.nextView()) {
        got.push(structuredClone(decodeCommand(f)));
      }
    }
    assert.deepEqual(got, COMMANDS, `pieces of ${step}`);
    assert.equal(decoder.buffered, 0);
  }
});

Deno.test("FrameDecoder.nextView() lends its buffer until the next push; next() copies", () => {
  const first = encodeCommand({ type: "body", chunk: utf8("first chunk") });
  const second = encodeCommand({ type: "body", chunk: utf8("other bytes") });
  const decoder = new FrameDecoder();
  decoder.push(first);
  const view = decoder.nextView();
  assert.ok(view);
  assert.equal(latin1(view.data), "first chunk");
  decoder.push(second);
  assert.equal(latin1(view.data), "other bytes", "the next push reuses the buffer");
  const copy = decoder.next();
  assert.ok(copy);
  decoder.push(first);
  assert.equal(latin1(copy.data), "other bytes", "a copy stays as it was");
});

Deno.test("FrameDecoder refuses an oversized frame as soon as its length arrives", () => {
  const decoder = new FrameDecoder({ maxFrameBytes: 100 });
  decoder.push(Uint8Array.of(0, 0));
  assert.throws(() => decoder.push(Uint8Array.of(0, 101)), MilterProtocolError);
  // The decoder stays failed.
  assert.throws(() => decoder.push(Uint8Array.of(0x42)), /too large/);
  assert.throws(() => decoder.next(), MilterProtocolError);

  const exact = new FrameDecoder({ maxFrameBytes: 100 });
  exact.push(Uint8Array.of(0, 0, 0, 100, 0x42));
  exact.push(new Uint8Array(99));
  assert.equal(exact.next()?.data.length, 99);

  const big = new FrameDecoder();
  const header = new Uint8Array(4);
  new DataView(header.buffer).setUint32(0, MAX_FRAME_BYTES_DEFAULT + 1);
  assert.throws(() => big.push(header), /limit 1048576/);
});

Deno.test("FrameDecoder refuses an oversized frame queued behind a whole one", () => {
  const decoder = new FrameDecoder({ maxFrameBytes: 10 });
  assert.throws(
    () => decoder.push(concat([encodeCommand({ type: "eoh" }), Uint8Array.of(0, 0, 1, 0)])),
    MilterProtocolError,
  );
});

Deno.test("FrameDecoder refuses a zero-length frame", () => {
  const decoder = new FrameDecoder();
  assert.throws(() => decoder.push(Uint8Array.of(0, 0, 0, 0)), /length 0/);
});

Deno.test("FrameDecoder rejects an invalid limit", () => {
  assert.throws(() => new FrameDecoder({ maxFrameBytes: 0 }), RangeError);
  assert.throws(() => new FrameDecoder({ maxFrameBytes: 1.5 }), RangeError);
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

Deno.test("decodeReply() throws MilterProtocolError for malformed replies", () => {
  const cases: Frame[] = [
    { code: SMFIR_ACCEPT, data: Uint8Array.of(1) },
    { code: SMFIR_REPLYCODE, data: utf8("250 ok\0") },
    { code: SMFIR_REPLYCODE, data: utf8("550 no") },
    { code: SMFIR_ADDHEADER, data: utf8("A\0") },
    { code: SMFIR_INSHEADER, data: Uint8Array.of(0, 0, 1) },
    { code: SMFIR_CHGHEADER, data: concat([Uint8Array.of(0, 0, 0, 1), utf8("A\0b")]) },
    { code: SMFIR_QUARANTINE, data: utf8("x") },
    { code: SMFIR_OPTNEG, data: new Uint8Array(8) },
    { code: SMFIR_OPTNEG, data: new Uint8Array(14) },
    { code: SMFIR_SETSYMLIST, data: Uint8Array.of(0, 0, 0, 1, 0x69) },
  ];
  for (const frame of cases) {
    assert.throws(() => decodeReply(frame), MilterProtocolError, `0x${frame.code.toString(16)}`);
  }
});

Deno.test("decodeCommand() and decodeReply() only ever throw MilterProtocolError", () => {
  const codes = [...new Set([...COMMANDS, ...REPLIES].map((x) => encodeCommandOrReply(x)[4]))];
  fc.assert(
    fc.property(fc.constantFrom(...codes), fc.uint8Array({ maxLength: 40 }), (code, data) => {
      for (const decode of [decodeCommand, decodeReply]) {
        try {
          decode({ code, data });
        } catch (error) {
          if (!(error instanceof MilterProtocolError)) throw error;
        }
      }
    }),
    { numRuns: 3000 },
  );
});

function encodeCommandOrReply(x: Command | Reply): Uint8Array {
  return COMMANDS.includes(x as Command) ? encodeCommand(x as Command) : encodeReply(x as Reply);
}

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

Deno.test("replyProblem() finds every value the wire cannot carry", () => {
  const bad: Array<[Reply, RegExp]> = [
    [{ type: "addheader", name: "", value: "x" }, /name/],
    [{ type: "addheader", name: "Bad Name", value: "x" }, /name/],
    [{ type: "addheader", name: "X-A", value: "a\0b" }, /NUL/],
    [{ type: "addheader", name: "X-A", value: Uint8Array.of(0x61, 0) }, /NUL/],
    [{ type: "insheader", index: -1, name: "X-A", value: "x" }, /index/],
    [{ type: "chgheader", index: 2 ** 32, name: "X-A", value: "x" }, /index/],
    [{ type: "chgheader", index: 1.5, name: "X-A", value: "x" }, /index/],
    [{ type: "replycode", code: 250, text: "ok" }, /400 to 599/],
    [{ type: "replycode", code: 550, text: "a\0" }, /NUL/],
    [{ type: "quarantine", reason: "a\0" }, /NUL/],
    [{ type: "setsymlist", stage: 1, macros: ["a b"] }, /spaces/],
    [{
      type: "optneg",
      version: 6,
      actions: 0,
      protocol: 0,
      symbols: [{ stage: -1, macros: [] }],
    }, /stage/],
  ];
  for (const [reply, pattern] of bad) {
    assert.match(replyProblem(reply) ?? "", pattern, JSON.stringify(reply));
    assert.throws(() => encodeReply(reply), MilterProtocolError);
  }
  for (const reply of REPLIES) assert.equal(replyProblem(reply), undefined, reply.type);
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
