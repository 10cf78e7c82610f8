/**
 * Chunk-splitting for streaming tests (STYLE.md, "Table-driven, chunk-split"): the same input
 * cut at every split point, and byte by byte, must give the same result as in one piece.
 *
 * @module
 */

/**
 * Every way of cutting `input` that the streaming tests check: whole, at each single split
 * point (including empty first and last pieces), in two-byte and three-byte pieces, and byte by
 * byte.
 */
export function* splits(input: Uint8Array): Generator<Uint8Array[]> {
  yield [input];
  for (let i = 0; i <= input.length; i++) yield [input.subarray(0, i), input.subarray(i)];
  for (const size of [1, 2, 3]) {
    const pieces: Uint8Array[] = [];
    for (let i = 0; i < input.length; i += size) pieces.push(input.subarray(i, i + size));
    yield pieces;
  }
}

/** Describes a split for assertion messages: the piece lengths. */
export function describeSplit(pieces: readonly Uint8Array[]): string {
  return `[${pieces.map((p) => p.length).join(",")}]`;
}
