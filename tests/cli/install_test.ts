import assert from "node:assert/strict";
import { DEFAULT_EXEC_PATH } from "../../lib/cli/install.ts";
import { UNIT_FILES } from "../../lib/ops/units.ts";
import { runCli } from "../helpers/run_cli.ts";

const FILES = [
  { path: "etc/systemd/system/dkimd.service", source: "dkimd.service" },
  { path: "etc/sysusers.d/dkimd.conf", source: "dkimd.sysusers" },
  { path: "etc/tmpfiles.d/dkimd.conf", source: "dkimd.tmpfiles" },
  { path: "etc/dkimd/dkimd.conf", source: "dkimd.conf" },
  { path: "etc/systemd/system/dkimd-rotate.service", source: "dkimd-rotate.service" },
  { path: "etc/systemd/system/dkimd-rotate.timer", source: "dkimd-rotate.timer" },
];

function unit(name: string): string {
  return UNIT_FILES.find((f) => f.name === name)!.text;
}

async function listTree(root: string, dir = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(`${root}/${dir}`)) {
    const rel = dir ? `${dir}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...await listTree(root, rel));
    else out.push(rel);
  }
  return out.sort();
}

async function withRoot(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir();
  try {
    await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("dkimd install writes every file with its mode and prints the Postfix lines", async () => {
  await withRoot(async (root) => {
    // A strict umask, as some admins set root's: directories and files keep their modes anyway.
    const r = await runCli(["install", "--root", root], { umask: 0o077 });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await listTree(root), FILES.map((f) => f.path).sort());
    for (const { path, source } of FILES) {
      const info = await Deno.stat(`${root}/${path}`);
      assert.equal(info.mode! & 0o7777, 0o644, path);
      const want = unit(source);
      assert.equal(await Deno.readTextFile(`${root}/${path}`), want, path);
      assert.match(r.text, new RegExp(`wrote: ${root}/${path} \\(mode 0644\\)`));
    }
    for (const dir of ["etc/systemd/system", "etc/dkimd"]) {
      assert.equal((await Deno.stat(`${root}/${dir}`)).mode! & 0o777, 0o755, dir);
    }
    assert.match(r.text, /smtpd_milters {9}= inet:localhost:8891/);
    assert.match(r.text, /smtpd_milters {9}= unix:opendkim\/opendkim\.sock/);
    assert.match(r.text, /non_smtpd_milters {5}= \$smtpd_milters/);
    assert.match(r.text, /milter_default_action = accept/);
    assert.match(r.text, /dkimd genkey -D \/etc\/dkimd\/keys\/example.com -d example.com -s dkim/);
    assert.match(r.text, /dkimd testkey -d example.com -s dkim -k /);
    // Run from source, the service names the default place of the compiled executable.
    assert.match(r.text, new RegExp(`The service runs ${DEFAULT_EXEC_PATH}`));
  });
});

Deno.test("dkimd install --dry-run writes nothing", async () => {
  await withRoot(async (root) => {
    const r = await runCli(["install", "--root", root, "--dry-run"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await listTree(root), []);
    for (const { path } of FILES) assert.match(r.text, new RegExp(`would write: ${root}/${path}`));
  });
});

Deno.test("dkimd install names a differing file and stops, unless --force; configs are kept", async () => {
  await withRoot(async (root) => {
    await Deno.mkdir(`${root}/etc/systemd/system`, { recursive: true });
    await Deno.mkdir(`${root}/etc/dkimd`, { recursive: true });
    await Deno.writeTextFile(
      `${root}/etc/systemd/system/dkimd.service`,
      "[Service]\nExecStart=/x\n",
    );
    await Deno.writeTextFile(`${root}/etc/dkimd/dkimd.conf`, "Mode v\n");
    const refused = await runCli(["install", "--root", root]);
    assert.equal(refused.code, 1);
    assert.equal(
      refused.stderr,
      `dkimd install: "${root}/etc/systemd/system/dkimd.service" exists and differs from dkimd's; ` +
        "not replacing it (compare them, then run again with --force to replace it)\n",
    );
    // Nothing at all was written.
    assert.deepEqual(await listTree(root), [
      "etc/dkimd/dkimd.conf",
      "etc/systemd/system/dkimd.service",
    ]);

    const forced = await runCli([
      "install",
      "--root",
      root,
      "--force",
      "--exec",
      "/opt/dkimd/dkimd",
    ]);
    assert.equal(forced.code, 0, forced.stderr);
    const service = await Deno.readTextFile(`${root}/etc/systemd/system/dkimd.service`);
    assert.equal(
      service,
      unit("dkimd.service").replace(
        "ExecStart=/usr/local/sbin/dkimd",
        "ExecStart=/opt/dkimd/dkimd",
      ),
    );
    assert.match(forced.text, /replaced: .*dkimd\.service/);
    assert.match(forced.text, /kept: .*\/etc\/dkimd\/dkimd\.conf/);
    assert.equal(await Deno.readTextFile(`${root}/etc/dkimd/dkimd.conf`), "Mode v\n");
    assert.doesNotMatch(forced.text, /The service runs/);

    const again = await runCli(["install", "--root", root, "--exec", "/opt/dkimd/dkimd"]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.text, /unchanged: .*dkimd\.service/);
    assert.match(again.text, /unchanged: .*sysusers\.d\/dkimd\.conf/);
  });
});

Deno.test("dkimd install rejects bad arguments", async () => {
  const cases: [string[], RegExp][] = [
    [["install", "--root", "relative/dir"], /--root needs an absolute path/],
    [["install", "--exec", "dkimd"], /--exec needs an absolute path/],
    [["install", "--nope"], /unknown option "--nope"/],
    [["install", "extra"], /unexpected argument "extra"/],
  ];
  for (const [args, want] of cases) {
    const r = await runCli(args);
    assert.equal(r.code, 2, args.join(" "));
    assert.match(r.stderr, want, args.join(" "));
  }
});
