import assert from "node:assert/strict";
import { concat, latin1, utf8 } from "../../lib/bytes.ts";
import { type Command, decodeCommand, encodeCommand } from "../../lib/milter/command.ts";
import { type Frame, FrameDecoder, MAX_FRAME_BYTES_DEFAULT } from "../../lib/milter/frame.ts";
import { MilterProtocolError } from "../../lib/milter/protocol_error.ts";
import { COMMANDS } from "./wire_samples.ts";

function decodeAll(decoder: FrameDecoder): Frame[] {
  const frames: Frame[] = [];
  for (let f = decoder.next(); f; f = decoder.next()) frames.push(f);
  return frames;
}

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
