/**
 * `dkimd serve` with the seed's operational settings: PidFile (and -P), AutoRestart under a
 * supervising parent, UserID refusing keys the user cannot read, Background, MetricsListen.
 */
import assert from "node:assert/strict";
import { fromLatin1 } from "../../lib/bytes.ts";
import { MilterClient } from "../../lib/milter/client.ts";
import { KEYS_DIR } from "../helpers/dkim_fixtures.ts";
import { freePort, startDkimd, until } from "../helpers/dkimd_process.ts";
import { runCli } from "../helpers/run_cli.ts";
import { makeSharedTempDir } from "../helpers/shared_temp_dir.ts";

async function keyDir(): Promise<string> {
  // Shared: the UserID check walks every directory above the key as user nobody.
  const dir = await makeSharedTempDir(0o755);
  await Deno.copyFile(new URL("ed25519.pem", KEYS_DIR), `${dir}/ed.private`);
  await Deno.chmod(`${dir}/ed.private`, 0o600);
  return dir;
}

const conf = (dir: string, extra = "") => (socket: string) =>
  `Mode sv\nSocket ${socket}\nDomain example.com\nSelector ed\nKeyFile ${dir}/ed.private\n${extra}`;

async function sign(port: number): Promise<number> {
  const client = await MilterClient.connect({ kind: "inet", host: "127.0.0.1", port });
  try {
    const r = await client.sendMessage({
      connect: { hostname: "localhost", address: "127.0.0.1" },
      macros: { mail: { i: "Q1" } },
      from: "<a@example.com>",
      headers: [["From", " a@example.com"]],
      body: fromLatin1("hi\r\n"),
    });
    return r.modifications.filter((m) => m.type === "insheader").length;
  } finally {
    client.close();
  }
}

async function alive(pid: number): Promise<boolean> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    return !/^State:\s+Z/m.test(status);
  } catch {
    return false;
  }
}

Deno.test("dkimd serve writes the PID file after listening (-P overrides PidFile) and removes it on SIGTERM", async () => {
  const dir = await keyDir();
  try {
    const dkimd = await startDkimd(dir, conf(dir, `PidFile ${dir}/ignored.pid\n`), {
      args: ["-P", `${dir}/dkimd.pid`],
    });
    await until(
      "the PID file",
      async () => (await Deno.readTextFile(`${dir}/dkimd.pid`).catch(() => "")) !== "",
    );
    assert.equal((await Deno.readTextFile(`${dir}/dkimd.pid`)).trim(), String(dkimd.pid));
    await assert.rejects(Deno.stat(`${dir}/ignored.pid`), Deno.errors.NotFound);
    assert.equal(await sign(dkimd.port), 1);
    assert.equal(await dkimd.stop(), 0);
    await assert.rejects(Deno.stat(`${dir}/dkimd.pid`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dkimd serve with AutoRestart restarts a killed worker, gives up at AutoRestartRate, and stops cleanly", async () => {
  const dir = await keyDir();
  try {
    const dkimd = await startDkimd(
      dir,
      conf(dir, `AutoRestart yes\nAutoRestartRate 2/1h\nPidFile ${dir}/dkimd.pid\n`),
    );
    // The supervisor holds the PID file, as OpenDKIM's parent does.
    await until(
      "the PID file",
      async () => (await Deno.readTextFile(`${dir}/dkimd.pid`).catch(() => "")).trim() !== "",
    );
    assert.equal((await Deno.readTextFile(`${dir}/dkimd.pid`)).trim(), String(dkimd.pid));
    assert.equal(await sign(dkimd.port), 1);

    const workerPid = async () => {
      const children = await Deno.readTextFile(`/proc/${dkimd.pid}/task/${dkimd.pid}/children`)
        .catch(() => "");
      return Number(children.trim().split(/\s+/)[0]);
    };
    for (let round = 1; round <= 2; round++) {
      const pid = await workerPid();
      assert.ok(pid > 0, "a worker runs");
      Deno.kill(pid, "SIGKILL");
      await until("a new worker", async () => {
        const next = await workerPid();
        return next > 0 && next !== pid && (await sign(dkimd.port).then(() => true, () => false));
      });
    }
    // The third crash within the hour is past AutoRestartRate 2/1h: the supervisor gives up.
    Deno.kill(await workerPid(), "SIGKILL");
    const status = await dkimd.status;
    assert.notEqual(status.code, 0);
    assert.match(dkimd.log(), /maximum restart rate exceeded/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dkimd serve with UserID refuses a key the user cannot read, naming the file, the user and the fix", async () => {
  const dir = await keyDir();
  try {
    await Deno.writeTextFile(
      `${dir}/dkimd.conf`,
      conf(dir, "UserID nobody\n")(`inet:${freePort()}@127.0.0.1`),
    );
    const r = await runCli(["-x", `${dir}/dkimd.conf`, "-f"]);
    assert.equal(r.code, 78, r.stderr);
    assert.match(r.stderr, new RegExp(`${dir}/ed.private.*not readable by user "nobody"`));
    assert.match(r.stderr, /fix: /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dkimd serve in the background (OpenDKIM's default) returns once the copy listens", async () => {
  const dir = await keyDir();
  const port = freePort();
  try {
    await Deno.writeTextFile(
      `${dir}/dkimd.conf`,
      conf(dir, `PidFile ${dir}/dkimd.pid\n`)(`inet:${port}@127.0.0.1`),
    );
    const r = await runCli(["-x", `${dir}/dkimd.conf`]);
    assert.equal(r.code, 0, r.stderr);
    const pid = Number((await Deno.readTextFile(`${dir}/dkimd.pid`)).trim());
    assert.ok(await alive(pid));
    assert.equal(await sign(port), 1);
    Deno.kill(pid, "SIGTERM");
    await until("the background copy to stop", async () => !(await alive(pid)));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dkimd serve with MetricsListen serves Prometheus metrics and a health check", async () => {
  const dir = await keyDir();
  const metricsPort = freePort();
  try {
    const dkimd = await startDkimd(dir, conf(dir, `MetricsListen 127.0.0.1:${metricsPort}\n`));
    try {
      assert.equal(await sign(dkimd.port), 1);
      const health = await fetch(`http://127.0.0.1:${metricsPort}/healthz`);
      assert.equal(health.status, 200);
      await health.body?.cancel();
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      assert.match(text, /^dkimd_messages_total\{disposition="signed",action="accept"\} 1$/m);
      // Signed with d=example.com for From: a@example.com.
      assert.match(
        text,
        /^dkimd_signatures_added_total\{algorithm="ed25519-sha256",domain_class="author"\} 1$/m,
      );
      const rss = text.match(/^process_resident_memory_bytes (\d+)$/m);
      assert.ok(rss && Number(rss[1]) > 10 * 1024 * 1024, "a live process's resident memory");
    } finally {
      await dkimd.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
