import assert from "node:assert/strict";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import { splitMessage } from "../../lib/dkim/header.ts";
import { parseSignature } from "../../lib/dkim/signature.ts";
import { KEYS_DIR, MESSAGE, writeTestKeys } from "../helpers/dkim_fixtures.ts";
import { assertUsageError, runCli, type UsageErrorCase } from "../helpers/run_cli.ts";

const RSA = new URL("rsa2048_pkcs8.pem", KEYS_DIR).pathname;
const PKCS1 = new URL("rsa2048_pkcs1.pem", KEYS_DIR).pathname;
const ED = new URL("ed25519.pem", KEYS_DIR).pathname;
const SEED = new URL("dknewkey_ed25519.key", KEYS_DIR).pathname;
/** A file of ours that is not a key (every machine's own files differ). */
const NOT_A_KEY = new URL("README.md", KEYS_DIR).pathname;

Deno.test("dkimd sign | dkimd verify: RSA, Ed25519 and a dknewkey seed in one pass", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const signed = await runCli(
      [
        "sign",
        "-d",
        "example.com",
        "-s",
        "rsa",
        "-k",
        RSA,
        "-s",
        "ed",
        "-k",
        ED,
        "-s",
        "seed",
        "-k",
        SEED,
      ],
      { stdin: MESSAGE },
    );
    assert.equal(signed.code, 0, signed.stderr);
    const { fields } = splitMessage(signed.stdout);
    assert.deepEqual(fields.slice(0, 3).map((f) => parseSignature(f).selector), [
      "rsa",
      "ed",
      "seed",
    ]);
    // Everything after the new fields is the input, byte for byte.
    assert.equal(latin1(signed.stdout).endsWith(latin1(MESSAGE)), true);
    const keys = await writeTestKeys(dir);
    const verified = await runCli(["verify", "--test-keys", keys, "--authserv-id", "mx.test"], {
      stdin: signed.stdout,
    });
    assert.equal(verified.code, 0, verified.stderr);
    assert.match(verified.text, /^mx\.test;\n\tdkim=pass \(2048-bit key\) header\.d=example\.com/);
    assert.equal(verified.text.match(/dkim=pass/g)?.length, 3);
    const json = await runCli(["verify", "--test-keys", keys, "--json"], { stdin: signed.stdout });
    const parsed = JSON.parse(json.text);
    assert.deepEqual(
      parsed.map((v: { selector: string; result: string }) => [v.selector, v.result]),
      [
        ["rsa", "pass"],
        ["ed", "pass"],
        ["seed", "pass"],
      ],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dkimd sign keeps Unix line ends and dkimd verify reads them", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const unix = fromLatin1(latin1(MESSAGE).replaceAll("\r\n", "\n"));
    await Deno.writeFile(`${dir}/m.eml`, unix);
    const signed = await runCli([
      "sign",
      "-d",
      "example.com",
      "-s",
      "rsa",
      "-k",
      PKCS1,
      `${dir}/m.eml`,
    ]);
    assert.equal(signed.code, 0, signed.stderr);
    assert.ok(!signed.stdout.includes(13), "no CR in the output");
    assert.ok(latin1(signed.stdout).endsWith(latin1(unix)));
    const keys = await writeTestKeys(dir);
    await Deno.writeFile(`${dir}/s.eml`, signed.stdout);
    const verified = await runCli(["verify", "--test-keys", keys, `${dir}/s.eml`]);
    assert.equal(verified.code, 0, verified.stderr + verified.text);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test('dkimd sign signs the default list and oversigns From; --oversign replaces that, "" drops it', async () => {
  const h = async (...flags: string[]) => {
    const r = await runCli(["sign", "-d", "example.com", "-s", "ed", "-k", ED, ...flags], {
      stdin: MESSAGE,
    });
    assert.equal(r.code, 0, r.stderr);
    return parseSignature(splitMessage(r.stdout).fields[0]).headers.join(":");
  };
  // MESSAGE has From, To, Subject, Date and Message-ID: all in the default list.
  assert.equal(await h(), "From:From:Subject:Date:Message-ID:To");
  assert.equal(
    await h("--oversign", "Subject:Reply-To"),
    "From:Reply-To:Subject:Subject:Date:Message-ID:To",
  );
  assert.equal(await h("--oversign", ""), "From:Subject:Date:Message-ID:To");
  assert.equal(await h("--headers", "To", "--oversign", "To"), "From:To:To");
  assert.match((await runCli(["sign", "--help"])).text, /--oversign A:B[^]*default: From/);
});

// Every bad input gets one line on stderr naming the flag or file, status 2, no stack trace.
const usageErrors: UsageErrorCase[] = [
  {
    name: "an unknown option",
    args: ["sign", "--bogus"],
    message: /^dkimd sign: unknown option "--bogus"$/,
  },
  {
    name: "a missing key",
    args: ["sign", "-d", "example.com", "-s", "s"],
    message: /--key is required/,
  },
  {
    name: "a missing selector",
    args: ["sign", "-d", "example.com", "-k", ED],
    message: /--selector is required/,
  },
  {
    name: "an unreadable key file",
    args: ["sign", "-d", "example.com", "-s", "s", "-k", "/nonexistent/k.pem"],
    message: /^dkimd sign: cannot read key "\/nonexistent\/k.pem": no such file$/,
  },
  {
    name: "a file that is not a key",
    args: ["sign", "-d", "example.com", "-s", "s", "-k", NOT_A_KEY],
    message: new RegExp(`^dkimd sign: Cannot use key "${RegExp.escape(NOT_A_KEY)}"`),
  },
  {
    name: "an algorithm the key cannot do",
    args: ["sign", "-d", "example.com", "-s", "s", "-k", ED, "-a", "rsa-sha256"],
    stdin: "From: a@b\r\n\r\nx\r\n",
    message: /needs a rsa key/,
  },
  {
    name: "rsa-sha1",
    args: ["sign", "-d", "example.com", "-s", "s", "-k", RSA, "-a", "rsa-sha1"],
    stdin: "From: a@b\r\n\r\nx\r\n",
    message: /RFC 8301/,
  },
  {
    name: "a bad canonicalization",
    args: ["sign", "-d", "example.com", "-s", "s", "-k", ED, "-c", "loose"],
    message: /--canonicalization "loose"/,
  },
  {
    name: "mismatched repeated flags",
    args: ["sign", "-d", "a.com", "-d", "b.com", "-d", "c.com", "-s", "s", "-k", ED, "-k", RSA],
    message: /--domain is given 3 times for 2 keys/,
  },
  {
    name: "input that is not a message",
    args: ["sign", "-d", "example.com", "-s", "s", "-k", ED],
    stdin: "this is not\na message\n",
    message: /^dkimd sign: standard input is not a message: Message line 1 is not a header field/,
  },
];

for (const c of usageErrors) {
  Deno.test(`dkimd reports ${c.name} in one line with status 2`, async () => {
    const r = await runCli(c.args, {
      stdin: c.stdin === undefined ? undefined : fromLatin1(c.stdin),
    });
    assertUsageError(r, c.message);
  });
}
