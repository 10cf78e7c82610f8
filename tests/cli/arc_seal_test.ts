import assert from "node:assert/strict";
import { concat, fromLatin1, latin1 } from "../../lib/bytes.ts";
import { collectArcSets } from "../../lib/arc/arc_set.ts";
import { splitMessage } from "../../lib/dkim/header.ts";
import { KEYS_DIR, MESSAGE, writeTestKeys } from "../helpers/dkim_fixtures.ts";
import { assertUsageError, runCli } from "../helpers/run_cli.ts";

const RSA = new URL("rsa2048_pkcs8.pem", KEYS_DIR).pathname;
const ED = new URL("ed25519.pem", KEYS_DIR).pathname;
const SEAL = ["arc", "seal", "-d", "forwarder.example", "-s", "arc"];

Deno.test("dkimd arc seal puts the new set on top and carries our own A-R results", async () => {
  const input = concat([
    fromLatin1("Authentication-Results: mx.forwarder.example; dkim=pass header.d=example.com\r\n"),
    fromLatin1("Authentication-Results: elsewhere.example; dkim=fail\r\n"),
    MESSAGE,
  ]);
  const r = await runCli([...SEAL, "-k", ED, "--authserv-id", "mx.forwarder.example"], {
    stdin: input,
  });
  assert.equal(r.code, 0, r.stderr);
  const { fields } = splitMessage(r.stdout);
  assert.deepEqual(fields.slice(0, 3).map((f) => f.name), [
    "ARC-Seal",
    "ARC-Message-Signature",
    "ARC-Authentication-Results",
  ]);
  assert.equal(
    latin1(fields[2].raw),
    "ARC-Authentication-Results: i=1; mx.forwarder.example; dkim=pass header.d=example.com",
  );
  assert.match(latin1(fields[0].raw), /^ARC-Seal: i=1; a=ed25519-sha256; t=\d+; cv=none;/);
  // Nothing else in the message changes.
  assert.deepEqual(r.stdout.subarray(r.stdout.length - input.length), input);
});

Deno.test("dkimd arc seal keeps Unix line ends and numbers the next instance", async () => {
  const unix = fromLatin1(latin1(MESSAGE).replaceAll("\r\n", "\n"));
  const one = await runCli([...SEAL, "-k", RSA, "--authserv-id", "mx"], { stdin: unix });
  assert.equal(one.code, 0, one.stderr);
  assert.equal(latin1(one.stdout).includes("\r"), false);
  const two = await runCli([...SEAL, "-k", RSA, "--authserv-id", "mx", "--cv", "pass"], {
    stdin: one.stdout,
  });
  assert.equal(two.code, 0, two.stderr);
  const crlf = fromLatin1(latin1(two.stdout).replaceAll("\n", "\r\n"));
  // collectArcSets() throws when the structure is broken.
  const sets = collectArcSets(splitMessage(crlf).fields);
  assert.equal(sets.length, 2);
  assert.match(latin1(sets[1].aar.field.raw), /^ARC-Authentication-Results: i=2; mx; none$/);
});

Deno.test("dkimd arc seal: usage errors exit 2 with one line", async () => {
  const cases: { args: string[]; stdin?: Uint8Array; message: RegExp }[] = [
    { args: ["arc", "seal", "-s", "arc", "-k", RSA], message: /--domain is required/ },
    { args: [...SEAL], message: /--key is required/ },
    { args: [...SEAL, "-k", RSA, "--cv", "maybe"], message: /--cv needs none, pass or fail/ },
    { args: [...SEAL, "-k", "/nonexistent"], message: /cannot read key "\/nonexistent"/ },
    { args: ["arc", "frobnicate"], message: /unknown subcommand "frobnicate"/ },
    { args: [...SEAL, "-k", RSA, "--cv", "pass"], message: /cv=pass needs an ARC chain/ },
  ];
  for (const c of cases) {
    assertUsageError(await runCli(c.args, { stdin: c.stdin ?? MESSAGE }), c.message);
  }
});

Deno.test("dkimd arc seal without --cv verifies the chain it gets and carries arc= into the new set (RFC 8617 §5.1)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const keys = await writeTestKeys(dir);
    // The first hop seals as example.com with the test keys' "rsa" selector.
    const hop = ["arc", "seal", "-d", "example.com", "-s", "rsa", "-k", RSA, "--authserv-id", "mx"];
    const one = await runCli(hop, { stdin: MESSAGE });
    assert.equal(one.code, 0, one.stderr);
    const two = await runCli([...hop, "--test-keys", keys], { stdin: one.stdout });
    assert.equal(two.code, 0, two.stderr);
    const crlf = fromLatin1(latin1(two.stdout).replaceAll("\n", "\r\n").replaceAll("\r\r", "\r"));
    const sets = collectArcSets(splitMessage(crlf).fields);
    assert.equal(sets.length, 2);
    assert.match(latin1(sets[1].aar.field.raw), /; mx; arc=pass header\.oldest-pass=0$/);
    assert.match(latin1(sets[1].seal.field.raw), /\bcv=pass;/);
    // A body changed after the first seal: the chain fails, and the seal says so.
    const tampered = fromLatin1(latin1(one.stdout) + "appended\r\n");
    const three = await runCli([...hop, "--test-keys", keys], { stdin: tampered });
    assert.equal(three.code, 0, three.stderr);
    const after = collectArcSets(splitMessage(three.stdout).fields);
    assert.match(latin1(after[1].aar.field.raw), /; mx; arc=fail \(/);
    assert.match(latin1(after[1].seal.field.raw), /\bcv=fail;/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
