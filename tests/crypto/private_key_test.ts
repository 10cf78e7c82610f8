import assert from "node:assert/strict";
import { concat, fromBase64, fromUtf8, toBase64, utf8 } from "../../lib/bytes.ts";
import {
  bitLength,
  derInteger,
  derOctetString,
  derOid,
  DerReader,
  derSequence,
  ed25519Spki,
} from "../../lib/crypto/der.ts";
import { digest } from "../../lib/crypto/hash.ts";
import { KeyError, type KeyErrorCode } from "../../lib/crypto/key_error.ts";
import {
  DEFAULT_RSA_BITS,
  generateSigningKey,
  importPrivateKey,
  MAX_PRIVATE_KEY_BITS,
  MAX_PRIVATE_KEY_INPUT_BYTES,
  type SigningKey,
} from "../../lib/crypto/private_key.ts";
import { importPublicKey } from "../../lib/crypto/public_key.ts";
import { encodePem, parsePem } from "../../lib/crypto/pem.ts";
import { openssl, withTempDir, writePublicPem } from "../helpers/openssl.ts";

const KEYS = new URL("../testdata/keys/", import.meta.url);
const readBytes = (name: string) => Deno.readFileSync(new URL(name, KEYS));
const keyPath = (name: string) => new URL(name, KEYS).pathname;
const readText = (name: string) => Deno.readTextFileSync(new URL(name, KEYS));

/** The `p=` value of a TXT record as opendkim-genkey or dknewkey writes it, decoded. */
function pValue(record: string): Uint8Array {
  const joined = record.replace(/"\s*"/g, "").replace(/[()"\s]/g, "");
  const p = /(?:^|;)p=([^;]*)/.exec(joined);
  assert.ok(p, `no p= in ${record}`);
  return fromBase64(p[1]);
}

const DATA = utf8("from:Joe SixPack <joe@football.example.com>\r\nsubject:Is dinner ready?\r\n");

/** Signs DATA, checks the signature with the key's own published p=, and that tampering fails. */
async function assertSignsAndVerifies(key: SigningKey, what: string): Promise<void> {
  const signature = await key.sign(DATA);
  const pub = await importPublicKey(key.type, key.publicKey);
  assert.deepEqual(pub.spki, key.spki, what);
  assert.equal(pub.bits, key.bits, what);
  assert.equal(await pub.verify("sha256", DATA, signature), true, `${what}: verifies`);
  const tampered = DATA.slice();
  tampered[5] ^= 0x20;
  assert.equal(await pub.verify("sha256", tampered, signature), false, `${what}: tampered data`);
  const badSig = signature.slice();
  badSig[badSig.length - 1] ^= 1;
  assert.equal(await pub.verify("sha256", DATA, badSig), false, `${what}: tampered signature`);
}

type Input = Uint8Array | string;

/** Every accepted form, with the key type and bits it must give. */
const accepted: { name: string; input: () => Input; type: "rsa" | "ed25519"; bits: number }[] = [
  { name: "PKCS#8 PEM (RSA)", input: () => readText("rsa2048_pkcs8.pem"), type: "rsa", bits: 2048 },
  { name: "PKCS#1 PEM", input: () => readText("rsa2048_pkcs1.pem"), type: "rsa", bits: 2048 },
  {
    name: "PKCS#8 DER bytes",
    input: () => readBytes("rsa2048_pkcs8.der"),
    type: "rsa",
    bits: 2048,
  },
  {
    name: "PKCS#1 DER bytes",
    input: () => readBytes("rsa2048_pkcs1.der"),
    type: "rsa",
    bits: 2048,
  },
  { name: "PKCS#8 base64", input: () => readText("rsa2048_pkcs8.b64"), type: "rsa", bits: 2048 },
  { name: "PKCS#1 base64", input: () => readText("rsa2048_pkcs1.b64"), type: "rsa", bits: 2048 },
  {
    name: "PKCS#1 PEM as bytes",
    input: () => readBytes("rsa2048_pkcs1.pem"),
    type: "rsa",
    bits: 2048,
  },
  {
    name: "PKCS#1 PEM with CRLF and surrounding whitespace",
    input: () => `\r\n  ${readText("rsa2048_pkcs1.pem").replace(/\n/g, "\r\n")}\r\n\r\n`,
    type: "rsa",
    bits: 2048,
  },
  {
    name: "PKCS#1 base64 folded over lines with CRLF",
    input: () => readText("rsa2048_pkcs1.b64").replace(/(.{76})/g, "$1\r\n") + "\r\n",
    type: "rsa",
    bits: 2048,
  },
  {
    name: "PKCS#8 PEM with a UTF-8 byte order mark",
    input: () => concat([Uint8Array.of(0xef, 0xbb, 0xbf), readBytes("rsa2048_pkcs8.pem")]),
    type: "rsa",
    bits: 2048,
  },
  {
    name: "opendkim-genkey .private",
    input: () => readText("opendkim_genkey.private"),
    type: "rsa",
    bits: 2048,
  },
  { name: "dknewkey RSA .key", input: () => readText("dknewkey_rsa.key"), type: "rsa", bits: 2048 },
  {
    name: "dknewkey Ed25519 .key (bare base64 seed)",
    input: () => readText("dknewkey_ed25519.key"),
    type: "ed25519",
    bits: 256,
  },
  {
    name: "dknewkey Ed25519 .key as bytes",
    input: () => readBytes("dknewkey_ed25519.key"),
    type: "ed25519",
    bits: 256,
  },
  { name: "RFC 8463 seed", input: () => readText("rfc8463.key"), type: "ed25519", bits: 256 },
  {
    name: "Ed25519 PKCS#8 PEM",
    input: () => readText("ed25519.pem"),
    type: "ed25519",
    bits: 256,
  },
  {
    name: "Ed25519 PKCS#8 DER bytes",
    input: () => readBytes("ed25519.der"),
    type: "ed25519",
    bits: 256,
  },
  {
    name: "Ed25519 PKCS#8 base64",
    input: () => toBase64(readBytes("ed25519.der")),
    type: "ed25519",
    bits: 256,
  },
];

Deno.test("importPrivateKey() loads every accepted format, and the key signs and verifies", async () => {
  for (const { name, input, type, bits } of accepted) {
    const key = await importPrivateKey(input(), name);
    assert.equal(key.type, type, name);
    assert.equal(key.bits, bits, name);
    await assertSignsAndVerifies(key, name);
  }
});

Deno.test("importPrivateKey() gives one key for every encoding of the same RSA key", async () => {
  const want = readBytes("rsa2048_pub.der");
  const pem = readText("rsa2048_pkcs8.pem");
  for (
    const name of [
      "rsa2048_pkcs1.pem",
      "rsa2048_pkcs1.der",
      "rsa2048_pkcs1.b64",
      "rsa2048_pkcs8.pem",
      "rsa2048_pkcs8.der",
      "rsa2048_pkcs8.b64",
    ]
  ) {
    const key = await importPrivateKey(readBytes(name), name);
    assert.deepEqual(key.spki, want, name);
    assert.deepEqual(key.publicKey, want, `${name}: p= is the SubjectPublicKeyInfo`);
    assert.equal(await key.toPem(), pem, `${name}: toPem() is OpenSSL's PKCS#8`);
  }
});

Deno.test("importPrivateKey() derives the p= that the key generators published", async () => {
  const pairs: [string, string][] = [
    ["opendkim_genkey.private", "opendkim_genkey.txt"],
    ["dknewkey_rsa.key", "dknewkey_rsa.dns"],
    ["dknewkey_ed25519.key", "dknewkey_ed25519.dns"],
    ["rfc8463.key", "rfc8463.dns"],
  ];
  for (const [keyFile, record] of pairs) {
    const key = await importPrivateKey(readBytes(keyFile), keyFile);
    assert.deepEqual(key.publicKey, pValue(readText(record)), keyFile);
  }
});

Deno.test("importPrivateKey() reads the RFC 8463 Appendix A key pair", async () => {
  // RFC 8463 Appendix A.2: the private key and the p= of brisbane._domainkey.football.example.com.
  const key = await importPrivateKey("nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=");
  assert.equal(toBase64(key.publicKey), "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
  assert.deepEqual(key.spki, ed25519Spki(key.publicKey));
  // It is RFC 8032 §7.1 TEST 1; that test's message is empty, but DKIM signs the SHA-256 of
  // the data, so check against the RFC 8032 key with a WebCrypto signature over the digest.
  const pub = await importPublicKey(
    "ed25519",
    fromBase64("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="),
  );
  const signature = await key.sign(DATA);
  assert.equal(signature.length, 64);
  assert.equal(await pub.verify("sha256", DATA, signature), true);
  const raw = await crypto.subtle.importKey("spki", new Uint8Array(pub.spki), "Ed25519", false, [
    "verify",
  ]);
  const prehashed = new Uint8Array(digest("sha256", DATA));
  assert.equal(
    await crypto.subtle.verify("Ed25519", raw, new Uint8Array(signature), prehashed),
    true,
  );
  assert.equal(
    await crypto.subtle.verify("Ed25519", raw, new Uint8Array(signature), new Uint8Array(DATA)),
    false,
    "the signature is over the digest, not the data (RFC 8463 §3)",
  );
  // Ed25519 is deterministic (RFC 8032 §5.1.6): the same data gives the same signature.
  assert.deepEqual(await key.sign(DATA), signature);
});

Deno.test("importPrivateKey() counts the true modulus bits", async () => {
  for (const bits of [1023, 1024, 2047, 3072, 4096]) {
    const key = await importPrivateKey(readBytes(`rsa${bits}.pem`), `rsa${bits}.pem`);
    assert.equal(key.bits, bits);
    const pub = await importPublicKey("rsa", key.publicKey, { maxBits: 4096 });
    assert.equal(pub.bits, bits);
    assert.equal(bitLength(modulusOf(key.spki)), bits, "the modulus in the SPKI");
    await assertSignsAndVerifies(key, `rsa${bits}`);
  }
});

function modulusOf(spki: Uint8Array): Uint8Array {
  const info = new DerReader(spki).readSequence();
  info.readSequence();
  return new DerReader(info.readBitString()).readSequence().readUnsignedInteger();
}

Deno.test("importPrivateKey() accepts a libsodium 64-byte Ed25519 secret key", async () => {
  const seed = fromBase64(readText("rfc8463.key"));
  const pub = fromBase64("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
  const key = await importPrivateKey(toBase64(concat([seed, pub])));
  assert.deepEqual(key.publicKey, pub);
  const wrong = pub.slice();
  wrong[0] ^= 1;
  await assert.rejects(importPrivateKey(toBase64(concat([seed, wrong])), "sodium.key"), {
    code: "invalid",
    message: /^Cannot use key "sodium.key": the public key stored with the Ed25519 seed/,
  });
});

Deno.test("importPrivateKey() checks the public key inside a PKCS#8 v2 Ed25519 key", async () => {
  const seed = fromBase64(readText("rfc8463.key"));
  const pub = fromBase64("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
  const v2 = (publicKey: Uint8Array) =>
    derSequence(
      derInteger(1),
      derSequence(derOid("1.3.101.112")),
      derOctetString(derOctetString(seed)),
      // publicKey [1] IMPLICIT BIT STRING (RFC 5958 §2).
      concat([Uint8Array.of(0x81, 33, 0), publicKey]),
    );
  const good = await importPrivateKey(encodePem("PRIVATE KEY", v2(pub)));
  assert.deepEqual(good.publicKey, pub);
  const wrong = pub.slice();
  wrong[31] ^= 0x80;
  await assert.rejects(importPrivateKey(v2(wrong), "v2.der"), { code: "invalid" });
});

Deno.test("importPrivateKey() ignores PKCS#8 attributes", async () => {
  const seed = fromBase64(readText("rfc8463.key"));
  const withAttributes = derSequence(
    derInteger(0),
    derSequence(derOid("1.3.101.112")),
    derOctetString(derOctetString(seed)),
    Uint8Array.of(0xa0, 0x00),
  );
  const key = await importPrivateKey(withAttributes);
  assert.equal(toBase64(key.publicKey), "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
});

/** The PKCS#8 DER of rsa1024.pem with one bit of a private prime flipped. */
function damagedRsa(): Uint8Array {
  const der = readBytes("rsa1024.pem");
  const [block] = parsePem(new TextDecoder().decode(der));
  const p8 = block.der.slice();
  // Flip a bit deep inside the private key: the first prime, past the modulus and exponents.
  p8[p8.length - 200] ^= 0x10;
  return p8;
}

const refused: { name: string; input: () => Input; code: KeyErrorCode; detail: RegExp }[] = [
  {
    name: "rsa_encrypted_pkcs8.pem",
    input: () => readText("rsa_encrypted_pkcs8.pem"),
    code: "encrypted",
    detail: /PEM "ENCRYPTED PRIVATE KEY" is encrypted; .*openssl pkey/,
  },
  {
    name: "rsa_encrypted_pkcs8.der",
    input: () => readBytes("rsa_encrypted_pkcs8.der"),
    code: "encrypted",
    detail: /encrypted PKCS#8 key \(algorithm "1.2.840.113549.1.5.13"\)/,
  },
  {
    name: "rsa_encrypted_pkcs1.pem",
    input: () => readText("rsa_encrypted_pkcs1.pem"),
    code: "encrypted",
    detail: /PEM "RSA PRIVATE KEY" is encrypted \(Proc-Type: 4,ENCRYPTED\)/,
  },
  {
    name: "ed25519_encrypted.pem",
    input: () => readText("ed25519_encrypted.pem"),
    code: "encrypted",
    detail: /is encrypted/,
  },
  {
    name: "rsa2048_pub.pem",
    input: () => readText("rsa2048_pub.pem"),
    code: "wrong-type",
    detail: /^PEM "PUBLIC KEY" is a public key, not a private key$/,
  },
  {
    name: "rsa2048_pub_pkcs1.pem",
    input: () => readText("rsa2048_pub_pkcs1.pem"),
    code: "wrong-type",
    detail: /^PEM "RSA PUBLIC KEY" is a public key, not a private key$/,
  },
  {
    name: "ed25519_pub.pem",
    input: () => readText("ed25519_pub.pem"),
    code: "wrong-type",
    detail: /is a public key/,
  },
  {
    name: "rsa2048_pub.der",
    input: () => readBytes("rsa2048_pub.der"),
    code: "wrong-type",
    detail: /public key \(SubjectPublicKeyInfo\), not a private key/,
  },
  {
    name: "rsa2048_pub_pkcs1.der",
    input: () => readBytes("rsa2048_pub_pkcs1.der"),
    code: "wrong-type",
    detail: /RSA public key \(PKCS#1\), not a private key/,
  },
  {
    name: "certificate.pem",
    input: () => readText("certificate.pem"),
    code: "wrong-type",
    detail: /^PEM "CERTIFICATE" is a certificate, not a private key$/,
  },
  {
    name: "ec_sec1.pem",
    input: () => readText("ec_sec1.pem"),
    code: "unsupported",
    detail: /PEM "EC PRIVATE KEY" is an EC key; DKIM keys are RSA \(RFC 6376\) or Ed25519/,
  },
  {
    name: "ec_sec1 DER",
    input: () => parsePem(readText("ec_sec1.pem"))[1].der,
    code: "unsupported",
    detail: /EC private key \(SEC 1\)/,
  },
  {
    name: "ec_pkcs8.pem",
    input: () => readText("ec_pkcs8.pem"),
    code: "unsupported",
    detail: /it is an EC key/,
  },
  {
    name: "dsa_pkcs8.pem",
    input: () => readText("dsa_pkcs8.pem"),
    code: "unsupported",
    detail: /it is a DSA key/,
  },
  {
    name: "dsa_traditional.pem",
    input: () => readText("dsa_traditional.pem"),
    code: "unsupported",
    detail: /PEM "DSA PRIVATE KEY" is a DSA key/,
  },
  {
    name: "dsa_traditional DER",
    input: () => parsePem(readText("dsa_traditional.pem"))[0].der,
    code: "unsupported",
    detail: /DSA private key/,
  },
  {
    name: "ed448.pem",
    input: () => readText("ed448.pem"),
    code: "unsupported",
    detail: /an Ed448 key/,
  },
  {
    name: "x25519.pem",
    input: () => readText("x25519.pem"),
    code: "unsupported",
    detail: /an X25519 key/,
  },
  {
    name: "rsa_pss.pem",
    input: () => readText("rsa_pss.pem"),
    code: "unsupported",
    detail: /an RSA-PSS key/,
  },
  {
    name: "OpenSSH key",
    input: () =>
      "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA\n-----END OPENSSH PRIVATE KEY-----\n",
    code: "unsupported",
    detail: /OpenSSH's own format/,
  },
  {
    name: "two private keys",
    input: () => readText("rsa1024.pem") + readText("ed25519.pem"),
    code: "syntax",
    detail: /holds 2 private keys; expected one/,
  },
  { name: "empty", input: () => "", code: "syntax", detail: /the key is empty/ },
  { name: "whitespace", input: () => " \r\n\t\n", code: "syntax", detail: /the key is empty/ },
  {
    name: "garbage text",
    input: () => "not a key: really\n",
    code: "syntax",
    detail: /not PEM, base64 or DER/,
  },
  {
    name: "garbage binary",
    input: () => Uint8Array.of(0x00, 0xff, 0x13, 0x37, 0x80),
    code: "syntax",
    detail: /not a DER private key: Invalid DER at offset 0: expected SEQUENCE/,
  },
  {
    name: "truncated DER",
    input: () => readBytes("rsa2048_pkcs8.der").subarray(0, 500),
    code: "syntax",
    detail: /runs past the end/,
  },
  {
    name: "DER with trailing garbage",
    input: () => concat([readBytes("rsa2048_pkcs8.der"), Uint8Array.of(0)]),
    code: "syntax",
    detail: /trailing/,
  },
  {
    name: "PEM without END",
    input: () => readText("rsa2048_pkcs1.pem").replace(/-----END[^\n]*\n/, ""),
    code: "syntax",
    detail: /Invalid PEM at line 1: "BEGIN RSA PRIVATE KEY" has no matching END line/,
  },
  {
    name: "PEM with a broken body",
    input: () => readText("rsa2048_pkcs1.pem").replace(/\n[A-Za-z0-9+/]{4}/, "\n!!!!"),
    code: "syntax",
    detail: /not base64/,
  },
  {
    name: "PEM with a truncated body",
    input: () => {
      const lines = readText("rsa2048_pkcs1.pem").split("\n");
      return [...lines.slice(0, 10), ...lines.slice(-2)].join("\n");
    },
    code: "syntax",
    detail: /not a DER private key/,
  },
  {
    name: "base64 of the wrong length",
    input: () => toBase64(new Uint8Array(33).fill(7)),
    code: "syntax",
    detail: /not a DER private key/,
  },
  {
    name: "base64 with an impossible length",
    input: () => "AAAAA",
    code: "syntax",
    detail: /neither PEM nor valid base64/,
  },
  {
    name: "too large",
    input: () => "A".repeat(MAX_PRIVATE_KEY_INPUT_BYTES + 1),
    code: "syntax",
    detail: /it is 65537 bytes; a key is at most 65536 bytes/,
  },
  {
    name: "PKCS#8 with an unknown algorithm",
    input: () =>
      derSequence(derInteger(0), derSequence(derOid("1.2.3.4")), derOctetString(new Uint8Array(4))),
    code: "unsupported",
    detail: /its algorithm "1.2.3.4" is not RSA or Ed25519/,
  },
  {
    name: "PKCS#8 version 3",
    input: () =>
      derSequence(
        derInteger(3),
        derSequence(derOid("1.3.101.112")),
        derOctetString(new Uint8Array(4)),
      ),
    code: "unsupported",
    detail: /PKCS#8 version 3/,
  },
  {
    name: "Ed25519 PKCS#8 with a short seed",
    input: () =>
      derSequence(
        derInteger(0),
        derSequence(derOid("1.3.101.112")),
        derOctetString(derOctetString(new Uint8Array(31))),
      ),
    code: "syntax",
    detail: /the Ed25519 private key is 31 bytes, not 32/,
  },
  {
    name: "multi-prime RSA",
    input: () => derSequence(derInteger(1), ...Array.from({ length: 8 }, () => derInteger(3))),
    code: "unsupported",
    detail: /version 1 \(multi-prime\)/,
  },
  {
    name: "RSA with an even modulus",
    input: () =>
      derSequence(
        derInteger(0),
        derInteger(1000),
        ...Array.from({ length: 7 }, () => derInteger(3)),
      ),
    code: "invalid",
    detail: /modulus is not an odd positive number/,
  },
  {
    name: "damaged RSA key",
    input: damagedRsa,
    code: "invalid",
    detail: /the numbers in the RSA private key do not agree: the key is damaged/,
  },
];

Deno.test("importPrivateKey() refuses unusable keys with a KeyError naming the source", async () => {
  for (const { name, input, code, detail } of refused) {
    const source = `/etc/opendkim/keys/${name}`;
    await assert.rejects(importPrivateKey(input(), source), (e: unknown) => {
      assert.ok(e instanceof KeyError, `${name}: ${e}`);
      assert.equal(e.name, "KeyError");
      assert.equal(e.code, code, `${name}: ${e.message}`);
      assert.equal(e.source, source);
      const prefix = `Cannot use key "${source}": `;
      assert.ok(e.message.startsWith(prefix), e.message);
      assert.match(e.message.slice(prefix.length), detail, name);
      return true;
    });
  }
});

Deno.test("importPrivateKey() says inline key when given no source", async () => {
  await assert.rejects(importPrivateKey("nope!"), (e: unknown) => {
    assert.ok(e instanceof KeyError);
    assert.equal(e.source, undefined);
    assert.equal(e.message, "Cannot use inline key: it is not PEM, base64 or DER");
    return true;
  });
});

Deno.test("importPrivateKey() refuses every mutated RSA key with a KeyError", async () => {
  const p8 = parsePem(readText("rsa1024.pem"))[0].der;
  // Deterministic positions spread over the headers, the modulus and every private part: a
  // changed CRT value (which WebCrypto would silently ignore) must be caught too.
  for (let at = 0; at < p8.length; at += 3) {
    const mutated = p8.slice();
    mutated[at] ^= 0x41;
    await assert.rejects(importPrivateKey(mutated, "mutated"), (e: unknown) => {
      assert.ok(e instanceof KeyError, `byte ${at}: ${e}`);
      return true;
    }, `byte ${at}`);
  }
});

Deno.test("importPrivateKey() throws only KeyError for mutated Ed25519 keys", async () => {
  const ed = readBytes("ed25519.der");
  let loaded = 0;
  for (let at = 0; at < ed.length; at++) {
    const mutated = ed.slice();
    mutated[at] ^= 0x41;
    try {
      await importPrivateKey(mutated, "mutated");
      loaded++;
    } catch (e) {
      assert.ok(e instanceof KeyError, `byte ${at}: ${e}`);
    }
  }
  // Any 32 bytes are a seed: a changed seed loads as another key.
  assert.equal(loaded, 32);
});

Deno.test("generateSigningKey() makes keys that sign, verify and round-trip through PEM", async () => {
  for (const [type, bits, want] of [["ed25519", undefined, 256], ["rsa", 1024, 1024]] as const) {
    const key = await generateSigningKey(type, bits);
    assert.equal(key.type, type);
    assert.equal(key.bits, want);
    await assertSignsAndVerifies(key, `generated ${type}`);
    const pem = await key.toPem();
    assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n/);
    const again = await importPrivateKey(pem);
    assert.deepEqual(again.spki, key.spki);
  }
});

Deno.test("generateSigningKey() makes 2048-bit RSA keys by default", async () => {
  assert.equal(DEFAULT_RSA_BITS, 2048);
  const key = await generateSigningKey("rsa");
  assert.equal(key.bits, 2048);
  assert.equal(key.publicKey.length, 294, "the p= of a 2048-bit key, as opendkim-genkey's");
});

Deno.test("generateSigningKey() refuses sizes outside RFC 8301's range", async () => {
  for (const bits of [512, 1023, 4097, 8192, 2048.5, NaN]) {
    await assert.rejects(generateSigningKey("rsa", bits), RangeError, String(bits));
  }
  await assert.rejects(generateSigningKey("ed25519", 255), RangeError);
  await assert.rejects(generateSigningKey("ecdsa" as "rsa"), RangeError);
});

Deno.test("importPrivateKey() keeps the parse error as the KeyError's cause", async () => {
  await assert.rejects(
    importPrivateKey(readBytes("rsa2048_pkcs8.der").subarray(0, 100)),
    (e: unknown) => {
      assert.ok(e instanceof KeyError);
      assert.ok(e.cause instanceof SyntaxError);
      return true;
    },
  );
});

Deno.test("importPrivateKey() refuses an RSA key over MAX_PRIVATE_KEY_BITS before any slow work", async () => {
  // A 20000-bit odd modulus with small other numbers: refused for its size, not for being
  // inconsistent, and without the minute-long self-check signature such a key would cost.
  const modulus = new Uint8Array(2500).fill(0xff);
  const pkcs1 = derSequence(
    derInteger(0),
    derInteger(modulus),
    derInteger(65537),
    ...[3, 5, 7, 1, 1, 1].map((n) => derInteger(n)),
  );
  await assert.rejects(
    importPrivateKey(encodePem("RSA PRIVATE KEY", pkcs1), "/etc/dkimd/huge.private"),
    (e: unknown) =>
      e instanceof KeyError && e.code === "too-large" && e.source === "/etc/dkimd/huge.private" &&
      e.message.includes(`20000 bits`) && e.message.includes(`${MAX_PRIVATE_KEY_BITS}`),
  );
});

// Cross-checks against the OpenSSL command-line tool: what we sign, OpenSSL verifies, and the key
// encodings we write are the ones OpenSSL writes.

Deno.test("SigningKey.sign() RSA signatures verify with openssl dgst -sha256", async () => {
  await withTempDir(async (dir) => {
    const keys = [
      await importPrivateKey(readBytes("rsa2048_pkcs1.pem"), "rsa2048_pkcs1.pem"),
      await importPrivateKey(readBytes("rsa1023.pem"), "rsa1023.pem"),
      await importPrivateKey(readBytes("rsa2048_pkcs1.b64"), "rsa2048_pkcs1.b64"),
      await generateSigningKey("rsa", 1024),
    ];
    for (const key of keys) {
      const pub = await writePublicPem(dir, key);
      await Deno.writeFile(`${dir}/data`, DATA);
      await Deno.writeFile(`${dir}/sig`, await key.sign(DATA));
      const args = ["dgst", "-sha256", "-verify", pub, "-signature", `${dir}/sig`, `${dir}/data`];
      const ok = await openssl(args);
      assert.equal(ok.code, 0, ok.text);
      assert.match(ok.text, /Verified OK/);
      await Deno.writeFile(`${dir}/data`, utf8("other data"));
      const bad = await openssl(args);
      assert.notEqual(bad.code, 0, "openssl must reject the signature over other data");
      assert.match(bad.text, /Verification failure/);
    }
  });
});

Deno.test("SigningKey.sign() Ed25519 signs the SHA-256 digest, as openssl pkeyutl -rawin checks", async () => {
  await withTempDir(async (dir) => {
    const keys = [
      await importPrivateKey(readBytes("ed25519.pem"), "ed25519.pem"),
      await importPrivateKey(readBytes("rfc8463.key"), "rfc8463.key"),
      await importPrivateKey(readBytes("dknewkey_ed25519.key"), "dknewkey_ed25519.key"),
      await generateSigningKey("ed25519"),
    ];
    for (const key of keys) {
      const pub = await writePublicPem(dir, key);
      // RFC 8463 §3: the Ed25519 input is the SHA-256 hash, so OpenSSL gets the 32 digest bytes.
      await Deno.writeFile(`${dir}/digest`, digest("sha256", DATA));
      await Deno.writeFile(`${dir}/sig`, await key.sign(DATA));
      const args = [
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        pub,
        "-rawin",
        "-in",
        `${dir}/digest`,
        "-sigfile",
        `${dir}/sig`,
      ];
      const ok = await openssl(args);
      assert.equal(ok.code, 0, ok.text);
      assert.match(ok.text, /Signature Verified Successfully/);
      await Deno.writeFile(`${dir}/digest`, DATA);
      const bad = await openssl(args);
      assert.notEqual(bad.code, 0, "the signature is over the digest, not over the data");
    }
  });
});

Deno.test("SigningKey.toPem() of a PKCS#1 key equals what openssl pkey writes", async () => {
  await withTempDir(async (dir) => {
    const fresh = `${dir}/fresh.pem`;
    const gen = await openssl(["genrsa", "-traditional", "-out", fresh, "1024"]);
    assert.equal(gen.code, 0, gen.text);
    assert.match(await Deno.readTextFile(fresh), /^-----BEGIN RSA PRIVATE KEY-----\n/);
    for (const path of [fresh, keyPath("rsa2048_pkcs1.pem"), keyPath("ed25519.pem")]) {
      const want = await openssl(["pkey", "-in", path]);
      assert.equal(want.code, 0, want.text);
      const key = await importPrivateKey(await Deno.readFile(path), path);
      assert.equal(await key.toPem(), fromUtf8(want.stdout), path);
    }
  });
});

Deno.test("SigningKey.spki and bits agree with openssl pkey for every test key", async () => {
  for (
    const name of [
      "rsa1023.pem",
      "rsa1024.pem",
      "rsa2047.pem",
      "rsa3072.pem",
      "rsa4096.pem",
      "rsa2048_pkcs1.pem",
      "opendkim_genkey.private",
      "ed25519.pem",
    ]
  ) {
    const key = await importPrivateKey(readBytes(name), name);
    const spki = await openssl(["pkey", "-in", keyPath(name), "-pubout", "-outform", "DER"]);
    assert.equal(spki.code, 0, spki.text);
    assert.deepEqual(key.spki, spki.stdout, name);
    const text = await openssl(["pkey", "-in", keyPath(name), "-noout", "-text"]);
    if (key.type === "ed25519") {
      assert.match(text.text, /^ED25519 Private-Key:/);
      assert.equal(key.bits, 256);
      continue;
    }
    const bits = /^Private-Key: \((\d+) bit/.exec(text.text);
    assert.ok(bits, text.text);
    assert.equal(key.bits, Number(bits[1]), name);
  }
});

Deno.test("SigningKey.toPem() of the RFC 8463 seed gives OpenSSL the published public key", async () => {
  await withTempDir(async (dir) => {
    const key = await importPrivateKey(readBytes("rfc8463.key"));
    await Deno.writeTextFile(`${dir}/key.pem`, await key.toPem());
    const pub = await openssl(["pkey", "-in", `${dir}/key.pem`, "-pubout", "-outform", "DER"]);
    assert.equal(pub.code, 0, pub.text);
    assert.deepEqual(pub.stdout, key.spki);
    assert.equal(
      btoa(String.fromCharCode(...pub.stdout.subarray(-32))),
      "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
    );
  });
});

Deno.test("generateSigningKey() writes keys that openssl pkey -check accepts", async () => {
  await withTempDir(async (dir) => {
    for (
      const key of [await generateSigningKey("rsa", 1024), await generateSigningKey("ed25519")]
    ) {
      await Deno.writeTextFile(`${dir}/key.pem`, await key.toPem());
      const check = await openssl(["pkey", "-in", `${dir}/key.pem`, "-check", "-noout"]);
      assert.equal(check.code, 0, check.text);
      assert.match(check.text, /Key is valid/);
      const pub = await openssl(["pkey", "-in", `${dir}/key.pem`, "-pubout", "-outform", "DER"]);
      assert.deepEqual(pub.stdout, key.spki, key.type);
    }
  });
});

// CPU milliseconds (user + system) from a /proc stat file, read on the calling thread.
function cpuMs(path: string): number {
  const fields = Deno.readTextFileSync(path).split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

// dkimd computes RSA signatures with WebCrypto and relies on Deno running them off the event
// loop's thread (its blocking pool): a milter that signed on the event loop would stall every
// other connection for about 2 ms per signature and leave the second core idle. This guards that
// assumption across Deno upgrades, with CPU time (not wall time, which a busy machine stretches):
// the thread that asks for the signatures must spend a small part of the CPU they cost. Were they
// computed in the call (as Ed25519 signatures are), it would spend all of it.
Deno.test("SigningKey.sign() computes RSA signatures off the calling thread", async () => {
  const key = await generateSigningKey("rsa", 2048);
  const data = new TextEncoder().encode("header hash input");
  await key.sign(data); // Warm up.
  const thread0 = cpuMs("/proc/thread-self/stat");
  const process0 = cpuMs("/proc/self/stat");
  const signatures = await Promise.all(Array.from({ length: 128 }, () => key.sign(data)));
  const thread = cpuMs("/proc/thread-self/stat") - thread0;
  const all = cpuMs("/proc/self/stat") - process0;
  // 128 signatures cost about 250 ms of CPU; the asking thread spends a few ms of it (the work
  // of the calls themselves), against about two fifths when Ed25519 keys sign in the call.
  assert.ok(all >= 50, `the signatures took ${all} ms of CPU`);
  assert.ok(thread <= all / 5, `the calling thread spent ${thread} ms of the ${all} ms`);
  const pub = await importPublicKey("rsa", key.publicKey);
  for (const s of signatures) assert.equal(await pub.verify("sha256", data, s), true);
});
