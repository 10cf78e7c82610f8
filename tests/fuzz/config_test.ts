// Mutation fuzzing of configuration loading: the seed's opendkim.conf, dkimd.yaml, KeyTable,
// SigningTable, host list and key file (tests/testdata/config/seed) served from memory, with
// lines dropped, repeated, swapped and replaced and bytes changed. loadConfig() resolves to a
// configuration or rejects with a ConfigError or ConfigErrors whose every error is a
// SourceError naming a file and a line in it; the data set, KeyTable, SigningTable and host
// list parsers do the same on their own.
import assert from "node:assert/strict";
import fc from "fast-check";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import { ConfigError, ConfigErrors } from "../../lib/config/config_error.ts";
import { loadConfig } from "../../lib/config/load.ts";
import { knownSettingNames } from "../../lib/config/settings.ts";
import { importPrivateKey, type SigningKey } from "../../lib/crypto/private_key.ts";
import { parseDataSetFile } from "../../lib/policy/dataset.ts";
import { HostList } from "../../lib/policy/host_list.ts";
import { parseKeyTable } from "../../lib/policy/key_table.ts";
import { SourceError } from "../../lib/policy/origin.ts";
import { SigningTable } from "../../lib/policy/signing_table.ts";
import { KEYS_DIR } from "../helpers/dkim_fixtures.ts";
import { applyEdits, type Edit, edits, fuzzParams, latin1Text } from "../helpers/fuzz.ts";
import { memoryIo } from "../helpers/memory_io.ts";

const SEED = new URL("../testdata/config/seed/", import.meta.url);
const DIR = "/etc/dkimd";
const KEY = `${DIR}/keys/datahunter.org/dkim.private`;

const seedFiles = new Map<string, string>();
for (const name of ["opendkim.conf", "dkimd.yaml", "key.table", "signing.table", "TrustedHosts"]) {
  const text = await Deno.readTextFile(new URL(name, SEED));
  seedFiles.set(`${DIR}/${name}`, text.replaceAll("@DIR@", DIR));
}
seedFiles.set(KEY, await Deno.readTextFile(new URL("opendkim_genkey.private", KEYS_DIR)));
const PATHS = [...seedFiles.keys()];

// Keys are imported once per distinct text: a real import signs and verifies a test string.
const imported = new Map<string, Promise<SigningKey>>();
function importKey(input: Uint8Array | string, source?: string): Promise<SigningKey> {
  const text = typeof input === "string" ? input : latin1(input);
  let key = imported.get(text);
  if (!key) {
    key = importPrivateKey(input, source);
    key.catch(() => {});
    imported.set(text, key);
  }
  return key;
}

/** Files in memory, owned by root with mode 0600 (directories 0755), as RequireSafeKeys wants. */
const filesIo = (files: ReadonlyMap<string, Uint8Array>) =>
  memoryIo(files, { importKey, cwd: DIR });

type LineOp =
  | { readonly kind: "drop"; readonly at: number }
  | { readonly kind: "repeat"; readonly at: number }
  | { readonly kind: "swap"; readonly at: number; readonly with: number }
  | { readonly kind: "replace"; readonly at: number; readonly line: string }
  | { readonly kind: "insert"; readonly at: number; readonly line: string };

const settingLine = fc.tuple(
  fc.constantFrom(...knownSettingNames(), "Include", "keyTable:", "mode:", "- x", "Nonsense"),
  fc.oneof(
    fc.constantFrom(
      "yes",
      "no",
      "sv",
      "relaxed/simple",
      "refile:/etc/dkimd/signing.table",
      "/etc/dkimd/key.table",
      "/etc/dkimd/missing",
      "csl:a,b=c",
      "inet:8891@localhost",
      "10/1h",
      "0x10",
      "-1",
      "99999999999999999999",
      "/etc/dkimd/opendkim.conf",
      "{",
      "[1, 2",
      "*a",
      "&a x",
    ),
    latin1Text(6),
  ),
).map(([k, v]) => `${k} ${v}`);

const lineOp: fc.Arbitrary<LineOp> = fc.oneof(
  fc.record({ kind: fc.constant("drop" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("repeat" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("swap" as const), at: fc.nat(), with: fc.nat() }),
  fc.record({
    kind: fc.constant("replace" as const),
    at: fc.nat(),
    line: fc.oneof(settingLine, latin1Text(12)),
  }),
  fc.record({
    kind: fc.constant("insert" as const),
    at: fc.nat(),
    line: fc.oneof(settingLine, latin1Text(12)),
  }),
);

function applyLineOps(text: string, ops: readonly LineOp[]): string {
  const lines = text.split("\n");
  for (const op of ops) {
    const i = op.at % lines.length;
    if (op.kind === "drop") lines.splice(i, 1);
    else if (op.kind === "repeat") lines.splice(i, 0, lines[i]);
    else if (op.kind === "replace") lines[i] = op.line;
    else if (op.kind === "insert") lines.splice(i, 0, op.line);
    else {
      const j = op.with % lines.length;
      [lines[i], lines[j]] = [lines[j], lines[i]];
    }
    if (lines.length === 0) lines.push("");
  }
  return lines.join("\n");
}

/** What to change in one file. */
interface FileChange {
  readonly file: number;
  readonly lines: readonly LineOp[];
  readonly bytes: readonly Edit[];
}

const fileChange: fc.Arbitrary<FileChange> = fc.record({
  file: fc.nat(PATHS.length - 1),
  lines: fc.array(lineOp, { maxLength: 4 }),
  bytes: fc.oneof(fc.constant([] as readonly Edit[]), edits(3)),
});

function changedFiles(changes: readonly FileChange[]): Map<string, Uint8Array> {
  const files = new Map([...seedFiles].map(([p, t]) => [p, fromLatin1(t)]));
  for (const c of changes) {
    const path = PATHS[c.file];
    const text = applyLineOps(latin1(files.get(path)!), c.lines);
    files.set(path, applyEdits(fromLatin1(text), c.bytes));
  }
  return files;
}

function assertPlaced(error: unknown, files: ReadonlyMap<string, Uint8Array>): void {
  const list = error instanceof ConfigErrors ? error.errors : [error];
  assert.ok(
    error instanceof ConfigErrors || error instanceof ConfigError || error instanceof SourceError,
    `untyped ${String(error)}`,
  );
  for (const e of list) {
    assert.ok(e instanceof SourceError, `untyped ${String(e)}`);
    assert.ok(e.file.length > 0, e.message);
    assert.ok(Number.isInteger(e.line) && e.line >= 0, e.message);
    const file = files.get(e.file);
    // Lines count from 1 in the file named; 0 means the file as a whole.
    if (file) {
      const lines = latin1(file).split("\n").length;
      assert.ok(e.line <= lines, `${e.message}: line ${e.line} of ${lines}`);
    }
  }
}

Deno.test("loadConfig() gives a configuration or errors naming a file and line, whatever the files say", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fileChange, { minLength: 1, maxLength: 3 }),
      fc.constantFrom(`${DIR}/opendkim.conf`, `${DIR}/dkimd.yaml`),
      async (changes, top) => {
        const files = changedFiles(changes);
        try {
          const loaded = await loadConfig(top, filesIo(files));
          assert.ok(loaded.config);
          for (const w of loaded.warnings) assert.ok(w.origin.file.length > 0);
        } catch (error) {
          assertPlaced(error, files);
        }
      },
    ),
    fuzzParams(1000),
  );
});

Deno.test("loadConfig() loads both seed configurations unchanged", async () => {
  const files = changedFiles([]);
  for (const top of [`${DIR}/opendkim.conf`, `${DIR}/dkimd.yaml`]) {
    const loaded = await loadConfig(top, filesIo(files));
    assert.equal(loaded.keyTable?.get("datahunter")?.key?.type, "rsa", top);
  }
});

const tableText = fc.oneof(
  fc.tuple(fc.constantFrom(...PATHS.slice(2, 5)), fc.array(lineOp, { maxLength: 5 }), edits(3))
    .map(([p, ops, e]) => latin1(applyEdits(fromLatin1(applyLineOps(seedFiles.get(p)!, ops)), e))),
  latin1Text(40, ["\n", "*@", "example.com", ":", "/", "!", "127.0.0.1", "::1", "/24", "#"]),
);

Deno.test("data set, KeyTable, SigningTable and host list parsers throw only placed SourceErrors", () => {
  fc.assert(
    fc.property(tableText, fc.boolean(), (text, patterns) => {
      const file = "/etc/dkimd/table";
      const files = new Map([[file, fromLatin1(text)]]);
      const placed = (fn: () => unknown) => {
        try {
          fn();
        } catch (error) {
          assertPlaced(error, files);
        }
      };
      let entries: ReturnType<typeof parseDataSetFile> | undefined;
      placed(() => (entries = parseDataSetFile(text, file)));
      if (!entries) return;
      const source = patterns
        ? { kind: "refile" as const, path: file }
        : { kind: "file" as const, path: file };
      const dataSet = { source, patterns, entries };
      placed(() => parseKeyTable(entries!));
      placed(() => SigningTable.fromDataSet(dataSet));
      placed(() => HostList.fromEntries(entries!, "InternalHosts"));
    }),
    fuzzParams(2000),
  );
});
