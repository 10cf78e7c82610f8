/**
 * Shared pieces of the fuzz tests in tests/fuzz: run settings read from the environment (so CI
 * runs a fixed, seeded number of cases and `deno task fuzz` many more with a printed seed),
 * arbitraries for hostile bytes and text, byte-level mutations and chunk splits, reference
 * canonicalizers written from the RFC 6376 text, and a worker that bounds a call which might
 * never return.
 *
 * Environment:
 * - `DKIMD_FUZZ_SEED`: the fast-check seed of every property (default {@link FUZZ_SEED_DEFAULT}).
 * - `DKIMD_FUZZ_SCALE`: multiplies every property's case count (default 1; `deno task fuzz` uses
 *   100).
 * - `DKIMD_FUZZ_RUNS`: runs exactly this many cases per property, overriding the scale.
 * - `DKIMD_FUZZ_PATH`: the fast-check path of a failure, to replay just that case (with its seed
 *   and `--filter` naming the test).
 *
 * @module
 */

import fc from "fast-check";
import { concat, CR, fromLatin1, HTAB, LF, SP } from "../../lib/bytes.ts";
import type { AddressFamily, Command } from "../../lib/milter/command.ts";

/** The seed of a CI run: fixed, so CI runs the same cases every time. */
export const FUZZ_SEED_DEFAULT = 6376_8463;

/** How many cases to run and with which seed. */
export interface FuzzSettings {
  /** fast-check's seed. */
  readonly seed: number;
  /** Multiplier of each property's case count. */
  readonly scale: number;
  /** When set, the exact case count of every property. */
  readonly runs?: number;
  /** When set, the fast-check path to replay. */
  readonly path?: string;
}

function envInteger(name: string, min: number): number | undefined {
  const text = Deno.env.get(name);
  if (text === undefined || text.trim() === "") return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min) {
    throw new RangeError(`Invalid "${name}" "${text}": expected an integer of at least ${min}`);
  }
  return n;
}

/**
 * The fuzz settings from the environment (see the module doc); read once per process.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fuzzSettings } from "./fuzz.ts";
 * assert.ok(Number.isInteger(fuzzSettings().seed));
 * ```
 */
export function fuzzSettings(): FuzzSettings {
  return settings ??= {
    seed: envInteger("DKIMD_FUZZ_SEED", -0x80000000) ?? FUZZ_SEED_DEFAULT,
    scale: envInteger("DKIMD_FUZZ_SCALE", 1) ?? 1,
    runs: envInteger("DKIMD_FUZZ_RUNS", 1),
    path: Deno.env.get("DKIMD_FUZZ_PATH") || undefined,
  };
}
let settings: FuzzSettings | undefined;

/** The case count of a property whose CI count is `base`. */
export function fuzzRuns(base: number): number {
  const s = fuzzSettings();
  return s.runs ?? base * s.scale;
}

/**
 * fast-check parameters for a property whose CI case count is `base`: the seed and count from
 * {@link fuzzSettings}, and a failure report that names the seed and path to replay.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import fc from "fast-check";
 * import { fuzzParams } from "./fuzz.ts";
 * fc.assert(fc.property(fc.nat(), (n) => n >= 0), fuzzParams(10));
 * assert.ok(fuzzParams(10).numRuns! >= 1);
 * ```
 */
export function fuzzParams<T = unknown>(base: number): fc.Parameters<T> {
  const s = fuzzSettings();
  return {
    numRuns: fuzzRuns(base),
    seed: s.seed,
    ...(s.path ? { path: s.path } : {}),
    // Hostile inputs are large; showing every shrink step would flood the log.
    verbose: 0,
  };
}

/** Bytes that matter to the parsers under test: line ends, separators, quotes, NUL, 8-bit. */
export const INTERESTING_TOKENS: readonly string[] = [
  "\r",
  "\n",
  "\r\n",
  "\r\n ",
  "\r\n\r\n",
  " ",
  "\t",
  "  ",
  "\0",
  ":",
  ";",
  "=",
  ",",
  "@",
  ".",
  "(",
  ")",
  '"',
  "\\",
  "*",
  "#",
  "/",
  "[",
  "]",
  "-----",
  "\x80",
  "\xe9",
  "\xff",
  "\x7f",
  "\x1b",
];

/**
 * Text with one character per byte (latin1) built from tokens the parsers care about and
 * random characters, so separators and line ends meet in every combination. Up to `maxTokens`
 * tokens, spread over the whole range (fast-check's default size would keep it under ten).
 */
export function latin1Text(maxTokens = 40, extra: readonly string[] = []): fc.Arbitrary<string> {
  const token = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...INTERESTING_TOKENS, ...extra) },
    { weight: 2, arbitrary: fc.string({ unit: "binary-ascii", maxLength: 6 }) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)) },
  );
  return fc.array(token, { maxLength: maxTokens, size: "max" }).map((parts) => parts.join(""));
}

/** Any UTF-16 text, lone surrogates and controls included. */
export function anyText(maxLength = 60): fc.Arbitrary<string> {
  return fc.oneof(
    fc.string({ unit: "binary", maxLength, size: "max" }),
    fc.string({
      unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
      maxLength,
      size: "max",
    }),
  );
}

/** One change to a byte string. Positions are taken modulo the length, so any edit fits any input. */
export type Edit =
  | { readonly kind: "flip"; readonly at: number; readonly bit: number }
  | { readonly kind: "set"; readonly at: number; readonly byte: number }
  | { readonly kind: "insert"; readonly at: number; readonly bytes: Uint8Array }
  | { readonly kind: "delete"; readonly at: number; readonly length: number }
  | {
    readonly kind: "duplicate";
    readonly at: number;
    readonly length: number;
    readonly to: number;
  }
  | { readonly kind: "truncate"; readonly at: number };

/** Edits to apply in order with {@link applyEdits}; from one to `maxEdits` of them. */
export function edits(maxEdits = 4): fc.Arbitrary<Edit[]> {
  const at = fc.nat();
  const edit: fc.Arbitrary<Edit> = fc.oneof(
    fc.record({ kind: fc.constant("flip" as const), at, bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant("set" as const), at, byte: fc.integer({ min: 0, max: 255 }) }),
    fc.record({
      kind: fc.constant("insert" as const),
      at,
      bytes: fc.oneof(
        fc.constantFrom(...INTERESTING_TOKENS).map(fromLatin1),
        fc.uint8Array({ minLength: 1, maxLength: 8 }),
      ),
    }),
    fc.record({
      kind: fc.constant("delete" as const),
      at,
      length: fc.integer({ min: 1, max: 16 }),
    }),
    fc.record({
      kind: fc.constant("duplicate" as const),
      at,
      length: fc.integer({ min: 1, max: 64 }),
      to: fc.nat(),
    }),
    fc.record({ kind: fc.constant("truncate" as const), at }),
  );
  return fc.array(edit, { minLength: 1, maxLength: maxEdits, size: "max" });
}

/**
 * `input` with `list` applied in order; `input` is not changed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { applyEdits } from "./fuzz.ts";
 * const out = applyEdits(Uint8Array.of(1, 2, 3), [{ kind: "delete", at: 1, length: 1 }]);
 * assert.deepEqual(out, Uint8Array.of(1, 3));
 * ```
 */
export function applyEdits(input: Uint8Array, list: readonly Edit[]): Uint8Array {
  let b = input;
  for (const e of list) {
    const n = b.length;
    switch (e.kind) {
      case "flip":
      case "set": {
        if (n === 0) break;
        const i = e.at % n;
        b = b.slice();
        b[i] = e.kind === "flip" ? b[i] ^ (1 << e.bit) : e.byte;
        break;
      }
      case "insert": {
        const i = e.at % (n + 1);
        b = concat([b.subarray(0, i), e.bytes, b.subarray(i)]);
        break;
      }
      case "delete": {
        if (n === 0) break;
        const i = e.at % n;
        b = concat([b.subarray(0, i), b.subarray(Math.min(n, i + e.length))]);
        break;
      }
      case "duplicate": {
        if (n === 0) break;
        const i = e.at % n;
        const piece = b.slice(i, Math.min(n, i + e.length));
        const to = e.to % (n + 1);
        b = concat([b.subarray(0, to), piece, b.subarray(to)]);
        break;
      }
      case "truncate":
        b = b.slice(0, e.at % (n + 1));
        break;
    }
  }
  return b;
}

/** Cut points for {@link splitAt}: up to `maxCuts` positions, taken modulo the input length. */
export function cuts(maxCuts = 12): fc.Arbitrary<number[]> {
  return fc.array(fc.nat(), { maxLength: maxCuts, size: "max" });
}

/**
 * `input` cut at `points` (each modulo `input.length + 1`), empty pieces included: a stream as
 * a socket might deliver it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { splitAt } from "./fuzz.ts";
 * const pieces = splitAt(Uint8Array.of(1, 2, 3), [1, 1]);
 * assert.deepEqual(pieces.map((p) => p.length), [1, 0, 2]);
 * ```
 */
export function splitAt(input: Uint8Array, points: readonly number[]): Uint8Array[] {
  const sorted = points.map((p) => p % (input.length + 1)).sort((a, b) => a - b);
  const pieces: Uint8Array[] = [];
  let start = 0;
  for (const p of sorted) {
    pieces.push(input.subarray(start, p));
    start = p;
  }
  pieces.push(input.subarray(start));
  return pieces;
}

/** The command bytes (`SMFIC_*`) the codec knows. */
export const MILTER_COMMAND_CODES: readonly number[] = [..."ABCDEHKLMNOQRTU"].map((c) =>
  c.charCodeAt(0)
);

/**
 * Valid milter commands of every type, with arbitrary field values the wire can carry (no NUL
 * inside a string, integers in range), so each round-trips through the codec.
 */
export function milterCommand(): fc.Arbitrary<Command> {
  const u32 = fc.integer({ min: 0, max: 0xffffffff });
  // Text without NUL, any code point, so UTF-8 round-trips; header names one byte per character.
  const cText = fc.string({ unit: "binary", maxLength: 24, size: "max" }).map((s) =>
    s.replaceAll("\0", "")
  );
  const latin1Name = fc.string({
    unit: fc.integer({ min: 1, max: 255 }).map((c) => String.fromCharCode(c)),
    minLength: 1,
    maxLength: 20,
    size: "max",
  });
  const value = fc.uint8Array({ maxLength: 200, size: "max" }).map((b) =>
    b.map((x) => x === 0 ? 1 : x)
  );
  return fc.oneof(
    fc.record({ type: fc.constant("optneg" as const), version: u32, actions: u32, protocol: u32 }),
    fc.record({
      type: fc.constant("connect" as const),
      hostname: cText,
      family: fc.constantFrom<AddressFamily>("inet", "inet6", "unix"),
      port: fc.integer({ min: 0, max: 0xffff }),
      address: cText,
    }),
    cText.map((hostname) => ({
      type: "connect" as const,
      hostname,
      family: "unknown" as const,
      port: 0,
      address: "",
    })),
    fc.record({ type: fc.constant("helo" as const), name: cText }),
    fc.record({
      type: fc.constant("macro" as const),
      forCommand: fc.integer({ min: 0, max: 255 }),
      macros: fc.array(fc.tuple(cText, cText), { maxLength: 6 }),
    }),
    fc.record({
      type: fc.constantFrom("mail" as const, "rcpt" as const),
      args: fc.array(cText, { minLength: 1, maxLength: 4 }),
    }),
    fc.record({ type: fc.constant("header" as const), name: latin1Name, value }),
    fc.record({
      type: fc.constant("body" as const),
      chunk: fc.uint8Array({ maxLength: 500, size: "max" }),
    }),
    fc.uint8Array({ minLength: 1, maxLength: 100 }).map((chunk) => ({
      type: "bodyeob" as const,
      chunk,
    })),
    fc.record({ type: fc.constant("unknown" as const), command: cText }),
    fc.constantFrom<Command>(
      { type: "data" },
      { type: "eoh" },
      { type: "bodyeob" },
      { type: "abort" },
      { type: "quit" },
      { type: "quit_nc" },
    ),
    fc.record({
      type: fc.constant("unrecognized" as const),
      code: fc.integer({ min: 0, max: 255 }).filter((c) => !MILTER_COMMAND_CODES.includes(c)),
      data: fc.uint8Array({ maxLength: 50 }),
    }),
  );
}

// Reference canonicalizations, straight from RFC 6376 §3.4 on one-character-per-byte text.
// Deliberately simple and written apart from lib/dkim: whole strings, no streaming, only
// linear-time operations so long inputs stay cheap.

/**
 * RFC 6376 §3.4.3 simple body canonicalization: trailing empty lines removed, a CRLF added
 * when the body does not end in one; an empty body is one CRLF.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { referenceSimpleBody } from "./fuzz.ts";
 * assert.equal(referenceSimpleBody("a\r\n\r\n\r\n"), "a\r\n");
 * ```
 */
export function referenceSimpleBody(body: string): string {
  let end = body.length;
  while (end >= 2 && body.charCodeAt(end - 2) === CR && body.charCodeAt(end - 1) === LF) end -= 2;
  return `${body.slice(0, end)}\r\n`;
}

/**
 * RFC 6376 §3.4.4 relaxed body canonicalization: whitespace at line ends removed, other
 * whitespace runs made one space, trailing empty lines removed; an empty result stays empty.
 * Lines end at CRLF only.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { referenceRelaxedBody } from "./fuzz.ts";
 * assert.equal(referenceRelaxedBody("a \t b  \r\n\r\n"), "a b\r\n");
 * ```
 */
export function referenceRelaxedBody(body: string): string {
  const lines = body.split("\r\n").map((line) => {
    const squeezed = line.replace(/[ \t]+/g, " ");
    return squeezed.endsWith(" ") ? squeezed.slice(0, -1) : squeezed;
  });
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines.length === 0 ? "" : `${lines.join("\r\n")}\r\n`;
}

/**
 * RFC 6376 §3.4.1 and §3.4.2: a header field (name, colon, value, without its final line end)
 * canonicalized, with its CRLF.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { referenceHeader } from "./fuzz.ts";
 * assert.equal(referenceHeader("SubJect \t: A \r\n\tb ", "relaxed"), "subject:A b\r\n");
 * ```
 */
export function referenceHeader(field: string, canon: "simple" | "relaxed"): string {
  if (canon === "simple") return `${field}\r\n`;
  const colon = field.indexOf(":");
  let nameEnd = colon;
  while (nameEnd > 0 && isWspCode(field.charCodeAt(nameEnd - 1))) nameEnd--;
  const name = field.slice(0, nameEnd).replace(/[A-Z]+/g, (s) => s.toLowerCase());
  let value = field.slice(colon + 1).replaceAll("\r\n", "").replace(/[ \t]+/g, " ");
  if (value.startsWith(" ")) value = value.slice(1);
  if (value.endsWith(" ")) value = value.slice(0, -1);
  return `${name}:${value}\r\n`;
}

function isWspCode(c: number): boolean {
  return c === SP || c === HTAB;
}

/** A message split as lib/dkim documents it: fields (without final line ends) and body. */
export interface ReferenceMessage {
  /** Each field's text, folds included, final line end excluded. */
  readonly fields: string[];
  /** The body text after the empty line. */
  readonly body: string;
}

/**
 * Splits a message: lines end at LF (a CR before it, or a CR ending the message, belongs to the
 * line end), a line starting
 * with SP or HTAB continues the field above, the first empty line ends the header block.
 * Returns undefined for what is not a message (a line without a colon, a continuation first).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { referenceSplit } from "./fuzz.ts";
 * assert.deepEqual(referenceSplit("A: 1\r\n 2\r\nB: 3\r\n\r\nbody"), {
 *   fields: ["A: 1\r\n 2", "B: 3"],
 *   body: "body",
 * });
 * ```
 */
export function referenceSplit(message: string): ReferenceMessage | undefined {
  const fields: string[] = [];
  let pos = 0;
  let fieldEnd = 0; // where the content of the previous line ended
  while (pos < message.length) {
    const lf = message.indexOf("\n", pos);
    const next = lf === -1 ? message.length : lf + 1;
    let content = lf === -1 ? message.length : lf;
    // A CR before the LF, or at the very end of the message, is (part of) the line end.
    if (content > pos && message[content - 1] === "\r") content--;
    const line = message.slice(pos, content);
    if (line === "") return { fields, body: message.slice(next) };
    if (isWspCode(line.charCodeAt(0))) {
      if (fields.length === 0) return undefined;
      fields[fields.length - 1] += message.slice(fieldEnd, content);
    } else {
      if (line.indexOf(":") <= 0) return undefined;
      fields.push(line);
    }
    fieldEnd = content;
    pos = next;
  }
  return { fields, body: "" };
}

/**
 * The fields `names` (an `h=` list) select, per RFC 6376 §5.4.2: each listing takes the next
 * instance from the bottom up; names compare ASCII case-insensitively.
 */
export function referenceSelect(fields: readonly string[], names: readonly string[]): string[] {
  const used = new Set<number>();
  const picked: string[] = [];
  for (const name of names) {
    const want = name.toLowerCase();
    for (let i = fields.length - 1; i >= 0; i--) {
      if (used.has(i)) continue;
      const colon = fields[i].indexOf(":");
      if (fields[i].slice(0, colon).replace(/[ \t]+$/, "").toLowerCase() !== want) continue;
      used.add(i);
      picked.push(fields[i]);
      break;
    }
  }
  return picked;
}

/**
 * A DKIM-Signature field with the value of its `b=` tag deleted (RFC 6376 §3.7): the text
 * between the `=` of the tag named exactly `b` and the next `;` (or the end) is removed.
 */
export function referenceWithoutB(field: string): string {
  const colon = field.indexOf(":");
  const head = field.slice(0, colon + 1);
  const segments = field.slice(colon + 1).split(";");
  return head + segments.map((s) => {
    const eq = s.indexOf("=");
    if (eq === -1 || s.slice(0, eq).replace(/[ \t\r\n]/g, "") !== "b") return s;
    return s.slice(0, eq + 1);
  }).join(";");
}

/** What a signature covers, computed by the reference functions above. */
export interface SignedData {
  /** The header hash input (RFC 6376 §3.7), without the final CRLF of the signature field. */
  readonly headers: string;
  /** The canonical body, cut to `l=` when given. */
  readonly body: string;
}

/**
 * The bytes a signature covers in `message`: the selected header fields and the signature
 * field (its `b=` value removed) canonicalized, and the canonical body up to `length`.
 */
export function referenceSignedData(
  message: ReferenceMessage,
  signatureField: string,
  headerNames: readonly string[],
  canon: readonly ["simple" | "relaxed", "simple" | "relaxed"],
  length?: number,
): SignedData {
  const selected = referenceSelect(message.fields, headerNames);
  const own = referenceHeader(referenceWithoutB(signatureField), canon[0]);
  const headers = selected.map((f) => referenceHeader(f, canon[0])).join("") +
    own.slice(0, -2);
  const full = canon[1] === "simple"
    ? referenceSimpleBody(message.body)
    : referenceRelaxedBody(message.body);
  return { headers, body: length === undefined ? full : full.slice(0, length) };
}

/** What {@link boundedCall} reports about a call made in a worker. */
export type BoundedOutcome =
  | { readonly kind: "returned"; readonly value: unknown }
  | { readonly kind: "threw"; readonly name: string; readonly message: string }
  | { readonly kind: "timeout" };

interface WorkerRequest {
  readonly module: string;
  readonly fn: string;
  readonly args: readonly unknown[];
}

// The worker's whole program: one request in, one outcome out. A data: URL, so the worker loads
// only the module under test, not this file and fast-check.
const WORKER_SOURCE = `self.onmessage = async (e) => {
  const { module, fn, args } = e.data;
  try {
    const m = await import(module);
    self.postMessage({ kind: "returned", value: await m[fn](...args) });
  } catch (error) {
    const err = error instanceof Error ? error : new Error(String(error));
    self.postMessage({ kind: "threw", name: err.name, message: err.message });
  }
};`;
const WORKER_URL = `data:text/javascript,${encodeURIComponent(WORKER_SOURCE)}`;

/**
 * Calls the export `fn` of `module` with `args` in a worker and reports what happened; when it
 * has not returned after `limitMs` the worker is terminated and the outcome is `timeout`. The
 * limit bounds a hang (a parser gone quadratic or looping), it does not measure speed: set it
 * far above the normal running time. Arguments and the returned value cross to and from the
 * worker by structured clone, so `fn` should return a small summary of what it made.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { boundedCall } from "./fuzz.ts";
 * const bytes = new URL("../../lib/bytes.ts", import.meta.url).href;
 * const outcome = await boundedCall(bytes, "asciiLower", ["ABC"], 20_000);
 * assert.deepEqual(outcome, { kind: "returned", value: "abc" });
 * ```
 */
export function boundedCall(
  module: string,
  fn: string,
  args: readonly unknown[],
  limitMs: number,
): Promise<BoundedOutcome> {
  const worker = new Worker(WORKER_URL, { type: "module" });
  return new Promise<BoundedOutcome>((resolve) => {
    const finish = (outcome: BoundedOutcome) => {
      clearTimeout(timer);
      worker.terminate();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ kind: "timeout" }), limitMs);
    worker.onmessage = (e: MessageEvent<BoundedOutcome>) => finish(e.data);
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      finish({ kind: "threw", name: "WorkerError", message: e.message });
    };
    const request: WorkerRequest = { module, fn, args };
    worker.postMessage(request);
  });
}
