/**
 * CryptoBackend openssl: libcrypto 3 by FFI signs byte for byte as WebCrypto (RSASSA-PKCS1-v1_5
 * is deterministic) on thousands of generated messages and keys of 1024, 2048 and 4096 bits,
 * verifies as WebCrypto does on valid and tampered input, falls back or refuses when libcrypto
 * cannot be used, and signs through the `start` task's own flags.
 */
import assert from "node:assert/strict";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import { openOpensslEngine, WEBCRYPTO_ENGINE } from "../../lib/crypto/crypto_backend.ts";
import { generateSigningKey } from "../../lib/crypto/private_key.ts";
import { openLibcrypto, OpensslUnavailableError } from "../../lib/crypto/openssl.ts";
import { signMessage } from "../../lib/dkim/sign.ts";
import { MilterClient } from "../../lib/milter/client.ts";
import { verifyMessage } from "../../lib/dkim/verify.ts";
import { KeyFileResolver } from "../../lib/dns/key_file.ts";
import { KeyCache } from "../../lib/dkim/key_cache.ts";
import { startDkimd } from "../helpers/dkimd_process.ts";

/** A small deterministic PRNG (mulberry32), so a failure can be replayed. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = ["hello", "DKIM", "signature", "über", "\t", " ", "relaxed", "x", "=?utf-8?q?a?="];

function message(random: () => number): Uint8Array {
  const pick = () => WORDS[Math.floor(random() * WORDS.length)];
  const line = (n: number) => Array.from({ length: n }, pick).join(" ");
  const headers = [
    `From: a${Math.floor(random() * 1000)}@example.com`,
    `To: b@example.org`,
    `Subject: ${line(1 + Math.floor(random() * 8))}`,
    `Date: Mon, 1 Jan 2024 00:00:${String(Math.floor(random() * 60)).padStart(2, "0")} +0000`,
  ];
  if (random() < 0.5) headers.push(`Message-ID: <${Math.floor(random() * 1e9)}@example.com>`);
  const body = Array.from({ length: Math.floor(random() * 20) }, () => line(random() * 12))
    .join("\r\n");
  return fromLatin1(`${headers.join("\r\n")}\r\n\r\n${body}\r\nend\r\n`);
}

const engine = openOpensslEngine();

for (const [bits, keys, messages] of [[1024, 6, 250], [2048, 4, 250], [4096, 2, 100]]) {
  Deno.test(`OpenSSL signs ${keys * messages} messages with ${keys} RSA-${bits} keys byte for byte as WebCrypto, and both verify alike`, async () => {
    const openssl = await engine;
    const random = rng(bits);
    for (let k = 0; k < keys; k++) {
      const pem = await (await generateSigningKey("rsa", bits)).toPem();
      const web = await WEBCRYPTO_ENGINE.importPrivateKey(pem, "web");
      const native = await openssl.importPrivateKey(pem, "native");
      assert.equal(native.bits, bits);
      assert.deepEqual(native.publicKey, web.publicKey);
      const record = `v=DKIM1; k=rsa; p=${btoa(String.fromCharCode(...web.publicKey))}`;
      const webPub = await WEBCRYPTO_ENGINE.importPublicKey("rsa", web.publicKey);
      const nativePub = await openssl.importPublicKey("rsa", web.publicKey);
      for (let m = 0; m < messages; m++) {
        const msg = message(random);
        const options = (key: typeof web) => [{ domain: "example.com", selector: "s", key }];
        const now = { now: () => 1_700_000_000 + m };
        const [a] = await signMessage(msg, options(web), now);
        const [b] = await signMessage(msg, options(native), now);
        assert.equal(latin1(b.raw), latin1(a.raw));
        // The raw RSA signatures over arbitrary data, and both verifiers on them.
        const data = msg.subarray(0, 1 + Math.floor(random() * msg.length));
        const signature = await native.sign(data);
        assert.deepEqual(signature, await web.sign(data));
        assert.equal(await nativePub.verify("sha256", data, signature), true);
        const tampered = signature.slice();
        tampered[Math.floor(random() * tampered.length)] ^= 1 << Math.floor(random() * 8);
        const flipped = data.slice();
        flipped[Math.floor(random() * flipped.length)] ^= 1;
        for (const [d, s] of [[data, tampered], [flipped, signature]]) {
          assert.equal(await nativePub.verify("sha256", d, s), false);
          assert.equal(await webPub.verify("sha256", d, s), false);
        }
        assert.equal(await nativePub.verify("sha256", data, signature.subarray(1)), false);
        if (m % 25 === 0) {
          // A whole DKIM verification through each engine's keys, same verdicts.
          const signed = new Uint8Array([...b.raw, 13, 10, ...msg]);
          const resolver = new KeyFileResolver(new Map([["s._domainkey.example.com", [record]]]));
          for (const e of [openssl, WEBCRYPTO_ENGINE]) {
            const keyCache = new KeyCache(undefined, undefined, e.importPublicKey.bind(e));
            const verdicts = await verifyMessage(signed, {
              resolver,
              keyCache,
              now: () => 1_700_000_000,
            });
            assert.equal(verdicts[0].result, "pass", e.name);
            signed[signed.length - 3] ^= 1; // the body's last letter
            const [bad] = await verifyMessage(signed, {
              resolver,
              keyCache,
              now: () => 1_700_000_000,
            });
            assert.equal(bad.result, "fail", e.name);
            signed[signed.length - 3] ^= 1;
          }
        }
      }
    }
  });
}

Deno.test("OpenSSL verifies rsa-sha1 as WebCrypto does", async () => {
  const openssl = await engine;
  const pair = await crypto.subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 2048,
      publicExponent: Uint8Array.of(1, 0, 1),
      hash: "SHA-1",
    },
    true,
    ["sign", "verify"],
  );
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", pair.publicKey));
  const native = await openssl.importPublicKey("rsa", spki);
  const web = await WEBCRYPTO_ENGINE.importPublicKey("rsa", spki);
  const random = rng(1);
  for (let i = 0; i < 200; i++) {
    const data = message(random);
    const signature = new Uint8Array(
      await crypto.subtle.sign(
        "RSASSA-PKCS1-v1_5",
        pair.privateKey,
        data as Uint8Array<ArrayBuffer>,
      ),
    );
    for (const hash of ["sha1", "sha256"] as const) {
      assert.equal(await native.verify(hash, data, signature), hash === "sha1");
      assert.equal(await web.verify(hash, data, signature), hash === "sha1");
    }
    signature[i % signature.length] ^= 0x80;
    assert.equal(await native.verify("sha1", data, signature), false);
  }
});

Deno.test("OpenSSL keeps Ed25519 keys on WebCrypto", async () => {
  const openssl = await engine;
  const pem = await (await generateSigningKey("ed25519")).toPem();
  const key = await openssl.importPrivateKey(pem);
  assert.equal(key.type, "ed25519");
  const data = fromLatin1("data");
  const pub = await openssl.importPublicKey("ed25519", key.publicKey);
  assert.equal(await pub.verify("sha256", data, await key.sign(data)), true);
});

Deno.test("OpenSSL signs off the event loop: timers fire while signatures are computed", async () => {
  const openssl = await engine;
  const key = await openssl.importPrivateKey(await (await generateSigningKey("rsa", 4096)).toPem());
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  // Signing on the loop would compute all of them inside this map, before any timer could fire.
  const done = await Promise.all(
    Array.from({ length: 100 }, (_, i) => key.sign(fromLatin1(`m${i}`)).then(() => ticks)),
  );
  clearInterval(timer);
  assert.ok(done[done.length - 1] > 0, `ticks seen by the signatures: ${done.join(",")}`);
});

Deno.test("openLibcrypto() says why when libcrypto is missing", () => {
  assert.throws(
    () => openLibcrypto(["/nonexistent/libcrypto.so.3"]),
    (e) =>
      e instanceof OpensslUnavailableError &&
      /Cannot use libcrypto 3: "\/nonexistent\/libcrypto.so.3"/.test(e.message),
  );
});

Deno.test("openLibcrypto() refuses a library without OpenSSL 3's functions", () => {
  // libc has none of them: what an OpenSSL 1.1 libcrypto (no EVP_PKEY_get_bits) looks like.
  const libc = "/lib/x86_64-linux-gnu/libc.so.6";
  assert.throws(() => openLibcrypto([libc]), OpensslUnavailableError);
});

const RUNTIME = new URL("../../lib/cli/runtime.ts", import.meta.url).href;

Deno.test("CryptoBackend openssl without libcrypto falls back to webcrypto with a warning, or refuses with CryptoBackendRequired", async () => {
  const base = "Mode v\nSocket inet:8891@127.0.0.1\nCryptoBackend openssl\n";
  // libcrypto out of reach, as for a service started with flags that lack --allow-ffi.
  const fallback = await runDenied(base);
  assert.equal(fallback.code, 0, fallback.out);
  assert.match(fallback.out, /^webcrypto$/m);
  assert.match(
    fallback.out,
    /"CryptoBackend" openssl at .*dkimd\.conf:3 cannot be used: .*using webcrypto/,
  );
  const refused = await runDenied(`${base}CryptoBackendRequired yes\n`);
  assert.equal(refused.code, 78, refused.out);
  assert.match(
    refused.out,
    /Cannot use "CryptoBackend" openssl at .*dkimd\.conf:3: .*CryptoBackendRequired is on/,
  );
});

/** Loads `conf` through loadRuntime under `deno run` with every permission but FFI. */
async function runDenied(conf: string): Promise<{ code: number; out: string }> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/dkimd.conf`, conf);
    await Deno.writeTextFile(
      `${dir}/load.ts`,
      `import { loadRuntime, RuntimeConfigError } from "${RUNTIME}";
try {
  const r = await loadRuntime("${dir}/dkimd.conf");
  console.log(r.crypto.name);
  for (const w of r.loaded.warnings) console.log(w.message);
} catch (e) {
  if (!(e instanceof RuntimeConfigError)) throw e;
  console.log(e.message);
  Deno.exit(78);
}
`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-env",
        "--allow-net",
        "--allow-sys",
        "--no-prompt",
        "--quiet",
        // The script sits in a temporary directory: name the project's configuration, whose
        // imports map the database clients lib/config reaches (postgres, mysql2, ldapts).
        `--config=${new URL("../../deno.json", import.meta.url).pathname}`,
        `${dir}/load.ts`,
      ],
      env: { NO_COLOR: "1" },
    }).output();
    return {
      code: out.code,
      out: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("dkimd started with the start task's flags signs through CryptoBackend openssl", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const key = await generateSigningKey("rsa", 2048);
    await Deno.writeTextFile(`${dir}/rsa.private`, await key.toPem());
    await Deno.chmod(`${dir}/rsa.private`, 0o600);
    const conf = (openssl: boolean) => (socket: string) =>
      `Mode s\nSocket ${socket}\nDomain example.com\nSelector s\nKeyFile ${dir}/rsa.private\n` +
      `Syslog no\nCryptoBackend ${openssl ? "openssl" : "webcrypto"}\nCryptoBackendRequired yes\n`;
    const signatures: string[] = [];
    for (const openssl of [true, false]) {
      const dkimd = await startDkimd(dir, conf(openssl));
      try {
        const client = await MilterClient.connect({
          kind: "inet",
          host: "127.0.0.1",
          port: dkimd.port,
        });
        try {
          const r = await client.sendMessage({
            connect: { hostname: "localhost", address: "127.0.0.1" },
            macros: { mail: { i: "Q1" } },
            from: "<a@example.com>",
            headers: [["From", " a@example.com"], ["Subject", " hi"], ["Date", " now"]],
            body: fromLatin1("hello\r\n"),
          });
          const field = r.modifications.find((m) =>
            m.type === "insheader" && m.name === "DKIM-Signature"
          ) as { value: Uint8Array } | undefined;
          assert.ok(field, dkimd.log());
          const value = new TextDecoder().decode(field.value);
          signatures.push(value);
        } finally {
          client.close();
        }
        assert.doesNotMatch(dkimd.log(), /CryptoBackend/);
      } finally {
        await dkimd.stop();
      }
    }
    // Both verify with the published key.
    const record = `v=DKIM1; k=rsa; p=${btoa(String.fromCharCode(...key.publicKey))}`;
    for (const value of signatures) {
      const signed = fromLatin1(
        `DKIM-Signature:${
          value.replace(/\r?\n/g, "\r\n")
        }\r\nFrom: a@example.com\r\nSubject: hi\r\nDate: now\r\n\r\nhello\r\n`,
      );
      const resolver = new KeyFileResolver(new Map([["s._domainkey.example.com", [record]]]));
      const [verdict] = await verifyMessage(signed, { resolver });
      assert.equal(verdict.result, "pass", value);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
