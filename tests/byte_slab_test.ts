import assert from "node:assert/strict";
import { SLAB_BYTES, SLAB_PIECE_MAX, slabBytes } from "../lib/byte_slab.ts";

Deno.test("slabBytes() gives zero-filled pieces that never overlap, across slabs", () => {
  const pieces: Uint8Array[] = [];
  // More than two slabs' worth, in sizes that do not divide the slab.
  for (let i = 0; pieces.length < 3 * SLAB_BYTES / 100; i++) {
    const piece = slabBytes(37 + (i * 53) % 200);
    assert.ok(piece.every((b) => b === 0));
    piece.fill(i % 255 + 1);
    pieces.push(piece);
  }
  pieces.forEach((piece, i) => assert.ok(piece.every((b) => b === i % 255 + 1), `piece ${i}`));
  const buffers = new Set(pieces.map((p) => p.buffer));
  assert.ok(buffers.size >= 3 && buffers.size < pieces.length / 10);
});

Deno.test("slabBytes() makes an array of its own above SLAB_PIECE_MAX, and for 0 bytes an empty one", () => {
  const big = slabBytes(SLAB_PIECE_MAX + 1);
  assert.equal(big.byteOffset, 0);
  assert.equal(big.buffer.byteLength, SLAB_PIECE_MAX + 1);
  assert.equal(slabBytes(SLAB_PIECE_MAX).buffer.byteLength, SLAB_BYTES);
  assert.equal(slabBytes(0).length, 0);
});
