import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type DataSetSource,
  formatDataSetSource,
  MAX_DATA_SET_LINE_LENGTH,
  parseCommaList,
  parseDataSetFile,
  parseDataSetSpec,
  UnsupportedDataSetError,
} from "../../lib/policy/dataset.ts";
import { SourceError } from "../../lib/policy/origin.ts";
import { assertOnlySourceErrors, HOSTILE_ORIGIN } from "../helpers/source_errors.ts";
import { fuzzParams } from "../helpers/fuzz.ts";

const at = { file: "/etc/opendkim.conf", line: 12 };

Deno.test("parseDataSetSpec() reads every supported kind", () => {
  const cases: { spec: string; want: DataSetSource }[] = [
    {
      spec: "/etc/opendkim/TrustedHosts",
      want: { kind: "file", path: "/etc/opendkim/TrustedHosts" },
    },
    {
      spec: "file:/etc/opendkim/key.table",
      want: { kind: "file", path: "/etc/opendkim/key.table" },
    },
    { spec: "FILE:relative.table", want: { kind: "file", path: "relative.table" } },
    {
      spec: "refile:/etc/opendkim/signing.table",
      want: { kind: "refile", path: "/etc/opendkim/signing.table" },
    },
    {
      spec: "csl:a,b=c",
      want: { kind: "inline", entries: [{ key: "a" }, { key: "b", value: "c" }], patterns: false },
    },
    {
      spec: "192.168.0.0/16, 10.0.0.0/8, 172.16.0.0/12",
      want: {
        kind: "inline",
        entries: [{ key: "192.168.0.0/16" }, { key: "10.0.0.0/8" }, { key: "172.16.0.0/12" }],
        patterns: false,
      },
    },
    {
      spec: "example.com",
      want: { kind: "inline", entries: [{ key: "example.com" }], patterns: false },
    },
    // A comma before the first colon: a list whose later elements hold colons (OpenDKIM).
    {
      spec: "127.0.0.1,::1",
      want: { kind: "inline", entries: [{ key: "127.0.0.1" }, { key: "::1" }], patterns: false },
    },
    // Databases (issue 14): kept as written; lib/tables reads them.
    {
      spec: "dsn:mysql://u:p@3306+db/odkim/table=k?keycol=a?datacol=b",
      want: { kind: "dsn", text: "dsn:mysql://u:p@3306+db/odkim/table=k?keycol=a?datacol=b" },
    },
    {
      spec: "ldap://ldap.example.com/dc=example,dc=com",
      want: { kind: "ldap", uri: "ldap://ldap.example.com/dc=example,dc=com" },
    },
    { spec: "ldaps://ldap.example.com/", want: { kind: "ldap", uri: "ldaps://ldap.example.com/" } },
    { spec: "ldapi:///", want: { kind: "ldap", uri: "ldapi:///" } },
    // dkimd extension: OpenDKIM calls these "Unknown database type".
    { spec: "::1", want: { kind: "inline", entries: [{ key: "::1" }], patterns: false } },
    { spec: "[::1]", want: { kind: "inline", entries: [{ key: "[::1]" }], patterns: false } },
    {
      spec: "dead:beef::1, [2001:db8::/32]",
      want: {
        kind: "inline",
        entries: [{ key: "dead:beef::1" }, { key: "[2001:db8::/32]" }],
        patterns: false,
      },
    },
    {
      spec: "csl:name=d.example:sel:/k",
      want: {
        kind: "inline",
        entries: [{ key: "name", value: "d.example:sel:/k" }],
        patterns: false,
      },
    },
  ];
  for (const c of cases) {
    assert.deepEqual(parseDataSetSpec(c.spec, at, "X"), c.want, c.spec);
  }
});

Deno.test("parseDataSetSpec() refuses unsupported back ends naming the setting and line", () => {
  const cases: { spec: string; type: string }[] = [
    { spec: "db:/etc/opendkim/keys.db", type: "db" },
    { spec: "/etc/opendkim/keys.db", type: "db" },
    { spec: "lua:/etc/opendkim/keys.lua", type: "lua" },
    { spec: "memcache:localhost,otherhost/keyname", type: "memcache" },
    { spec: "mdb:/var/db/opendkim", type: "mdb" },
    { spec: "erlang:node@host:cookie:dkim:lookup", type: "erlang" },
  ];
  for (const c of cases) {
    assert.throws(
      () => parseDataSetSpec(c.spec, at, "KeyTable"),
      (e: unknown) => {
        assert.ok(e instanceof UnsupportedDataSetError, c.spec);
        assert.equal(e.type, c.type);
        assert.equal(e.line, 12);
        assert.match(e.message, /"KeyTable" at \/etc\/opendkim\.conf:12/);
        assert.match(e.message, /not supported by dkimd/);
        return true;
      },
    );
  }
});

Deno.test("parseDataSetSpec() refuses unknown types and empty values", () => {
  for (const spec of ["foo:bar", "", "  ", "file:", "refile: ", "csl:", "csl:,,"]) {
    assert.throws(
      () => parseDataSetSpec(spec, at, "SigningTable"),
      SourceError,
      JSON.stringify(spec),
    );
  }
  assert.throws(
    () => parseDataSetSpec("foo:bar", at, "SigningTable"),
    /unknown data set type "foo"/,
  );
});

Deno.test("parseCommaList() trims, skips empty elements and splits key=value", () => {
  assert.deepEqual(parseCommaList(" a ,, b=1|2 , c = d = e", "MacroList", at), [
    { key: "a" },
    { key: "b", value: "1|2" },
    { key: "c", value: "d = e" },
  ]);
  assert.throws(() => parseCommaList("=x", "MacroList", at), /has no key/);
});

Deno.test("parseDataSetFile() reads OpenDKIM's flat file layout", () => {
  const text = [
    "# SigningTable",
    "*@example.com\t\tmail   # the main key",
    "   ",
    "  indented   value with  spaces  ",
    "crlf value\r",
    "bare",
    "#only a comment",
    "hash#inside value",
    "",
  ].join("\n");
  assert.deepEqual(parseDataSetFile(text, "t"), [
    { key: "*@example.com", value: "mail", origin: { file: "t", line: 2 } },
    { key: "indented", value: "value with  spaces", origin: { file: "t", line: 4 } },
    { key: "crlf", value: "value", origin: { file: "t", line: 5 } },
    { key: "bare", origin: { file: "t", line: 6 } },
    { key: "hash", origin: { file: "t", line: 8 } },
  ]);
});

Deno.test("parseDataSetFile() refuses over-long lines and binary files with file:line", () => {
  const long = "k " + "A".repeat(MAX_DATA_SET_LINE_LENGTH);
  assert.throws(() => parseDataSetFile(`ok 1\n${long}\n`, "kt"), (e: unknown) => {
    assert.ok(e instanceof SourceError);
    assert.equal(e.file, "kt");
    assert.equal(e.line, 2);
    return true;
  });
  assert.throws(() => parseDataSetFile("a\0b c\n", "kt"), /kt:1: .*NUL/);
});

Deno.test("formatDataSetSource() writes what parseDataSetSpec() reads", () => {
  const sources: DataSetSource[] = [
    { kind: "file", path: "/etc/opendkim/key.table" },
    { kind: "file", path: "rel/key.table" },
    { kind: "refile", path: "/etc/opendkim/signing.table" },
    { kind: "inline", entries: [{ key: "a" }, { key: "b", value: "c" }], patterns: false },
  ];
  for (const s of sources) assert.deepEqual(parseDataSetSpec(formatDataSetSource(s), at, "X"), s);
});

// Differential tests: OpenDKIM's own data set code (`opendkim -Q`, its query test mode) must
// read our test files the same way parseDataSetFile() and parseCommaList() do.
const OPENDKIM = "/usr/sbin/opendkim";
const haveOpendkim = await Deno.stat(OPENDKIM).then(() => true, () => false);

/** Runs `opendkim -Q` for one data set and query; returns the value or undefined. */
async function query(spec: string, key: string): Promise<string | undefined> {
  const cmd = new Deno.Command(OPENDKIM, {
    args: ["-Q"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(10_000),
  });
  const child = cmd.spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(`${spec}\n${key}/1\n`));
  await writer.close();
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout);
  const m = /^'(.*)'$/m.exec(text);
  if (m) return m[1];
  const all = text + new TextDecoder().decode(out.stderr);
  if (/record not found/.test(all)) return undefined;
  // A key without a value prints an empty line on success.
  return text.trim() === "" ? "" : text;
}

Deno.test({
  name: "parseDataSetFile() agrees with opendkim -Q on a tricky file",
  ignore: !haveOpendkim,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const text = [
        "# comment",
        "plain value",
        "  spaced\t\tvalue with inner  spaces   ",
        "trailing value # comment",
        "colons a:b:c",
        "crlf value\r",
        "bare",
        "dup first",
        "dup second",
        "",
      ].join("\n");
      const path = `${dir}/table`;
      await Deno.writeTextFile(path, text);
      const ours = parseDataSetFile(text, path);
      const firstByKey = new Map<string, string>();
      for (const e of ours) if (!firstByKey.has(e.key)) firstByKey.set(e.key, e.value ?? "");
      for (
        const key of [
          "plain",
          "spaced",
          "trailing",
          "colons",
          "crlf",
          "bare",
          "dup",
          "missing",
          "#",
        ]
      ) {
        assert.equal(await query(`file:${path}`, key), firstByKey.get(key), key);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "parseCommaList() agrees with opendkim -Q on csl lists",
  ignore: !haveOpendkim,
  async fn() {
    const list = "a, b=c , d = e:f,,g";
    const ours = parseCommaList(list, "X", { file: "x", line: 1 });
    for (const key of ["a", "b", "d", "g", "x"]) {
      const want = ours.find((e) => e.key === key);
      assert.equal(await query(`csl:${list}`, key), want ? (want.value ?? "") : undefined, key);
    }
  },
});

Deno.test("parseDataSetSpec() and parseDataSetFile() throw only SourceErrors, whatever the text", () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 80 }), fc.string({ maxLength: 80 }), (a, b) => {
      assertOnlySourceErrors(() => parseDataSetSpec(a, HOSTILE_ORIGIN, "X"));
      assertOnlySourceErrors(() => parseDataSetFile(`${a}\n${b}`, "f"));
    }),
    fuzzParams(500),
  );
});
