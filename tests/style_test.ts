import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url).pathname;

// The formatter and linter of `deno task check`, as tests, so CI (which runs `deno task test`)
// keeps main formatted and lint-clean (STYLE.md).
const CHECKS: readonly [string, string[]][] = [
  ["deno fmt --check", ["fmt", "--check"]],
  ["deno lint", ["lint"]],
];
for (const [name, args] of CHECKS) {
  Deno.test(`${name} passes on the whole tree`, async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args,
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text);
  });
}
