import assert from "node:assert/strict";
import { buildConfig } from "../../lib/config/build_config.ts";
import { throwIfErrors } from "../../lib/config/config_error.ts";
import type { RawSettings } from "../../lib/config/schema.ts";
import { findSetting } from "../../lib/config/settings.ts";

const FILE = "/etc/opendkim.conf";

/**
 * What buildConfig() makes of opendkim.conf lines, each value read by its setting's kind with
 * its line as origin (as the reader gives them); throws the errors as the reader does.
 */
function build(text: string) {
  const raw: Record<string, unknown> = {};
  text.split("\n").forEach((line, i) => {
    if (line === "") return;
    const [name, ...rest] = line.split(" ");
    const setting = findSetting(name);
    assert.ok(setting, name);
    const origin = { file: FILE, line: i + 1 };
    const value = setting.kind.parse(rest.join(" "), { origin, name, warn: () => {} });
    raw[setting.field] = { value, origin };
  });
  const built = buildConfig(raw as RawSettings, FILE);
  throwIfErrors(built.errors);
  return built;
}

Deno.test("buildConfig() applies On-Default before the specific On-* wherever written", () => {
  const { config } = build(
    "Mode v\nOn-BadSignature reject\nOn-Default tempfail\nOn-NoSignature accept\n",
  );
  assert.equal(config.actions.badSignature, "reject");
  assert.equal(config.actions.noSignature, "accept");
  assert.equal(config.actions.dnsError, "tempfail");
  assert.equal(config.actions.internalError, "tempfail");
  assert.equal(config.actions.signatureError, "tempfail");
});

interface RuleCase {
  name: string;
  lines: string[];
  error?: RegExp;
  warning?: RegExp;
}

const rules: RuleCase[] = [
  { name: "table signing", lines: ["KeyTable /k", "SigningTable refile:/s"] },
  { name: "single-key signing", lines: ["Domain example.com", "KeyFile /k", "Selector s"] },
  {
    name: "SigningTable without KeyTable",
    lines: ["SigningTable refile:/s"],
    error: /"SigningTable" at \/etc\/opendkim\.conf:2: requires "KeyTable"/,
  },
  {
    name: "KeyTable without SigningTable",
    lines: ["KeyTable /k"],
    error: /"KeyTable" at \/etc\/opendkim\.conf:2: requires "SigningTable"/,
  },
  {
    name: "KeyFile without Selector",
    lines: ["Domain example.com", "KeyFile /k"],
    error: /"KeyFile" at \/etc\/opendkim\.conf:3: requires "Selector"/,
  },
  {
    name: "Selector without KeyFile",
    lines: ["Selector s"],
    error: /"Selector" at \/etc\/opendkim\.conf:2: requires "KeyFile"/,
  },
  {
    name: "Domain without KeyFile and Selector",
    lines: ["Domain example.com"],
    error: /"Domain" at \/etc\/opendkim\.conf:2: requires "KeyFile" and "Selector"/,
  },
  {
    name: "KeyFile and Selector without Domain",
    lines: ["KeyFile /k", "Selector s"],
    warning: /no mail is signed/,
  },
  {
    name: "single key next to KeyTable",
    lines: ["KeyTable /k", "SigningTable /s", "KeyFile /k2"],
    warning: /"KeyFile" at \/etc\/opendkim\.conf:4: is ignored because "KeyTable" is set/,
  },
  {
    name: "signing mode, no keys",
    lines: [],
    warning: /includes "s" but no signing key is configured/,
  },
];

Deno.test("buildConfig() enforces opendkim.conf(5)'s Mode combinations", () => {
  for (const r of rules) {
    const text = ["Mode sv", ...r.lines].join("\n") + "\n";
    if (r.error) {
      assert.throws(() => build(text), r.error, r.name);
      continue;
    }
    const { warnings } = build(text);
    if (r.warning) assert.ok(warnings.some((w) => r.warning!.test(w.message)), r.name);
    else assert.deepEqual(warnings, [], r.name);
  }
  // Verify-only mode does not require a consistent signing setup, but says it is unused.
  const { warnings } = build("Mode v\nSigningTable refile:/s\n");
  assert.match(warnings[0].message, /has no effect: Mode does not include "s"/);
});

// dkimd departs from OpenDKIM here: OpenDKIM signs with l=0 when told MaximumSignedBytes 0.
Deno.test("buildConfig() refuses MaximumSignedBytes 0, which would sign none of the body", () => {
  assert.throws(
    () => build("Mode s\nMaximumSignedBytes 0\n"),
    /"MaximumSignedBytes" at \/etc\/opendkim\.conf:2: 0 would add l=0 to every signature, which then signs none of the body/,
  );
  assert.equal(build("Mode s\nMaximumSignedBytes 1\n").config.maximumSignedBytes, 1);
});

// dkimd departs from OpenDKIM here: 0 means "no limit" in OpenDKIM, the ceiling of 50 in dkimd.
Deno.test("buildConfig() warns that MaximumSignaturesToVerify 0 or over 50 means the ceiling of 50", () => {
  for (const value of [0, 51, 1000]) {
    const { config, warnings } = build(`Mode v\nMaximumSignaturesToVerify ${value}\n`);
    assert.equal(config.maximumSignaturesToVerify, value);
    assert.equal(warnings.length, 1, String(value));
    assert.match(
      warnings[0].message,
      /"MaximumSignaturesToVerify" at \/etc\/opendkim\.conf:2: .*above dkimd's hard ceiling: at most 50 signatures per message are verified/,
    );
  }
  for (const value of [1, 3, 50]) {
    assert.deepEqual(build(`Mode v\nMaximumSignaturesToVerify ${value}\n`).warnings, []);
  }
});
