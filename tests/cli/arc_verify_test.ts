import assert from "node:assert/strict";
import { fromLatin1 } from "../../lib/bytes.ts";
import { runCli } from "../helpers/run_cli.ts";

const DIR = new URL("../testdata/arc/", import.meta.url);
const KEYS = new URL("keys.txt", DIR).pathname;
const CHAIN = new URL("mail_dkim_3.eml", DIR).pathname;

Deno.test("dkimd arc verify prints arc=pass and exits 0 for a good chain, JSON on --json", async () => {
  const text = await runCli(["arc", "verify", "--test-keys", KEYS, CHAIN]);
  assert.equal(text.code, 0, text.stderr);
  assert.equal(text.text, "arc=pass header.oldest-pass=0\n");
  const json = await runCli(["arc", "verify", "--json", "--test-keys", KEYS, CHAIN]);
  assert.equal(json.code, 0, json.stderr);
  const parsed = JSON.parse(json.text);
  assert.deepEqual(
    { result: parsed.result, instances: parsed.instances, reason: parsed.reason },
    { result: "pass", instances: 3, reason: null },
  );
});

Deno.test("dkimd arc verify exits 1 for a tampered chain or none, 2 for bad input", async () => {
  const chain = await Deno.readTextFile(CHAIN);
  const bad = await runCli(["arc", "verify", "--test-keys", KEYS], {
    stdin: fromLatin1(chain.replace("Noon", "Nine")),
  });
  assert.equal(bad.code, 1);
  assert.equal(bad.text, "arc=fail (ARC-Message-Signature i=3 body hash did not verify)\n");
  const none = await runCli(["arc", "verify", "--json", "--test-keys", KEYS], {
    stdin: fromLatin1("From: a@example.com\r\n\r\nHi\r\n"),
  });
  assert.equal(none.code, 1);
  assert.equal(JSON.parse(none.text).result, "none");
  const missing = await runCli(["arc", "verify", "--test-keys", KEYS, "/nonexistent.eml"]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /arc verify: cannot read "\/nonexistent.eml": no such file/);
  const flag = await runCli(["arc", "verify", "--bogus"]);
  assert.equal(flag.code, 2);
  assert.match(flag.stderr, /unknown option "--bogus"/);
});
