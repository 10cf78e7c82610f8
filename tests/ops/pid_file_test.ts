import assert from "node:assert/strict";
import {
  inspectPidFile,
  isDkimdProcess,
  PidFileError,
  writePidFile,
} from "../../lib/ops/pid_file.ts";

/** A `sleep` whose argv[0] is `name`, as `ps` would show a dkimd. */
function sleeper(name: string): Deno.ChildProcess {
  return new Deno.Command("bash", {
    args: ["-c", `exec -a ${name} sleep 30`],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

async function waitForArgv0(pid: number, name: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
    if (cmdline.startsWith(`${name}\0`)) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`process ${pid} never became "${name}"`);
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("writePidFile() writes the PID with the UMask's mode and removes it", async () => {
  for (const [umask, mode] of [[0o002, 0o664], [0o022, 0o644], [0o077, 0o600], [0o000, 0o666]]) {
    await withDir(async (dir) => {
      const path = `${dir}/dkimd.pid`;
      const file = await writePidFile(path, { pid: 31337, umask });
      assert.equal(file.pid, 31337);
      assert.equal(await Deno.readTextFile(path), "31337\n");
      assert.equal((await Deno.stat(path)).mode! & 0o777, mode, umask.toString(8));
      assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["dkimd.pid"]);
      assert.equal(await file.remove(), true);
      assert.equal(await file.remove(), false);
      assert.deepEqual(await inspectPidFile(path), { state: "absent" });
    });
  }
});

Deno.test("writePidFile() refuses while the file names a running dkimd, then replaces it", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/dkimd.pid`;
    const other = sleeper("dkimd");
    try {
      await waitForArgv0(other.pid, "dkimd");
      assert.equal(await isDkimdProcess(other.pid), true);
      await Deno.writeTextFile(path, `${other.pid}\n`);
      const e = await writePidFile(path, { pid: 4242 }).then(
        () => assert.fail("a second dkimd must not start"),
        (e) => e,
      );
      assert.ok(e instanceof PidFileError);
      assert.equal(e.runningPid, other.pid);
      assert.equal(
        e.message,
        `Cannot use PID file "${path}": dkimd is already running as process ${other.pid}`,
      );
      assert.equal(await Deno.readTextFile(path), `${other.pid}\n`);
    } finally {
      other.kill("SIGKILL");
      await other.status;
    }
    assert.equal(await isDkimdProcess(other.pid), false);
    assert.equal((await inspectPidFile(path)).state, "stale");
    await writePidFile(path, { pid: 4242 });
    assert.equal(await Deno.readTextFile(path), "4242\n");
  });
});

Deno.test("inspectPidFile() calls a file stale when it names another program or no PID", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/dkimd.pid`;
    const other = sleeper("sleep");
    try {
      await waitForArgv0(other.pid, "sleep");
      const cases = [
        { text: `${other.pid}\n`, why: `process ${other.pid} is not a running dkimd` },
        { text: "", why: "it does not hold a process ID" },
        { text: "dkimd\n", why: "it does not hold a process ID" },
        { text: "0\n", why: "it does not hold a process ID" },
        { text: "1".repeat(100), why: "it does not hold a process ID" },
      ];
      for (const { text, why } of cases) {
        await Deno.writeTextFile(path, text);
        const state = await inspectPidFile(path);
        assert.equal(state.state, "stale", text);
        assert.equal(state.state === "stale" && state.why, why);
        await writePidFile(path, { pid: 777 });
        assert.equal(await Deno.readTextFile(path), "777\n");
      }
    } finally {
      other.kill("SIGKILL");
      await other.status;
    }
  });
});

Deno.test("writePidFile() names a missing directory and leaves no temporary file", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/missing/dkimd.pid`;
    await assert.rejects(
      () => writePidFile(path),
      (e: unknown) =>
        e instanceof PidFileError &&
        e.message === `Cannot use PID file "${path}": directory "${dir}/missing" does not exist`,
    );
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  });
});

Deno.test("PidFile.remove() leaves a file that names another process", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/dkimd.pid`;
    const first = await writePidFile(path, { pid: 1111 });
    // A successor replaced the stale file before this process got to exit.
    await Deno.writeTextFile(path, "2222\n");
    assert.equal(await first.remove(), false);
    assert.equal(first.removeSync(), false);
    assert.equal(await Deno.readTextFile(path), "2222\n");
    const second = await writePidFile(path, { pid: 2222 });
    assert.equal(second.removeSync(), true);
    await assert.rejects(() => Deno.stat(path), Deno.errors.NotFound);
  });
});
