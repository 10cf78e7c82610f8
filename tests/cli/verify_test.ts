import assert from "node:assert/strict";
import { concat, fromLatin1, latin1 } from "../../lib/bytes.ts";
import { KEYS_DIR, MESSAGE, writeTestKeys } from "../helpers/dkim_fixtures.ts";
import { assertUsageError, runCli, type UsageErrorCase } from "../helpers/run_cli.ts";

const ED = new URL("ed25519.pem", KEYS_DIR).pathname;

Deno.test("dkimd verify exits 1 for a tampered or unsigned message", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const signed = await runCli(["sign", "-d", "example.com", "-s", "ed", "-k", ED], {
      stdin: MESSAGE,
    });
    const tampered = fromLatin1(latin1(signed.stdout).replace("Noon", "Nine"));
    const keys = await writeTestKeys(dir);
    const bad = await runCli(["verify", "--test-keys", keys, "--authserv-id", "mx"], {
      stdin: tampered,
    });
    assert.equal(bad.code, 1);
    assert.match(bad.text, /dkim=fail \(256-bit key\) reason="body hash did not verify"/);
    const none = await runCli(["verify", "--test-keys", keys, "--authserv-id", "mx"], {
      stdin: MESSAGE,
    });
    assert.equal(none.code, 1);
    assert.equal(none.text, "mx; dkim=none\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dkimd verify gives policy to a signature whose l= leaves appended bytes unsigned, pass with --partial-body-result pass", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const signed = await runCli(
      ["sign", "-d", "example.com", "-s", "ed", "-k", ED, "--body-length"],
      { stdin: MESSAGE },
    );
    const footer = "Appended: pay IBAN XX00\r\n";
    const appended = concat([signed.stdout, fromLatin1(footer)]);
    // MESSAGE's final empty line, dropped while it ends the body, is body content again.
    const unsigned = footer.length + 2;
    const keys = await writeTestKeys(dir);
    const args = ["verify", "--test-keys", keys, "--authserv-id", "mx"];
    const policy = await runCli(args, { stdin: appended });
    assert.equal(policy.code, 1);
    assert.match(
      policy.text,
      /dkim=policy \(256-bit key\) reason="l=\d+ leaves \d+ body bytes unsigned"/,
    );
    const json = await runCli([...args, "--json"], { stdin: appended });
    const [v] = JSON.parse(json.text);
    assert.equal(v.result, "policy");
    assert.equal(v.unsignedBodyBytes, unsigned);
    const pass = await runCli([...args, "--partial-body-result", "pass"], { stdin: appended });
    assert.equal(pass.code, 0);
    assert.match(
      pass.text,
      new RegExp(`dkim=pass \\(256-bit key; ${unsigned} unsigned body bytes after l=\\d+\\)`),
    );
    const whole = await runCli(args, { stdin: signed.stdout });
    assert.equal(whole.code, 0, "the signed message as it was passes");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dkimd verify never passes two From fields, and with --strict-headers not two Subjects", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // Signed without oversigning, so an added From leaves the signature valid.
    const signed = await runCli(
      ["sign", "-d", "example.com", "-s", "ed", "-k", ED, "--oversign", ""],
      { stdin: MESSAGE },
    );
    const keys = await writeTestKeys(dir);
    const args = ["verify", "--test-keys", keys, "--authserv-id", "mx"];
    const text = latin1(signed.stdout);
    const twoFrom = fromLatin1(text.replace("From: ", "From: CEO <ceo@example.com>\r\nFrom: "));
    const from = await runCli(args, { stdin: twoFrom });
    assert.equal(from.code, 1);
    assert.match(from.text, /dkim=policy \(256-bit key\) reason="message has 2 From fields"/);
    const twoSubjects = fromLatin1(text.replace("Subject: ", "Subject: Pay now\r\nSubject: "));
    assert.equal((await runCli(args, { stdin: twoSubjects })).code, 0);
    const strict = await runCli([...args, "--strict-headers"], { stdin: twoSubjects });
    assert.equal(strict.code, 1);
    assert.match(strict.text, /reason="message has 2 Subject fields"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// Every bad input gets one line on stderr naming the flag or file, status 2, no stack trace.
const usageErrors: UsageErrorCase[] = [
  {
    name: "empty input",
    args: ["verify", "--test-keys", "/dev/null"],
    stdin: "",
    message: /standard input is empty/,
  },
  {
    name: "a missing message file",
    args: ["verify", "--test-keys", "/dev/null", "/nonexistent.eml"],
    message: /^dkimd verify: cannot read "\/nonexistent.eml": no such file$/,
  },
  {
    name: "a bad nameserver",
    args: ["verify", "--nameserver", "dns.example"],
    stdin: "From: a@b\r\n\r\n",
    message: /^dkimd verify: --nameserver: .*"dns.example"/,
  },
  {
    name: "a bad --partial-body-result",
    args: ["verify", "--partial-body-result", "fail"],
    message: /^dkimd verify: --partial-body-result needs "policy" or "pass", not "fail"$/,
  },
  {
    name: "a bad timeout",
    args: ["verify", "--timeout", "soon"],
    message: /--timeout needs a whole number/,
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
