// Fuzzing of the milter wire codec: valid commands and replies round-trip through encode,
// a FrameDecoder fed at arbitrary splits and decode; arbitrary byte streams and frames only ever
// give frames or MilterProtocolError, with every length prefix checked against the limit as
// soon as its four bytes arrive and no more than one partial frame left buffered.
import fc from "fast-check";
import assert from "node:assert/strict";
import { concat, fromLatin1, utf8 } from "../../lib/bytes.ts";
import { type Command, decodeCommand, encodeCommand } from "../../lib/milter/command.ts";
import { type Frame, FrameDecoder, MAX_FRAME_BYTES_DEFAULT } from "../../lib/milter/frame.ts";
import { MilterProtocolError } from "../../lib/milter/protocol_error.ts";
import { decodeReply, encodeReply, type Reply, replyProblem } from "../../lib/milter/reply.ts";
import { cuts, fuzzParams, MILTER_COMMAND_CODES, milterCommand, splitAt } from "../helpers/fuzz.ts";

const REPLY_CODES = [..."+-234abcdefhilmpqrsty"].map((c) => c.charCodeAt(0)).concat(0x4f);

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const command = milterCommand();
// Text without NUL, any code point: what a C string can carry; UTF-8 round-trips.
const cText = fc.string({ unit: "binary", maxLength: 24, size: "max" }).map((s) =>
  s.replaceAll("\0", "")
);
const noNulBytes = (max: number) =>
  fc.uint8Array({ maxLength: max, size: "max" }).map((b) => b.map((x) => x === 0 ? 1 : x));

// RFC 5322 field names and macro names without whitespace, as replyProblem() accepts them.
const fieldName = fc.string({
  unit: fc.integer({ min: 0x21, max: 0x7e }).filter((c) => c !== 0x3a).map((c) =>
    String.fromCharCode(c)
  ),
  minLength: 1,
  maxLength: 20,
});
const macroName = fc.string({
  unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
  minLength: 1,
  maxLength: 12,
});
const headerValue = fc.oneof(cText, noNulBytes(200));
const symbolList = fc.record({ stage: u32, macros: fc.array(macroName, { maxLength: 5 }) });

const reply: fc.Arbitrary<Reply> = fc.oneof(
  fc.constantFrom<Reply>(
    { type: "accept" },
    { type: "continue" },
    { type: "tempfail" },
    { type: "reject" },
    { type: "discard" },
    { type: "skip" },
    { type: "progress" },
  ),
  fc.record({
    type: fc.constant("replycode" as const),
    code: fc.integer({ min: 400, max: 599 }),
    text: cText,
  }),
  fc.record({ type: fc.constant("addheader" as const), name: fieldName, value: headerValue }),
  fc.record({
    type: fc.constantFrom("insheader" as const, "chgheader" as const),
    index: u32,
    name: fieldName,
    value: headerValue,
  }),
  fc.record({ type: fc.constant("quarantine" as const), reason: cText }),
  fc.record({
    type: fc.constant("setsymlist" as const),
    stage: u32,
    macros: fc.array(macroName, { maxLength: 5 }),
  }),
  fc.record({
    type: fc.constant("optneg" as const),
    version: u32,
    actions: u32,
    protocol: u32,
    symbols: fc.option(fc.array(symbolList, { maxLength: 4 }), { nil: undefined }),
  }),
  fc.record({
    type: fc.constant("unrecognized" as const),
    code: fc.integer({ min: 0, max: 255 }).filter((c) => !REPLY_CODES.includes(c)),
    data: fc.uint8Array({ maxLength: 50 }),
  }),
);

// What decodeReply() gives back for a reply: header values as bytes, no empty symbol list.
function normalizeReply(r: Reply): Reply {
  switch (r.type) {
    case "addheader":
    case "insheader":
    case "chgheader":
      return { ...r, value: typeof r.value === "string" ? utf8(r.value) : r.value };
    case "optneg": {
      const { symbols, ...rest } = r;
      return symbols && symbols.length > 0 ? { ...rest, symbols } : rest;
    }
    default:
      return r;
  }
}

function frameOf(bytes: Uint8Array): Frame {
  const decoder = new FrameDecoder();
  decoder.push(bytes);
  const frame = decoder.next();
  assert.ok(frame);
  assert.equal(decoder.buffered, 0);
  return frame;
}

function drain(decoder: FrameDecoder, into: Frame[]): void {
  for (let f = decoder.next(); f; f = decoder.next()) into.push(f);
}

Deno.test("FrameDecoder and decodeCommand() give back every command stream, however split", () => {
  fc.assert(
    fc.property(fc.array(command, { maxLength: 20 }), cuts(30), (commands, points) => {
      const stream = concat(commands.map(encodeCommand));
      const decoder = new FrameDecoder();
      const frames: Frame[] = [];
      for (const piece of splitAt(stream, points)) {
        decoder.push(piece);
        drain(decoder, frames);
      }
      assert.equal(decoder.buffered, 0);
      // structuredClone: fc.record() makes null-prototype objects, the decoder plain ones.
      assert.deepEqual(frames.map(decodeCommand), structuredClone(commands));
    }),
    fuzzParams(1000),
  );
});

Deno.test("encodeReply() and decodeReply() round-trip every valid reply", () => {
  fc.assert(
    fc.property(reply, (r) => {
      assert.equal(replyProblem(r), undefined);
      const bytes = encodeReply(r);
      assert.deepEqual(decodeReply(frameOf(bytes)), structuredClone(normalizeReply(r)));
    }),
    fuzzParams(2000),
  );
});

// A reference reading of a byte stream: the frames before the first bad length prefix, and
// where that prefix starts.
function referenceFrames(stream: Uint8Array, max: number): { frames: Frame[]; bad?: number } {
  const frames: Frame[] = [];
  let at = 0;
  while (at + 4 <= stream.length) {
    const length = new DataView(stream.buffer, stream.byteOffset + at).getUint32(0);
    if (length === 0 || length > max) return { frames, bad: at };
    if (at + 4 + length > stream.length) break;
    frames.push({ code: stream[at + 4], data: stream.slice(at + 5, at + 4 + length) });
    at += 4 + length;
  }
  return { frames };
}

// Streams of frames with plausible, zero, at-limit and over-limit lengths, and raw bytes.
function stream(max: number): fc.Arbitrary<Uint8Array> {
  const frame = fc.tuple(
    fc.oneof(
      fc.integer({ min: 1, max }),
      fc.constantFrom(0, max, max + 1, 0xffffffff),
      fc.integer({ min: max + 1, max: 0xffffffff }),
    ),
    fc.integer({ min: 0, max: 255 }),
    fc.nat(255),
  ).map(([length, code, fill]) => {
    const body = Math.min(length, max + 1);
    const out = new Uint8Array(4 + body);
    new DataView(out.buffer).setUint32(0, length);
    if (body > 0) out[4] = code;
    out.fill(fill, 5);
    return out;
  });
  return fc.oneof(
    fc.array(frame, { maxLength: 8 }).map(concat),
    fc.uint8Array({ maxLength: 400, size: "max" }),
  );
}

Deno.test("FrameDecoder refuses a bad length prefix as soon as it arrives, and only then", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 300 }).chain((max) =>
        fc.tuple(fc.constant(max), stream(max), cuts(12))
      ),
      ([max, bytes, points]) => {
        const want = referenceFrames(bytes, max);
        const decoder = new FrameDecoder({ maxFrameBytes: max });
        const frames: Frame[] = [];
        let pushed = 0;
        let failure: MilterProtocolError | undefined;
        for (const piece of splitAt(bytes, points)) {
          try {
            decoder.push(piece);
            pushed += piece.length;
            drain(decoder, frames);
          } catch (error) {
            assert.ok(error instanceof MilterProtocolError, String(error));
            failure = error;
            pushed += piece.length;
            break;
          }
          // Whole frames are out; what stays is at most one partial frame.
          assert.ok(decoder.buffered < 4 + max, `buffered ${decoder.buffered}`);
        }
        if (want.bad === undefined || pushed < want.bad + 4) {
          assert.equal(failure, undefined, `no bad prefix fully arrived: ${failure}`);
        } else {
          assert.ok(failure, `the bad prefix at ${want.bad} was let through`);
          // The decoder stays failed.
          assert.throws(() => decoder.next(), MilterProtocolError);
          assert.throws(() => decoder.push(Uint8Array.of(0)), MilterProtocolError);
        }
        // Frames before the bad prefix come out intact: all of them when nothing failed, those
        // completed before the failure otherwise.
        if (!failure) assert.equal(frames.length, want.frames.length);
        assert.deepEqual(frames, want.frames.slice(0, frames.length));
      },
    ),
    fuzzParams(2000),
  );
});

Deno.test("FrameDecoder accepts a frame of exactly the limit and refuses one byte more", () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.integer({ min: 1, max: 4096 }), fc.constant(MAX_FRAME_BYTES_DEFAULT)),
      fc.boolean(),
      cuts(6),
      (max, over, points) => {
        const length = over ? max + 1 : max;
        const bytes = new Uint8Array(4 + length);
        new DataView(bytes.buffer).setUint32(0, length);
        bytes[4] = 0x42;
        const decoder = new FrameDecoder({ maxFrameBytes: max });
        const pieces = splitAt(bytes, points);
        let seen = 0;
        for (const piece of pieces) {
          const before = seen;
          seen += piece.length;
          if (over && before < 4 && seen >= 4) {
            assert.throws(() => decoder.push(piece), /too large/);
            return;
          }
          decoder.push(piece);
        }
        assert.ok(!over);
        const frame = decoder.next();
        assert.equal(frame?.data.length, length - 1);
      },
    ),
    fuzzParams(200),
  );
});

const anyFrame = fc.record({
  code: fc.oneof(
    fc.constantFrom(...MILTER_COMMAND_CODES, ...REPLY_CODES),
    fc.integer({ min: 0, max: 255 }),
  ),
  data: fc.oneof(
    fc.uint8Array({ maxLength: 64, size: "max" }),
    fc.array(fc.constantFrom(0, 0x20, 0x34, 0x35, 0x41, 0x2d, 0xff, 0xc3), { maxLength: 40 })
      .map((b) => Uint8Array.from(b)),
  ),
});

Deno.test("decodeCommand() returns a re-encodable command or throws MilterProtocolError", () => {
  fc.assert(
    fc.property(anyFrame, (frame) => {
      let command: Command;
      try {
        command = decodeCommand(frame);
      } catch (error) {
        assert.ok(error instanceof MilterProtocolError, String(error));
        return;
      }
      assert.deepEqual(decodeCommand(frameOf(encodeCommand(command))), command);
    }),
    fuzzParams(5000),
  );
});

Deno.test("decodeReply() returns a reply or throws MilterProtocolError", () => {
  fc.assert(
    fc.property(anyFrame, (frame) => {
      let decoded: Reply;
      try {
        decoded = decodeReply(frame);
      } catch (error) {
        assert.ok(error instanceof MilterProtocolError, String(error));
        return;
      }
      if (replyProblem(decoded) !== undefined) {
        assert.throws(() => encodeReply(decoded), MilterProtocolError);
        return;
      }
      assert.deepEqual(decodeReply(frameOf(encodeReply(decoded))), decoded);
    }),
    fuzzParams(5000),
  );
});

Deno.test("encodeCommand() and encodeReply() throw only MilterProtocolError for bad values", () => {
  const bad = fc.oneof(
    fc.integer(),
    fc.double(),
    fc.constantFrom(-1, 0x100000000, NaN, Infinity, 65536),
  );
  const text = fc.oneof(cText, fc.constantFrom("a\0b", "\0", "é\0"));
  fc.assert(
    fc.property(bad, text, fc.constantFrom("x\0", "X:Y", "", "sp ace", "\u0100"), (n, t, name) => {
      const attempts: (() => Uint8Array)[] = [
        () => encodeCommand({ type: "optneg", version: n, actions: 0, protocol: 0 }),
        () => encodeCommand({ type: "connect", hostname: t, family: "inet", port: n, address: t }),
        () => encodeCommand({ type: "header", name, value: fromLatin1(t) }),
        () => encodeCommand({ type: "macro", forCommand: 0x43, macros: [[t, t]] }),
        () => encodeReply({ type: "replycode", code: n, text: t }),
        () => encodeReply({ type: "chgheader", index: n, name, value: t }),
        () => encodeReply({ type: "setsymlist", stage: n, macros: [t, name] }),
        () => encodeReply({ type: "quarantine", reason: t }),
      ];
      for (const attempt of attempts) {
        try {
          attempt();
        } catch (error) {
          assert.ok(error instanceof MilterProtocolError, String(error));
        }
      }
    }),
    fuzzParams(2000),
  );
});
