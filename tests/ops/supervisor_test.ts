import assert from "node:assert/strict";
import {
  EX_CONFIG,
  EX_UNAVAILABLE,
  RestartLimiter,
  supervise,
  WORKER_ENV,
} from "../../lib/ops/supervisor.ts";
import { selfCommand } from "../../lib/ops/self_command.ts";
import { MemoryServiceLogger } from "../helpers/milter_logger.ts";
import { nobody } from "../helpers/nobody.ts";
import { makeSharedTempDir } from "../helpers/shared_temp_dir.ts";

const FIXTURE = new URL("../helpers/supervise_fixture.ts", import.meta.url).pathname;
const READINESS = new URL("../../lib/ops/readiness.ts", import.meta.url);
const ROOT = Deno.uid() === 0;

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 1000; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function lines(path: string): Promise<string[]> {
  const text = await Deno.readTextFile(path).catch(() => "");
  return text.split("\n").filter((l) => l !== "");
}

/** A worker script: records its PID, says it is ready, then runs until killed. */
function sleeperWorker(dir: string): { command: string; args: string[] } {
  return {
    command: "sh",
    args: ["-c", `echo $$ >> ${dir}/pids; echo READY=1; exec sleep 60`],
  };
}

Deno.test("RestartLimiter applies AutoRestartCount and AutoRestartRate windows", () => {
  const cases = [
    { name: "no limits", options: {}, at: [0, 0, 0, 0, 0], refused: [] as number[] },
    { name: "count 2", options: { count: 2 }, at: [0, 1, 2, 3], refused: [2, 3] },
    {
      name: "10/1h",
      options: { rate: { count: 10, seconds: 3600 } },
      at: [...Array(11).keys()].map((i) => i * 1000).concat([3_600_001]),
      refused: [10],
    },
    {
      name: "2/1m slides",
      options: { rate: { count: 2, seconds: 60 } },
      at: [0, 30_000, 59_999, 60_000, 60_001, 90_000],
      refused: [2, 4],
    },
    {
      name: "rate 0 is no limit",
      options: { rate: { count: 0, seconds: 60 } },
      at: [0, 0, 0],
      refused: [],
    },
  ];
  for (const { name, options, at, refused } of cases) {
    const limiter = new RestartLimiter(options);
    const got = at.flatMap((t, i) => limiter.allow(t) === undefined ? [] : [i]);
    assert.deepEqual(got, refused, name);
  }
  const limiter = new RestartLimiter({ rate: { count: 1, seconds: 3600 } });
  limiter.allow(0);
  assert.equal(
    limiter.allow(1),
    "maximum restart rate exceeded (AutoRestartRate 1/1h: 1 restarts within 3600 seconds)",
  );
  const counted = new RestartLimiter({ count: 1 });
  counted.allow(0);
  assert.equal(counted.allow(1), "maximum restart count exceeded (AutoRestartCount 1)");
});

Deno.test("supervise() restarts a killed worker and gives up at the rate limit", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = new MemoryServiceLogger();
    const done = supervise({
      command: sleeperWorker(dir),
      logger: log,
      autoRestart: true,
      autoRestartRate: { count: 2, seconds: 3600 },
      restartDelayMs: 0,
    });
    for (let n = 1; n <= 3; n++) {
      const pid = await waitFor(`worker ${n}`, async () => (await lines(`${dir}/pids`))[n - 1]);
      // Ready first, so the death counts as a crash, not a failed start.
      await waitFor(
        `worker ${n} ready`,
        () =>
          Promise.resolve(
            log.lines.some((l) => l.message === `worker ${pid} is ready`) || undefined,
          ),
      );
      Deno.kill(Number(pid), "SIGKILL");
    }
    assert.equal(await done, EX_UNAVAILABLE);
    const pids = await lines(`${dir}/pids`);
    assert.equal(pids.length, 3);
    assert.match(
      log.text(),
      new RegExp(
        `notice: worker ${
          pids[0]
        } terminated with signal 9 \\(SIGKILL\\), restarting \\(restart 1\\)`,
      ),
    );
    assert.match(
      log.text(),
      new RegExp(
        `notice: worker ${
          pids[1]
        } terminated with signal 9 \\(SIGKILL\\), restarting \\(restart 2\\)`,
      ),
    );
    assert.match(
      log.text(),
      new RegExp(
        `error: worker ${
          pids[2]
        } terminated with signal 9 \\(SIGKILL\\); maximum restart rate exceeded ` +
          `\\(AutoRestartRate 2/1h: 2 restarts within 3600 seconds\\); giving up`,
      ),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("supervise() does not restart a worker that fails before it is ready", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = new MemoryServiceLogger();
    const status = await supervise({
      command: {
        command: "sh",
        args: ["-c", `echo $$ >> ${dir}/pids; echo "cannot read key" >&2; exit 71`],
      },
      logger: log,
      autoRestart: true,
      restartDelayMs: 0,
    });
    assert.equal(status, 71);
    assert.equal((await lines(`${dir}/pids`)).length, 1);
    assert.match(
      log.text(),
      /error: worker \d+ exited with status 71 before it was ready; not restarting/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("supervise() does not restart EX_CONFIG, and stops without AutoRestart", async () => {
  const cases = [
    {
      autoRestart: true,
      script: `echo READY=1; exit ${EX_CONFIG}`,
      want: EX_CONFIG,
      line: /not restarting \(as OpenDKIM/,
    },
    {
      autoRestart: false,
      script: "echo READY=1; kill -SEGV $$",
      want: 128 + 11,
      line: /signal 11 \(SIGSEGV\); AutoRestart is off/,
    },
    {
      autoRestart: false,
      script: "echo READY=1; exit 0",
      want: 0,
      line: /notice: worker \d+ exited with status 0$/,
    },
  ];
  for (const { autoRestart, script, want, line } of cases) {
    const log = new MemoryServiceLogger();
    const status = await supervise({
      command: { command: "sh", args: ["-c", script] },
      logger: log,
      autoRestart,
      restartDelayMs: 0,
    });
    assert.equal(status, want, script);
    assert.match(log.text(), line, script);
  }
});

Deno.test("supervise() marks the worker and passes the environment", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const status = await supervise({
      command: { command: "sh", args: ["-c", `env > ${dir}/env; echo READY=1`] },
      logger: new MemoryServiceLogger(),
      autoRestart: false,
      env: { EXTRA: "yes" },
    });
    assert.equal(status, 0);
    const env = await lines(`${dir}/env`);
    assert.ok(env.includes(`${WORKER_ENV}=1`));
    assert.ok(env.includes("DKIMD_READY=stdout"));
    assert.ok(env.includes("EXTRA=yes"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("supervise() forwards SIGUSR1, SIGHUP and SIGTERM, and keeps the PID file meanwhile", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const worker = [
      `echo $$ >> ${dir}/pids`,
      `trap 'echo USR1 >> ${dir}/signals' USR1`,
      `trap 'echo HUP >> ${dir}/signals' HUP`,
      `trap 'echo TERM >> ${dir}/signals; exit 0' TERM`,
      "echo READY=1",
      "while :; do sleep 0.05; done",
    ].join("\n");
    const supervisor = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        FIXTURE,
        JSON.stringify({
          command: { command: "sh", args: ["-c", worker] },
          autoRestart: true,
          pidFile: `${dir}/dkimd.pid`,
          umask: 0o002,
          restartDelayMs: 0,
        }),
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(supervisor.stderr).text();
    const pid = await waitFor(
      "the PID file",
      () => Deno.readTextFile(`${dir}/dkimd.pid`).catch(() => undefined),
    );
    assert.equal(pid, `${supervisor.pid}\n`);
    assert.equal((await Deno.stat(`${dir}/dkimd.pid`)).mode! & 0o777, 0o664);
    supervisor.kill("SIGUSR1");
    await waitFor(
      "USR1",
      async () => (await lines(`${dir}/signals`)).includes("USR1") || undefined,
    );
    supervisor.kill("SIGHUP");
    await waitFor("HUP", async () => (await lines(`${dir}/signals`)).includes("HUP") || undefined);
    supervisor.kill("SIGTERM");
    const status = await supervisor.status;
    assert.equal(status.code, 0, await stderr);
    assert.deepEqual(await lines(`${dir}/signals`), ["USR1", "HUP", "TERM"]);
    assert.equal((await lines(`${dir}/pids`)).length, 1);
    await assert.rejects(() => Deno.stat(`${dir}/dkimd.pid`), Deno.errors.NotFound);
    assert.match(await stderr, /dkimd\[\d+\]: worker \d+ exited with status 0 after SIGTERM/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A temporary directory the unprivileged user may write in. */
function sharedDir(): Promise<string> {
  return makeSharedTempDir(0o777);
}

/** A field of /proc/PID/status. */
function statusField(status: string, name: string): string {
  return (status.split("\n").find((l) => l.startsWith(`${name}:`)) ?? "").slice(name.length + 1)
    .trim();
}

Deno.test({
  name: "supervise() started as root runs the worker as UserID's user and group",
  ignore: !ROOT,
  fn: async () => {
    const who = await nobody();
    const dir = await sharedDir();
    try {
      const log = new MemoryServiceLogger();
      const done = supervise({
        command: {
          command: "sh",
          args: ["-c", `echo $$ > ${dir}/pid; echo READY=1; exec sleep 60`],
        },
        logger: log,
        autoRestart: false,
        runAs: who,
      });
      const pid = await waitFor(
        "the worker",
        () => Deno.readTextFile(`${dir}/pid`).then((t) => t.trim() || undefined, () => undefined),
      );
      const status = await Deno.readTextFile(`/proc/${pid}/status`);
      assert.deepEqual(statusField(status, "Uid").split(/\s+/), Array(4).fill(String(who.uid)));
      assert.deepEqual(statusField(status, "Gid").split(/\s+/), Array(4).fill(String(who.gid)));
      // Rust's spawn drops root's supplementary groups along with root.
      assert.equal(statusField(status, "Groups"), "");
      Deno.kill(Number(pid), "SIGTERM");
      assert.equal(await done, 128 + 15);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "supervise() runs a Deno worker as UserID's user with the service's flags",
  ignore: !ROOT,
  fn: async () => {
    const who = await nobody();
    const dir = await sharedDir();
    try {
      await Deno.copyFile(READINESS, `${dir}/readiness.ts`);
      await Deno.writeTextFile(
        `${dir}/worker.ts`,
        [
          `import { notifyReady } from "./readiness.ts";`,
          `await Deno.writeTextFile("${dir}/uid", String(Deno.uid()));`,
          `notifyReady();`,
          // A worker gives up what it does not need; a second spawn must now be refused.
          `await Deno.permissions.revoke({ name: "run" });`,
          `try { new Deno.Command("true").spawn(); } catch (e) { await Deno.writeTextFile("${dir}/run", (e as Error).name); }`,
        ].join("\n"),
      );
      await Deno.mkdir(`${dir}/deno_dir`);
      await Deno.chown(`${dir}/deno_dir`, who.uid, who.gid);
      const log = new MemoryServiceLogger();
      const status = await supervise({
        command: selfCommand([], {
          execPath: Deno.execPath(),
          mainModule: `file://${dir}/worker.ts`,
        }),
        logger: log,
        autoRestart: true,
        runAs: who,
        env: { DENO_DIR: `${dir}/deno_dir`, HOME: dir, NO_COLOR: "1" },
        restartDelayMs: 0,
      });
      assert.equal(status, 0, log.text());
      assert.equal(await Deno.readTextFile(`${dir}/uid`), String(who.uid));
      assert.equal(await Deno.readTextFile(`${dir}/run`), "NotCapable");
      assert.ok(log.find("info", /^worker \d+ is ready$/), log.text());
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
