/**
 * A reload signal (SIGHUP, SIGUSR1) sent while dkimd is still starting must not end it, as it
 * does not end OpenDKIM, whose signal thread catches it from the start: `systemctl reload`
 * racing a restart, or a configuration tool signalling every dkimd by name, meet a dkimd that
 * is loading its configuration. dkimd is started as users start it (the `start` task's flags,
 * `-x CONFIG -f`), with UserID opendkim and AutoRestart (a supervisor and its worker) and
 * without (one process), on a KeyTable of many key files that keeps it loading a while. The
 * signals go at several timings from a moment seen, not guessed: the worker's appearance in
 * /proc (its exec), or a process's reading its configuration file (its access time moves),
 * which dkimd does after its first line catches reload signals. The same process must then
 * serve, reload once ready, and sign. SIGTERM during the load still stops it at once, with the
 * status it always had (killed by SIGTERM; 128 + 15 from a supervisor). Deno catches every
 * signal from its own start and, without a listener, ends the process as the default action
 * would, so /proc's SigCgt cannot tell whether dkimd listens.
 */
import assert from "node:assert/strict";
import { fromLatin1 } from "../../lib/bytes.ts";
import { readUserDb } from "../../lib/ops/run_as.ts";
import { KEYS_DIR } from "../helpers/dkim_fixtures.ts";
import { type DkimdProcess, sendMessage, startDkimd } from "../helpers/dkimd_process.ts";
import { makeSharedTempDir } from "../helpers/shared_temp_dir.ts";

const opendkim = Deno.uid() === 0 ? (await readUserDb()).user("opendkim") : undefined;

/**
 * KeyTable entries, each its own key file: each is read and imported at load, which keeps dkimd
 * loading a while after it has read its configuration.
 */
const KEYS = 100;

/** Offsets (ms) from the moment picked at which a signal is sent: several timings in the start. */
const TIMINGS = [0, 5, 15, 30, 60, 120];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The first child of `pid`, or undefined while it has none. */
async function firstChild(pid: number): Promise<number | undefined> {
  const text = await Deno.readTextFile(`/proc/${pid}/task/${pid}/children`).catch(() => "");
  const first = text.trim().split(/\s+/)[0];
  return first ? Number(first) : undefined;
}

/** Polls every millisecond until `check` gives a value; throws after 60 s. */
async function poll<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await sleep(1);
  }
}

/**
 * When a process reads the configuration file, which dkimd does first thing in its load, well
 * after its first line of JavaScript: its access time passes its modification time (relatime
 * updates an access time not newer than the modification time, mount(8)). No timing is guessed.
 */
async function configRead(path: string): Promise<void> {
  await poll(`a read of ${path}`, async () => {
    const { atime, mtime } = await Deno.stat(path);
    return atime!.getTime() > mtime!.getTime() ? true : undefined;
  });
}

/** Sets the file's access time back to the Epoch, to see its next read. */
async function unread(path: string): Promise<void> {
  await Deno.utime(path, 0, (await Deno.stat(path)).mtime!);
}

/** Whether this file system updates access times as {@link configRead} needs (not noatime). */
async function atimeWorks(): Promise<boolean> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/f`, "x");
    await unread(`${dir}/f`);
    await Deno.readTextFile(`${dir}/f`);
    const { atime, mtime } = await Deno.stat(`${dir}/f`);
    return atime !== null && mtime !== null && atime.getTime() > mtime.getTime();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const ATIME = await atimeWorks();
const IGNORE_PLAIN = !ATIME;
const IGNORE_SUPERVISED = opendkim === undefined || !ATIME;

/** A directory with {@link KEYS} RSA keys (readable by opendkim's group) in a KeyTable. */
async function keys(): Promise<string> {
  const dir = await makeSharedTempDir(0o755);
  const pem = await Deno.readFile(new URL("rsa2048_pkcs8.pem", KEYS_DIR));
  const table: string[] = [];
  for (let i = 0; i < KEYS; i++) {
    const key = `${dir}/s${i}.private`;
    await Deno.writeFile(key, pem, { mode: 0o640 });
    await Deno.chmod(key, 0o640);
    if (opendkim) await Deno.chown(key, 0, opendkim.gid);
    table.push(`s${i}._domainkey.example.com example.com:s${i}:${key}\n`);
  }
  await Deno.writeTextFile(`${dir}/key.table`, table.join(""));
  await Deno.writeTextFile(`${dir}/signing.table`, "*@example.com s0._domainkey.example.com\n");
  return dir;
}

const conf = (dir: string, extra: string) => (socket: string) =>
  `Mode sv\nSocket ${socket}\nKeyTable ${dir}/key.table\n` +
  `SigningTable refile:${dir}/signing.table\nPidFile ${dir}/dkimd.pid\n${extra}`;

const SUPERVISED = "UserID opendkim\nAutoRestart yes\n";

/** Where signals go, and from when. */
interface Plan {
  /** The supervisor's worker is the target of `to: "worker"` (else the process itself). */
  readonly supervised: boolean;
  /** From the worker's appearance in /proc (`exec`), or from its reading the configuration. */
  readonly from: "exec" | "config read";
  readonly signal: Deno.Signal;
  readonly to: "process" | "worker" | "both";
  /** Offsets from `from`; default {@link TIMINGS}. */
  readonly timings?: readonly number[];
}

/** What a signalling run did: the worker signalled and the offsets at which signals went. */
interface Sent {
  readonly worker: number;
  readonly at: number[];
}

/** Carries out `plan` against the process `pid` reading `config`. */
async function signalDuringStart(pid: number, config: string, plan: Plan): Promise<Sent> {
  const worker = plan.supervised ? await poll("the worker", () => firstChild(pid)) : pid;
  if (plan.from === "config read") {
    if (plan.supervised) {
      // The supervisor has read it (it starts the worker after its load); the next read is
      // the worker's.
      await unread(config);
    }
    await configRead(config);
  }
  const start = performance.now();
  const at: number[] = [];
  for (const t of plan.timings ?? TIMINGS) {
    await sleep(Math.max(0, t - (performance.now() - start)));
    try {
      if (plan.to !== "worker") Deno.kill(pid, plan.signal);
      if (plan.to !== "process") Deno.kill(worker, plan.signal);
    } catch {
      break; // gone: the test says why
    }
    at.push(Math.round(performance.now() - start));
  }
  return { worker, at };
}

/**
 * Starts dkimd on `extra` (its configuration's access time at the Epoch) while `plan` runs
 * from its spawn; checks that it then serves, reloads and signs, and stops with status 0.
 */
async function survives(extra: string, plan: Plan): Promise<{ sent: Sent; log: string }> {
  const dir = await keys();
  let dkimd: DkimdProcess | undefined;
  let signalling: Promise<Sent> | undefined;
  try {
    dkimd = await startDkimd(dir, conf(dir, extra), {
      onSpawn: (p) => signalling = signalDuringStart(p.pid, `${dir}/dkimd.conf`, plan),
    }).catch(async (e) => {
      throw new Error(`dkimd did not survive ${JSON.stringify(await signalling)}: ${e}`);
    });
    const sent = await signalling!;
    const label = JSON.stringify(sent);
    await dkimd.waitForLog(/configuration reloaded from /);
    const worker = plan.supervised ? await firstChild(dkimd.pid) : dkimd.pid;
    if (plan.to === "process" || plan.from === "config read") {
      assert.equal(worker, sent.worker, `the same worker serves (${label}):\n${dkimd.log()}`);
      assert.doesNotMatch(dkimd.log(), /worker \d+ (terminated|exited)/, label);
    }
    assert.equal(await signatures(dkimd), 1, dkimd.log());
    assert.equal(await dkimd.stop(), 0, dkimd.log());
    return { sent, log: dkimd.log() };
  } finally {
    await dkimd?.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Sends a message from example.com and returns its DKIM-Signature fields added. */
async function signatures(d: DkimdProcess): Promise<number> {
  const r = await sendMessage(d, {
    connect: { hostname: "localhost", address: "127.0.0.1" },
    macros: { mail: { i: "Q1" } },
    from: "<a@example.com>",
    headers: [["From", " a@example.com"], ["Subject", " hi"]],
    body: fromLatin1("hello\r\n"),
  });
  return r.modifications.filter((m) => m.type === "insheader" && m.name === "DKIM-Signature")
    .length;
}

Deno.test({
  name:
    "dkimd with UserID and AutoRestart: SIGHUP to the supervisor from the worker's exec on, at several timings, waits until the worker is ready; the same worker then reloads once and signs",
  ignore: IGNORE_SUPERVISED,
  fn: async () => {
    const { log } = await survives(SUPERVISED, {
      supervised: true,
      from: "exec",
      signal: "SIGHUP",
      to: "process",
    });
    assert.match(log, /SIGHUP received before the worker is ready: holding it until it is/);
    assert.match(log, /forwarding SIGHUP to worker \d+/);
  },
});

for (const signal of ["SIGHUP", "SIGUSR1"] as const) {
  Deno.test({
    name:
      `dkimd with UserID and AutoRestart: ${signal} to supervisor and worker alike (by name), at several timings from the worker's reading its configuration, is caught by both; the same worker reloads once ready and signs`,
    ignore: IGNORE_SUPERVISED,
    fn: async () => {
      const { log } = await survives(SUPERVISED, {
        supervised: true,
        from: "config read",
        signal,
        to: "both",
      });
      assert.match(log, new RegExp(`${signal} received while starting: reloading`));
      assert.match(log, new RegExp(`${signal} received before the worker is ready`));
    },
  });
}

Deno.test({
  name:
    "dkimd with UserID and AutoRestart: a SIGHUP to a worker still starting Deno, before its first line can catch it, ends only that worker: the supervisor starts it again, and dkimd serves, reloads and signs",
  ignore: IGNORE_SUPERVISED,
  fn: async () => {
    const { sent, log } = await survives(SUPERVISED, {
      supervised: true,
      from: "exec",
      signal: "SIGHUP",
      to: "both",
      timings: [0],
    });
    // The worker's exec was seen within a millisecond or two; Deno boots for tens of them.
    assert.match(
      log,
      new RegExp(
        `worker ${sent.worker} terminated with signal 1 \\(SIGHUP\\) before it was ready .*starting it again`,
      ),
    );
  },
});

for (const signal of ["SIGHUP", "SIGUSR1"] as const) {
  Deno.test({
    name:
      `dkimd -f (one process): ${signal} at several timings from its reading its configuration is caught; it serves, reloads once ready and signs`,
    ignore: IGNORE_PLAIN,
    fn: async () => {
      const { log } = await survives("", {
        supervised: false,
        from: "config read",
        signal,
        to: "process",
      });
      assert.equal(
        log.match(new RegExp(`${signal} received while starting`, "g"))?.length,
        1,
        log,
      );
    },
  });
}

/** Starts dkimd, sends SIGTERM once while it loads, and resolves to its status and log. */
async function terminatedWhileLoading(
  extra: string,
  supervised: boolean,
): Promise<{ status: Deno.CommandStatus; error: string }> {
  const dir = await keys();
  try {
    let status: Promise<Deno.CommandStatus> | undefined;
    let signalling: Promise<Sent> | undefined;
    const error = await startDkimd(dir, conf(dir, extra), {
      onSpawn: (p) => {
        status = p.status;
        signalling = signalDuringStart(p.pid, `${dir}/dkimd.conf`, {
          supervised,
          from: "config read",
          signal: "SIGTERM",
          to: "process",
          timings: [0],
        });
      },
    }).then(async (d) => {
      await d.stop();
      return "it started";
    }, (e) => String(e));
    await signalling;
    return { status: await status!, error };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name:
    "dkimd -f (one process): SIGTERM while it loads its configuration stops it at once, killed by the signal as before",
  ignore: IGNORE_PLAIN,
  fn: async () => {
    const { status, error } = await terminatedWhileLoading("", false);
    assert.match(error, /exited before logging/);
    assert.doesNotMatch(error.slice(error.indexOf("\n")), /listening on/);
    assert.equal(status.signal, "SIGTERM");
  },
});

Deno.test({
  name:
    "dkimd with UserID and AutoRestart: SIGTERM to the supervisor while the worker loads stops both at once, with status 128 + 15 as before",
  ignore: IGNORE_SUPERVISED,
  fn: async () => {
    const { status, error } = await terminatedWhileLoading(SUPERVISED, true);
    assert.match(error, /exited before logging/);
    assert.doesNotMatch(error.slice(error.indexOf("\n")), /listening on/);
    assert.match(error, /worker \d+ terminated with signal 15 \(SIGTERM\) after SIGTERM/);
    assert.equal(status.code, 128 + 15);
  },
});
