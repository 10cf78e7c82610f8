/**
 * `dkimd install --socket-activation` (issue 16 item 4): dkimd.socket is written only with the
 * flag, listening where the configuration's Socket says, for a TCP and a unix-socket
 * configuration under `--root`; the pair it writes passes `systemd-analyze verify`.
 */
import assert from "node:assert/strict";
import { UNIT_FILES } from "../../lib/ops/units.ts";
import { runCli } from "../helpers/run_cli.ts";

const SOCKET = UNIT_FILES.find((f) => f.name === "dkimd.socket")!.text;
const SOCKET_PATH = "etc/systemd/system/dkimd.socket";

async function withRoot(
  config: string | undefined,
  fn: (root: string) => Promise<void>,
): Promise<void> {
  const root = await Deno.makeTempDir();
  try {
    if (config !== undefined) {
      await Deno.mkdir(`${root}/etc/dkimd`, { recursive: true });
      await Deno.writeTextFile(`${root}/etc/dkimd/dkimd.conf`, config);
    }
    await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** systemd-analyze verify of the installed socket and service: its output, "" when clean. */
async function verify(root: string): Promise<string> {
  const out = await new Deno.Command("systemd-analyze", {
    args: [
      "verify",
      "--man=no",
      `${root}/etc/systemd/system/dkimd.socket`,
      `${root}/etc/systemd/system/dkimd.service`,
    ],
    stdout: "piped",
    stderr: "piped",
    env: { SYSTEMD_LOG_COLOR: "0" },
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  return text.trim();
}

Deno.test("dkimd install writes dkimd.socket only with --socket-activation", async () => {
  await withRoot(undefined, async (root) => {
    const plain = await runCli(["install", "--root", root]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(await exists(`${root}/${SOCKET_PATH}`), false);
    assert.doesNotMatch(plain.text, /dkimd\.socket/);
    assert.match(plain.text, /systemctl enable --now dkimd\n/);
  });
  await withRoot(undefined, async (root) => {
    // A new system: the example configuration is written, and its Socket is the unit's own.
    const r = await runCli(["install", "--root", root, "--socket-activation"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await Deno.readTextFile(`${root}/${SOCKET_PATH}`), SOCKET);
    assert.equal((await Deno.stat(`${root}/${SOCKET_PATH}`)).mode! & 0o7777, 0o644);
    assert.match(r.text, new RegExp(`wrote: ${root}/${SOCKET_PATH} \\(mode 0644\\)`));
    assert.match(r.text, /systemctl daemon-reload && systemctl enable --now dkimd\.socket\n/);
  });
});

Deno.test("dkimd install --socket-activation listens on a TCP configuration's Socket", async () => {
  const config = "Mode sv\nSocket  inet6:8893@[::1]\n";
  await withRoot(config, async (root) => {
    const r = await runCli([
      "install",
      "--root",
      root,
      "--socket-activation",
      "--exec",
      Deno.execPath(),
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      await Deno.readTextFile(`${root}/${SOCKET_PATH}`),
      SOCKET.replace("\nListenStream=127.0.0.1:8891\n", "\nListenStream=[::1]:8893\n"),
    );
    assert.match(r.text, /kept: .*\/etc\/dkimd\/dkimd\.conf/);
    assert.equal(await Deno.readTextFile(`${root}/etc/dkimd/dkimd.conf`), config);
    assert.equal(await verify(root), "");
  });
  await withRoot("Socket inet:8894@localhost\n", async (root) => {
    const r = await runCli(["install", "--root", root, "--socket-activation"]);
    assert.equal(r.code, 0, r.stderr);
    const lines = (await Deno.readTextFile(`${root}/${SOCKET_PATH}`)).split("\n");
    assert.deepEqual(lines.filter((l) => l.startsWith("ListenStream=")), [
      "ListenStream=127.0.0.1:8894",
    ]);
    assert.ok(!lines.some((l) => /^Socket(User|Group|Mode)=/.test(l)));
  });
});

Deno.test("dkimd install --socket-activation makes a unix socket's owner and mode systemd's", async () => {
  const config = "Socket  local:/var/spool/postfix/opendkim/opendkim.sock\nUMask 002\n";
  await withRoot(config, async (root) => {
    const r = await runCli([
      "install",
      "--root",
      root,
      "--socket-activation",
      "--exec",
      Deno.execPath(),
    ]);
    assert.equal(r.code, 0, r.stderr);
    const text = await Deno.readTextFile(`${root}/${SOCKET_PATH}`);
    const lines = text.split("\n");
    assert.deepEqual(lines.filter((l) => /^(ListenStream|Socket\w+)=/.test(l)), [
      "ListenStream=/var/spool/postfix/opendkim/opendkim.sock",
      "SocketUser=opendkim",
      "SocketGroup=postfix",
      "SocketMode=0660",
    ]);
    // Nothing else changed: the comments stay, and the TCP line is gone.
    assert.equal(
      text,
      SOCKET.replace("ListenStream=127.0.0.1:8891\n", "")
        .replace(/^#(ListenStream|SocketUser|SocketGroup|SocketMode)=/gm, "$1="),
    );
    assert.equal(await verify(root), "");
  });
});

Deno.test("dkimd install --socket-activation refuses a Socket that names a host and writes nothing", async () => {
  await withRoot("Socket inet:8891@mail.example.com\n", async (root) => {
    const r = await runCli(["install", "--root", root, "--socket-activation"]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /dkimd install: .*\/etc\/dkimd\/dkimd\.conf: Socket inet:8891@mail\.example\.com names a host, and systemd's ListenStream= takes an address/,
    );
    assert.equal(await exists(`${root}/etc/systemd`), false);
    // Without the flag the host name is dkimd's to resolve, as before.
    const plain = await runCli(["install", "--root", root]);
    assert.equal(plain.code, 0, plain.stderr);
  });
});
