import assert from "node:assert/strict";
import { concat, fromBase64, utf8 } from "../../lib/bytes.ts";
import {
  derBitString,
  derInteger,
  derOid,
  DerReader,
  derSequence,
  ed25519Spki,
  rsaSpki,
} from "../../lib/crypto/der.ts";
import { digest } from "../../lib/crypto/hash.ts";
import { KeyError, type KeyErrorCode } from "../../lib/crypto/key_error.ts";
import { importPrivateKey } from "../../lib/crypto/private_key.ts";
import { importPublicKey, MAX_RSA_BITS_DEFAULT } from "../../lib/crypto/public_key.ts";
import { openssl, withTempDir } from "../helpers/openssl.ts";

const KEYS = new URL("../testdata/keys/", import.meta.url);
const readBytes = (name: string) => Deno.readFileSync(new URL(name, KEYS));
const keyPath = (name: string) => new URL(name, KEYS).pathname;

const DATA = utf8("from:Joe SixPack <joe@football.example.com>\r\nsubject:Is dinner ready?\r\n");

Deno.test("importPublicKey() reads SubjectPublicKeyInfo and bare PKCS#1 RSA keys alike", async () => {
  const spki = readBytes("rsa2048_pub.der");
  const fromSpki = await importPublicKey("rsa", spki);
  const fromPkcs1 = await importPublicKey("rsa", readBytes("rsa2048_pub_pkcs1.der"));
  assert.deepEqual(fromSpki.spki, spki);
  assert.deepEqual(fromPkcs1.spki, spki);
  assert.equal(fromPkcs1.bits, 2048);
  const key = await importPrivateKey(readBytes("rsa2048_pkcs1.pem"));
  const signature = await key.sign(DATA);
  assert.equal(await fromPkcs1.verify("sha256", DATA, signature), true);
  assert.equal(await fromSpki.verify("sha256", DATA, signature), true);
});

Deno.test("importPublicKey() accepts an SPKI without the NULL parameters", async () => {
  const spki = readBytes("rsa2048_pub.der");
  const info = new DerReader(spki).readSequence();
  info.readSequence();
  const withoutNull = derSequence(
    derSequence(derOid("1.2.840.113549.1.1.1")),
    derBitString(info.readBitString()),
  );
  const key = await importPublicKey("rsa", withoutNull);
  assert.deepEqual(key.spki, spki, "normalised to the canonical form");
});

Deno.test("VerifyingKey.verify() checks RSA with SHA-1 and SHA-256 (RFC 8301 verifiers)", async () => {
  const pkcs8 = readBytes("rsa2048_pkcs8.der");
  const pub = await importPublicKey("rsa", readBytes("rsa2048_pub.der"));
  for (const [hash, name] of [["sha1", "SHA-1"], ["sha256", "SHA-256"]] as const) {
    const signer = await crypto.subtle.importKey(
      "pkcs8",
      new Uint8Array(pkcs8),
      { name: "RSASSA-PKCS1-v1_5", hash: name },
      false,
      ["sign"],
    );
    const sig = new Uint8Array(
      await crypto.subtle.sign("RSASSA-PKCS1-v1_5", signer, new Uint8Array(DATA)),
    );
    assert.equal(await pub.verify(hash, DATA, sig), true, hash);
    const other = hash === "sha1" ? "sha256" : "sha1";
    assert.equal(
      await pub.verify(other, DATA, sig),
      false,
      `${hash} signature checked as ${other}`,
    );
  }
});

Deno.test("VerifyingKey.verify() returns false for malformed signatures", async () => {
  const rsa = await importPublicKey("rsa", readBytes("rsa2048_pub.der"));
  const ed = await importPublicKey(
    "ed25519",
    fromBase64("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="),
  );
  for (
    const sig of [new Uint8Array(0), new Uint8Array(255), new Uint8Array(256), new Uint8Array(257)]
  ) {
    assert.equal(await rsa.verify("sha256", DATA, sig), false, `${sig.length} bytes`);
  }
  // All ones is bigger than the modulus: RSAVP1 must refuse it, not throw.
  assert.equal(await rsa.verify("sha256", DATA, new Uint8Array(256).fill(0xff)), false);
  for (
    const sig of [
      new Uint8Array(0),
      new Uint8Array(63),
      new Uint8Array(64),
      new Uint8Array(64).fill(0xff),
    ]
  ) {
    assert.equal(await ed.verify("sha256", DATA, sig), false, `${sig.length} bytes`);
  }
});

Deno.test("VerifyingKey.verify() refuses SHA-1 with Ed25519 (RFC 8463 §3)", async () => {
  const ed = await importPublicKey(
    "ed25519",
    fromBase64("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="),
  );
  await assert.rejects(ed.verify("sha1", DATA, new Uint8Array(64)), { code: "unsupported" });
});

/** A SubjectPublicKeyInfo with an arbitrary odd modulus of `bits` bits; never a real key. */
function fakeRsaSpki(bits: number): Uint8Array {
  const n = new Uint8Array(Math.ceil(bits / 8)).fill(0x5a);
  n[0] = 1 << ((bits - 1) % 8);
  n[n.length - 1] |= 1;
  return rsaSpki(n, Uint8Array.of(1, 0, 1));
}

Deno.test("importPublicKey() checks the RSA size from the DER before importing", async () => {
  assert.equal(MAX_RSA_BITS_DEFAULT, 4096);
  await assert.rejects(importPublicKey("rsa", fakeRsaSpki(4097)), {
    code: "too-large",
    message: "Cannot use public key: the RSA key has 4097 bits; at most 4096 are accepted",
  });
  // A 16384-bit modulus costs a DER walk, nothing more.
  await assert.rejects(
    importPublicKey("rsa", fakeRsaSpki(16384), { source: "big._domainkey.example" }),
    {
      code: "too-large",
      message:
        'Cannot use key "big._domainkey.example": the RSA key has 16384 bits; at most 4096 are accepted',
    },
  );
  const key4096 = await importPrivateKey(readBytes("rsa4096.pem"));
  await assert.rejects(importPublicKey("rsa", key4096.publicKey, { maxBits: 2048 }), {
    code: "too-large",
  });
  assert.equal((await importPublicKey("rsa", key4096.publicKey)).bits, 4096);
  const key1023 = await importPrivateKey(readBytes("rsa1023.pem"));
  await assert.rejects(importPublicKey("rsa", key1023.publicKey, { minBits: 1024 }), {
    code: "too-small",
    message: "Cannot use public key: the RSA key has 1023 bits; at least 1024 are required",
  });
  assert.equal((await importPublicKey("rsa", fakeRsaSpki(8192), { maxBits: 8192 })).bits, 8192);
});

const badPublic: {
  name: string;
  type: "rsa" | "ed25519";
  p: () => Uint8Array;
  code: KeyErrorCode;
  detail: RegExp;
}[] = [
  {
    name: "k=ed25519 with an RSA SPKI",
    type: "ed25519",
    p: () => readBytes("rsa2048_pub.der"),
    code: "wrong-type",
    detail: /it is an RSA key, but the record says k=ed25519/,
  },
  {
    name: "k=rsa with 32 raw bytes",
    type: "rsa",
    p: () => fromBase64("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="),
    code: "wrong-type",
    detail: /it is 32 bytes, an Ed25519 key, but the record says k=rsa/,
  },
  {
    name: "k=rsa with an Ed25519 SPKI",
    type: "rsa",
    p: () => ed25519Spki(new Uint8Array(32)),
    code: "wrong-type",
    detail: /it is an Ed25519 key, but the record says k=rsa/,
  },
  {
    name: "k=ed25519 with an Ed25519 SPKI",
    type: "ed25519",
    p: () => ed25519Spki(new Uint8Array(32)),
    code: "syntax",
    detail: /SubjectPublicKeyInfo; RFC 8463 §4 publishes the raw 32-byte key/,
  },
  {
    name: "k=ed25519 with 31 bytes",
    type: "ed25519",
    p: () => new Uint8Array(31),
    code: "syntax",
    detail: /it is 31 bytes; an Ed25519 key is 32/,
  },
  {
    name: "k=ed25519 with 33 bytes",
    type: "ed25519",
    p: () => new Uint8Array(33).fill(0x30),
    code: "syntax",
    detail: /it is 33 bytes/,
  },
  {
    name: "k=rsa with an EC SPKI",
    type: "rsa",
    p: () =>
      derSequence(
        derSequence(derOid("1.2.840.10045.2.1"), derOid("1.2.840.10045.3.1.7")),
        derBitString(new Uint8Array(65)),
      ),
    code: "unsupported",
    detail: /it is an EC key/,
  },
  {
    name: "k=rsa with garbage",
    type: "rsa",
    p: () => utf8("not a key at all"),
    code: "syntax",
    detail: /it is not an RSA public key: Invalid DER/,
  },
  {
    name: "k=rsa with a truncated SPKI",
    type: "rsa",
    p: () => readBytes("rsa2048_pub.der").subarray(0, 200),
    code: "syntax",
    detail: /runs past the end/,
  },
  {
    name: "k=rsa with trailing garbage",
    type: "rsa",
    p: () => concat([readBytes("rsa2048_pub.der"), Uint8Array.of(0)]),
    code: "syntax",
    detail: /trailing/,
  },
  {
    name: "k=rsa with a negative modulus",
    type: "rsa",
    p: () => derSequence(Uint8Array.of(0x02, 0x02, 0x80, 0x01), derInteger(3)),
    code: "syntax",
    detail: /negative/,
  },
  {
    name: "k=rsa with an even exponent",
    type: "rsa",
    p: () => rsaSpki(new Uint8Array(128).fill(0xff), Uint8Array.of(2)),
    code: "invalid",
    detail: /exponent is not an odd number of at least 3/,
  },
  {
    name: "k=rsa with exponent 1",
    type: "rsa",
    p: () => rsaSpki(new Uint8Array(128).fill(0xff), Uint8Array.of(1)),
    code: "invalid",
    detail: /exponent is not an odd number/,
  },
  {
    name: "k=rsa with a huge exponent",
    type: "rsa",
    p: () => rsaSpki(new Uint8Array(128).fill(0xff), new Uint8Array(9).fill(0xff)),
    code: "unsupported",
    detail: /exponent has 72 bits; at most 64/,
  },
  {
    name: "k=rsa with an even modulus",
    type: "rsa",
    p: () => rsaSpki(new Uint8Array(128).fill(0xfe), Uint8Array.of(1, 0, 1)),
    code: "invalid",
    detail: /modulus is not an odd positive number/,
  },
  {
    name: "k=rsa revoked",
    type: "rsa",
    p: () => new Uint8Array(0),
    code: "revoked",
    detail: /revoked/,
  },
  {
    name: "k=ed25519 revoked",
    type: "ed25519",
    p: () => new Uint8Array(0),
    code: "revoked",
    detail: /p= is empty, so the key is revoked \(RFC 6376 §3.6.1\)/,
  },
  {
    name: "unknown k=",
    type: "dsa" as "rsa",
    p: () => new Uint8Array(10),
    code: "unsupported",
    detail: /key type "dsa" is not "rsa" or "ed25519"/,
  },
];

Deno.test("importPublicKey() refuses malformed and mismatched p= values", async () => {
  for (const { name, type, p, code, detail } of badPublic) {
    const source = "sel._domainkey.example.com";
    await assert.rejects(importPublicKey(type, p(), { source }), (e: unknown) => {
      assert.ok(e instanceof KeyError, `${name}: ${e}`);
      assert.equal(e.code, code, `${name}: ${e.message}`);
      assert.equal(e.source, source);
      assert.ok(e.message.startsWith(`Cannot use key "${source}": `), e.message);
      assert.match(e.message, detail, name);
      return true;
    });
  }
});

Deno.test("importPublicKey() throws only KeyError for arbitrary p= bytes", async () => {
  const spki = readBytes("rsa2048_pub.der");
  for (let at = 0; at < spki.length; at += 3) {
    const mutated = spki.slice();
    mutated[at] ^= 0x81;
    for (const type of ["rsa", "ed25519"] as const) {
      try {
        await importPublicKey(type, mutated);
      } catch (e) {
        assert.ok(e instanceof KeyError, `byte ${at} as ${type}: ${e}`);
      }
    }
  }
});

// Cross-checks against the OpenSSL command-line tool: what OpenSSL signs, we verify.

Deno.test("VerifyingKey.verify() accepts RSA signatures from openssl dgst (SHA-256 and SHA-1)", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/data`, DATA);
    const pub = await importPublicKey("rsa", readBytes("rsa2048_pub.der"));
    for (const hash of ["sha256", "sha1"] as const) {
      const run = await openssl([
        "dgst",
        `-${hash}`,
        "-sign",
        keyPath("rsa2048_pkcs1.pem"),
        "-out",
        `${dir}/sig`,
        `${dir}/data`,
      ]);
      assert.equal(run.code, 0, run.text);
      const sig = await Deno.readFile(`${dir}/sig`);
      assert.equal(await pub.verify(hash, DATA, sig), true, hash);
      assert.equal(await pub.verify(hash, utf8("other data"), sig), false, `${hash} other data`);
    }
  });
});

Deno.test("VerifyingKey.verify() accepts Ed25519 signatures from openssl pkeyutl over the digest", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/digest`, digest("sha256", DATA));
    const run = await openssl([
      "pkeyutl",
      "-sign",
      "-inkey",
      keyPath("ed25519.pem"),
      "-rawin",
      "-in",
      `${dir}/digest`,
      "-out",
      `${dir}/sig`,
    ]);
    assert.equal(run.code, 0, run.text);
    const sig = await Deno.readFile(`${dir}/sig`);
    const key = await importPrivateKey(readBytes("ed25519.pem"));
    const pub = await importPublicKey("ed25519", key.publicKey);
    assert.equal(await pub.verify("sha256", DATA, sig), true);
    assert.equal(await pub.verify("sha256", utf8("other data"), sig), false);
    // Ed25519 is deterministic (RFC 8032 §5.1.6): both implementations give the same bytes.
    assert.deepEqual(await key.sign(DATA), sig);
  });
});
