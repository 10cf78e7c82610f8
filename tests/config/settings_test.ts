import assert from "node:assert/strict";
import { buildConfig } from "../../lib/config/build_config.ts";
import { DEFAULT_ACTIONS } from "../../lib/config/defaults.ts";
import {
  actionSettingName,
  CONFIG_SETTINGS,
  findSetting,
  knownSettingNames,
  SETTING_LIST,
  SETTINGS,
} from "../../lib/config/settings.ts";
import { UNIMPLEMENTED_SETTINGS } from "../../lib/config/unimplemented_settings.ts";

const at = { file: "/etc/opendkim.conf", line: 1 };
const ctx = { origin: at, name: "x", warn: () => {} };

Deno.test("SETTINGS has exactly one entry per setting field: the type demands it", () => {
  // @ts-expect-error: a table lacking an entry for a field does not compile.
  const missing: typeof SETTINGS = { mode: SETTINGS.mode };
  assert.ok(missing);
  const built = buildConfig({}, "/etc/opendkim.conf").config;
  const fields = new Set(CONFIG_SETTINGS.map((s) => s.field as string));
  for (const key of Object.keys(built)) {
    assert.ok(key === "actions" || fields.has(key), `${key} has no setting`);
  }
  for (const s of CONFIG_SETTINGS) {
    assert.equal(s.field in built, s.default !== undefined, `${s.name}: default and Config agree`);
  }
});

Deno.test("every setting name is unique, case-insensitively, among all OpenDKIM knows", () => {
  const names = knownSettingNames().map((n) => n.toLowerCase());
  assert.equal(new Set(names).size, names.length);
  assert.equal(names.length, 1 + SETTING_LIST.length + UNIMPLEMENTED_SETTINGS.length);
  const yaml = SETTING_LIST.flatMap((s) => s.yaml ?? []);
  assert.equal(new Set(yaml).size, yaml.length);
});

Deno.test("findSetting() finds a setting by its name in any case, with its field and YAML path", () => {
  assert.equal(findSetting("signingtable")?.field, "signingTable");
  assert.equal(findSetting("ON-BADSIGNATURE")?.yaml, "actions.badSignature");
  assert.equal(findSetting("X-Header")?.aliasOf, "softwareHeader");
  assert.equal(findSetting("ADSPAction"), undefined);
});

Deno.test("each On-* action has exactly one setting, with the action's default", () => {
  for (const [key, value] of Object.entries(DEFAULT_ACTIONS)) {
    const on = SETTING_LIST.filter((s) => s.action === key);
    assert.equal(on.length, 1, key);
    assert.equal(on[0].default, value, key);
  }
  assert.equal(actionSettingName("dnsError"), "On-DNSError");
  assert.equal(actionSettingName("noSignature"), "On-NoSignature");
});

Deno.test("each default reads back from its own written form", () => {
  for (const s of SETTING_LIST) {
    if (s.default === undefined) continue;
    const text = s.kind.format(s.default);
    if (text === "") continue; // AuthservID's default, the MTA's name, has no spelling.
    assert.deepEqual(s.kind.parse(text, ctx), s.default, s.name);
  }
});

Deno.test("only SigningTable and AuthorizedSigners accept refile:, and every other data set refuses it by the table", () => {
  const accepting = SETTING_LIST.filter((s) =>
    s.kind.type === "dataSet" && s.kind.accepts.includes("refile")
  );
  assert.deepEqual(accepting.map((s) => s.name), ["SigningTable", "AuthorizedSigners"]);
  for (const s of SETTING_LIST) {
    if (s.kind.type !== "dataSet" || accepting.includes(s)) continue;
    const { errors } = buildConfig({
      mode: { value: { sign: false, verify: true }, origin: at },
      [s.field]: { value: { kind: "refile", path: "/x" }, origin: at },
    }, "/etc/opendkim.conf");
    assert.equal(errors.length, 1, s.name);
    assert.match(errors[0].message, new RegExp(`^Invalid "${s.name}" at /etc/opendkim\\.conf:1: `));
  }
});
