import assert from "node:assert/strict";
import { toBase64 } from "../../lib/bytes.ts";
import { importPrivateKey, type SigningKey } from "../../lib/crypto/private_key.ts";
import { formatKeyRecord } from "../../lib/dkim/key_text.ts";
import { checkKeyRecord } from "../../lib/cli/key_record_check.ts";
import { TESTKEY_EXIT } from "../../lib/cli/testkey.ts";
import { edKey, loadKey, rsaKey } from "../helpers/dkim_fixtures.ts";

const KEYS = new URL("../testdata/keys/", import.meta.url);

/** The record `key` publishes, as opendkim-genkey writes it for RSA (with h=sha256). */
function record(key: SigningKey, extra = ""): string {
  return `v=DKIM1; ${key.type === "rsa" ? "h=sha256; " : ""}k=${key.type}; ${extra}p=${
    toBase64(key.publicKey)
  }`;
}

Deno.test("checkKeyRecord() checks each tag and the key, one finding per problem", async () => {
  const rsa = await rsaKey();
  const ed = await edKey();
  const weak = await loadKey("rsa1024.pem");
  const tiny = await loadKey("rsa1023.pem");
  const big = await loadKey("rsa4096.pem");
  const other = await loadKey("rsa3072.pem");
  const p = toBase64(rsa.publicKey);
  const cases: {
    name: string;
    text: string;
    key?: SigningKey;
    status: number;
    errors?: (string | RegExp)[];
    warnings?: (string | RegExp)[];
  }[] = [
    { name: "RSA key with its private key", text: record(rsa), key: rsa, status: 0 },
    { name: "Ed25519 key with its private key", text: record(ed), key: ed, status: 0 },
    { name: "no private key given", text: record(rsa), status: 0 },
    { name: "minimal record", text: `p=${p}`, key: rsa, status: 0 },
    { name: "folded p=", text: `v=DKIM1; p=${p.slice(0, 99)}\r\n\t${p.slice(99)}`, status: 0 },
    { name: "sha1 and sha256", text: record(rsa).replace("sha256", "sha1:sha256"), status: 0 },
    { name: "s=email", text: record(rsa, "s=email; "), status: 0 },
    { name: "s=*", text: record(rsa, "s=*; "), status: 0 },
    { name: "t=s", text: record(rsa, "t=s; "), status: 0 },
    { name: "unknown tag", text: record(rsa, "x=1; "), status: 0 },
    { name: "4096 bits", text: record(big), key: big, status: 0 },
    {
      name: "another key",
      text: record(other),
      key: rsa,
      status: TESTKEY_EXIT.mismatch,
      errors: ["public key does not match private key"],
    },
    {
      name: "Ed25519 record, RSA private key",
      text: record(ed),
      key: rsa,
      status: TESTKEY_EXIT.mismatch,
      errors: [
        "public key does not match private key: the record holds an Ed25519 key, the private key is RSA",
      ],
    },
    {
      name: "RSA record, Ed25519 private key",
      text: record(rsa),
      key: ed,
      status: TESTKEY_EXIT.mismatch,
      errors: [
        "public key does not match private key: the record holds an RSA key, the private key is Ed25519",
      ],
    },
    {
      name: "revoked",
      text: "v=DKIM1; k=rsa; p=",
      key: rsa,
      status: TESTKEY_EXIT.unavailable,
      errors: ["key is revoked (p= empty)"],
    },
    {
      name: "no p=",
      text: "v=DKIM1; k=rsa",
      status: TESTKEY_EXIT.unavailable,
      errors: ["p= is missing: a key record must publish a key"],
    },
    {
      name: "p= not base64",
      text: "v=DKIM1; p=!!!!",
      status: TESTKEY_EXIT.unavailable,
      errors: ["p= is not valid base64"],
    },
    {
      name: "v=DKIM2",
      text: `v=DKIM2; p=${p}`,
      status: TESTKEY_EXIT.unavailable,
      errors: ["invalid key version v=DKIM2: a key record has v=DKIM1"],
    },
    {
      name: "v= not first",
      text: `k=rsa; v=DKIM1; p=${p}`,
      status: TESTKEY_EXIT.unavailable,
      errors: ["v=DKIM1 is not the first tag, as it must be"],
    },
    {
      name: "unknown k=",
      text: `v=DKIM1; k=dsa; p=${p}`,
      status: TESTKEY_EXIT.unavailable,
      errors: ["unknown key type k=dsa: DKIM keys are rsa (RFC 6376) or ed25519 (RFC 8463)"],
    },
    {
      name: "Ed25519 key under k=rsa",
      text: `v=DKIM1; k=rsa; p=${toBase64(ed.publicKey)}`,
      key: ed,
      status: TESTKEY_EXIT.unavailable,
      errors: [
        "p= is not a usable rsa key: it is 32 bytes, an Ed25519 key, but the record says k=rsa",
      ],
    },
    {
      name: "h=sha1 only",
      text: record(rsa).replace("sha256", "sha1"),
      key: rsa,
      status: TESTKEY_EXIT.unavailable,
      errors: [
        "h=sha1 leaves out sha256, and RFC 8301 §3.1 verifiers refuse sha1: no signature can verify",
      ],
    },
    {
      name: "Ed25519 with h=sha1",
      text: record(ed, "h=sha1; "),
      status: TESTKEY_EXIT.unavailable,
      errors: [
        "h=sha1 leaves out sha256, the only hash Ed25519 signs (RFC 8463 §3): no signature can verify",
      ],
    },
    {
      name: "unknown hash",
      text: record(rsa).replace("sha256", "md5:sha256"),
      status: 0,
      warnings: ['h= names unknown hash "md5", which verifiers ignore'],
    },
    {
      name: "s= without email",
      text: record(rsa, "s=tlsrpt; "),
      status: TESTKEY_EXIT.unavailable,
      errors: ['key not for email: s=tlsrpt excludes "email"'],
    },
    {
      name: "testing",
      text: record(rsa, "t=y:s; "),
      key: rsa,
      status: 0,
      warnings: [/^testing mode \(t=y\): verifiers may treat failed signatures as unsigned/],
    },
    {
      name: "g=",
      text: record(rsa, "g=alice; "),
      status: 0,
      warnings: [/^g=alice is obsolete \(RFC 4871\)/],
    },
    {
      name: "1024 bits",
      text: record(weak),
      key: weak,
      status: 0,
      warnings: ["the RSA key has 1024 bits; RFC 8301 §3.2 recommends 2048 or more"],
    },
    {
      name: "1023 bits",
      text: record(tiny),
      key: tiny,
      status: TESTKEY_EXIT.unavailable,
      errors: ["the RSA key has 1023 bits: RFC 8301 §3.2 verifiers refuse keys under 1024"],
    },
    {
      name: "tag without =",
      text: `v=DKIM1; k; p=${p}`,
      status: TESTKEY_EXIT.unavailable,
      errors: [/^key record syntax error at character \d+: /],
    },
    {
      name: "duplicate tag",
      text: `v=DKIM1; p=${p}; p=${p}`,
      status: TESTKEY_EXIT.unavailable,
      errors: [/^key record syntax error at character \d+: .*duplicate tag "p"/],
    },
    {
      name: "a bad record and another key: the record is the first problem",
      text: `v=DKIM1; s=tlsrpt; p=${toBase64(other.publicKey)}`,
      key: rsa,
      status: TESTKEY_EXIT.unavailable,
      errors: [
        'key not for email: s=tlsrpt excludes "email"',
        "public key does not match private key",
      ],
    },
  ];
  for (const c of cases) {
    const check = await checkKeyRecord(c.text, c.key);
    assert.equal(check.status, c.status, c.name);
    const of = (severity: string) =>
      check.findings.filter((f) => f.severity === severity).map((f) => f.message);
    const match = (got: string[], want: (string | RegExp)[] = []) => {
      assert.equal(got.length, want.length, `${c.name}: ${got.join(" | ")}`);
      want.forEach((w, i) =>
        typeof w === "string" ? assert.equal(got[i], w, c.name) : assert.match(got[i], w, c.name)
      );
    };
    match(of("error"), c.errors);
    match(of("warning"), c.warnings);
    for (const f of check.findings) assert.ok(!f.message.includes("\n"), f.message);
  }
});

Deno.test("checkKeyRecord() returns the published key when it can be read", async () => {
  const rsa = await rsaKey();
  const check = await checkKeyRecord(record(rsa), rsa);
  assert.deepEqual(check.publicKey?.spki, rsa.spki);
  assert.equal(check.publicKey?.bits, 2048);
  assert.ok(check.findings.some((f) => f.message === "p= is the public half of the private key"));
  assert.equal((await checkKeyRecord("v=DKIM1; p=")).publicKey, undefined);
});

Deno.test("checkKeyRecord() accepts what formatKeyRecord() writes for every genkey option", async () => {
  const rsa = await rsaKey();
  const ed = await edKey();
  for (const key of [rsa, ed]) {
    for (
      const tags of [
        {},
        { hashes: ["sha256"] },
        { hashes: ["sha1", "sha256"], note: "rotated; see wiki", emailOnly: true },
        { noSubdomains: true },
      ]
    ) {
      const text = formatKeyRecord({ keyType: key.type, publicKey: key.publicKey, ...tags });
      const check = await checkKeyRecord(text, key);
      assert.equal(check.status, 0, text);
      assert.deepEqual(check.findings.filter((f) => f.severity !== "info"), [], text);
    }
  }
  const imported = await importPrivateKey(await Deno.readFile(new URL("ed25519.pem", KEYS)));
  assert.equal((await checkKeyRecord(record(imported), ed)).status, TESTKEY_EXIT.mismatch);
});
