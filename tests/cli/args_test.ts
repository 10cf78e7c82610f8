import assert from "node:assert/strict";
import { intFlag, parseCommandArgs, UsageError } from "../../lib/cli/args.ts";

const OPTIONS = {
  domain: { type: "string", short: "d" },
  help: { type: "boolean", short: "h" },
  key: { type: "string", short: "k", multiple: true },
} as const;

Deno.test("parseCommandArgs() reads flags, short and long, repeated and bundled", () => {
  const cases: { args: string[]; values: object; positionals: string[] }[] = [
    { args: [], values: {}, positionals: [] },
    {
      args: ["-d", "example.com", "m.eml"],
      values: { domain: "example.com" },
      positionals: ["m.eml"],
    },
    { args: ["--domain=example.com"], values: { domain: "example.com" }, positionals: [] },
    { args: ["-k", "a", "--key", "b"], values: { key: ["a", "b"] }, positionals: [] },
    { args: ["-hd", "x"], values: { help: true, domain: "x" }, positionals: [] },
    {
      args: ["-d", "x", "--", "-not-a-flag"],
      values: { domain: "x" },
      positionals: ["-not-a-flag"],
    },
    { args: ["-"], values: {}, positionals: ["-"] },
  ];
  for (const c of cases) {
    const { values, positionals } = parseCommandArgs("sign", c.args, OPTIONS);
    assert.deepEqual({ ...values }, c.values, c.args.join(" "));
    assert.deepEqual(positionals, c.positionals, c.args.join(" "));
  }
  const two = parseCommandArgs("testkey", ["a", "b"], OPTIONS, 2);
  assert.deepEqual(two.positionals, ["a", "b"]);
});

Deno.test("parseCommandArgs() refuses a bad command line in one line naming the flag", () => {
  const cases: { args: string[]; max?: number; message: RegExp }[] = [
    { args: ["--nope"], message: /^sign: unknown option "--nope"$/ },
    { args: ["-z"], message: /^sign: unknown option "-z"$/ },
    { args: ["--domain"], message: /^sign: option "--domain" needs a value$/ },
    { args: ["-d"], message: /^sign: option "--domain" needs a value$/ },
    { args: ["a", "b"], message: /^sign: unexpected argument "b"$/ },
    { args: ["a"], max: 0, message: /^sign: unexpected argument "a"$/ },
    { args: ["--help=x"], message: /^sign: .*--help/ },
  ];
  for (const c of cases) {
    assert.throws(
      () => parseCommandArgs("sign", c.args, OPTIONS, c.max),
      (e: unknown) => {
        assert.ok(e instanceof UsageError, c.args.join(" "));
        assert.equal(e.name, "UsageError");
        assert.match(e.message, c.message);
        assert.ok(!e.message.includes("\n"), e.message);
        return true;
      },
    );
  }
});

Deno.test("intFlag() takes decimal digits from the minimum up, naming the flag otherwise", () => {
  assert.equal(intFlag("verify", "timeout", undefined, 1), undefined);
  assert.equal(intFlag("verify", "timeout", "10", 1), 10);
  assert.equal(intFlag("verify", "timeout", "007", 1), 7);
  assert.equal(intFlag("genkey", "bits", "0"), 0);
  assert.equal(intFlag("genkey", "bits", String(Number.MAX_SAFE_INTEGER)), Number.MAX_SAFE_INTEGER);
  for (const value of ["0", "-1", "1.5", "", " 1", "1e3", "0x10", "9007199254740992"]) {
    assert.throws(
      () => intFlag("verify", "timeout", value, 1),
      (e: unknown) =>
        e instanceof UsageError &&
        e.message === `verify: --timeout needs a whole number of at least 1, not "${value}"`,
      JSON.stringify(value),
    );
  }
});
