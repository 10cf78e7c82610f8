// Mutation fuzzing of key reading: every key file in tests/testdata/keys with bytes changed, its
// DER changed under intact PEM armour or base64, arbitrary bytes and text. importPrivateKey(),
// importPublicKey(), parsePem() and DerReader only ever return or throw their typed errors
// (KeyError, PemError, DerError), and every call settles.
import assert from "node:assert/strict";
import fc from "fast-check";
import { fromBase64, latin1, toBase64 } from "../../lib/bytes.ts";
import { DerError, DerReader, readDer } from "../../lib/crypto/der.ts";
import { KeyError } from "../../lib/crypto/key_error.ts";
import type { KeyType } from "../../lib/crypto/key_type.ts";
import { importPrivateKey, MAX_PRIVATE_KEY_INPUT_BYTES } from "../../lib/crypto/private_key.ts";
import { importPublicKey } from "../../lib/crypto/public_key.ts";
import { encodePem, MAX_PEM_BLOCKS, parsePem, PemError } from "../../lib/crypto/pem.ts";
import { KEYS_DIR } from "../helpers/dkim_fixtures.ts";
import { anyText, applyEdits, edits, fuzzParams, latin1Text } from "../helpers/fuzz.ts";

const TYPED = [KeyError, PemError, DerError];

/** A hang bound for one import: far above the milliseconds a 4096-bit key takes. */
const IMPORT_LIMIT_MS = 20_000;

async function settles<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle`)), IMPORT_LIMIT_MS);
  });
  try {
    return await Promise.race([promise, hang]);
  } finally {
    clearTimeout(timer);
  }
}

function assertTyped(error: unknown): void {
  assert.ok(TYPED.some((t) => error instanceof t), `untyped ${String(error)}`);
}

/** Every key file, and the DER inside each PEM block (with its label). */
const files: Uint8Array[] = [];
const ders: { label: string; der: Uint8Array }[] = [];
for await (const entry of Deno.readDir(KEYS_DIR)) {
  if (!entry.isFile || /\.(md|sh)$/.test(entry.name)) continue;
  const bytes = await Deno.readFile(new URL(entry.name, KEYS_DIR));
  files.push(bytes);
  const text = latin1(bytes);
  if (text.includes("-----BEGIN ")) {
    for (const block of parsePem(text)) ders.push({ label: block.label, der: block.der });
  } else if (entry.name.endsWith(".der")) {
    ders.push({ label: "PRIVATE KEY", der: bytes });
  }
}
files.sort((a, b) => a.length - b.length || latin1(a).localeCompare(latin1(b)));
ders.sort((a, b) => a.der.length - b.der.length || a.label.localeCompare(b.label));

const privateInput: fc.Arbitrary<Uint8Array | string> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.tuple(fc.constantFrom(...files), edits(4)).map(([f, e]) => applyEdits(f, e)),
  },
  {
    weight: 4,
    arbitrary: fc.tuple(fc.constantFrom(...ders), edits(3), fc.boolean()).map(([d, e, armour]) => {
      const der = applyEdits(d.der, e);
      return armour ? encodePem(d.label, der) : toBase64(der);
    }),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200, size: "max" }) },
  { weight: 1, arbitrary: anyText(100) },
  {
    weight: 1,
    arbitrary: latin1Text(30, ["-----BEGIN PRIVATE KEY-----\n", "-----END PRIVATE KEY-----\n"]),
  },
);

Deno.test("importPrivateKey() returns a working key or throws a typed error for any input", async () => {
  await fc.assert(
    fc.asyncProperty(privateInput, async (input) => {
      try {
        const key = await settles(importPrivateKey(input, "fuzz.key"), "importPrivateKey()");
        assert.ok(key.type === "rsa" || key.type === "ed25519");
        assert.ok((await key.sign(Uint8Array.of(1))).length > 0);
      } catch (error) {
        assertTyped(error);
      }
    }),
    fuzzParams(2000),
  );
});

Deno.test("importPrivateKey() refuses oversized input before parsing it", async () => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 4096 }), fc.boolean(), async (extra, text) => {
      const length = MAX_PRIVATE_KEY_INPUT_BYTES + extra;
      const input = text ? "A".repeat(length) : new Uint8Array(length).fill(0x30);
      await assert.rejects(
        importPrivateKey(input),
        (e) => e instanceof KeyError && /at most/.test(e.message),
      );
    }),
    fuzzParams(20),
  );
});

const rsaSpki = await Deno.readFile(new URL("rsa2048_pub.der", KEYS_DIR));
const rsaPkcs1 = await Deno.readFile(new URL("rsa2048_pub_pkcs1.der", KEYS_DIR));
const edRaw = parsePem(await Deno.readTextFile(new URL("ed25519_pub.pem", KEYS_DIR)))[0].der
  .subarray(-32);
const publicSeeds = [rsaSpki, rsaPkcs1, edRaw];

Deno.test("importPublicKey() returns a key or throws KeyError for any p= bytes", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.tuple(fc.constantFrom(...publicSeeds), edits(3)).map(([p, e]) => applyEdits(p, e)),
        fc.uint8Array({ maxLength: 600, size: "max" }),
        fc.constantFrom(...publicSeeds),
      ),
      fc.constantFrom<KeyType>("rsa", "ed25519"),
      fc.record({
        maxBits: fc.option(fc.integer({ min: 512, max: 8192 }), { nil: undefined }),
        minBits: fc.option(fc.integer({ min: 0, max: 4096 }), { nil: undefined }),
      }),
      async (p, type, options) => {
        try {
          const key = await settles(importPublicKey(type, p, options), "importPublicKey()");
          assert.equal(key.type, type);
          if (type === "rsa") {
            assert.ok(key.bits <= (options.maxBits ?? 4096) && key.bits >= (options.minBits ?? 0));
          }
          // A wrong signature is false, never an exception.
          assert.equal(
            await key.verify("sha256", Uint8Array.of(1), new Uint8Array(key.bits >> 3)),
            false,
          );
        } catch (error) {
          assert.ok(error instanceof KeyError, `untyped ${String(error)}`);
        }
      },
    ),
    fuzzParams(3000),
  );
});

const pemText = fc.oneof(
  fc.tuple(fc.constantFrom(...files), edits(4)).map(([f, e]) => latin1(applyEdits(f, e))),
  latin1Text(40, [
    "-----BEGIN X-----",
    "-----END X-----",
    "-----BEGIN PRIVATE KEY-----",
    "-----END PRIVATE KEY-----",
    "Proc-Type: 4,ENCRYPTED",
    "\nAAAA\n",
    "\n",
  ]),
  anyText(80),
);

Deno.test("parsePem() returns at most MAX_PEM_BLOCKS blocks or throws PemError", () => {
  fc.assert(
    fc.property(pemText, (text) => {
      try {
        const blocks = parsePem(text);
        assert.ok(blocks.length >= 1 && blocks.length <= MAX_PEM_BLOCKS);
        for (const b of blocks) assert.ok(b.line >= 1);
      } catch (error) {
        assert.ok(error instanceof PemError, String(error));
      }
    }),
    fuzzParams(3000),
  );
});

Deno.test("encodePem() and parsePem() round-trip any DER under any label", () => {
  const label = fc.stringMatching(/^[A-Z0-9]{1,8}(?: [A-Z0-9]{1,8}){0,3}$/);
  fc.assert(
    fc.property(label, fc.uint8Array({ maxLength: 300, size: "max" }), (l, der) => {
      const [block] = parsePem(encodePem(l, der));
      assert.equal(block.label, l);
      assert.deepEqual(block.der, der);
    }),
    fuzzParams(500),
  );
});

// Reads every element, descending into constructed ones, as a key parser may.
function walk(reader: DerReader, depth: number): number {
  let count = 0;
  while (!reader.done) {
    const tag = reader.peekTag();
    const el = reader.read();
    count++;
    assert.ok(el.encoded.length >= 2 + el.value.length);
    if ((tag & 0x20) !== 0 && depth < 64) {
      count += walk(new DerReader(el.value, el.offset), depth + 1);
    }
  }
  return count;
}

Deno.test("DerReader reads any bytes element by element or throws DerError", () => {
  const derInput = fc.oneof(
    fc.tuple(fc.constantFrom(...ders), edits(4)).map(([d, e]) => applyEdits(d.der, e)),
    fc.uint8Array({ maxLength: 200, size: "max" }),
    fc.array(
      fc.constantFrom(0x30, 0x02, 0x03, 0x04, 0x05, 0x06, 0x80, 0x81, 0x82, 0x84, 0xff, 0, 1),
      {
        maxLength: 60,
        size: "max",
      },
    ).map((b) => Uint8Array.from(b)),
  );
  fc.assert(
    fc.property(derInput, (bytes) => {
      try {
        walk(new DerReader(bytes), 0);
        const el = readDer(bytes);
        assert.equal(el.encoded.length, bytes.length);
      } catch (error) {
        assert.ok(error instanceof DerError, String(error));
        assert.ok(error.offset >= 0 && error.offset <= bytes.length, `offset ${error.offset}`);
      }
      for (
        const typed of [
          "readInteger",
          "readOid",
          "readBitString",
          "readNull",
          "readSequence",
        ] as const
      ) {
        try {
          new DerReader(bytes)[typed]();
        } catch (error) {
          assert.ok(error instanceof DerError, `${typed}: ${String(error)}`);
        }
      }
    }),
    fuzzParams(3000),
  );
});

Deno.test("importPrivateKey() reads every unmutated test key or says why not", async () => {
  for (const bytes of files) {
    try {
      await importPrivateKey(bytes);
    } catch (error) {
      assertTyped(error);
    }
  }
  assert.ok(files.length > 10);
  assert.ok(fromBase64(toBase64(edRaw)).length === 32);
});
