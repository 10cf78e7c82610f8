/**
 * Cross-checks lib/crypto against the OpenSSL command-line tool: what we sign, OpenSSL verifies;
 * what OpenSSL signs, we verify; and the key encodings we write are the ones OpenSSL writes.
 */

import assert from "node:assert/strict";
import { fromUtf8, utf8 } from "../../lib/bytes.ts";
import { digest } from "../../lib/crypto/hash.ts";
import {
  generateSigningKey,
  importPrivateKey,
  type SigningKey,
} from "../../lib/crypto/private_key.ts";
import { importPublicKey } from "../../lib/crypto/public_key.ts";
import { encodePem } from "../../lib/crypto/pem.ts";

const OPENSSL = "/usr/bin/openssl";
/** Longest one openssl run may take: key checks and signatures finish in well under a second. */
const OPENSSL_TIMEOUT_MS = 30_000;

const KEYS = new URL("../testdata/keys/", import.meta.url);
const keyPath = (name: string) => new URL(name, KEYS).pathname;
const readBytes = (name: string) => Deno.readFileSync(new URL(name, KEYS));

const DATA = utf8("from:Joe SixPack <joe@football.example.com>\r\nsubject:Is dinner ready?\r\n");

interface Run {
  code: number;
  stdout: Uint8Array;
  text: string;
}

async function openssl(args: string[]): Promise<Run> {
  const out = await new Deno.Command(OPENSSL, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(OPENSSL_TIMEOUT_MS),
  }).output();
  return {
    code: out.code,
    stdout: out.stdout,
    text: fromUtf8(out.stdout) + fromUtf8(out.stderr),
  };
}

/** Runs `fn` with a fresh temporary directory, removed afterwards. */
async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dkimd_crypto_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Writes the key's public half as PEM, for openssl -verify. */
async function writePublicPem(dir: string, key: SigningKey): Promise<string> {
  const path = `${dir}/pub.pem`;
  await Deno.writeTextFile(path, encodePem("PUBLIC KEY", key.spki));
  return path;
}

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
