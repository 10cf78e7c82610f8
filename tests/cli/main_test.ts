import assert from "node:assert/strict";
import { VERSION } from "../../lib/version.ts";
import { assertUsageError, runCli } from "../helpers/run_cli.ts";

Deno.test("dkimd reports an unknown command in one line with status 2", async () => {
  assertUsageError(await runCli(["frobnicate"]), /unknown command "frobnicate"/);
});

Deno.test("dkimd --help, sign --help and verify --help print usage", async () => {
  for (const args of [["--help"], ["sign", "--help"], ["verify", "--help"]]) {
    const r = await runCli(args);
    assert.equal(r.code, 0);
    assert.match(r.text, /Usage: dkimd/);
  }
});

Deno.test("dkimd version, --version and -V print the version", async () => {
  for (const args of [["version"], ["--version"], ["-V"]]) {
    const r = await runCli(args);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.text, `dkimd ${VERSION}\n`, args[0]);
  }
});
