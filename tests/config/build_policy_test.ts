/**
 * buildPolicy() and keysToOpen(): the policy assembled from a configuration, its data sets and
 * its keys, all in memory, every problem reported with its place and none thrown.
 */
import assert from "node:assert/strict";
import {
  buildPolicy,
  type KeyOpening,
  keysToOpen,
  NO_KEYS,
  type OpenedDataSets,
  type OpenedKeys,
} from "../../lib/config/build_policy.ts";
import { readOpendkimConf } from "../../lib/config/opendkim_conf.ts";
import { DEFAULT_SIGNED_HEADERS } from "../../lib/dkim/signed_headers.ts";
import { type DataSet, parseDataSetFile } from "../../lib/policy/dataset.ts";
import type { PrivateKeyInfo } from "../../lib/policy/key_table.ts";
import { chooseSigners } from "../../lib/policy/signers.ts";

interface FakeKey extends PrivateKeyInfo {
  readonly id: string;
}

const RSA: FakeKey = { type: "rsa", bits: 2048, id: "rsa" };
const ED: FakeKey = { type: "ed25519", bits: 256, id: "ed" };

const CONF = "/etc/dkimd.conf";
const read = (text: string) => readOpendkimConf(text, CONF);

function file(path: string, text: string, patterns = false): DataSet {
  return {
    source: patterns ? { kind: "refile", path } : { kind: "file", path },
    patterns,
    entries: parseDataSetFile(text, path),
  };
}

function keys(files: Record<string, KeyOpening<FakeKey>>): OpenedKeys<FakeKey> {
  return { files: new Map(Object.entries(files)), inline: new Map() };
}

const TABLES = "Mode sv\nKeyTable /kt\nSigningTable refile:/st\n";

function tables(keyTable: string, signingTable = "*@example.com rsa\n"): OpenedDataSets {
  return { keyTable: file("/kt", keyTable), signingTable: file("/st", signingTable, true) };
}

Deno.test("buildPolicy() assembles the signing tables from data sets and opened keys", async () => {
  const built = buildPolicy(
    read(`${TABLES}MultipleSignatures yes\n`),
    tables(
      "rsa example.com:rsa:/k/rsa.pem\ned example.com:ed:/k/ed.pem\n",
      "*@example.com rsa\n*@example.com ed\n",
    ),
    keys({ "/k/rsa.pem": { key: RSA, problems: [] }, "/k/ed.pem": { key: ED, problems: [] } }),
  );
  assert.deepEqual(built.errors, []);
  assert.deepEqual(built.warnings, []);
  const d = await chooseSigners(built.policy, "joe", "example.com");
  assert.deepEqual(d.signers.map((s) => [s.selector, s.algorithm, s.key.id]), [
    ["rsa", "rsa-sha256", "rsa"],
    ["ed", "ed25519-sha256", "ed"],
  ]);
  assert.equal(built.policy.keyTable?.get("ed")?.key, ED);
});

Deno.test("buildPolicy() reports keys that could not be opened, each for the entry that names it", () => {
  const built = buildPolicy(
    read(TABLES),
    tables(
      "a example.com:a:/k/gone.pem\nb example.com:b:/k/gone.pem\nc example.com:c:/k/open.pem\n" +
        "d example.com:d:/k/never.pem\n",
      "*@example.com a\n",
    ),
    keys({
      "/k/gone.pem": { failure: '"/k/gone.pem": no such file or directory', unsafe: false },
      "/k/open.pem": { failure: 'file "/k/open.pem" is readable by others', unsafe: true },
    }),
  );
  assert.deepEqual(built.errors.map((e) => [e.message, e.line]), [
    [
      'Cannot load the key of KeyTable entry "a" at /kt:1: "/k/gone.pem": no such file or directory',
      1,
    ],
    [
      'Cannot load the key of KeyTable entry "b" at /kt:2: "/k/gone.pem": no such file or directory',
      2,
    ],
    ['Unsafe key for KeyTable entry "c" at /kt:3: file "/k/open.pem" is readable by others', 3],
    [
      'Cannot load the key of KeyTable entry "d" at /kt:4: "/k/never.pem": the key was not opened',
      4,
    ],
  ]);
  assert.equal(built.policy.keyTable?.get("a")?.key, undefined);
});

Deno.test("buildPolicy() warns once per key file about its safety, then checks each key", () => {
  const weak: FakeKey = { type: "rsa", bits: 1536, id: "weak" };
  const built = buildPolicy(
    read(`${TABLES}SignatureAlgorithm ed25519-sha256\n`),
    tables(
      "a example.com:a:/k/weak.pem\nb example.com:b:/k/weak.pem\n" +
        "c example.com:c:/k/ed.pem:rsa-sha256\n",
      "*@example.com a\n",
    ),
    keys({
      "/k/weak.pem": { key: weak, problems: ["the key is not safe (RequireSafeKeys is off): x"] },
      "/k/ed.pem": { key: ED, problems: [] },
    }),
  );
  const own = built.warnings.filter((w) => w.origin.file === "/kt").map((w) => w.message);
  assert.deepEqual(own, [
    'KeyTable entry "a" at /kt:1: the key is not safe (RequireSafeKeys is off): x',
    'KeyTable entry "a" at /kt:1 holds an RSA key; it signs rsa-sha256, since SignatureAlgorithm ' +
    "ed25519-sha256 applies only to Ed25519 keys",
    'KeyTable entry "a" at /kt:1 is a 1536-bit RSA key; RFC 8301 §3.2 says signers SHOULD use ' +
    "at least 2048 bits",
    'KeyTable entry "b" at /kt:2 holds an RSA key; it signs rsa-sha256, since SignatureAlgorithm ' +
    "ed25519-sha256 applies only to Ed25519 keys",
    'KeyTable entry "b" at /kt:2 is a 1536-bit RSA key; RFC 8301 §3.2 says signers SHOULD use ' +
    "at least 2048 bits",
  ]);
  assert.deepEqual(built.errors.map((e) => e.message), [
    'Invalid algorithm for KeyTable entry "c" at /kt:3: "rsa-sha256" cannot sign with an Ed25519 key',
  ]);
});

Deno.test("buildPolicy() in verify-only mode keeps the KeyTable without its keys", () => {
  const conf = read("Mode v\nKeyTable /kt\nSigningTable refile:/st\n");
  const dataSets = tables("rsa example.com:rsa:/k/rsa.pem\n");
  assert.deepEqual(keysToOpen(conf, dataSets), []);
  const built = buildPolicy(conf, dataSets, NO_KEYS);
  assert.deepEqual(built.errors, []);
  assert.equal(built.policy.keyTable?.get("rsa")?.key, undefined);
});

Deno.test("buildPolicy() names a SigningTable key the KeyTable lacks, hinting at its case", () => {
  const built = buildPolicy(
    read(TABLES),
    tables("Main example.com:rsa:/k/rsa.pem\n", "*@example.com main\n*@example.org %\n"),
    keys({ "/k/rsa.pem": { key: RSA, problems: [] } }),
  );
  assert.deepEqual(built.errors.map((e) => e.message), [
    'Invalid SigningTable entry "*@example.com" at /st:1: key "main" is not in the KeyTable ' +
    '(KeyTable names are case-sensitive: "Main")',
  ]);
});

Deno.test("buildPolicy() makes the single key of Domain, Selector and KeyFile", async () => {
  const conf = read("Mode s\nDomain csl:example.com\nSelector mail\nKeyFile keys/mail.pem\n");
  assert.deepEqual(keysToOpen(conf, {}), [{ kind: "file", path: "keys/mail.pem" }]);
  const domain = conf.config.domain;
  assert.ok(domain?.kind === "inline");
  const built = buildPolicy(
    conf,
    {
      domain: {
        source: domain,
        patterns: false,
        entries: [{ key: "example.com", origin: { file: CONF, line: 2 } }],
      },
    },
    keys({ "keys/mail.pem": { key: RSA, path: "/etc/keys/mail.pem", problems: [] } }),
  );
  assert.deepEqual(built.errors, []);
  assert.equal(built.policy.singleKey?.keyFile, "/etc/keys/mail.pem");
  const d = await chooseSigners(built.policy, "joe", "example.com");
  assert.equal(d.signers[0].explanation.includes(`Domain entry "example.com" at ${CONF}:2`), true);
});

Deno.test("buildPolicy() reports every mistake in the data sets without throwing", () => {
  const built = buildPolicy(
    read("Mode v\nInternalHosts /hosts\nMacroList csl:bad name\n"),
    {
      internalHosts: file("/hosts", "10.0.0.0/8\n192.168.1.5/24\n10.0.0.0/33\n"),
      macroList: {
        source: { kind: "inline", entries: [], patterns: false },
        patterns: false,
        entries: [{ key: "bad name", origin: { file: CONF, line: 3 } }],
      },
    },
    NO_KEYS,
  );
  assert.deepEqual(built.errors.map((e) => [e.file, e.line]), [["/hosts", 3], [CONF, 3]]);
  // A list that failed falls back to OpenDKIM's default.
  assert.equal(
    built.policy.hosts.internal.rules[0].origin.file,
    "(OpenDKIM's default InternalHosts)",
  );
});

Deno.test("buildPolicy() builds AuthorizedSigners from a file, refile: or csl: list, and names a bad entry's line", async () => {
  const plain = buildPolicy(
    read("Mode sv\nAuthorizedSigners /as\n"),
    { authorizedSigners: file("/as", "*  %\npostmaster@example.com  example.com, example.net\n") },
    NO_KEYS,
  );
  assert.deepEqual(plain.errors, []);
  const signers = plain.policy.authorizedSigners!;
  assert.equal((await signers.authorize("joe@example.org", "joe", "example.org")).allowed, true);
  assert.equal(
    (await signers.authorize("postmaster@example.com", "x", "example.net")).allowed,
    true,
  );
  // refile: patterns for the login.
  const patterns = buildPolicy(
    read("Mode sv\nAuthorizedSigners refile:/as\n"),
    { authorizedSigners: file("/as", "*@example.com .example.com\n", true) },
    NO_KEYS,
  );
  assert.equal(patterns.policy.authorizedSigners?.patterns, true);
  assert.equal(
    (await patterns.policy.authorizedSigners!.authorize("ann@example.com", "a", "m.example.com"))
      .allowed,
    true,
  );
  // An inline csl: list: its commas separate entries, so an entry's items are separated by |.
  const inline = read("Mode sv\nAuthorizedSigners csl:*=%,joe=example.com|.example.com\n");
  const source = inline.config.authorizedSigners;
  assert.ok(source?.kind === "inline");
  const csl = buildPolicy(inline, {
    authorizedSigners: {
      source,
      patterns: false,
      entries: source.entries.map((e) => ({ ...e, origin: { file: CONF, line: 2 } })),
    },
  }, NO_KEYS);
  const joe = csl.policy.authorizedSigners!;
  assert.equal((await joe.authorize("joe", "j", "www.example.com")).allowed, true);
  assert.equal((await joe.authorize("joe", "j", "example.org")).allowed, false);
  // A bad item is an error naming its file and line; the build goes on and reports it.
  const bad = buildPolicy(
    read("Mode sv\nAuthorizedSigners /as\n"),
    { authorizedSigners: file("/as", "*  %\njoe  *@example.com\n") },
    NO_KEYS,
  );
  assert.deepEqual(bad.errors.map((e) => [e.file, e.line]), [["/as", 2]]);
  assert.match(bad.errors[0].message, /write "example\.com" for every address at a domain/);
  assert.equal(bad.policy.authorizedSigners, undefined);
});

/** An inline data set, as `Name a,b` in opendkim.conf gives it, at line `line`. */
function inline(line: number, ...keys: string[]): DataSet {
  return {
    source: { kind: "inline", entries: [], patterns: false },
    patterns: false,
    entries: keys.map((key) => ({ key, origin: { file: CONF, line } })),
  };
}

Deno.test("buildPolicy() signs dkimd sign's default fields and oversigns From when nothing is set", () => {
  const built = buildPolicy(read("Mode v\n"), {}, NO_KEYS);
  assert.deepEqual(built.warnings, []);
  const { sign, omit, oversign } = built.policy.headers;
  const signed = sign.filter((n) => !omit.includes(n));
  assert.deepEqual(signed, DEFAULT_SIGNED_HEADERS.map((n) => n.toLowerCase()));
  for (const n of ["message-id", "mime-version", "content-type", "content-transfer-encoding"]) {
    assert.ok(signed.includes(n), n);
  }
  assert.deepEqual(oversign, ["from"]);
});

Deno.test("buildPolicy() keeps OpenDKIM's meaning of SignHeaders and OmitHeaders lists", () => {
  const built = buildPolicy(
    read("Mode v\nSignHeaders To,Subject\nOmitHeaders *,+X-Spam\n"),
    { signHeaders: inline(2, "To", "Subject"), omitHeaders: inline(3, "*", "+X-Spam") },
    NO_KEYS,
  );
  assert.deepEqual(built.errors, []);
  // A list replaces the default, From implicitly added (opendkim.conf(5), SignHeaders).
  assert.deepEqual(built.policy.headers.sign, ["from", "to", "subject"]);
  assert.ok(built.policy.headers.omit.includes("received"));
  assert.ok(built.policy.headers.omit.includes("x-spam"));
  // From stays oversigned: OversignHeaders is unset.
  assert.deepEqual(built.policy.headers.oversign, ["from"]);
});

Deno.test("buildPolicy() warns when an OversignHeaders list leaves From out, unless *,-From says so", () => {
  const replaced = buildPolicy(
    read("Mode v\nOversignHeaders Subject\n"),
    { oversignHeaders: inline(2, "Subject") },
    NO_KEYS,
  );
  assert.deepEqual(replaced.policy.headers.oversign, ["subject"]);
  assert.deepEqual(replaced.warnings.map((w) => w.setting), ["OversignHeaders"]);
  assert.match(
    replaced.warnings[0].message,
    /^"OversignHeaders" at \/etc\/dkimd\.conf:2 does not list "From", so a From added after signing is not caught/,
  );
  const added = buildPolicy(
    read("Mode v\nOversignHeaders *,+Subject\n"),
    { oversignHeaders: inline(2, "*", "+Subject") },
    NO_KEYS,
  );
  assert.deepEqual(added.policy.headers.oversign, ["from", "subject"]);
  assert.deepEqual(added.warnings, []);
  const off = buildPolicy(
    read("Mode v\nOversignHeaders *,-From\n"),
    { oversignHeaders: inline(2, "*", "-From") },
    NO_KEYS,
  );
  assert.deepEqual(off.policy.headers.oversign, []);
  assert.deepEqual(off.warnings, []);
});
