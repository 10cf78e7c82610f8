import assert from "node:assert/strict";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
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
