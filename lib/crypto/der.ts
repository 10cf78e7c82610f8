/**
 * A minimal, strict DER reader and writer (ITU-T X.690 §8 and §10) for the few ASN.1 types that
 * key formats use: SEQUENCE, INTEGER, NULL, OBJECT IDENTIFIER, BIT STRING and OCTET STRING, plus
 * context-specific tags to recognise optional fields. It exists so that PKCS#1 RSA keys, as
 * opendkim-genkey writes them, can be wrapped into PKCS#8 for WebCrypto, and so that public keys
 * from DNS can be checked before any expensive import (DESIGN.md, "Crypto through WebCrypto").
 *
 * Input is hostile: every read checks bounds, only definite minimal lengths are accepted, and a
 * value is a view into the input, so nothing allocates more than the input already holds.
 *
 * The key structures built on it are here too, as DESIGN.md places them: SubjectPublicKeyInfo
 * (RFC 5280 §4.1.2.7) for RSA and Ed25519 public keys, PKCS#8 (RFC 5208 §5, RFC 8410 §7) for
 * private keys, and their AlgorithmIdentifier.
 *
 * @module
 */

import { concat } from "../bytes.ts";

/** Universal tag numbers (X.690 §8.1.2, with the constructed bit for SEQUENCE). */
export const DerTag = {
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  SEQUENCE: 0x30,
} as const;

/**
 * Most length octets after a long-form length byte: four allow values up to 4 GiB, far beyond
 * any key, and stop a hostile length from overflowing arithmetic.
 */
export const MAX_DER_LENGTH_OCTETS = 4;

/**
 * Most sub-identifier octets in one OID arc: 4 octets hold 28 bits, enough for every arc key
 * formats use, and keep the value an exact small integer.
 */
export const MAX_OID_ARC_OCTETS = 4;

/**
 * Malformed DER: truncated, trailing data, a non-minimal or indefinite length, or an unexpected
 * tag. `offset` is the byte position in the outermost input where the problem was found.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DerError, readDer } from "./der.ts";
 * assert.throws(() => readDer(Uint8Array.of(0x30, 0x05, 0x02)), DerError);
 * ```
 */
export class DerError extends SyntaxError {
  /** Byte offset of the problem in the input. */
  readonly offset: number;

  /** Makes an error for a problem at `offset`. */
  constructor(message: string, offset: number, options?: ErrorOptions) {
    super(`Invalid DER at offset ${offset}: ${message}`, options);
    this.name = "DerError";
    this.offset = offset;
  }
}

/** One DER element (tag, length, value), its value a view into the input. */
export interface DerElement {
  /** The identifier octet: class, constructed bit and tag number (low-tag-number form only). */
  readonly tag: number;
  /** The contents octets. */
  readonly value: Uint8Array;
  /** Offset of the identifier octet in the outermost input. */
  readonly offset: number;
  /** The whole encoding, identifier and length octets included. */
  readonly encoded: Uint8Array;
}

/** Names of the universal tags, for messages. */
const TAG_NAMES: Readonly<Record<number, string>> = {
  [DerTag.INTEGER]: "INTEGER",
  [DerTag.BIT_STRING]: "BIT STRING",
  [DerTag.OCTET_STRING]: "OCTET STRING",
  [DerTag.NULL]: "NULL",
  [DerTag.OID]: "OBJECT IDENTIFIER",
  [DerTag.SEQUENCE]: "SEQUENCE",
};

function tagName(tag: number): string {
  return TAG_NAMES[tag] ?? `tag 0x${tag.toString(16).padStart(2, "0")}`;
}

/**
 * Reads DER elements one after another from a byte range: the contents of a SEQUENCE, or a
 * whole input. Each read checks the tag and bounds and throws {@link DerError} on any fault.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DerReader } from "./der.ts";
 * // SEQUENCE { INTEGER 5, NULL }
 * const r = new DerReader(Uint8Array.of(0x30, 0x05, 0x02, 0x01, 0x05, 0x05, 0x00));
 * const seq = r.readSequence();
 * r.end();
 * assert.deepEqual(seq.readInteger(), Uint8Array.of(5));
 * seq.readNull();
 * seq.end();
 * ```
 */
export class DerReader {
  readonly #bytes: Uint8Array;
  readonly #base: number;
  #pos = 0;

  /** Reads `bytes`; `base` is their offset in the outermost input, for error messages. */
  constructor(bytes: Uint8Array, base = 0) {
    this.#bytes = bytes;
    this.#base = base;
  }

  /** True when every byte has been read. */
  get done(): boolean {
    return this.#pos >= this.#bytes.length;
  }

  /** The identifier octet of the next element, or -1 at the end. */
  peekTag(): number {
    return this.done ? -1 : this.#bytes[this.#pos];
  }

  /** Throws unless every byte has been read: DER allows no trailing data. */
  end(): void {
    if (!this.done) {
      const left = this.#bytes.length - this.#pos;
      throw new DerError(`${left} unexpected trailing byte(s)`, this.#base + this.#pos);
    }
  }

  /** Reads the next element of any tag. */
  read(): DerElement {
    const bytes = this.#bytes;
    const start = this.#pos;
    const at = this.#base + start;
    if (start >= bytes.length) throw new DerError("expected an element, found the end", at);
    const tag = bytes[start];
    // High-tag-number form (tag number 31) appears in no key format; refusing it keeps tags
    // one octet.
    if ((tag & 0x1f) === 0x1f) throw new DerError("high tag numbers are not supported", at);
    if (start + 1 >= bytes.length) throw new DerError("truncated length", at + 1);
    let length = bytes[start + 1];
    let header = 2;
    if (length === 0x80) throw new DerError("indefinite length is not DER", at + 1);
    if (length > 0x80) {
      const count = length & 0x7f;
      if (count > MAX_DER_LENGTH_OCTETS) {
        throw new DerError(`length of ${count} octets is too long`, at + 1);
      }
      if (start + 2 + count > bytes.length) throw new DerError("truncated length", at + 1);
      if (bytes[start + 2] === 0) throw new DerError("length has a leading zero octet", at + 1);
      length = 0;
      for (let i = 0; i < count; i++) length = length * 256 + bytes[start + 2 + i];
      if (length < 0x80) throw new DerError("short length in long form", at + 1);
      header += count;
    }
    const end = start + header + length;
    if (end > bytes.length) {
      throw new DerError(
        `${tagName(tag)} of ${length} bytes runs past the end of the data`,
        at,
      );
    }
    this.#pos = end;
    return {
      tag,
      value: bytes.subarray(start + header, end),
      offset: at,
      encoded: bytes.subarray(start, end),
    };
  }

  /** Reads the next element and checks that its tag is `tag`. */
  expect(tag: number): DerElement {
    const found = this.peekTag();
    if (found !== tag) {
      const what = found === -1 ? "the end" : tagName(found);
      throw new DerError(`expected ${tagName(tag)}, found ${what}`, this.#base + this.#pos);
    }
    return this.read();
  }

  /** Reads a SEQUENCE and returns a reader over its contents. */
  readSequence(): DerReader {
    const el = this.expect(DerTag.SEQUENCE);
    return new DerReader(el.value, el.offset + el.encoded.length - el.value.length);
  }

  /**
   * Reads an INTEGER and returns its two's-complement contents (X.690 §8.3), checked to be
   * minimal. Use {@link unsignedInteger} for the magnitude of a non-negative value.
   */
  readInteger(): Uint8Array {
    const el = this.expect(DerTag.INTEGER);
    const v = el.value;
    if (v.length === 0) throw new DerError("empty INTEGER", el.offset);
    if (v.length > 1 && ((v[0] === 0 && v[1] < 0x80) || (v[0] === 0xff && v[1] >= 0x80))) {
      throw new DerError("INTEGER is not minimally encoded", el.offset);
    }
    return v;
  }

  /** Reads a non-negative INTEGER and returns its magnitude without the sign octet. */
  readUnsignedInteger(): Uint8Array {
    const at = this.#base + this.#pos;
    const v = this.readInteger();
    if (v[0] >= 0x80) throw new DerError("INTEGER is negative", at);
    return v[0] === 0 && v.length > 1 ? v.subarray(1) : v;
  }

  /** Reads an INTEGER that must fit in a small non-negative number (a version field). */
  readSmallInteger(): number {
    const at = this.#base + this.#pos;
    const v = this.readUnsignedInteger();
    if (v.length > 4) throw new DerError("INTEGER is too large for a version number", at);
    let n = 0;
    for (const b of v) n = n * 256 + b;
    return n;
  }

  /** Reads a NULL, whose contents must be empty. */
  readNull(): void {
    const el = this.expect(DerTag.NULL);
    if (el.value.length !== 0) throw new DerError("NULL with contents", el.offset);
  }

  /** Reads an OBJECT IDENTIFIER (X.690 §8.19) and returns it in dotted form. */
  readOid(): string {
    const el = this.expect(DerTag.OID);
    const v = el.value;
    if (v.length === 0) throw new DerError("empty OBJECT IDENTIFIER", el.offset);
    const arcs: number[] = [];
    let value = 0;
    let octets = 0;
    for (let i = 0; i < v.length; i++) {
      const b = v[i];
      if (octets === 0 && b === 0x80) {
        throw new DerError("OBJECT IDENTIFIER arc has a leading zero octet", el.offset);
      }
      if (++octets > MAX_OID_ARC_OCTETS) {
        throw new DerError("OBJECT IDENTIFIER arc is too large", el.offset);
      }
      value = value * 128 + (b & 0x7f);
      if ((b & 0x80) === 0) {
        if (arcs.length === 0) {
          const first = value < 40 ? 0 : value < 80 ? 1 : 2;
          arcs.push(first, value - first * 40);
        } else {
          arcs.push(value);
        }
        value = 0;
        octets = 0;
      }
    }
    if (octets !== 0) throw new DerError("truncated OBJECT IDENTIFIER", el.offset);
    return arcs.join(".");
  }

  /**
   * Reads a BIT STRING (X.690 §8.6) whose length is a whole number of octets, as every key
   * encoding uses, and returns those octets.
   */
  readBitString(): Uint8Array {
    const el = this.expect(DerTag.BIT_STRING);
    const v = el.value;
    if (v.length === 0) throw new DerError("BIT STRING without its unused-bits octet", el.offset);
    if (v[0] !== 0) throw new DerError("BIT STRING is not a whole number of octets", el.offset);
    return v.subarray(1);
  }

  /** Reads an OCTET STRING and returns its contents. */
  readOctetString(): Uint8Array {
    return this.expect(DerTag.OCTET_STRING).value;
  }
}

/**
 * Reads exactly one element that spans all of `bytes`: trailing data is an error.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DerError, DerTag, readDer } from "./der.ts";
 * assert.equal(readDer(Uint8Array.of(0x05, 0x00)).tag, DerTag.NULL);
 * assert.throws(() => readDer(Uint8Array.of(0x05, 0x00, 0x00)), DerError);
 * ```
 */
export function readDer(bytes: Uint8Array): DerElement {
  const r = new DerReader(bytes);
  const el = r.read();
  r.end();
  return el;
}

/**
 * Encodes one element from its tag and contents, with a minimal definite length (X.690 §10.1).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeDer } from "./der.ts";
 * assert.deepEqual(encodeDer(0x04, new Uint8Array(200)).subarray(0, 3), Uint8Array.of(0x04, 0x81, 200));
 * ```
 */
export function encodeDer(tag: number, value: Uint8Array): Uint8Array {
  const n = value.length;
  let header: number[];
  if (n < 0x80) {
    header = [tag, n];
  } else {
    const len: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) len.unshift(v & 0xff);
    header = [tag, 0x80 | len.length, ...len];
  }
  const out = new Uint8Array(header.length + n);
  out.set(header, 0);
  out.set(value, header.length);
  return out;
}

/** Encodes a SEQUENCE of already-encoded elements. */
export function derSequence(...elements: Uint8Array[]): Uint8Array {
  return encodeDer(DerTag.SEQUENCE, concat(elements));
}

/**
 * Encodes a non-negative INTEGER from its big-endian magnitude, or from a small number: leading
 * zero octets are dropped and a zero octet is added when the top bit is set (X.690 §8.3.2).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { derInteger } from "./der.ts";
 * assert.deepEqual(derInteger(Uint8Array.of(0, 0, 0x80)), Uint8Array.of(0x02, 0x02, 0x00, 0x80));
 * assert.deepEqual(derInteger(0), Uint8Array.of(0x02, 0x01, 0x00));
 * ```
 */
export function derInteger(magnitude: Uint8Array | number): Uint8Array {
  let bytes: Uint8Array;
  if (typeof magnitude === "number") {
    if (!Number.isSafeInteger(magnitude) || magnitude < 0) {
      throw new RangeError(
        `Cannot encode "${magnitude}" as a DER INTEGER: not a safe integer >= 0`,
      );
    }
    const list: number[] = [];
    for (let v = magnitude; v > 0; v = Math.floor(v / 256)) list.unshift(v & 0xff);
    bytes = Uint8Array.from(list);
  } else {
    let i = 0;
    while (i < magnitude.length && magnitude[i] === 0) i++;
    bytes = magnitude.subarray(i);
  }
  if (bytes.length === 0) return Uint8Array.of(DerTag.INTEGER, 1, 0);
  if (bytes[0] >= 0x80) bytes = concat([Uint8Array.of(0), bytes]);
  return encodeDer(DerTag.INTEGER, bytes);
}

/** Encodes a NULL. */
export function derNull(): Uint8Array {
  return Uint8Array.of(DerTag.NULL, 0);
}

/**
 * Encodes an OBJECT IDENTIFIER from its dotted form (X.690 §8.19).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { derOid, DerReader } from "./der.ts";
 * const oid = "1.2.840.113549.1.1.1";
 * assert.equal(new DerReader(derOid(oid)).readOid(), oid);
 * ```
 */
export function derOid(dotted: string): Uint8Array {
  const arcs = dotted.split(".").map((s) => /^\d{1,9}$/.test(s) ? Number(s) : NaN);
  if (
    arcs.length < 2 || arcs.some((a) => Number.isNaN(a)) || arcs[0] > 2 ||
    (arcs[0] < 2 && arcs[1] >= 40)
  ) {
    throw new SyntaxError(`Cannot encode "${dotted}" as an OBJECT IDENTIFIER`);
  }
  const out: number[] = [];
  const values = [arcs[0] * 40 + arcs[1], ...arcs.slice(2)];
  for (const v of values) {
    const group: number[] = [v & 0x7f];
    for (let x = Math.floor(v / 128); x > 0; x = Math.floor(x / 128)) {
      group.unshift(0x80 | (x & 0x7f));
    }
    out.push(...group);
  }
  return encodeDer(DerTag.OID, Uint8Array.from(out));
}

/** Encodes a BIT STRING holding whole octets (no unused bits). */
export function derBitString(octets: Uint8Array): Uint8Array {
  return encodeDer(DerTag.BIT_STRING, concat([Uint8Array.of(0), octets]));
}

/** Encodes an OCTET STRING. */
export function derOctetString(octets: Uint8Array): Uint8Array {
  return encodeDer(DerTag.OCTET_STRING, octets);
}

/**
 * The number of significant bits in a big-endian unsigned magnitude: an RSA modulus's size in
 * bits as RFC 8301 §3.2 counts it (leading zero octets and bits ignored).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bitLength } from "./der.ts";
 * assert.equal(bitLength(Uint8Array.of(0x00, 0x7f, 0xff)), 15);
 * assert.equal(bitLength(Uint8Array.of(0)), 0);
 * ```
 */
export function bitLength(magnitude: Uint8Array): number {
  let i = 0;
  while (i < magnitude.length && magnitude[i] === 0) i++;
  if (i === magnitude.length) return 0;
  return (magnitude.length - i - 1) * 8 + (32 - Math.clz32(magnitude[i]));
}

/** rsaEncryption (RFC 8017 §A.1): the algorithm of RSA keys in SubjectPublicKeyInfo and PKCS#8. */
export const OID_RSA_ENCRYPTION = "1.2.840.113549.1.1.1";

/** id-Ed25519 (RFC 8410 §3): the algorithm of Ed25519 keys. */
export const OID_ED25519 = "1.3.101.112";

/** An AlgorithmIdentifier as read: its OID, and a reader over the parameters that follow it. */
export interface AlgorithmIdentifier {
  /** The algorithm, dotted. */
  readonly oid: string;
  /** The parameters, possibly none. */
  readonly params: DerReader;
}

/**
 * Reads an AlgorithmIdentifier (RFC 5280 §4.1.1.2): its OID, and a reader over its parameters
 * for the caller to check.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { derNull, derOid, DerReader, derSequence, readAlgorithmIdentifier } from "./der.ts";
 * const r = new DerReader(derSequence(derOid("1.2.840.113549.1.1.1"), derNull()));
 * const { oid, params } = readAlgorithmIdentifier(r);
 * assert.equal(oid, "1.2.840.113549.1.1.1");
 * params.readNull();
 * ```
 */
export function readAlgorithmIdentifier(r: DerReader): AlgorithmIdentifier {
  const alg = r.readSequence();
  const oid = alg.readOid();
  return { oid, params: alg };
}

/**
 * Checks the parameters of rsaEncryption: NULL (RFC 3279 §2.3.1), or absent, as some writers
 * leave them.
 */
export function readRsaParameters(params: DerReader): void {
  if (!params.done) params.readNull();
  params.end();
}

/**
 * The SubjectPublicKeyInfo DER (RFC 5280 §4.1.2.7) of an RSA public key (RFC 8017 §A.1.1),
 * from the big-endian magnitudes of its modulus and exponent.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rsaSpki } from "./der.ts";
 * const spki = rsaSpki(new Uint8Array(128).fill(0xff), Uint8Array.of(1, 0, 1));
 * assert.equal(spki.length, 162); // a 1024-bit key's p= is 162 bytes
 * ```
 */
export function rsaSpki(modulus: Uint8Array, exponent: Uint8Array): Uint8Array {
  return derSequence(
    derSequence(derOid(OID_RSA_ENCRYPTION), derNull()),
    derBitString(derSequence(derInteger(modulus), derInteger(exponent))),
  );
}

/**
 * The SubjectPublicKeyInfo DER (RFC 8410 §4) of a raw 32-byte Ed25519 public key.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ed25519Spki } from "./der.ts";
 * assert.equal(ed25519Spki(new Uint8Array(32)).length, 44);
 * ```
 */
export function ed25519Spki(publicKey: Uint8Array): Uint8Array {
  return derSequence(derSequence(derOid(OID_ED25519)), derBitString(publicKey));
}

/**
 * Wraps a PKCS#1 RSAPrivateKey (RFC 8017 §A.1.2, `BEGIN RSA PRIVATE KEY`) into a PKCS#8
 * PrivateKeyInfo (RFC 5208 §5, `BEGIN PRIVATE KEY`) with the rsaEncryption algorithm, the same
 * bytes `openssl pkey` writes. The input is not checked here; `importPrivateKey` does.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { wrapRsaPrivateKey } from "./der.ts";
 * const p8 = wrapRsaPrivateKey(Uint8Array.of(0x30, 0x00));
 * assert.equal(p8[0], 0x30);
 * assert.equal(p8.length, 2 + 3 + 15 + 4);
 * ```
 */
export function wrapRsaPrivateKey(pkcs1: Uint8Array): Uint8Array {
  return derSequence(
    derInteger(0),
    derSequence(derOid(OID_RSA_ENCRYPTION), derNull()),
    derOctetString(pkcs1),
  );
}

/**
 * The PKCS#8 PrivateKeyInfo of an Ed25519 seed (RFC 8410 §7): the form WebCrypto imports.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { wrapEd25519Seed } from "./der.ts";
 * assert.equal(wrapEd25519Seed(new Uint8Array(32)).length, 48);
 * ```
 */
export function wrapEd25519Seed(seed: Uint8Array): Uint8Array {
  return derSequence(
    derInteger(0),
    derSequence(derOid(OID_ED25519)),
    derOctetString(derOctetString(seed)),
  );
}
