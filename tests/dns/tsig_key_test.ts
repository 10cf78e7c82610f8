import assert from "node:assert/strict";
import { parseTsigKeys, readTsigKeyFile, TsigKeyFileError } from "../../lib/dns/tsig_key.ts";
import { keyFileSafety, readPrivateKeyFile } from "../../lib/config/private_key_file.ts";
import { UserDb } from "../../lib/config/user_db.ts";
import { toBase64 } from "../../lib/bytes.ts";

const SECRET = toBase64(Uint8Array.from({ length: 32 }, (_, i) => i));

Deno.test("parseTsigKeys() reads tsig-keygen's BIND form with comments", () => {
  const text = [
    "# made by tsig-keygen",
    `key "DKIM-Update.example.com." { // the rotation key`,
    "\talgorithm hmac-sha256; /* the default",
    "  of tsig-keygen */",
    `\tsecret "${SECRET}";`,
    "};",
    "",
  ].join("\n");
  const [key, ...rest] = parseTsigKeys(text, "/etc/dkimd/update.key");
  assert.equal(rest.length, 0);
  assert.equal(key.name, "dkim-update.example.com");
  assert.equal(key.algorithm, "hmac-sha256");
  assert.deepEqual([...key.secret], Array.from({ length: 32 }, (_, i) => i));
});

Deno.test("parseTsigKeys() reads keymgr -t's knot.conf form", () => {
  const text =
    `# hmac-sha512:rotate:${SECRET}\nkey:\n  - id: rotate\n    algorithm: hmac-sha512\n    secret: ${SECRET}\n`;
  const [key] = parseTsigKeys(text, "/k");
  assert.equal(key.name, "rotate");
  assert.equal(key.algorithm, "hmac-sha512");
  assert.equal(key.secret.length, 32);
});

Deno.test("parseTsigKeys() names the file and line of each mistake", () => {
  const cases: { text: string; want: RegExp }[] = [
    {
      text: `key "k" {\n  algorithm hmac-sha256\n  secret "${SECRET}";\n};`,
      want:
        /^Cannot read the TSIG key in \/k\.key:3: expected ";" after "algorithm hmac-sha256", found "secret"$/,
    },
    {
      text: `key "k" {\n algorithm hmac-md5;\n secret "${SECRET}";\n};`,
      want: /\/k\.key:2: algorithm "hmac-md5" is too weak/,
    },
    {
      text: `key "k" {\n algorithm hmac-whirl;\n};`,
      want: /\/k\.key:2: unknown algorithm "hmac-whirl": expected one of hmac-sha256/,
    },
    {
      text: `key "k" {\n algorithm hmac-sha256;\n secret "not base64!";\n};`,
      want: /\/k\.key:3: the secret is not valid base64/,
    },
    {
      text: `key "k" {\n algorithm hmac-sha256;\n secret "c2hvcnQ=";\n};`,
      want: /\/k\.key:3: the secret has 5 bytes, fewer than 16/,
    },
    { text: `key "k" {\n algorithm hmac-sha256;\n};`, want: /\/k\.key:1: key "k" has no "secret"/ },
    {
      text: `key "k" {\n algorithm hmac-sha256;\n secret "${SECRET}`,
      want: /\/k\.key:3: a quoted string is not closed/,
    },
    { text: `options {\n};`, want: /\/k\.key:1: expected a "key" statement, found "options"/ },
    {
      text: `key "k" {\n algorithm hmac-sha256;\n secret "${SECRET}";\n}`,
      want: /\/k\.key:4: the file ends where ";" should be/,
    },
    {
      text: `key "k" {\n algorithm hmac-sha256;\n keyfile "x";\n};`,
      want: /\/k\.key:3: unknown key option "keyfile"/,
    },
    {
      text: "key:\n  - id: k\n    algorithm: hmac-sha256\n",
      want: /\/k\.key:2: the key has no "secret"/,
    },
    { text: "# nothing\n", want: /\/k\.key: the file holds no key/ },
  ];
  for (const { text, want } of cases) {
    assert.throws(() => parseTsigKeys(text, "/k.key"), (e) => {
      assert.ok(e instanceof TsigKeyFileError, String(e));
      assert.match(e.message, want);
      return true;
    });
  }
});

Deno.test("readTsigKeyFile() refuses a file with two keys, naming them", async () => {
  const one = `key "a" { algorithm hmac-sha256; secret "${SECRET}"; };\n`;
  const two = one + one.replace('"a"', '"b"');
  const read = (text: string) => () => Promise.resolve(new TextEncoder().encode(text));
  assert.equal((await readTsigKeyFile("/k", read(one))).name, "a");
  await assert.rejects(readTsigKeyFile("/k", read(two)), /holds 2 keys \("a", "b"\)/);
});

Deno.test("readTsigKeyFile() through readPrivateKeyFile() refuses a world-readable key file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dkimd-tsig-" });
  try {
    const path = `${dir}/update.key`;
    await Deno.writeTextFile(path, `key "k" { algorithm hmac-sha256; secret "${SECRET}"; };\n`);
    const io = { realPath: Deno.realPath, stat: Deno.stat, readFile: Deno.readFile };
    const accounts = UserDb.parse(
      await Deno.readTextFile("/etc/passwd"),
      await Deno.readTextFile("/etc/group"),
    );
    const safety = keyFileSafety(Deno.uid(), accounts);
    const read = (p: string) =>
      readPrivateKeyFile(io, p, { safety, requireSafe: true, warn: () => {} });
    await Deno.chmod(path, 0o644);
    await assert.rejects(
      readTsigKeyFile(path, read),
      (e: Error) => {
        assert.equal(e.name, "UnsafeKeyError");
        assert.match(e.message, /update\.key" can be read by every user.*fix: chmod 640/);
        return true;
      },
    );
    await Deno.chmod(path, 0o600);
    assert.equal((await readTsigKeyFile(path, read)).name, "k");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
