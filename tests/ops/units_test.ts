/**
 * The systemd files in systemd/ are the single source of truth; lib/ops/units.ts carries them
 * inside the executable for `dkimd install`. This test keeps the two equal (regenerate with
 * `UPDATE_GOLDEN=1 deno test -A tests/ops/units_test.ts`), checks every unit with
 * `systemd-analyze verify`, applies the sysusers and tmpfiles entries to a scratch root, and
 * checks the example configuration loads.
 */
import assert from "node:assert/strict";
import { UNIT_FILES } from "../../lib/ops/units.ts";
import { Metrics } from "../../lib/ops/metrics.ts";
import { denoLoadIo, loadConfig } from "../../lib/config/load.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const SOURCE_FILES = [
  "dkimd.service",
  "dkimd.sysusers",
  "dkimd.tmpfiles",
  "dkimd.conf",
  "dkimd.socket",
  "dkimd-rotate.service",
  "dkimd-rotate.timer",
];

function generate(files: { name: string; text: string }[]): string {
  const entries = files.map(({ name, text }) =>
    `  {\n    name: ${JSON.stringify(name)},\n    text: ${JSON.stringify(text)},\n  },`
  );
  return `/**
 * The files of systemd/, carried inside the executable for \`dkimd install\`. GENERATED from
 * systemd/ by tests/ops/units_test.ts (\`UPDATE_GOLDEN=1 deno test -A tests/ops/units_test.ts\`);
 * do not edit: edit systemd/ and regenerate. The test fails while the two differ.
 *
 * @module
 */

/** One file of systemd/: its name there and its text. */
export interface UnitFile {
  /** The file name in systemd/. */
  readonly name: string;
  /** Its contents. */
  readonly text: string;
}

/**
 * The units, sysusers.d and tmpfiles.d entries and example configuration, as in systemd/.
 *
 * @example
 * \`\`\`ts
 * import assert from "node:assert/strict";
 * import { UNIT_FILES } from "./units.ts";
 * const service = UNIT_FILES.find((f) => f.name === "dkimd.service");
 * assert.match(service?.text ?? "", /^ExecReload=\\/bin\\/kill -USR1 \\$MAINPID$/m);
 * \`\`\`
 */
export const UNIT_FILES: readonly UnitFile[] = [
${entries.join("\n")}
];
`;
}

Deno.test("UNIT_FILES equal the files in systemd/", async () => {
  const files = await Promise.all(
    SOURCE_FILES.map(async (name) => ({
      name,
      text: await Deno.readTextFile(`${ROOT}systemd/${name}`),
    })),
  );
  if (Deno.env.get("UPDATE_GOLDEN") === "1") {
    await Deno.writeTextFile(`${ROOT}lib/ops/units.ts`, generate(files));
    const fmt = await new Deno.Command(Deno.execPath(), {
      args: ["fmt", `${ROOT}lib/ops/units.ts`],
    })
      .output();
    assert.equal(fmt.code, 0);
    return;
  }
  assert.deepEqual(UNIT_FILES, files, "run UPDATE_GOLDEN=1 deno test -A tests/ops/units_test.ts");
});

Deno.test("dkimd.service passes systemd-analyze verify with no warning", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const service = UNIT_FILES.find((f) => f.name === "dkimd.service")!.text;
    // verify checks that ExecStart's program exists; this one does.
    await Deno.writeTextFile(
      `${dir}/dkimd.service`,
      service.replace("/usr/local/sbin/dkimd", Deno.execPath()),
    );
    // As `dkimd install` writes it, whatever the caller's umask: systemd warns about a
    // world-writable unit.
    await Deno.chmod(`${dir}/dkimd.service`, 0o644);
    const out = await new Deno.Command("systemd-analyze", {
      args: ["verify", "--man=no", `${dir}/dkimd.service`],
      stdout: "piped",
      stderr: "piped",
      env: { SYSTEMD_LOG_COLOR: "0" },
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text);
    // Unknown keys and bad values are only warnings to systemd-analyze; here they fail.
    assert.equal(text.trim(), "", text);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dkimd.socket passes systemd-analyze verify with dkimd.service, with no warning", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const text = (name: string) => UNIT_FILES.find((f) => f.name === name)!.text;
    const socket = text("dkimd.socket");
    // The unix socket alternative too, with its ownership lines active.
    const unix = socket.replace(/^ListenStream=.*\n/m, "")
      .replace(/^#(ListenStream|SocketUser|SocketGroup|SocketMode)=/gm, "$1=");
    assert.match(unix, /^SocketMode=0660$/m);
    for (const [name, unit] of [["tcp", socket], ["unix", unix]]) {
      // A socket unit needs its service: the two are verified together, as installed.
      await Deno.mkdir(`${dir}/${name}`);
      await Deno.writeTextFile(
        `${dir}/${name}/dkimd.service`,
        text("dkimd.service").replace("/usr/local/sbin/dkimd", Deno.execPath()),
      );
      await Deno.writeTextFile(`${dir}/${name}/dkimd.socket`, unit);
      for (const f of ["dkimd.service", "dkimd.socket"]) {
        await Deno.chmod(`${dir}/${name}/${f}`, 0o644);
      }
      const out = await new Deno.Command("systemd-analyze", {
        args: [
          "verify",
          "--man=no",
          `${dir}/${name}/dkimd.socket`,
          `${dir}/${name}/dkimd.service`,
        ],
        stdout: "piped",
        stderr: "piped",
        env: { SYSTEMD_LOG_COLOR: "0" },
      }).output();
      const said = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, `${name}: ${said}`);
      assert.equal(said.trim(), "", `${name}: ${said}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dkimd.socket listens where the example configuration's Socket does, before Postfix", () => {
  const lines = UNIT_FILES.find((f) => f.name === "dkimd.socket")!.text.split("\n");
  for (
    const d of [
      "[Socket]",
      "ListenStream=127.0.0.1:8891",
      "#ListenStream=/var/spool/postfix/opendkim/opendkim.sock",
      "#SocketUser=opendkim",
      "#SocketGroup=postfix",
      "#SocketMode=0660",
      "Before=postfix.service",
      "WantedBy=sockets.target",
    ]
  ) assert.ok(lines.includes(d), d);
  // One socket: dkimd serves exactly one (LISTEN_FDS=1).
  assert.equal(lines.filter((l) => l.startsWith("ListenStream=")).length, 1);
});

Deno.test("systemd-analyze verify catches a bad unit (the check above can fail)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const service = UNIT_FILES.find((f) => f.name === "dkimd.service")!.text
      .replace("/usr/local/sbin/dkimd", Deno.execPath())
      .replace("\nUMask=0002\n", "\nUMask=0002\nProtectSystm=strict\n");
    await Deno.writeTextFile(`${dir}/dkimd.service`, service);
    const out = await new Deno.Command("systemd-analyze", {
      args: ["verify", "--man=no", `${dir}/dkimd.service`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.match(new TextDecoder().decode(out.stderr), /Unknown key 'ProtectSystm'/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dkimd.service carries the seed's settings as systemd directives", () => {
  const service = UNIT_FILES.find((f) => f.name === "dkimd.service")!.text;
  const directives = [
    "Type=notify",
    "NotifyAccess=all",
    "WatchdogSec=30s",
    "ExecStart=/usr/local/sbin/dkimd serve -f -x /etc/dkimd/dkimd.conf",
    "ExecReload=/bin/kill -USR1 $MAINPID",
    "Restart=on-failure",
    "StartLimitIntervalSec=3600",
    "StartLimitBurst=10",
    "UMask=0002",
    "User=opendkim",
    "Group=opendkim",
    "RuntimeDirectory=dkimd opendkim",
    "SyslogIdentifier=dkimd",
    "SyslogFacility=mail",
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ReadWritePaths=-/var/spool/postfix/opendkim -/var/spool/postfix/var/run/opendkim",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "CapabilityBoundingSet=",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    "SystemCallFilter=@system-service",
  ];
  const lines = service.split("\n");
  for (const d of directives) assert.ok(lines.includes(d), d);
  assert.ok(!lines.some((l) => l.startsWith("MemoryDenyWriteExecute")), "V8 needs W+X memory");
});

/** Runs `cmd`, which must succeed; resolves to its standard error. */
async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const msg = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `${cmd}: ${msg}`);
  return msg;
}

/**
 * A scratch root with the sysusers and tmpfiles entries in place and the sysusers entries
 * applied; resolves to the root and the opendkim passwd(5) fields.
 */
async function sysusersRoot(): Promise<{ root: string; user: string[] }> {
  const root = await Deno.makeTempDir();
  try {
    const text = (name: string) => UNIT_FILES.find((f) => f.name === name)!.text;
    await Deno.mkdir(`${root}/etc/sysusers.d`, { recursive: true });
    await Deno.mkdir(`${root}/etc/tmpfiles.d`, { recursive: true });
    await Deno.writeTextFile(`${root}/etc/sysusers.d/dkimd.conf`, text("dkimd.sysusers"));
    await Deno.writeTextFile(`${root}/etc/tmpfiles.d/dkimd.conf`, text("dkimd.tmpfiles"));
    await run("systemd-sysusers", [`--root=${root}`]);
    const passwd = await Deno.readTextFile(`${root}/etc/passwd`);
    const user = passwd.split("\n").find((l) => l.startsWith("opendkim:"))!.split(":");
    return { root, user };
  } catch (e) {
    await Deno.remove(root, { recursive: true });
    throw e;
  }
}

Deno.test("the sysusers entries apply to a scratch root", async () => {
  const { root, user } = await sysusersRoot();
  try {
    assert.deepEqual([user[4], user[5], user[6]], [
      "DKIM milter (dkimd)",
      "/run/dkimd",
      "/usr/sbin/nologin",
    ]);
    const group = (await Deno.readTextFile(`${root}/etc/group`)).split("\n").find((l) =>
      l.startsWith("opendkim:")
    )!;
    assert.equal(group.split(":")[2], user[3]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test({
  name: "the tmpfiles entries apply to a scratch root",
  // systemd-tmpfiles gives the directories to opendkim and postfix: chown(2) needs root.
  ignore: Deno.uid() !== 0,
  fn: async () => {
    const { root, user } = await sysusersRoot();
    try {
      // Postfix's package makes its group; stand in for it.
      await Deno.writeTextFile(`${root}/etc/group`, "postfix:x:4105:\n", { append: true });
      const tmpfiles = await run("systemd-tmpfiles", [`--root=${root}`, "--create"]);
      assert.equal(tmpfiles.trim(), "");
      const run_ = await Deno.stat(`${root}/run/dkimd`);
      assert.deepEqual([run_.mode! & 0o7777, run_.uid, run_.gid], [
        0o755,
        Number(user[2]),
        Number(user[3]),
      ]);
      const spool = await Deno.stat(`${root}/var/spool/postfix/opendkim`);
      assert.deepEqual([spool.mode! & 0o7777, spool.uid, spool.gid], [
        0o2770,
        Number(user[2]),
        4105,
      ]);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test("the example configuration loads", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/dkimd.conf`,
      UNIT_FILES.find((f) => f.name === "dkimd.conf")!.text,
    );
    const loaded = await loadConfig(
      `${dir}/dkimd.conf`,
      denoLoadIo(() => Promise.reject(new Error("no keys"))),
    );
    const c = loaded.config;
    assert.deepEqual(c.socket, { kind: "inet", host: "127.0.0.1", port: 8891 });
    assert.deepEqual([c.syslog, c.syslogFacility, c.syslogSuccess, c.logWhy], [
      true,
      "mail",
      true,
      true,
    ]);
    assert.equal(c.umask, 0o002);
    assert.equal(c.pidFile, "/run/dkimd/dkimd.pid");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the Grafana dashboard queries only metrics dkimd exports", async () => {
  const dashboard = JSON.parse(await Deno.readTextFile(`${ROOT}systemd/grafana-dashboard.json`));
  const exported = new Set(
    new Metrics().render().split("\n").filter((l) => l.startsWith("# TYPE ")).flatMap((l) => {
      const [, , name, type] = l.split(" ");
      return type === "histogram" ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name];
    }),
  );
  const exprs: string[] = dashboard.panels.flatMap((p: { targets: { expr: string }[] }) =>
    p.targets.map((t) => t.expr)
  );
  assert.ok(exprs.length >= 10);
  for (const expr of exprs) {
    const names = expr.match(/dkimd_[a-z_]+/g) ?? [];
    assert.ok(names.length > 0, expr);
    for (const n of names) assert.ok(exported.has(n), `${n} in ${expr}`);
  }
  const ids = dashboard.panels.map((p: { id: number }) => p.id);
  assert.equal(new Set(ids).size, ids.length);
});

Deno.test("dkimd-rotate.service and dkimd-rotate.timer pass systemd-analyze verify, with no warning", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const text = (name: string) => UNIT_FILES.find((f) => f.name === name)!.text;
    await Deno.writeTextFile(
      `${dir}/dkimd-rotate.service`,
      text("dkimd-rotate.service").replace("/usr/local/sbin/dkimd", Deno.execPath()),
    );
    await Deno.writeTextFile(`${dir}/dkimd-rotate.timer`, text("dkimd-rotate.timer"));
    for (const f of ["dkimd-rotate.service", "dkimd-rotate.timer"]) {
      await Deno.chmod(`${dir}/${f}`, 0o644);
    }
    const out = await new Deno.Command("systemd-analyze", {
      args: ["verify", "--man=no", `${dir}/dkimd-rotate.timer`, `${dir}/dkimd-rotate.service`],
      stdout: "piped",
      stderr: "piped",
      env: { SYSTEMD_LOG_COLOR: "0" },
    }).output();
    const said = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, said);
    assert.equal(said.trim(), "", said);
    // A oneshot run where exit 75 (waiting for DNS) is a success, daily, and not a daemon.
    assert.match(text("dkimd-rotate.service"), /^Type=oneshot$/m);
    assert.match(text("dkimd-rotate.service"), /^SuccessExitStatus=75$/m);
    assert.match(
      text("dkimd-rotate.service"),
      /^ExecStart=\S+ rotate -x \/etc\/dkimd\/dkimd\.conf$/m,
    );
    assert.doesNotMatch(text("dkimd-rotate.service"), /^\[Install\]/m);
    assert.match(text("dkimd-rotate.timer"), /^OnCalendar=daily$/m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
