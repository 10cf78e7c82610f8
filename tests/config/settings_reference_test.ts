import assert from "node:assert/strict";
import {
  REFERENCE_COLUMNS,
  referenceRow,
  settingsMarkdown,
  settingsText,
} from "../../lib/config/settings_reference.ts";
import { SETTING_LIST } from "../../lib/config/settings.ts";
import {
  IGNORED_BECAUSE,
  UNIMPLEMENTED_SETTINGS,
} from "../../lib/config/unimplemented_settings.ts";

const README = new URL("../../README.md", import.meta.url);
const BEGIN = /<!-- settings reference:[^\n]*-->\n/;
const END = "<!-- end of settings reference -->";

/** The README's text between the settings-reference markers, and where it sits. */
function readmeReference(text: string): { before: string; body: string; after: string } {
  const begin = BEGIN.exec(text);
  const end = text.indexOf(END);
  assert.ok(begin && end > begin.index, "README.md lacks the settings-reference markers");
  const start = begin.index + begin[0].length;
  return { before: text.slice(0, start), body: text.slice(start, end), after: text.slice(end) };
}

Deno.test("README.md's settings reference is the one settingsMarkdown() writes from the table", async () => {
  const text = await Deno.readTextFile(README);
  const { before, body, after } = readmeReference(text);
  const want = `\n${settingsMarkdown()}\n`;
  if (Deno.env.get("UPDATE_GOLDEN") === "1" && body !== want) {
    await Deno.writeTextFile(README, before + want + after);
    return;
  }
  assert.equal(
    body,
    want,
    "README.md's settings reference differs from the table in lib/config/settings.ts; " +
      "rewrite it with UPDATE_GOLDEN=1 deno test --allow-all tests/config/settings_reference_test.ts",
  );
});

Deno.test("settingsMarkdown() has one row per setting and names every ignored OpenDKIM setting", () => {
  const md = settingsMarkdown();
  const rows = md.split("\n").filter((l) => l.startsWith("| `"));
  assert.deepEqual(rows.map((r) => /^\| `([^`]+)`/.exec(r)![1]), SETTING_LIST.map((s) => s.name));
  for (const row of rows) assert.equal(row.split(/(?<!\\)\|/).length, REFERENCE_COLUMNS.length + 2);
  for (const { name } of UNIMPLEMENTED_SETTINGS) assert.match(md, new RegExp(`[ |,]${name}[ ,|]`));
  // A "|" in a syntax (AutoRestartRate's units) is escaped, so it cannot split its row.
  assert.ok(md.includes("COUNT/TIME[s\\|m\\|h\\|d]"));
});

Deno.test("referenceRow() shows the default the table gives, or the words for one code applies", () => {
  const row = (name: string) => referenceRow(SETTING_LIST.find((s) => s.name === name)!);
  assert.equal(row("Mode").default, "sv");
  assert.equal(row("Canonicalization").default, "simple/simple");
  assert.equal(row("SubDomains").default, "no");
  assert.equal(row("RequireSafeKeys").default, "yes");
  assert.equal(row("DNSTimeout").default, "5");
  assert.equal(row("On-InternalError").default, "tempfail");
  assert.equal(row("InternalHosts").default, "127.0.0.1, ::1");
  assert.equal(row("KeyTable").default, "none");
  assert.equal(row("X-Header").yaml, "-");
  assert.equal(row("On-BadSignature").yaml, "actions.badSignature");
  assert.match(row("MaximumKeyBits").doc, /\(dkimd's own\)$/);
  assert.doesNotMatch(row("MaximumHeaders").doc, /dkimd's own/);
});

Deno.test("settingsText() lists every setting with its YAML key and default, then the ignored ones", () => {
  const lines = settingsText();
  for (const s of SETTING_LIST) {
    assert.ok(lines.some((l) => l.startsWith(`  ${s.name} (`)), s.name);
  }
  assert.ok(lines.includes("  Mode (YAML mode): s, v or sv; default sv"));
  assert.ok(lines.includes("  X-Header (no YAML key): yes or no; default none"));
  assert.ok(
    lines.some((l) => l.startsWith(`  ${IGNORED_BECAUSE.vbr}: VBR-Certifiers, `)),
  );
});

Deno.test("the reference says, for each OpenDKIM setting, same, same except ..., or not implemented because ...", () => {
  for (const s of SETTING_LIST) {
    const { opendkim } = referenceRow(s);
    if (s.dkimd) assert.equal(opendkim, "dkimd's own", s.name);
    else assert.match(opendkim, /^same(, except \S.*)?$/, s.name);
  }
  assert.equal(referenceRow(SETTING_LIST.find((s) => s.name === "Mode")!).opendkim, "same");
  assert.match(
    referenceRow(SETTING_LIST.find((s) => s.name === "RequiredHeaders")!).opendkim,
    /^same, except .*5\.6\.0/,
  );
  const md = settingsMarkdown();
  assert.match(md, /\| not implemented, because +\| settings +\|/);
  for (const why of new Set(UNIMPLEMENTED_SETTINGS.map((s) => s.why))) {
    assert.ok(md.includes(`| ${why.replace(/[|*_\\]/g, (c) => `\\${c}`)} `), why);
  }
});
