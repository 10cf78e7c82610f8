import assert from "node:assert/strict";
import {
  ACTION,
  BOOL,
  custom,
  dataSet,
  integer,
  oneOf,
  seconds,
  TEXT,
  type ValueContext,
} from "../../lib/config/setting_kind.ts";
import { SETTINGS } from "../../lib/config/settings.ts";

const at = { file: "/etc/opendkim.conf", line: 1 };
const ctx = { origin: at, name: "x", warn: () => {} };

/** A context that keeps the warnings it is given. */
function recording(name = "KeyTable"): ValueContext & { warnings: string[] } {
  const warnings: string[] = [];
  return { origin: at, name, warn: (m) => warnings.push(m), warnings };
}

Deno.test("integer and seconds kinds keep their bounds; seconds take a unit in YAML only", () => {
  const ttl = SETTINGS.dnsTimeout.kind;
  assert.equal(ttl.type, "seconds");
  assert.throws(() => ttl.parse("3601", ctx), /from 0 to 3600/);
  assert.throws(() => ttl.parse("5m", ctx), /whole number/);
  assert.equal(ttl.parse(ttl.fromYaml!("1m"), ctx), 60);
  assert.equal(SETTINGS.maximumHeaders.kind.fromYaml, undefined);
});

Deno.test("each kind says its syntax, reads opendkim.conf text and writes it back", () => {
  const mode = oneOf(["simple", "relaxed"], (t) => {
    if (t !== "simple" && t !== "relaxed") throw new Error(`"${t}": expected simple or relaxed`);
    return t;
  });
  const cases: {
    kind: { syntax: string; parse(t: string, c: ValueContext): unknown; format(v: never): string };
    syntax: string;
    text: string;
    value: unknown;
    written?: string;
  }[] = [
    { kind: BOOL, syntax: "yes or no", text: "True", value: true, written: "yes" },
    { kind: BOOL, syntax: "yes or no", text: "0", value: false, written: "no" },
    { kind: TEXT, syntax: "text", text: " a b ", value: " a b " },
    {
      kind: ACTION,
      syntax: "accept, reject, tempfail, discard, quarantine",
      text: "r",
      value: "reject",
      written: "reject",
    },
    { kind: integer(1, 10), syntax: "1 to 10", text: "0x0A", value: 10, written: "10" },
    { kind: seconds(0, 60), syntax: "seconds, 0 to 60", text: "60", value: 60 },
    { kind: mode, syntax: "simple, relaxed", text: "relaxed", value: "relaxed" },
  ];
  for (const c of cases) {
    assert.equal(c.kind.syntax, c.syntax, c.text);
    const value = c.kind.parse(c.text, ctx);
    assert.deepEqual(value, c.value, c.text);
    assert.equal(c.kind.format(value as never), c.written ?? c.text, c.text);
  }
  assert.throws(() => integer(1, 10).parse("11", ctx), /from 1 to 10/);
  assert.throws(() => seconds(0, 60).parse("-1", ctx), /from 0 to 60/);
  assert.throws(() => mode.parse("loose", ctx), /expected simple or relaxed/);
});

Deno.test("integer() and seconds() keep their bounds; only seconds read a YAML unit", () => {
  const count = integer(0, 5);
  assert.equal(count.type, "integer");
  assert.deepEqual([count.type === "integer" && count.min, count.type === "integer" && count.max], [
    0,
    5,
  ]);
  assert.equal(count.fromYaml, undefined);
  assert.equal(count.toYaml(3), 3);
  const wait = seconds(1, 7200);
  assert.equal(wait.type, "seconds");
  const cases: [string, string][] = [["90", "90"], ["2m", "120"], ["1h", "3600"], ["30s", "30"]];
  for (const [yaml, text] of cases) assert.equal(wait.fromYaml!(yaml), text, yaml);
  assert.equal(wait.parse(wait.fromYaml!("2h"), ctx), 7200);
  assert.throws(() => wait.parse(wait.fromYaml!("3h"), ctx), /from 1 to 7200/);
});

Deno.test("custom() writes YAML as it formats text unless told otherwise", () => {
  const spec = {
    syntax: "n/t",
    parse: (t: string) => t.split("/").map(Number) as [number, number],
    format: (v: [number, number]) => v.join("/"),
  };
  const plain = custom(spec);
  assert.equal(plain.type, "custom");
  assert.equal(plain.toYaml([10, 3600]), "10/3600");
  assert.equal(plain.fromYaml, undefined);
  const own = custom({ ...spec, toYaml: (v) => ({ n: v[0], t: v[1] }), fromYaml: (t) => t.trim() });
  assert.deepEqual(own.toYaml([10, 3600]), { n: 10, t: 3600 });
  assert.equal(own.fromYaml!(" 1/2 "), "1/2");
  assert.deepEqual(own.parse("1/2", ctx), [1, 2]);
});

Deno.test("dataSet() names the types it accepts and reads any data set, written back alike", () => {
  const table = dataSet(["file", "refile", "csl"]);
  assert.equal(table.syntax, "data set (file, refile:, csl:)");
  assert.equal(dataSet(["file", "csl"], "no patterns here").syntax, "data set (file, csl:)");
  const kind = dataSet(["file", "csl"], "no patterns here");
  assert.ok(kind.type === "dataSet" && kind.refusal === "no patterns here");
  assert.ok(table.type === "dataSet" && !("refusal" in table));
  const cases: [string, string][] = [
    ["/etc/dkimd/key.table", "/etc/dkimd/key.table"],
    ["file:key.table", "file:key.table"],
    ["refile:/etc/dkimd/signing.table", "refile:/etc/dkimd/signing.table"],
    ["csl:a, b=c", "csl:a,b=c"],
    ["a,b", "csl:a,b"],
  ];
  for (const [text, written] of cases) {
    const source = table.parse(text, ctx);
    assert.equal(table.format(source), written, text);
    assert.equal(table.toYaml(source), written, text);
  }
});

Deno.test("dataSet() warns when a one-element list looks like a file name", () => {
  const cases: [string, boolean][] = [
    ["key.table", true],
    ["./keys", true],
    ["../keys", true],
    ["TrustedHosts.hosts", true],
    ["etc/dkimd/signing", true],
    ["example.com", false],
    ["10.0.0.0/8", false],
    ["[2001:db8::]/32", false],
    ["::1", false],
    ["mail.example.com,key.table", false],
    ["key.table=x", false],
    ["/etc/dkimd/key.table", false],
    ["file:key.table", false],
  ];
  for (const [text, warns] of cases) {
    const c = recording();
    dataSet(["file", "csl"]).parse(text, c);
    assert.equal(c.warnings.length, warns ? 1 : 0, text);
    if (warns) {
      assert.match(
        c.warnings[0],
        /is read as a one-element list, as OpenDKIM reads it; write "file:/,
      );
    }
  }
});
