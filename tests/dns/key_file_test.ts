import assert from "node:assert/strict";
import {
  KEY_FILE_MAX_BYTES,
  KeyFileResolver,
  KeyFileSyntaxError,
  parseKeyFile,
  readKeyFile,
} from "../../lib/dns/key_file.ts";
import { DnsError } from "../../lib/dns/resolver.ts";

Deno.test("parseKeyFile() reads names and records, skipping comments and blank lines", () => {
  const text = [
    "# OpenDKIM TestPublicKeys",
    "",
    "   ",
    "  # indented comment",
    "sel._domainkey.example.com v=DKIM1; k=rsa; p=MIGf",
    "Other._DomainKey.Example.NET.\t\tv=DKIM1; k=ed25519; p=11qY=  \r",
    "sel._domainkey.example.com v=DKIM1; p=second",
    "  lead._domainkey.example.org v=DKIM1; p=#not-a-comment",
    "last._domainkey.example.com v=DKIM1; p=",
  ].join("\n");
  const keys = parseKeyFile(text, "keys.txt");
  assert.deepEqual([...keys.entries()], [
    ["sel._domainkey.example.com", ["v=DKIM1; k=rsa; p=MIGf", "v=DKIM1; p=second"]],
    ["other._domainkey.example.net", ["v=DKIM1; k=ed25519; p=11qY="]],
    ["lead._domainkey.example.org", ["v=DKIM1; p=#not-a-comment"]],
    ["last._domainkey.example.com", ["v=DKIM1; p="]],
  ]);
});

Deno.test("parseKeyFile() keeps 8-bit characters of a record", () => {
  const keys = parseKeyFile("a.example v=DKIM1; n=caf\xe9\xff");
  assert.deepEqual(keys.get("a.example"), ["v=DKIM1; n=caf\xe9\xff"]);
});

const bad: { text: string; line: number; mentions: string }[] = [
  { text: "sel._domainkey.example.com\n", line: 1, mentions: "expected a key record" },
  { text: "# c\n\nsel._domainkey.example.com   \t \n", line: 3, mentions: "expected a key record" },
  { text: "ok.example v=DKIM1\na..example v=DKIM1\n", line: 2, mentions: '"a..example"' },
  { text: `${"a".repeat(64)}.example v=DKIM1`, line: 1, mentions: "longer than 63" },
  { text: `${"a.".repeat(127)}b v=DKIM1`, line: 1, mentions: "1..253" },
  { text: "caf\xe9.example v=DKIM1", line: 1, mentions: "other than ASCII" },
  { text: ". v=DKIM1", line: 1, mentions: '"."' },
];

for (const { text, line, mentions } of bad) {
  Deno.test(`parseKeyFile() names file:line for ${JSON.stringify(text.slice(0, 30))}`, () => {
    assert.throws(
      () => parseKeyFile(text, "/etc/dkimd/keys.txt"),
      (e: unknown) => {
        assert.ok(e instanceof KeyFileSyntaxError && e instanceof SyntaxError);
        assert.equal(e.name, "KeyFileSyntaxError");
        assert.equal(e.file, "/etc/dkimd/keys.txt");
        assert.equal(e.line, line);
        assert.ok(
          e.message.startsWith(`Cannot parse key record at /etc/dkimd/keys.txt:${line}: `),
          e.message,
        );
        assert.ok(e.message.includes(mentions), e.message);
        return true;
      },
    );
  });
}

Deno.test("readKeyFile() reads bytes one per character and names the file in errors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/keys`;
    const bytes = new Uint8Array([
      ...new TextEncoder().encode("s._domainkey.example.com v=DKIM1; x="),
      0xc3,
      0xa9,
      0x0a,
    ]);
    await Deno.writeFile(path, bytes);
    assert.deepEqual((await readKeyFile(path)).get("s._domainkey.example.com"), [
      "v=DKIM1; x=\xc3\xa9",
    ]);
    await Deno.writeTextFile(path, "ok.example v=1\nbroken.example\n");
    await assert.rejects(() => readKeyFile(path), (e) => {
      assert.ok(e instanceof KeyFileSyntaxError);
      assert.equal(e.file, path);
      assert.equal(e.line, 2);
      return true;
    });
    await assert.rejects(() => readKeyFile(`${dir}/missing`), Deno.errors.NotFound);
    using file = await Deno.open(path, { write: true, truncate: true });
    await file.truncate(KEY_FILE_MAX_BYTES + 1);
    await assert.rejects(() => readKeyFile(path), RangeError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("KeyFileResolver.resolveTxt() answers listed names and nxdomain for others", async () => {
  const resolver = new KeyFileResolver(parseKeyFile(
    "s._domainkey.example.com v=DKIM1; p=abc\ns._domainkey.example.com v=DKIM1; p=def\n",
  ));
  assert.deepEqual(await resolver.resolveTxt("S._DOMAINKEY.example.com."), [
    "v=DKIM1; p=abc",
    "v=DKIM1; p=def",
  ]);
  const first = await resolver.resolveTxt("s._domainkey.example.com");
  first.length = 0; // a caller's change does not reach the resolver
  assert.equal((await resolver.resolveTxt("s._domainkey.example.com")).length, 2);
  await assert.rejects(
    resolver.resolveTxt("t._domainkey.example.com"),
    (e) => e instanceof DnsError && e.code === "nxdomain" && e.permanent,
  );
  await assert.rejects(
    resolver.resolveTxt("s._domainkey.example.com", { signal: AbortSignal.abort() }),
    { code: "timeout" },
  );
});
