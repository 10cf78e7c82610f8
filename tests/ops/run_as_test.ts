import assert from "node:assert/strict";
import { UserDb } from "../../lib/config/user_db.ts";
import type { Logger, LogLevel } from "../../lib/ops/log.ts";
import {
  readUserDb,
  resolveRunAs,
  type RunAs,
  unreadableFiles,
  UserIdError,
} from "../../lib/ops/run_as.ts";
import { selfCommand } from "../../lib/ops/self_command.ts";
import { supervise } from "../../lib/ops/supervisor.ts";
import { makeSharedTempDir } from "../helpers/shared_temp_dir.ts";

const ROOT = Deno.uid() === 0;
const READINESS = new URL("../../lib/ops/readiness.ts", import.meta.url);

class MemoryLog implements Logger {
  readonly destination = "stderr" as const;
  readonly lines: string[] = [];
  debug(m: string) {
    this.#add("debug", m);
  }
  info(m: string) {
    this.#add("info", m);
  }
  notice(m: string) {
    this.#add("notice", m);
  }
  warn(m: string) {
    this.#add("warn", m);
  }
  error(m: string) {
    this.#add("error", m);
  }
  close() {
    return Promise.resolve();
  }
  #add(level: LogLevel, m: string) {
    this.lines.push(`${level}: ${m}`);
  }
}

async function nobody(): Promise<RunAs> {
  const db = await readUserDb();
  const user = db.user("nobody");
  assert.ok(user, "the system has a nobody user");
  return resolveRunAs({ user: "nobody" }, db);
}

/** A temporary directory the unprivileged user may write in. */
function sharedDir(): Promise<string> {
  return makeSharedTempDir(0o777);
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 1000; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function statusField(status: string, name: string): string {
  return (status.split("\n").find((l) => l.startsWith(`${name}:`)) ?? "").slice(name.length + 1)
    .trim();
}

Deno.test("resolveRunAs() reads UserID as OpenDKIM does", () => {
  // Accounts of its own: which uids and group names the machine has must not matter.
  const db = UserDb.parse(
    "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    "root:x:0:\nnogroup:x:65534:\n",
  );
  const who = resolveRunAs({ user: "nobody" }, db);
  assert.deepEqual(who, { user: "nobody", uid: 65534, group: "nogroup", gid: 65534 });
  assert.equal(resolveRunAs({ user: String(who.uid) }, db).user, "nobody");
  assert.equal(resolveRunAs({ user: "nobody", group: "root" }, db).gid, 0);
  assert.equal(resolveRunAs({ user: "nobody", group: "4242" }, db).gid, 4242);
  assert.throws(() => resolveRunAs({ user: "no-such-user-x" }, db), UserIdError);
  assert.throws(
    () => resolveRunAs({ user: "nobody", group: "no-such-group-x" }, db),
    /no such group "no-such-group-x"/,
  );
  assert.throws(() => resolveRunAs({ user: "4242" }, db), /write "UserID 4242:GROUP"/);
});

Deno.test({
  name: "unreadableFiles() names the file or directory, the user and the fix",
  ignore: !ROOT,
  fn: async () => {
    const who = await nobody();
    const db = await readUserDb();
    const dir = await makeSharedTempDir(0o755);
    try {
      const key = `${dir}/dkim.private`;
      await Deno.writeTextFile(key, "not really a key\n");
      await Deno.chown(key, 0, 0);
      await Deno.chmod(key, 0o600);
      const [problem, ...rest] = await unreadableFiles([key, key], who, { db });
      assert.deepEqual(rest, []);
      assert.equal(
        problem,
        `File "${key}" is not readable by user "nobody" (uid ${who.uid}, gid ${who.gid}): owner root:root, ` +
          `mode 0600; fix: chgrp ${who.group} "${key}" && chmod g+r "${key}"`,
      );
      // The seed's fix: group of the service user, mode 640.
      await Deno.chown(key, 0, who.gid);
      await Deno.chmod(key, 0o640);
      assert.deepEqual(await unreadableFiles([key], who, { db }), []);
      await Deno.chmod(dir, 0o700);
      const [blocked] = await unreadableFiles([key], who, { db });
      assert.match(
        blocked,
        new RegExp(`^Directory "${dir}" cannot be entered by user "nobody" .*mode 0700`),
      );
      assert.deepEqual(await unreadableFiles([`${dir}/missing`], who, { db }), []);
      // Root reads everything.
      assert.deepEqual(
        await unreadableFiles([key], { user: "root", uid: 0, group: "root", gid: 0 }, { db }),
        [],
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "supervise() started as root runs the worker as UserID's user and group",
  ignore: !ROOT,
  fn: async () => {
    const who = await nobody();
    const dir = await sharedDir();
    try {
      const log = new MemoryLog();
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
      const log = new MemoryLog();
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
      assert.equal(status, 0, log.lines.join("\n"));
      assert.equal(await Deno.readTextFile(`${dir}/uid`), String(who.uid));
      assert.equal(await Deno.readTextFile(`${dir}/run`), "NotCapable");
      assert.ok(log.lines.some((l) => /^info: worker \d+ is ready$/.test(l)), log.lines.join("\n"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
