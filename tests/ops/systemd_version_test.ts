/**
 * The service unit per systemd version: `dkimd install --systemd-version` writes
 * `Type=notify-reload` for 253 and newer and `Type=notify` with ExecReload before, and
 * `systemd-analyze verify` of this host judges each (this host's systemd decides which one it
 * can load: Debian 12 and RHEL/CentOS 9 have 252, which does not know notify-reload).
 */
import assert from "node:assert/strict";
import {
  detectSystemdVersion,
  NOTIFY_RELOAD_MIN_VERSION,
  serviceUnitFor,
} from "../../lib/ops/systemd_version.ts";
import { UNIT_FILES } from "../../lib/ops/units.ts";
import { runCli } from "../helpers/run_cli.ts";

const SERVICE = UNIT_FILES.find((f) => f.name === "dkimd.service")!.text;

async function verify(text: string): Promise<{ code: number; text: string }> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/dkimd.service`,
      text.replace("/usr/local/sbin/dkimd", Deno.execPath()),
    );
    await Deno.chmod(`${dir}/dkimd.service`, 0o644);
    const out = await new Deno.Command("systemd-analyze", {
      args: ["verify", "--man=no", `${dir}/dkimd.service`],
      stdout: "piped",
      stderr: "piped",
      env: { SYSTEMD_LOG_COLOR: "0" },
    }).output();
    return {
      code: out.code,
      text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("serviceUnitFor() makes a notify-reload unit from 253 and leaves the notify unit before", () => {
  const older = serviceUnitFor(SERVICE, 252);
  assert.equal(older, SERVICE);
  assert.match(older, /^Type=notify$/m);
  assert.match(older, /^ExecReload=\/bin\/kill -USR1 \$MAINPID$/m);
  const newer = serviceUnitFor(SERVICE, 253);
  assert.match(newer, /^Type=notify-reload$/m);
  assert.match(newer, /^ReloadSignal=SIGUSR1$/m);
  assert.doesNotMatch(newer, /^ExecReload=/m);
  for (const unit of [older, newer]) {
    assert.match(unit, /^NotifyAccess=all$/m);
    assert.match(unit, /^WatchdogSec=30s$/m);
  }
});

Deno.test("systemd-analyze verify accepts the unit this host's systemd can run, and 252 refuses notify-reload", async () => {
  const version = await detectSystemdVersion();
  assert.ok(version !== undefined, "systemctl --version names a version");
  const own = await verify(serviceUnitFor(SERVICE, version));
  assert.equal(own.code, 0, own.text);
  assert.equal(own.text.trim(), "", own.text);
  const newer = await verify(serviceUnitFor(SERVICE, NOTIFY_RELOAD_MIN_VERSION));
  if (version >= NOTIFY_RELOAD_MIN_VERSION) {
    assert.equal(newer.text.trim(), "", newer.text);
  } else {
    // Why install asks the version: an older systemd cannot load Type=notify-reload.
    assert.match(newer.text, /notify-reload/, newer.text);
  }
});

Deno.test("dkimd install --systemd-version writes the unit for that systemd and says which", async () => {
  for (const [version, type] of [["252", "notify"], ["256", "notify-reload"]]) {
    const root = await Deno.makeTempDir();
    try {
      const r = await runCli(["install", "--root", root, "--systemd-version", version]);
      assert.equal(r.code, 0, r.stderr);
      const unit = await Deno.readTextFile(`${root}/etc/systemd/system/dkimd.service`);
      assert.match(unit, new RegExp(`^Type=${type}$`, "m"));
      assert.equal(/^ExecReload=/m.test(unit), type === "notify");
      assert.match(r.text, new RegExp(`The service is Type=${type} \\(systemd ${version}\\)`));
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  }
  const bad = await runCli(["install", "--root", "/nonexistent", "--systemd-version", "new"]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /--systemd-version needs a number/);
});
