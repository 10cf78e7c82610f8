import assert from "node:assert/strict";
import { settingsMarkdown } from "../../lib/config/settings_reference.ts";
import { SETTING_LIST } from "../../lib/config/settings.ts";
import { IGNORED_BECAUSE } from "../../lib/config/unimplemented_settings.ts";
import { writeCliConfig } from "../helpers/cli_config.ts";
import { runCli } from "../helpers/run_cli.ts";

Deno.test("dkimd check-config prints the effective settings with their origins", async () => {
  const dir = await writeCliConfig();
  try {
    const r = await runCli(["check-config", `${dir}/opendkim.conf`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.text, /: OK\n/);
    assert.match(
      r.text,
      new RegExp(`Canonicalization +relaxed/relaxed +\\(${dir}/opendkim.conf:3\\)`),
    );
    assert.match(
      r.text,
      new RegExp(`datahunter: d=datahunter.org s=dkim rsa 2048 bits \\(${dir}/dkim.private`),
    );
    assert.match(r.text, /On-\* +NoSignature accept, .*InternalError tempfail/);
    assert.match(r.text, /\n +OversignHeaders +from +\(default\)\n/);
    assert.match(r.text, /\n +DNS +[^\n]*, timeout 5 s/);
    assert.doesNotMatch(r.text, /over TCP/);
    await Deno.writeTextFile(`${dir}/opendkim.conf`, "DNSConnect yes\n", { append: true });
    const tcp = await runCli(["check-config", `${dir}/opendkim.conf`]);
    assert.match(tcp.text, /\n +DNS +[^\n]* over TCP, timeout 5 s/);
    await Deno.chmod(`${dir}/dkim.private`, 0o644);
    const unsafe = await runCli(["check-config", `${dir}/opendkim.conf`]);
    assert.equal(unsafe.code, 78);
    assert.match(unsafe.stderr, /would not start/);
    assert.match(unsafe.stderr, new RegExp(`${dir}/dkim.private`));
    assert.match(unsafe.stderr, /chmod/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dkimd check-config shows ARCMode and the sealing key, and refuses ARCMode s without one", async () => {
  const dir = await writeCliConfig();
  try {
    const conf = `${dir}/opendkim.conf`;
    await Deno.writeTextFile(conf, "ARCMode sv\nARCSelector arc\n", { append: true });
    const missing = await runCli(["check-config", conf]);
    assert.equal(missing.code, 78);
    assert.match(
      missing.stderr,
      /"ARCMode" at [^\n]*: includes "s", which requires "ARCDomain", "ARCKeyFile"/,
    );
    await Deno.writeTextFile(
      conf,
      `ARCDomain lists.datahunter.org\nARCKeyFile ${dir}/dkim.private\n`,
      { append: true },
    );
    const r = await runCli(["check-config", conf]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.text, /\n +ARCMode +verify and seal +\(/);
    assert.match(
      r.text,
      new RegExp(
        `\\n +ARCKeyFile +${dir}/dkim.private: d=lists.datahunter.org s=arc rsa 2048 bits`,
      ),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dkimd check-config shows the verdict rules: PartialBodyResult, StrictHeaders, RequiredHeaders, MustBeSigned", async () => {
  const dir = await writeCliConfig();
  try {
    const r = await runCli(["check-config", `${dir}/opendkim.conf`]);
    assert.match(
      r.text,
      /\n +Verdicts +PartialBodyResult policy, StrictHeaders no, RequiredHeaders no; a second From is never a pass\n/,
    );
    assert.doesNotMatch(r.text, /MustBeSigned/);
    await Deno.writeTextFile(
      `${dir}/opendkim.conf`,
      "PartialBodyResult pass\nStrictHeaders yes\nRequiredHeaders yes\nMustBeSigned Reply-To,Subject\n",
      { append: true },
    );
    const set = await runCli(["check-config", `${dir}/opendkim.conf`]);
    assert.equal(set.code, 0, set.stderr);
    assert.match(
      set.text,
      /Verdicts +PartialBodyResult pass, StrictHeaders yes, RequiredHeaders yes;/,
    );
    assert.match(
      set.text,
      new RegExp(`MustBeSigned +reply-to:subject +\\(${dir}/opendkim.conf:\\d+\\)`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dkimd config convert prints the configuration as YAML that loads to the same settings", async () => {
  const dir = await writeCliConfig();
  try {
    const r = await runCli(["config", "convert", `${dir}/opendkim.conf`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.text, /^# dkimd configuration converted from /);
    assert.match(
      r.text,
      /keyTable:\n {2}datahunter:\n {4}domain: datahunter\.org\n {4}selector: dkim/,
    );
    await Deno.writeTextFile(`${dir}/dkimd.yaml`, r.text);
    const a = await runCli(["check-config", `${dir}/opendkim.conf`]);
    const b = await runCli(["check-config", `${dir}/dkimd.yaml`]);
    assert.equal(b.code, 0, b.stderr);
    // The same effective settings, whatever the origins say.
    const strip = (t: string) =>
      t.split("\n").slice(1).map((l) => l.replace(/\s+\(.*\)$/, "")).join("\n");
    assert.equal(strip(b.text), strip(a.text));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dkimd check-config --settings lists every setting with its default and doc", async () => {
  const r = await runCli(["check-config", "--settings"]);
  assert.equal(r.code, 0, r.stderr);
  for (const s of SETTING_LIST) assert.match(r.text, new RegExp(`^  ${s.name} \\(`, "m"), s.name);
  assert.match(
    r.text,
    /^ {2}DNSTimeout \(YAML dnsTimeout\): seconds, 0 to 3600; default 5\n {6}How long/m,
  );
  assert.match(r.text, /^OpenDKIM settings dkimd ignores/m);
});

Deno.test("dkimd check-config --settings --markdown writes the README's reference", async () => {
  const r = await runCli(["check-config", "--settings", "--markdown"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.text, settingsMarkdown());
});

Deno.test("dkimd check-config refuses --markdown alone and a file with --settings", async () => {
  const alone = await runCli(["check-config", "--markdown"]);
  assert.equal(alone.code, 2);
  assert.match(alone.stderr, /--markdown goes with --settings/);
  const file = await runCli(["check-config", "--settings", "/etc/opendkim.conf"]);
  assert.equal(file.code, 2);
  assert.match(file.stderr, /give no FILE/);
});

Deno.test("dkimd check-config shows the signature ceiling and refuses MaximumSignedBytes 0", async () => {
  const dir = await writeCliConfig();
  try {
    const conf = `${dir}/opendkim.conf`;
    await Deno.writeTextFile(conf, "MaximumSignaturesToVerify 0\n", { append: true });
    const r = await runCli(["check-config", conf]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.text, /MaximumSignaturesToVerify 0 \(the ceiling: 50\)/);
    assert.match(r.text + r.stderr, /above dkimd's hard ceiling: at most 50 signatures/);
    await Deno.writeTextFile(conf, "MaximumSignedBytes 0\n", { append: true });
    const refused = await runCli(["check-config", conf]);
    assert.equal(refused.code, 78);
    assert.match(refused.stderr, /"MaximumSignedBytes" at .*: 0 would add l=0 to every signature/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dkimd check-config groups the OpenDKIM settings it ignores by reason, each with its line", async () => {
  const dir = await writeCliConfig();
  try {
    const conf = `${dir}/opendkim.conf`;
    const before = (await Deno.readTextFile(conf)).split("\n").length - 1;
    await Deno.writeTextFile(
      conf,
      "VBR-Type list\nMilterDebug 6\nVBR-Certifiers vbr.example\nADSPAction discard\n",
      { append: true },
    );
    const r = await runCli(["check-config", conf]);
    assert.equal(r.code, 0, r.stderr);
    const at = (n: number) => `${conf}:${before + n}`;
    assert.ok(
      r.text.includes(
        `4 OpenDKIM setting(s) ignored, by reason:\n` +
          `  ${IGNORED_BECAUSE.vbr}:\n    VBR-Type (${at(1)}), VBR-Certifiers (${at(3)})\n` +
          `  ${IGNORED_BECAUSE.debugging}:\n    MilterDebug (${at(2)})\n` +
          `  ${IGNORED_BECAUSE.adsp}:\n    ADSPAction (${at(4)})\n`,
      ),
      r.text,
    );
    // Grouped, not listed again among the other warnings.
    assert.doesNotMatch(r.text, /does not implement/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
