import assert from "node:assert/strict";
import { settingsMarkdown } from "../../lib/config/settings_reference.ts";
import { SETTING_LIST } from "../../lib/config/settings.ts";
import { runCli } from "../helpers/run_cli.ts";

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
