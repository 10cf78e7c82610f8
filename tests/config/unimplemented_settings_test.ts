/**
 * Issue 18's "done when": no OpenDKIM setting loads and is silently ignored. Every name of
 * opendkim.conf(5) and `opendkim-config.h` of OpenDKIM 2.11 (tests/testdata) is implemented (in
 * the settings table, where a refusal such as ChangeRootDirectory's is a reader that throws with
 * its reason), or ignored with a warning that names its reason.
 *
 * @module
 */
import assert from "node:assert/strict";
import { findSetting, INCLUDE_SETTING, SETTING_LIST } from "../../lib/config/settings.ts";
import {
  findUnimplementedSetting,
  IGNORED_BECAUSE,
  UNIMPLEMENTED_SETTINGS,
} from "../../lib/config/unimplemented_settings.ts";
import { readOpendkimConf } from "../../lib/config/opendkim_conf.ts";

const OPENDKIM_NAMES = (await Deno.readTextFile(
  new URL("../testdata/opendkim_2.11_settings.txt", import.meta.url),
)).split("\n").filter((l) => l !== "" && !l.startsWith("#"));

Deno.test("every OpenDKIM 2.11 setting is implemented or ignored with a reason", () => {
  assert.ok(OPENDKIM_NAMES.length > 150, "the list of OpenDKIM's settings was read");
  const missing = OPENDKIM_NAMES.filter((name) =>
    name !== INCLUDE_SETTING && findSetting(name) === undefined &&
    findUnimplementedSetting(name) === undefined
  );
  assert.deepEqual(missing, [], "OpenDKIM settings dkimd neither implements nor names");
  for (const name of OPENDKIM_NAMES) {
    const ignored = findUnimplementedSetting(name);
    if (ignored === undefined) continue;
    assert.ok(Object.values(IGNORED_BECAUSE).includes(ignored.why as never), name);
  }
});

Deno.test("each ignored setting has one reason of one line, and no name is both implemented and ignored", () => {
  const reasons = Object.values(IGNORED_BECAUSE) as string[];
  for (const why of reasons) {
    assert.ok(why.length > 0 && why.length <= 100 && !why.includes("\n"), why);
  }
  for (const s of UNIMPLEMENTED_SETTINGS) {
    assert.ok(reasons.includes(s.why), s.name);
    assert.equal(findSetting(s.name), undefined, `${s.name} is in both tables`);
  }
  const names = UNIMPLEMENTED_SETTINGS.map((s) => s.name.toLowerCase());
  assert.equal(new Set(names).size, names.length, "an ignored setting listed twice");
  // Every reason explains at least one setting: no stale reason lingers.
  for (const why of reasons) {
    assert.ok(UNIMPLEMENTED_SETTINGS.some((s) => s.why === why), `unused reason: ${why}`);
  }
});

Deno.test("an opendkim.conf with every OpenDKIM 2.11 setting loads no ignored setting without a warning naming its reason", () => {
  // A value each implemented setting's reader might refuse is fine: what matters here is that
  // an ignored one is never silent.
  const ignored = OPENDKIM_NAMES.filter((name) => findUnimplementedSetting(name) !== undefined);
  const text = ["Mode v", ...ignored.map((name) => `${name} yes`)].join("\n") + "\n";
  const { warnings } = readOpendkimConf(text, "/etc/opendkim.conf");
  assert.equal(warnings.length, ignored.length);
  ignored.forEach((name, i) => {
    const why = findUnimplementedSetting(name)!.why;
    assert.equal(warnings[i].setting, findUnimplementedSetting(name)!.name);
    assert.ok(warnings[i].message.includes(`(${why}); ignored`), warnings[i].message);
    assert.equal(warnings[i].origin.line, i + 2);
  });
});

Deno.test("the settings table's OpenDKIM names are OpenDKIM 2.11's or dkimd's own", () => {
  // LDAPSoftStart: OpenDKIM 2.10 renamed it SoftStart, and old configurations still carry it.
  const known = new Set([...OPENDKIM_NAMES, "LDAPSoftStart"].map((n) => n.toLowerCase()));
  const strays = SETTING_LIST.filter((s) =>
    !s.dkimd && !s.aliasOf && !known.has(s.name.toLowerCase())
  ).map((s) => s.name);
  assert.deepEqual(strays, []);
});
