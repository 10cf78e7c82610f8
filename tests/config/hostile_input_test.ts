// Every reader of configuration text either returns or throws a typed error naming a place,
// whatever the bytes.
import assert from "node:assert/strict";
import fc from "fast-check";
import { ConfigErrors } from "../../lib/config/config_error.ts";
import { readOpendkimConf } from "../../lib/config/opendkim_conf.ts";
import { knownSettingNames } from "../../lib/config/settings.ts";
import { readYamlConf } from "../../lib/config/yaml_conf.ts";
import { parseDataSetFile, parseDataSetSpec } from "../../lib/policy/dataset.ts";
import { HostList } from "../../lib/policy/host_list.ts";
import { parseKeyTableEntry } from "../../lib/policy/key_table.ts";
import { SourceError } from "../../lib/policy/origin.ts";

function typed(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    const list = e instanceof ConfigErrors ? e.errors : [e];
    for (const x of list) {
      assert.ok(x instanceof SourceError, `untyped error: ${x}`);
      assert.ok(x.line >= 0);
    }
  }
}

const at = { file: "f", line: 1 };
const names = knownSettingNames();
const confLine = fc.tuple(
  fc.oneof(fc.constantFrom(...names), fc.string({ maxLength: 12 })),
  fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.constantFrom("yes", "no", "0x10", "refile:/x", "csl:a,b", "::1", "10/1h"),
  ),
).map(([k, v]) => `${k} ${v}`);

Deno.test("readOpendkimConf() returns or throws a SourceError for any text", () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(confLine, fc.string({ maxLength: 60 })), { maxLength: 20 }),
      (lines) => {
        typed(() => readOpendkimConf(lines.join("\n"), "/etc/opendkim.conf"));
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("readYamlConf() returns or throws a SourceError for any text", () => {
  const yamlish = fc.array(
    fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.tuple(
        fc.constantFrom(
          "mode",
          "keyTable",
          "signingTable",
          "internalHosts",
          "actions",
          "umask",
          "x",
        ),
        fc.string({ maxLength: 30 }),
      )
        .map(([k, v]) => `${k}: ${v}`),
      fc.constantFrom("  - a", "  b: [1, 2", "- x", "{", "&a x", "*a", "? k", "---"),
    ),
    { maxLength: 12 },
  );
  fc.assert(
    fc.property(yamlish, (lines) => typed(() => readYamlConf(lines.join("\n"), "d.yaml"))),
    { numRuns: 300 },
  );
});

Deno.test("data set, host list and KeyTable parsers throw only SourceErrors", () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 80 }), fc.string({ maxLength: 80 }), (a, b) => {
      typed(() => parseDataSetSpec(a, at, "X"));
      typed(() => parseDataSetFile(`${a}\n${b}`, "f"));
      typed(() => HostList.fromStrings([a, b], "InternalHosts"));
      typed(() => parseKeyTableEntry({ key: a, value: b, origin: at }));
    }),
    { numRuns: 500 },
  );
});
