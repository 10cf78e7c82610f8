/**
 * `dkimd serve` as a process: configuration errors, the built-in default, reload on SIGUSR1 and
 * SIGHUP (a bad configuration keeps the old one), and a clean stop on SIGTERM; and the seed's
 * operational settings: PidFile (and -P), AutoRestart under a supervising parent, UserID
 * refusing keys the user cannot read, Background, MetricsListen.
 */
import assert from "node:assert/strict";
import { fromLatin1 } from "../../lib/bytes.ts";
import { MilterClient } from "../../lib/milter/client.ts";
import { KEYS_DIR } from "../helpers/dkim_fixtures.ts";
import { dkimdEnv } from "../helpers/dkimd_env.ts";
import { freePort, startDkimd, until } from "../helpers/dkimd_process.ts";
import { runCli } from "../helpers/run_cli.ts";
import { makeSharedTempDir } from "../helpers/shared_temp_dir.ts";

async function signedBy(port: number, from: string): Promise<string[]> {
  const client = await MilterClient.connect({ kind: "inet", host: "127.0.0.1", port });
  try {
    const r = await client.sendMessage({
      connect: { hostname: "localhost", address: "127.0.0.1" },
      macros: { mail: { i: "Q1" } },
      from: `<${from}>`,
      headers: [["From", ` ${from}`], ["Subject", " hi"]],
      body: fromLatin1("hello\r\n"),
    });
    return r.modifications
      .filter((m) => m.type === "insheader" && m.name === "DKIM-Signature")
      .map((m) =>
        new TextDecoder().decode((m as { value: Uint8Array }).value).match(/ d=([^;]+);/)?.[1] ??
          "?"
      );
  } finally {
    client.close();
  }
}

async function keyDir(): Promise<string> {
  const dir = await Deno.makeTempDir();
  await Deno.copyFile(new URL("ed25519.pem", KEYS_DIR), `${dir}/ed.private`);
  await Deno.chmod(`${dir}/ed.private`, 0o600);
  return dir;
}

Deno.test("dkimd serve reloads on SIGUSR1 and SIGHUP, keeps the old configuration when the new one is bad, stops on SIGTERM", async () => {
  const dir = await keyDir();
  const conf = (domain: string) => (socket: string) =>
    `Mode sv\nSocket ${socket}\nDomain ${domain}\nSelector ed\nKeyFile ${dir}/ed.private\n`;
  const dkimd = await startDkimd(dir, conf("example.com"));
  try {
    assert.deepEqual(await signedBy(dkimd.port, "a@example.com"), ["example.com"]);
    assert.deepEqual(await signedBy(dkimd.port, "a@example.org"), []);

    await Deno.writeTextFile(dkimd.config, conf("example.org")(dkimd.socket));
    dkimd.signal("SIGUSR1");
    await dkimd.waitForLog(/configuration reloaded/);
    assert.deepEqual(await signedBy(dkimd.port, "a@example.org"), ["example.org"]);
    assert.deepEqual(await signedBy(dkimd.port, "a@example.com"), []);

    // A broken configuration: logged with its file and line, the old one stays in force.
    await Deno.writeTextFile(
      dkimd.config,
      `Mode sv\nSocket ${dkimd.socket}\nCanonicalization loose\n`,
    );
    dkimd.signal("SIGHUP");
    await dkimd.waitForLog(/reload failed: keeping the configuration in force/);
    assert.match(
      dkimd.log(),
      new RegExp(`reload failed: .*Canonicalization.*${dkimd.config.replaceAll("/", "\\/")}:3`),
    );
    assert.deepEqual(await signedBy(dkimd.port, "a@example.org"), ["example.org"]);

    // A setting that needs a restart is named.
    await Deno.writeTextFile(dkimd.config, conf("example.org")(`inet:${freePort()}@127.0.0.1`));
    dkimd.signal("SIGUSR1");
    await dkimd.waitForLog(
      /"Socket" changed at .*dkimd\.conf:2; it takes effect at the next restart/,
    );

    assert.equal(await dkimd.stop(), 0);
    assert.match(dkimd.log(), /SIGTERM received: stopping/);
    assert.match(dkimd.log(), /terminating with status 0/);
  } finally {
    await dkimd.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dkimd -n checks a configuration and names every problem with file and line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/bad.conf`,
      "Mode sv\nSocket inet:8891@localhost\nSigningTabel x\nOn-BadSignature maybe\n",
    );
    const bad = await runCli(["-n", "-x", `${dir}/bad.conf`]);
    assert.equal(bad.code, 78);
    assert.match(bad.stderr, new RegExp(`${dir}/bad.conf:3.*did you mean "SigningTable"`));
    assert.match(bad.stderr, new RegExp(`${dir}/bad.conf:4`));
    await Deno.writeTextFile(`${dir}/good.conf`, "Mode v\nSocket inet:8891@localhost\n");
    const good = await runCli(["serve", "--check", "--config", `${dir}/good.conf`]);
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.text, /configuration .*good\.conf OK/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dkimd serve without a configuration says it serves the built-in default; a taken port is an error", async () => {
  const port = freePort();
  {
    // The built-in default listens on 8891; -p moves it to a free port.
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        "--quiet",
        new URL("../../main.ts", import.meta.url).pathname,
        "serve",
        "-p",
        `inet:${port}@127.0.0.1`,
      ],
      stderr: "piped",
      stdout: "null",
      clearEnv: true,
      env: dkimdEnv(),
    }).spawn();
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!/listening on/.test(text)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    assert.match(
      text,
      /starting with no configuration file: serving the built-in default \(Mode v, Socket inet:8891@127\.0\.0\.1/,
    );
    // A second server on the same port fails with a clear line and status 71.
    const taken = await runCli(["serve", "-p", `inet:${port}@127.0.0.1`]);
    assert.equal(taken.code, 71);
    assert.match(taken.stderr, new RegExp(`cannot listen on inet:${port}@127\\.0\\.0\\.1`));
    child.kill("SIGTERM");
    reader.releaseLock();
    await child.stderr.cancel().catch(() => {});
    assert.equal((await child.status).code, 0);
  }
});

/** A key directory user nobody can search, for UserID. */
async function sharedKeyDir(): Promise<string> {
  // Shared: the UserID check walks every directory above the key as user nobody.
  const dir = await makeSharedTempDir(0o755);
  await Deno.copyFile(new URL("ed25519.pem", KEYS_DIR), `${dir}/ed.private`);
  await Deno.chmod(`${dir}/ed.private`, 0o600);
  return dir;
}

const conf = (dir: string, extra = "") => (socket: string) =>
  `Mode sv\nSocket ${socket}\nDomain example.com\nSelector ed\nKeyFile ${dir}/ed.private\n${extra}`;

/** How many header fields dkimd adds to a message from a@example.com: its signatures. */
async function signatureCount(port: number): Promise<number> {
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
  const dir = await sharedKeyDir();
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
    assert.equal(await signatureCount(dkimd.port), 1);
    assert.equal(await dkimd.stop(), 0);
    await assert.rejects(Deno.stat(`${dir}/dkimd.pid`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dkimd serve with AutoRestart restarts a killed worker, gives up at AutoRestartRate, and stops cleanly", async () => {
  const dir = await sharedKeyDir();
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
    assert.equal(await signatureCount(dkimd.port), 1);

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
        return next > 0 && next !== pid &&
          (await signatureCount(dkimd.port).then(() => true, () => false));
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
  const dir = await sharedKeyDir();
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
  const dir = await sharedKeyDir();
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
    assert.equal(await signatureCount(port), 1);
    Deno.kill(pid, "SIGTERM");
    await until("the background copy to stop", async () => !(await alive(pid)));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dkimd serve with MetricsListen serves Prometheus metrics and a health check", async () => {
  const dir = await sharedKeyDir();
  const metricsPort = freePort();
  try {
    const dkimd = await startDkimd(dir, conf(dir, `MetricsListen 127.0.0.1:${metricsPort}\n`));
    try {
      assert.equal(await signatureCount(dkimd.port), 1);
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

Deno.test("dkimd serve (and -n) warns at start when its socket is reachable beyond this host, naming the fix", async () => {
  const dir = await keyDir();
  try {
    const port = freePort();
    const dkimd = await startDkimd(dir, conf(dir), { socket: `inet:${port}` });
    try {
      await dkimd.waitForLog(
        new RegExp(
          `"Socket" at ${dir}/dkimd\\.conf:2 inet:${port}@0\\.0\\.0\\.0 listens on every IPv4 ` +
            `interface: the milter protocol has no authentication, .* bind 127\\.0\\.0\\.1 ` +
            `\\(inet:${port}@127\\.0\\.0\\.1\\) or a unix socket`,
        ),
      );
    } finally {
      await dkimd.stop();
    }
    // -p overrides the configuration's Socket, and is named as such; loopback says nothing.
    const flagged = await startDkimd(dir, conf(dir), {
      socket: `inet:${port}@127.0.0.1`,
      args: ["-p", `inet6:${port}`],
    });
    try {
      await flagged.waitForLog(new RegExp(`-p inet6:${port}@\\[::\\] listens on every interface`));
    } finally {
      await flagged.stop();
    }
    const quiet = await startDkimd(dir, conf(dir));
    await quiet.stop();
    assert.doesNotMatch(quiet.log(), /listens on every|milter protocol has no authentication/);
    // -n says so too.
    await Deno.writeTextFile(`${dir}/open.conf`, "Mode v\nSocket inet:8891\n");
    const checked = await runCli(["-n", "-x", `${dir}/open.conf`]);
    assert.equal(checked.code, 0, checked.stderr);
    assert.match(
      checked.stderr,
      new RegExp(
        `warning: "Socket" at ${dir}/open\\.conf:2 inet:8891@0\\.0\\.0\\.0 listens on every`,
      ),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
