/**
 * Socket activation (issue 16 item 4): systemd-socket-activate stands in for systemd's
 * dkimd.socket, holding a TCP or unix listening socket and starting dkimd on it (LISTEN_FDS=1,
 * LISTEN_PID, fd 3) at the first connection; dkimd, run as `deno task start` runs it (the
 * service's flags), signs over the inherited socket and never opens its configured one.
 */
import assert from "node:assert/strict";
import { MilterClient } from "../../lib/milter/client.ts";
import type { SocketSpec } from "../../lib/milter/socket_spec.ts";
import { SERVICE_DENO_FLAGS } from "../../lib/ops/self_command.ts";
import { writeCliConfig } from "../helpers/cli_config.ts";
import { dkimdEnv } from "../helpers/dkimd_env.ts";
import { freePort } from "../helpers/dkimd_process.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

async function signOver(socket: SocketSpec, listenArg: string): Promise<void> {
  const dir = await writeCliConfig();
  // The configured socket is a port nobody uses: were it opened, the test would see it.
  const configured = freePort();
  const conf = `${dir}/opendkim.conf`;
  await Deno.writeTextFile(
    conf,
    (await Deno.readTextFile(conf)).replace(
      "Socket inet:8891@localhost",
      `Socket inet:${configured}@127.0.0.1`,
    ),
  );
  const child = new Deno.Command("systemd-socket-activate", {
    args: [
      "-l",
      listenArg,
      Deno.execPath(),
      "run",
      ...SERVICE_DENO_FLAGS,
      `--config=${CONFIG}`,
      "--quiet",
      MAIN,
      "serve",
      "-f",
      "-x",
      conf,
    ],
    env: dkimdEnv({ NO_COLOR: "1" }),
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  try {
    // systemd-socket-activate listens before it starts dkimd; wait until the socket accepts a
    // connection (a unix socket's file exists from bind(), before listen(): a connection in
    // between is refused).
    for (let i = 0; i < 100; i++) {
      const ok = await (socket.kind === "unix"
        ? Deno.connect({ transport: "unix", path: socket.path })
        : Deno.connect({ hostname: socket.host, port: socket.port })).then((c) => {
          c.close();
          return true;
        }, () =>
          false);
      if (ok) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    // Small and large (a 1.2 MB body in many frames), each on its own connection.
    for (const lines of [1, 300_000]) {
      const client = await MilterClient.connect(socket, { timeoutMs: 60_000 });
      const result = await client.sendMessage({
        connect: { hostname: "localhost", address: "127.0.0.1" },
        headers: [["From", "a@datahunter.org"], ["To", "b@example.com"], ["Subject", "Hi"]],
        body: "Hello over an inherited socket\r\n".repeat(lines),
      });
      await client.quit();
      assert.equal(result.final.type, "accept");
      const signature = result.modifications.find((m) =>
        (m.type === "insheader" || m.type === "addheader") && m.name === "DKIM-Signature"
      );
      assert.ok(signature, JSON.stringify(result.modifications));
    }
    // The configured socket was never opened.
    await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: configured }));
  } finally {
    child.kill("SIGTERM");
    const out = await child.output();
    const stderr = new TextDecoder().decode(out.stderr);
    await Deno.remove(dir, { recursive: true });
    assert.match(stderr, /Milter listening on the socket systemd passed \(fd 3, /, stderr);
    assert.match(stderr, /SIGTERM received: stopping/, stderr);
    assert.doesNotMatch(stderr, /not to this one/, stderr);
  }
}

Deno.test("dkimd serves the milter on a TCP socket systemd passes (LISTEN_FDS)", async () => {
  const port = freePort();
  await signOver({ kind: "inet", host: "127.0.0.1", port }, `127.0.0.1:${port}`);
});

Deno.test("dkimd serves the milter on a unix socket systemd passes (LISTEN_FDS)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/dkimd.sock`;
    await signOver({ kind: "unix", path }, path);
    // The socket file is systemd's: dkimd leaves it for the next start.
    assert.ok((await Deno.lstat(path)).isSocket);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dkimd started by `deno task start` under socket activation says why it cannot serve the socket", async () => {
  // `deno task` is the process systemd starts (LISTEN_PID); its `deno run` child must not take
  // fd 3, opens Socket itself and finds dkimd.socket's address taken. The log says why.
  const dir = await writeCliConfig();
  const port = freePort();
  const conf = `${dir}/opendkim.conf`;
  await Deno.writeTextFile(
    conf,
    (await Deno.readTextFile(conf)).replace(
      "Socket inet:8891@localhost",
      `Socket inet:${port}@127.0.0.1`,
    ),
  );
  const child = new Deno.Command("systemd-socket-activate", {
    args: [
      "-l",
      `127.0.0.1:${port}`,
      Deno.execPath(),
      "task",
      `--config=${CONFIG}`,
      "start",
      "serve",
      "-f",
      "-x",
      conf,
    ],
    env: dkimdEnv({ NO_COLOR: "1" }),
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  try {
    // The first connection starts the task; it is never answered.
    let conn: Deno.Conn | undefined;
    for (let i = 0; i < 100 && conn === undefined; i++) {
      conn = await Deno.connect({ hostname: "127.0.0.1", port }).catch(() => undefined);
      if (conn === undefined) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(conn, "systemd-socket-activate did not listen");
    const out = await child.output();
    conn.close();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.notEqual(out.code, 0, stderr);
    assert.match(
      stderr,
      new RegExp(
        `warning: systemd passed a listening socket \\(LISTEN_FDS\\) to process \\d+, not to ` +
          `this one \\(\\d+\\): opening inet:${port}@127\\.0\\.0\\.1 instead\\. Only the process ` +
          `systemd starts can serve that socket: make ExecStart run dkimd itself \\(not "deno task"\\)`,
      ),
      stderr,
    );
    assert.match(stderr, new RegExp(`error: cannot listen on inet:${port}@127\\.0\\.0\\.1: `));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
