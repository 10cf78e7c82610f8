import assert from "node:assert/strict";
import { toBase64 } from "../../lib/bytes.ts";
import {
  encodePem,
  looksLikePem,
  MAX_PEM_BLOCKS,
  parsePem,
  PemError,
} from "../../lib/crypto/pem.ts";

const KEYS = new URL("../testdata/keys/", import.meta.url);
const read = (name: string) => Deno.readTextFileSync(new URL(name, KEYS));

Deno.test("encodePem() writes exactly what OpenSSL writes", () => {
  for (
    const [pem, der] of [
      ["rsa2048_pkcs8.pem", "rsa2048_pkcs8.der"],
      ["rsa2048_pub.pem", "rsa2048_pub.der"],
      ["ed25519.pem", "ed25519.der"],
    ]
  ) {
    const label = pem.includes("pub") ? "PUBLIC KEY" : "PRIVATE KEY";
    assert.equal(encodePem(label, Deno.readFileSync(new URL(der, KEYS))), read(pem), pem);
  }
});

Deno.test("encodePem() wraps the body at 64 columns", () => {
  const text = encodePem("TEST", new Uint8Array(100).fill(7));
  const lines = text.trimEnd().split("\n");
  assert.equal(lines[0], "-----BEGIN TEST-----");
  assert.equal(lines.at(-1), "-----END TEST-----");
  assert.deepEqual(lines.slice(1, -1).map((l) => l.length), [64, 64, 8]);
  assert.equal(
    encodePem("EMPTY", new Uint8Array(0)),
    "-----BEGIN EMPTY-----\n-----END EMPTY-----\n",
  );
});

Deno.test("parsePem() reads back what encodePem() writes", () => {
  for (const size of [0, 1, 47, 48, 49, 1000]) {
    const der = new Uint8Array(size).map((_, i) => i * 13);
    const [block] = parsePem(encodePem("SOME LABEL", der));
    assert.equal(block.label, "SOME LABEL");
    assert.deepEqual(block.der, der);
    assert.equal(block.headers.size, 0);
    assert.equal(block.line, 1);
  }
});

Deno.test("parsePem() accepts CRLF, surrounding whitespace and explanatory text", () => {
  const body = toBase64(Uint8Array.of(1, 2, 3, 4, 5));
  const variants = [
    `-----BEGIN X-----\r\n${body}\r\n-----END X-----\r\n`,
    `\n\n  -----BEGIN X-----  \n  ${body}  \n-----END X-----\n\n`,
    `Bag Attributes\n    localKeyID: 01\n-----BEGIN X-----\n${body}\n-----END X-----`,
    `-----BEGIN X-----\n${body.slice(0, 3)}\n${body.slice(3)}\n-----END X-----\n`,
    `-----BEGIN X-----\r${body}\r-----END X-----\r`,
  ];
  for (const text of variants) {
    const blocks = parsePem(text);
    assert.equal(blocks.length, 1, JSON.stringify(text));
    assert.deepEqual(blocks[0].der, Uint8Array.of(1, 2, 3, 4, 5), JSON.stringify(text));
  }
});

Deno.test("parsePem() reads several blocks in order", () => {
  const blocks = parsePem(read("ec_sec1.pem"));
  assert.deepEqual(blocks.map((b) => b.label), ["EC PARAMETERS", "EC PRIVATE KEY"]);
  assert.equal(blocks[1].line, 4);
});

Deno.test("parsePem() reports RFC 1421 headers of an encrypted traditional key", () => {
  const [block] = parsePem(read("rsa_encrypted_pkcs1.pem"));
  assert.equal(block.label, "RSA PRIVATE KEY");
  assert.equal(block.headers.get("Proc-Type"), "4,ENCRYPTED");
  assert.match(block.headers.get("DEK-Info") ?? "", /^AES-256-CBC,[0-9A-F]{32}$/);
  assert.ok(block.der.length > 1000);
});

Deno.test("parsePem() joins folded header lines", () => {
  const text =
    "-----BEGIN X-----\nProc-Type: 4,\n ENCRYPTED\nDEK-Info: A\n\nAAAA\n-----END X-----\n";
  const [block] = parsePem(text);
  assert.equal(block.headers.get("Proc-Type"), "4, ENCRYPTED");
  assert.deepEqual(block.der, new Uint8Array(3));
});

Deno.test("parsePem() rejects malformed armour with the line of the problem", () => {
  const cases: { name: string; text: string; want: RegExp; line: number }[] = [
    { name: "no block", text: "hello\n", want: /no BEGIN line/, line: 1 },
    { name: "empty", text: "", want: /no BEGIN line/, line: 1 },
    {
      name: "no END",
      text: "\n-----BEGIN PRIVATE KEY-----\nAAAA\n",
      want: /"BEGIN PRIVATE KEY" has no matching END/,
      line: 2,
    },
    {
      name: "mismatched END",
      text: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
      want: /ends with "END PUBLIC KEY"/,
      line: 3,
    },
    {
      name: "nested BEGIN",
      text: "-----BEGIN A-----\n-----BEGIN B-----\nAAAA\n-----END B-----\n",
      want: /unexpected "-----BEGIN B-----"/,
      line: 2,
    },
    {
      name: "bad base64",
      text: "-----BEGIN A-----\nAA*A\n-----END A-----\n",
      want: /not base64/,
      line: 1,
    },
    {
      name: "impossible base64 length",
      text: "-----BEGIN A-----\nAAAAA\n-----END A-----\n",
      want: /not base64/,
      line: 1,
    },
  ];
  for (const { name, text, want, line } of cases) {
    assert.throws(() => parsePem(text), (e: unknown) => {
      assert.ok(e instanceof PemError, name);
      assert.ok(e instanceof SyntaxError, name);
      assert.match(e.message, want, name);
      assert.equal(e.line, line, name);
      return true;
    });
  }
});

Deno.test("parsePem() stops at MAX_PEM_BLOCKS blocks", () => {
  const one = encodePem("A", Uint8Array.of(1));
  assert.equal(parsePem(one.repeat(MAX_PEM_BLOCKS)).length, MAX_PEM_BLOCKS);
  assert.throws(() => parsePem(one.repeat(MAX_PEM_BLOCKS + 1)), /more than 16 PEM blocks/);
});

Deno.test("looksLikePem() tells armour from bare base64", () => {
  assert.equal(looksLikePem(read("rsa2048_pkcs1.pem")), true);
  assert.equal(looksLikePem(read("rsa2048_pkcs1.b64")), false);
  assert.equal(looksLikePem(read("dknewkey_ed25519.key")), false);
});
