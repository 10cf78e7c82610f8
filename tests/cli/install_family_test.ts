/**
 * `dkimd install` for the Debian and the RHEL family (issue 16): `--root` trees that hold what a
 * Debian 12 or a Rocky Linux 9 system holds (os-release, systemd's shared library, SELinux's
 * enforce file), and the files written and hints printed for each.
 */
import assert from "node:assert/strict";
import { UNIT_FILES } from "../../lib/ops/units.ts";
import { runCli } from "../helpers/run_cli.ts";

const DEBIAN_12 = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
`;

const ROCKY_9 = `NAME="Rocky Linux"
VERSION="9.4 (Blue Onyx)"
ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.4"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Rocky Linux 9.4 (Blue Onyx)"
`;

const CENTOS_STREAM_9 = `NAME="CentOS Stream"
VERSION="9"
ID="centos"
ID_LIKE="rhel fedora"
VERSION_ID="9"
PRETTY_NAME="CentOS Stream 9"
`;

interface Tree {
  readonly osRelease?: string;
  /** Where systemd's shared library lies, relative to the root, and its version. */
  readonly systemd?: { readonly dir: string; readonly version: string };
  /** The content of sys/fs/selinux/enforce. */
  readonly enforce?: string;
  /** Other files, by path relative to the root. */
  readonly files?: Readonly<Record<string, string>>;
}

async function withTree(tree: Tree, fn: (root: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir();
  const put = async (rel: string, text: string) => {
    const path = `${root}/${rel}`;
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(path, text);
  };
  try {
    if (tree.osRelease !== undefined) await put("etc/os-release", tree.osRelease);
    if (tree.systemd) {
      await put(`${tree.systemd.dir}/libsystemd-shared-${tree.systemd.version}.so`, "");
    }
    if (tree.enforce !== undefined) await put("sys/fs/selinux/enforce", tree.enforce);
    for (const [rel, text] of Object.entries(tree.files ?? {})) await put(rel, text);
    await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

const SERVICE = UNIT_FILES.find((f) => f.name === "dkimd.service")!.text;

// The unit as install writes it for a family: the environment file read, its options passed.
function familyService(environmentFile: string): string {
  return SERVICE.replace(
    /^(ExecStart=.*)$/m,
    `EnvironmentFile=-${environmentFile}\n$1 $DKIMD_OPTS`,
  );
}

const DEBIAN_TREE: Tree = {
  osRelease: DEBIAN_12,
  systemd: { dir: "usr/lib/x86_64-linux-gnu/systemd", version: "252" },
};

const ROCKY_TREE: Tree = {
  osRelease: ROCKY_9,
  systemd: { dir: "usr/lib64/systemd", version: "252" },
  enforce: "1\n",
};

Deno.test("dkimd install on Debian 12 writes /etc/default/dkimd and a unit that reads it", async () => {
  await withTree(DEBIAN_TREE, async (root) => {
    const r = await runCli(["install", "--root", root]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.text,
      new RegExp(
        `^Target: Debian GNU/Linux 12 \\(bookworm\\) under ${root} \\(Debian family\\), ` +
          `systemd 252; options in /etc/default/dkimd\\.$`,
        "m",
      ),
    );
    const service = await Deno.readTextFile(`${root}/etc/systemd/system/dkimd.service`);
    assert.equal(service, familyService("/etc/default/dkimd"));
    const env = await Deno.readTextFile(`${root}/etc/default/dkimd`);
    assert.match(env, /^DKIMD_OPTS=""$/m);
    assert.equal((await Deno.stat(`${root}/etc/default/dkimd`)).mode! & 0o777, 0o644);
    assert.match(r.text, new RegExp(`wrote: ${root}/etc/default/dkimd \\(mode 0644\\)`));
    await assert.rejects(Deno.stat(`${root}/etc/sysconfig`), Deno.errors.NotFound);
    // Both families keep Postfix's queue in /var/spool/postfix: the same socket directory.
    assert.match(
      await Deno.readTextFile(`${root}/etc/tmpfiles.d/dkimd.conf`),
      /^d \/var\/spool\/postfix\/opendkim 2770 opendkim postfix -$/m,
    );
    assert.match(r.text, /grep dkimd \/var\/log\/mail\.log/);
    assert.doesNotMatch(r.text, /SELinux|semanage/);
  });
});

Deno.test("dkimd install on Rocky 9 with SELinux enforcing writes /etc/sysconfig/dkimd and prints the port's semanage", async () => {
  await withTree(ROCKY_TREE, async (root) => {
    const r = await runCli(["install", "--root", root]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.text,
      new RegExp(
        `^Target: Rocky Linux 9\\.4 \\(Blue Onyx\\) under ${root} \\(RHEL family\\), ` +
          `systemd 252; options in /etc/sysconfig/dkimd\\.$`,
        "m",
      ),
    );
    const service = await Deno.readTextFile(`${root}/etc/systemd/system/dkimd.service`);
    assert.equal(service, familyService("/etc/sysconfig/dkimd"));
    assert.match(await Deno.readTextFile(`${root}/etc/sysconfig/dkimd`), /^DKIMD_OPTS=""$/m);
    await assert.rejects(Deno.stat(`${root}/etc/default`), Deno.errors.NotFound);
    assert.match(r.text, /grep dkimd \/var\/log\/maillog/);
    // The example configuration listens on inet:8891@localhost: the port's label, nothing else.
    assert.match(r.text, new RegExp(`SELinux enforces here \\(${root}/sys/fs/selinux/enforce\\)`));
    assert.match(r.text, /^ {4}semanage port -a -t milter_port_t -p tcp 8891$/m);
    assert.doesNotMatch(r.text, /semanage fcontext|restorecon/);
  });
});

Deno.test("dkimd install prints the socket directory's fcontext and restorecon for a kept unix-socket configuration", async () => {
  const files = {
    "etc/dkimd/dkimd.conf": "Mode sv\nSocket local:/var/spool/postfix/opendkim/opendkim.sock\n",
  };
  await withTree({ ...ROCKY_TREE, osRelease: CENTOS_STREAM_9, files }, async (root) => {
    const r = await runCli(["install", "--root", root]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.text, /^Target: CentOS Stream 9 under .* \(RHEL family\)/m);
    assert.match(r.text, /kept: .*\/etc\/dkimd\/dkimd\.conf/);
    assert.match(
      r.text,
      /^ {4}semanage fcontext -a -t dkim_milter_data_t '\/var\/spool\/postfix\/opendkim\(\/\.\*\)\?'$/m,
    );
    assert.match(r.text, /^ {4}restorecon -Rv \/var\/spool\/postfix\/opendkim$/m);
    assert.doesNotMatch(r.text, /semanage port/);
  });
});

Deno.test("dkimd install reads SELinux's state: 0 in enforce prints nothing, SELINUX=enforcing in its config does", async () => {
  await withTree({ ...ROCKY_TREE, enforce: "0\n" }, async (root) => {
    const r = await runCli(["install", "--root", root, "--dry-run"]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.text, /SELinux|semanage/);
  });
  const config = { "etc/selinux/config": "SELINUX=enforcing\nSELINUXTYPE=targeted\n" };
  await withTree({ ...ROCKY_TREE, enforce: undefined, files: config }, async (root) => {
    const r = await runCli(["install", "--root", root, "--dry-run"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.text, new RegExp(`SELinux enforces here \\(${root}/etc/selinux/config\\)`));
    assert.match(r.text, /semanage port -a -t milter_port_t -p tcp 8891/);
  });
});

Deno.test("dkimd install --family overrides os-release, and without one the unit reads no environment file", async () => {
  await withTree(DEBIAN_TREE, async (root) => {
    const r = await runCli(["install", "--root", root, "--family", "rhel"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.text, /\(RHEL family, from --family\), systemd 252/);
    assert.equal(
      await Deno.readTextFile(`${root}/etc/systemd/system/dkimd.service`),
      familyService("/etc/sysconfig/dkimd"),
    );
    await assert.rejects(Deno.stat(`${root}/etc/default`), Deno.errors.NotFound);
  });
  await withTree({ osRelease: 'NAME="Arch Linux"\nID=arch\n' }, async (root) => {
    const r = await runCli(["install", "--root", root]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.text, /^Target: Arch Linux under .*systemd version unknown: not a family/m);
    assert.equal(await Deno.readTextFile(`${root}/etc/systemd/system/dkimd.service`), SERVICE);
    await assert.rejects(Deno.stat(`${root}/etc/default`), Deno.errors.NotFound);
    await assert.rejects(Deno.stat(`${root}/etc/sysconfig`), Deno.errors.NotFound);
  });
  const bad = await runCli(["install", "--family", "arch"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--family takes "debian" or "rhel", not "arch"/);
});

Deno.test("dkimd install keeps an existing environment file", async () => {
  const files = { "etc/sysconfig/dkimd": 'DKIMD_OPTS="-v"\n' };
  await withTree({ ...ROCKY_TREE, files }, async (root) => {
    const r = await runCli(["install", "--root", root]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.text, new RegExp(`kept: ${root}/etc/sysconfig/dkimd `));
    assert.equal(await Deno.readTextFile(`${root}/etc/sysconfig/dkimd`), 'DKIMD_OPTS="-v"\n');
  });
});

Deno.test("the unit install writes for a family passes systemd-analyze verify with no warning", async () => {
  await withTree(ROCKY_TREE, async (root) => {
    // verify checks that ExecStart's program exists; this one does.
    const r = await runCli(["install", "--root", root, "--exec", Deno.execPath()]);
    assert.equal(r.code, 0, r.stderr);
    const out = await new Deno.Command("systemd-analyze", {
      args: ["verify", "--man=no", `${root}/etc/systemd/system/dkimd.service`],
      stdout: "piped",
      stderr: "piped",
      env: { SYSTEMD_LOG_COLOR: "0" },
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text);
    assert.equal(text.trim(), "", text);
  });
});
