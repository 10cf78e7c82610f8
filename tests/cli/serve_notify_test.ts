/**
 * `dkimd serve` under systemd's notify protocol, with a unix datagram listener standing in for
 * systemd (NOTIFY_SOCKET): READY=1 once the socket listens and the keys are loaded,
 * RELOADING=1 (with MONOTONIC_USEC) and READY=1 around a reload, a bad reload keeping the old
 * configuration with a STATUS= saying why, STOPPING=1 on SIGTERM, readable STATUS= lines, and
 * the watchdog: WATCHDOG=1 at half WATCHDOG_USEC while the event loop runs, none while the
 * serving process is stopped (SIGSTOP), also when a supervisor (AutoRestart) runs beside it.
 * The stand-in needs Deno's datagram API (--unstable-net); when this file runs without it (as
 * `deno task test` runs it), one test runs the file again with the flag and checks that every
 * test passed.
 */
import assert from "node:assert/strict";
import { fromLatin1 } from "../../lib/bytes.ts";
import { MilterClient } from "../../lib/milter/client.ts";
import { SERVICE_DENO_FLAGS } from "../../lib/ops/self_command.ts";
import { KEYS_DIR } from "../helpers/dkim_fixtures.ts";
import { dkimdEnv } from "../helpers/dkimd_env.ts";
import { freePort, startDkimd } from "../helpers/dkimd_process.ts";
import { listenNotify, type NotifyMessage } from "../helpers/notify_listener.ts";
import { HAS_DATAGRAMS, rerunUnderUnstableNet } from "../helpers/unstable_net.ts";

rerunUnderUnstableNet(
  "dkimd serve's sd_notify tests pass under --unstable-net",
  import.meta.url,
  /ok \| 5 passed \| 0 failed/,
);

/** A test that needs the stand-in's datagram socket. */
function test(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, ignore: !HAS_DATAGRAMS, fn });
}

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

async function keyDir(): Promise<string> {
  const dir = await Deno.makeTempDir();
  await Deno.copyFile(new URL("ed25519.pem", KEYS_DIR), `${dir}/ed.private`);
  await Deno.chmod(`${dir}/ed.private`, 0o600);
  return dir;
}

const conf = (dir: string, domains: string, extra = "") => (socket: string) =>
  `Mode sv\nSocket ${socket}\nDomain ${domains}\nSelector ed\nKeyFile ${dir}/ed.private\n${extra}`;

/** The d= of each signature dkimd adds to a message from `from`, sent on a new connection. */
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

/** CLOCK_MONOTONIC in microseconds, read by another program (Python's time.monotonic_ns). */
async function monotonicUsecNow(): Promise<bigint> {
  const out = await new Deno.Command("python3", {
    args: ["-c", "import time; print(time.monotonic_ns() // 1000)"],
    stdout: "piped",
  }).output();
  return BigInt(new TextDecoder().decode(out.stdout).trim());
}

const has = (name: string, value?: string) => (m: NotifyMessage) =>
  value === undefined ? name in m.fields : m.fields[name] === value;

test("dkimd serve tells systemd READY=1 once it listens with keys loaded, RELOADING=1/READY=1 around a reload, why a bad reload kept the old configuration, STOPPING=1 on SIGTERM", async () => {
  const dir = await keyDir();
  const systemd = listenNotify(dir);
  const port = freePort();
  const socket = `inet:${port}@127.0.0.1`;
  // Signs at the moment READY=1 arrives: the socket listens and the key is loaded by then.
  let atReady: Promise<string[]> | undefined;
  const ready = systemd.next(has("READY", "1")).then((m) => {
    atReady ??= signedBy(port, "a@example.com");
    return m;
  });
  const dkimd = await startDkimd(dir, conf(dir, "example.com"), {
    socket,
    env: { NOTIFY_SOCKET: systemd.notifySocket },
  });
  try {
    const first = await ready;
    assert.deepEqual(await atReady, ["example.com"]);
    assert.equal(first.pid, dkimd.pid, "the serving process itself notifies");
    assert.equal(first.fields.STATUS, "mode sv, signing for 1 domain, 0 messages");
    assert.equal(systemd.messages.filter(has("READY")).length, 1, "READY=1 once");

    // STATUS= follows the messages handled (refreshed every few seconds when it changed).
    const mark = systemd.messages.length;
    assert.deepEqual(await signedBy(port, "b@example.com"), ["example.com"]);
    const counted = await systemd.next(
      (m) => /^mode sv, signing for 1 domain, 2 messages \(2 signed\)$/.test(m.fields.STATUS ?? ""),
      mark,
      10_000,
    );
    assert.equal(Object.keys(counted.fields).join(), "STATUS");

    // A good reload: RELOADING=1 with CLOCK_MONOTONIC in µs, then READY=1 with the new status.
    await Deno.writeTextFile(dkimd.config, conf(dir, "example.org,example.net")(socket));
    let from = systemd.messages.length;
    const before = await monotonicUsecNow();
    dkimd.signal("SIGUSR1");
    const reloading = await systemd.next(has("RELOADING", "1"), from);
    const after = await monotonicUsecNow();
    const usec = BigInt(reloading.fields.MONOTONIC_USEC);
    assert.ok(usec >= before, `MONOTONIC_USEC ${usec} is not before the signal (${before})`);
    // Read from the uptime rounded up to the second (MonotonicClock): at most a second late.
    assert.ok(usec <= after + 1_000_000n, `MONOTONIC_USEC ${usec} is near ${after}`);
    const reloaded = await systemd.next(has("READY", "1"), from);
    assert.ok(reloaded.at >= reloading.at);
    assert.match(reloaded.fields.STATUS, /^mode sv, signing for 2 domains, 2 messages/);
    assert.deepEqual(await signedBy(port, "a@example.org"), ["example.org"]);

    // A bad reload: RELOADING=1, then READY=1 (the service runs on) with STATUS= saying why;
    // the old configuration stays in force.
    await Deno.writeTextFile(dkimd.config, `Mode sv\nSocket ${socket}\nCanonicalization loose\n`);
    from = systemd.messages.length;
    dkimd.signal("SIGHUP");
    await systemd.next(has("RELOADING", "1"), from);
    const failed = await systemd.next(has("READY", "1"), from);
    assert.match(
      failed.fields.STATUS,
      /^reload failed, old configuration kept: .*Canonicalization.*dkimd\.conf:3/,
    );
    assert.deepEqual(await signedBy(port, "a@example.net"), ["example.net"]);

    from = systemd.messages.length;
    assert.equal(await dkimd.stop(), 0);
    const stopping = await systemd.next(has("STOPPING", "1"), from);
    assert.equal(stopping.fields.STATUS, "stopping");
  } finally {
    await dkimd.stop();
    systemd.close();
    await Deno.remove(dir, { recursive: true });
  }
});

test("dkimd serve sends no READY=1 when it cannot listen", async () => {
  const dir = await keyDir();
  const systemd = listenNotify(dir);
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (taken.addr as Deno.NetAddr).port;
    await Deno.writeTextFile(
      `${dir}/dkimd.conf`,
      conf(dir, "example.com")(`inet:${port}@127.0.0.1`),
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...SERVICE_DENO_FLAGS,
        `--config=${CONFIG}`,
        "--quiet",
        MAIN,
        "-x",
        `${dir}/dkimd.conf`,
        "-f",
      ],
      stdout: "piped",
      stderr: "piped",
      clearEnv: true,
      env: dkimdEnv({ NO_COLOR: "1", NOTIFY_SOCKET: systemd.notifySocket }),
    }).output();
    assert.equal(out.code, 71, new TextDecoder().decode(out.stderr));
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(systemd.messages, []);
  } finally {
    taken.close();
    systemd.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** The pings received between `from` and `to` (performance.now() times). */
function pingsBetween(messages: readonly NotifyMessage[], from: number, to: number): number[] {
  return messages.filter((m) => m.fields.WATCHDOG === "1" && m.at >= from && m.at < to)
    .map((m) => m.at);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Checks the watchdog of `serving` (a process id): pings about every `usec / 2`, none while the
 * process is stopped with SIGSTOP (its event loop cannot run), and pings again after SIGCONT.
 */
async function checkWatchdog(
  systemd: ReturnType<typeof listenNotify>,
  serving: number,
  usec: number,
): Promise<void> {
  const half = usec / 2000;
  await systemd.next(has("WATCHDOG", "1"));
  const t0 = performance.now();
  await sleep(half * 6 + half / 2);
  const pings = pingsBetween(systemd.messages, t0, performance.now());
  assert.ok(pings.length >= 5 && pings.length <= 8, `${pings.length} pings in ${half * 6.5} ms`);
  const gaps = pings.slice(1).map((t, i) => t - pings[i]);
  for (const gap of gaps) {
    assert.ok(
      gap > half * 0.6 && gap < half * 1.6,
      `pings ${gap.toFixed(0)} ms apart, not ${half}`,
    );
  }
  assert.ok(pings.every((p) => pings[0] <= p));

  // A stopped process runs no event loop: no pings, so systemd would restart the service.
  Deno.kill(serving, "SIGSTOP");
  try {
    const stoppedAt = performance.now();
    await sleep(half * 5);
    // A datagram sent just before the stop may land in the first few milliseconds.
    assert.deepEqual(pingsBetween(systemd.messages, stoppedAt + 50, performance.now()), []);
  } finally {
    Deno.kill(serving, "SIGCONT");
  }
  const resumedAt = performance.now();
  await systemd.next((m) => m.fields.WATCHDOG === "1" && m.at > resumedAt, 0, half * 3);
}

test("dkimd serve pings WATCHDOG=1 at half WATCHDOG_USEC from its event loop, and not while the loop cannot run (an abstract NOTIFY_SOCKET)", async () => {
  const dir = await keyDir();
  const systemd = listenNotify(dir, { abstract: true });
  const dkimd = await startDkimd(dir, conf(dir, "example.com"), {
    env: { NOTIFY_SOCKET: systemd.notifySocket, WATCHDOG_USEC: "600000" },
  });
  try {
    assert.equal((await systemd.next(has("READY", "1"))).pid, dkimd.pid);
    await checkWatchdog(systemd, dkimd.pid, 600_000);
    assert.deepEqual(await signedBy(dkimd.port, "a@example.com"), ["example.com"]);
    assert.equal(await dkimd.stop(), 0);
  } finally {
    await dkimd.stop();
    systemd.close();
    await Deno.remove(dir, { recursive: true });
  }
});

test("dkimd serve pings no WATCHDOG=1 when WATCHDOG_PID names another process", async () => {
  const dir = await keyDir();
  const systemd = listenNotify(dir);
  const dkimd = await startDkimd(dir, conf(dir, "example.com"), {
    env: { NOTIFY_SOCKET: systemd.notifySocket, WATCHDOG_USEC: "200000", WATCHDOG_PID: "1" },
  });
  try {
    await systemd.next(has("READY", "1"));
    await sleep(600);
    assert.deepEqual(systemd.messages.filter(has("WATCHDOG")), []);
  } finally {
    await dkimd.stop();
    systemd.close();
    await Deno.remove(dir, { recursive: true });
  }
});

test("dkimd serve with a supervisor: the worker notifies systemd and pings the watchdog, and its stopped loop stops the pings though the supervisor runs", async () => {
  const dir = await keyDir();
  const systemd = listenNotify(dir);
  const port = freePort();
  await Deno.writeTextFile(
    `${dir}/dkimd.conf`,
    conf(dir, "example.com", "AutoRestart yes\n")(`inet:${port}@127.0.0.1`),
  );
  // systemd sets WATCHDOG_PID to the process it started: the shell's $$ is the one it execs.
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$@"',
      "sh",
      Deno.execPath(),
      "run",
      ...SERVICE_DENO_FLAGS,
      `--config=${CONFIG}`,
      "--quiet",
      MAIN,
      "-x",
      `${dir}/dkimd.conf`,
      "-f",
    ],
    stdout: "null",
    stderr: "piped",
    clearEnv: true,
    env: dkimdEnv({
      NO_COLOR: "1",
      NOTIFY_SOCKET: systemd.notifySocket,
      WATCHDOG_USEC: "600000",
    }),
  }).spawn();
  const log = new Response(child.stderr).text();
  try {
    const ready = await systemd.next(has("READY", "1"));
    const worker = Number(
      (await Deno.readTextFile(`/proc/${child.pid}/task/${child.pid}/children`)).trim()
        .split(/\s+/)[0],
    );
    assert.ok(worker > 0 && worker !== child.pid);
    // The worker, which serves, says it is ready; the supervisor says nothing.
    assert.equal(ready.pid, worker);
    assert.deepEqual(await signedBy(port, "a@example.com"), ["example.com"]);

    await checkWatchdog(systemd, worker, 600_000);
    assert.ok(systemd.messages.every((m) => m.pid === worker), "only the worker notifies");
    assert.match(await Deno.readTextFile(`/proc/${child.pid}/stat`), /^\d+ \([^)]*\) S /);

    // Reload through the supervisor (systemd signals its main process), answered by the worker.
    const from = systemd.messages.length;
    child.kill("SIGHUP");
    await systemd.next(has("RELOADING", "1"), from);
    await systemd.next(has("READY", "1"), from);

    const stopFrom = systemd.messages.length;
    child.kill("SIGTERM");
    assert.equal((await child.status).code, 0, await log);
    assert.equal((await systemd.next(has("STOPPING", "1"), stopFrom)).pid, worker);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // Stopped already.
    }
    await child.status;
    await log;
    systemd.close();
    await Deno.remove(dir, { recursive: true });
  }
});
