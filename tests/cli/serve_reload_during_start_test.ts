/**
 * A reload signal (SIGHUP, SIGUSR1) sent while dkimd is still starting must not end it, as it
 * does not end OpenDKIM, whose signal thread catches it from the start: `systemctl reload`
 * racing a restart, or a configuration tool signalling every dkimd by name, meet a dkimd that
 * is loading its configuration. dkimd is started as users start it (the `start` task's flags,
 * `-x CONFIG -f`), with UserID opendkim and AutoRestart (a supervisor and its worker) and
 * without (one process), on a KeyTable of many keys that keeps it loading a while. SIGHUP is
 * sent again and again from the moment the process exists (supervisor) or catches it (plain),
 * until the worker serves (its SigCgt in /proc shows SIGTERM caught: serve's own handlers);
 * the same process must then serve, reload once ready, and sign. SIGTERM during the load
 * still stops it at once, with the status it always had (killed by SIGTERM; 128 + 15 from a
 * supervisor).
 */
import assert from "node:assert/strict";
import { fromLatin1 } from "../../lib/bytes.ts";
import { readUserDb } from "../../lib/ops/run_as.ts";
import { KEYS_DIR } from "../helpers/dkim_fixtures.ts";
import { type DkimdProcess, sendMessage, startDkimd } from "../helpers/dkimd_process.ts";
import { makeSharedTempDir } from "../helpers/shared_temp_dir.ts";

const opendkim = Deno.uid() === 0 ? (await readUserDb()).user("opendkim") : undefined;

/** KeyTable entries: each key is read and imported at load, which keeps dkimd starting a while. */
const KEYS = 400;

/** Signal numbers (signal(7)); bit `n - 1` of SigCgt stands for signal `n`. */
const NUMBERS = { SIGHUP: 1, SIGTERM: 15 } as const;

/** Whether `pid` catches each signal now, or undefined when it is gone. */
async function catches(pid: number): Promise<{ SIGHUP: boolean; SIGTERM: boolean } | undefined> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`).catch(() => undefined);
  const hex = status && /^SigCgt:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  if (!hex) return undefined;
  const mask = BigInt(`0x${hex}`);
  const bit = (n: number) => ((mask >> BigInt(n - 1)) & 1n) === 1n;
  return { SIGHUP: bit(NUMBERS.SIGHUP), SIGTERM: bit(NUMBERS.SIGTERM) };
}

/** The first child of `pid`, or undefined while it has none. */
async function firstChild(pid: number): Promise<number | undefined> {
  const text = await Deno.readTextFile(`/proc/${pid}/task/${pid}/children`).catch(() => "");
  const first = text.trim().split(/\s+/)[0];
  return first ? Number(first) : undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A directory with an RSA key (readable by opendkim's group) and a KeyTable of {@link KEYS}. */
async function keys(): Promise<string> {
  const dir = await makeSharedTempDir(0o755);
  const key = `${dir}/rsa.private`;
  await Deno.copyFile(new URL("rsa2048_pkcs8.pem", KEYS_DIR), key);
  await Deno.chmod(key, 0o640);
  if (opendkim) await Deno.chown(key, 0, opendkim.gid);
  const table = Array.from(
    { length: KEYS },
    (_, i) => `s${i}._domainkey.example.com example.com:s${i}:${key}\n`,
  );
  await Deno.writeTextFile(`${dir}/key.table`, table.join(""));
  await Deno.writeTextFile(`${dir}/signing.table`, "*@example.com s0._domainkey.example.com\n");
  return dir;
}

const conf = (dir: string, extra: string) => (socket: string) =>
  `Mode sv\nSocket ${socket}\nKeyTable ${dir}/key.table\n` +
  `SigningTable refile:${dir}/signing.table\nPidFile ${dir}/dkimd.pid\n${extra}`;

const SUPERVISED = "UserID opendkim\nAutoRestart yes\n";

/** What a signalling loop did. */
interface Sent {
  /** The worker (the process itself when not supervised). */
  worker?: number;
  /** Signals sent while the worker was still starting Deno (catching nothing yet). */
  booting: number;
  /** Signals sent while it loaded (catching SIGHUP, not yet SIGTERM). */
  loading: number;
}

/**
 * Sends `signal` to `target(pid, worker)` every `everyMs` while the worker of `pid` (`pid`
 * itself when `supervised` is false) has not installed serve's handlers, from when it exists
 * (`fromBoot`) or from when it catches SIGHUP; stops after the first when `once`.
 */
async function signalWhileStarting(
  pid: number,
  options: {
    supervised: boolean;
    fromBoot: boolean;
    signal: Deno.Signal;
    to: "supervisor" | "worker" | "both";
    everyMs: number;
    once?: boolean;
  },
): Promise<Sent> {
  const sent: Sent = { booting: 0, loading: 0 };
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const worker = options.supervised ? await firstChild(pid) : pid;
    const state = worker === undefined ? undefined : await catches(worker);
    if (worker === undefined || state === undefined) {
      if (sent.worker !== undefined) return sent; // gone
      await sleep(1);
      continue;
    }
    if (sent.worker !== undefined && sent.worker !== worker) return sent; // replaced
    if (state.SIGTERM) return sent; // serving: serve's own handlers are there
    if (!state.SIGHUP && !options.fromBoot) {
      await sleep(1);
      continue;
    }
    sent.worker = worker;
    if (options.to !== "worker") Deno.kill(pid, options.signal);
    if (options.to !== "supervisor") Deno.kill(worker, options.signal);
    if (state.SIGHUP) sent.loading++;
    else sent.booting++;
    if (options.once) return sent;
    await sleep(options.everyMs);
  }
  throw new Error(`pid ${pid}: still starting after 60 s`);
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

/** Starts dkimd on `extra` while `signalling` runs from its spawn; checks it serves after. */
async function survives(
  extra: string,
  options: Parameters<typeof signalWhileStarting>[1],
): Promise<{ sent: Sent; log: string }> {
  const dir = await keys();
  let dkimd: DkimdProcess | undefined;
  let signalling: Promise<Sent> | undefined;
  try {
    dkimd = await startDkimd(dir, conf(dir, extra), {
      onSpawn: (p) => signalling = signalWhileStarting(p.pid, options),
    }).catch(async (e) => {
      throw new Error(`dkimd did not survive ${JSON.stringify(await signalling)}: ${e}`);
    });
    const sent = await signalling!;
    const label = JSON.stringify(sent);
    assert.ok(sent.booting + sent.loading > 0, `no ${options.signal} sent during the start`);
    await dkimd.waitForLog(/configuration reloaded from /);
    const worker = options.supervised ? await firstChild(dkimd.pid) : dkimd.pid;
    if (!options.fromBoot || options.to === "supervisor") {
      assert.equal(worker, sent.worker, `the same worker serves (${label}):\n${dkimd.log()}`);
      assert.doesNotMatch(dkimd.log(), /worker \d+ (terminated|exited)/, label);
    }
    assert.equal((await catches(worker!))?.SIGTERM, true);
    assert.equal(await signatures(dkimd), 1, dkimd.log());
    assert.equal(await dkimd.stop(), 0, dkimd.log());
    return { sent, log: dkimd.log() };
  } finally {
    await dkimd?.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

const IGNORE_SUPERVISED = opendkim === undefined;

Deno.test({
  name:
    "dkimd with UserID and AutoRestart: SIGHUP to the supervisor again and again from the worker's exec until it serves holds the reload until the worker is ready; the same worker then reloads once and signs",
  ignore: IGNORE_SUPERVISED,
  fn: async () => {
    const { sent, log } = await survives(SUPERVISED, {
      supervised: true,
      fromBoot: true,
      signal: "SIGHUP",
      to: "supervisor",
      everyMs: 10,
    });
    assert.ok(sent.booting > 0 && sent.loading > 0, JSON.stringify(sent));
    assert.match(log, /SIGHUP received before the worker is ready: holding it until it is/);
    assert.match(log, /forwarding SIGHUP to worker \d+/);
  },
});

for (const signal of ["SIGHUP", "SIGUSR1"] as const) {
  Deno.test({
    name:
      `dkimd with UserID and AutoRestart: ${signal} to supervisor and worker alike (by name) while the worker loads its configuration is caught by both; the same worker reloads once ready and signs`,
    ignore: IGNORE_SUPERVISED,
    fn: async () => {
      const { sent, log } = await survives(SUPERVISED, {
        supervised: true,
        fromBoot: false,
        signal,
        to: "both",
        everyMs: 10,
      });
      assert.ok(sent.loading > 0, JSON.stringify(sent));
      assert.match(log, new RegExp(`${signal} received while starting: reloading`));
    },
  });
}

Deno.test({
  name:
    "dkimd with UserID and AutoRestart: a SIGHUP sent to a worker still starting Deno, before it catches any, ends only that worker: the supervisor starts it again, and dkimd serves and signs",
  ignore: IGNORE_SUPERVISED,
  fn: async () => {
    const { sent, log } = await survives(SUPERVISED, {
      supervised: true,
      fromBoot: true,
      signal: "SIGHUP",
      to: "both",
      everyMs: 10,
      once: true,
    });
    // Either the worker was still booting Deno (it is started again), or already caught it.
    if (sent.booting > 0) {
      assert.match(
        log,
        /terminated with signal 1 \(SIGHUP\) before it was ready .*starting it again/,
      );
    }
  },
});

for (const signal of ["SIGHUP", "SIGUSR1"] as const) {
  Deno.test(`dkimd -f (one process): ${signal} again and again while it loads its configuration is caught; it serves, reloads once ready and signs`, async () => {
    const { sent, log } = await survives("", {
      supervised: false,
      fromBoot: false,
      signal,
      to: "worker",
      everyMs: 10,
    });
    assert.ok(sent.loading > 0, JSON.stringify(sent));
    assert.equal(
      log.match(new RegExp(`${signal} received while starting`, "g"))?.length,
      1,
      log,
    );
    // Once for all those held; a signal that met serve's own handlers (sent between a look at
    // /proc and the kill) would add its own.
    assert.ok((log.match(/configuration reloaded from /g)?.length ?? 0) >= 1, log);
  });
}

/** Starts dkimd, sends SIGTERM once while it loads, and resolves to its status and log. */
async function terminatedWhileLoading(
  extra: string,
  supervised: boolean,
): Promise<{ status: Deno.CommandStatus; sent: Sent; error: string }> {
  const dir = await keys();
  try {
    let status: Promise<Deno.CommandStatus> | undefined;
    let signalling: Promise<Sent> | undefined;
    const error = await startDkimd(dir, conf(dir, extra), {
      onSpawn: (p) => {
        status = p.status;
        signalling = signalWhileStarting(p.pid, {
          supervised,
          fromBoot: false,
          signal: "SIGTERM",
          to: "supervisor",
          everyMs: 0,
          once: true,
        });
      },
    }).then(async (d) => {
      await d.stop();
      return "it started";
    }, (e) => String(e));
    return { status: await status!, sent: await signalling!, error };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("dkimd -f (one process): SIGTERM while it loads its configuration stops it at once, killed by the signal as before", async () => {
  const { status, sent, error } = await terminatedWhileLoading("", false);
  assert.equal(sent.loading, 1);
  assert.match(error, /exited before logging/);
  assert.doesNotMatch(error, /listening on/);
  assert.equal(status.signal, "SIGTERM");
});

Deno.test({
  name:
    "dkimd with UserID and AutoRestart: SIGTERM to the supervisor while the worker loads stops both at once, with status 128 + 15 as before",
  ignore: IGNORE_SUPERVISED,
  fn: async () => {
    const { status, sent, error } = await terminatedWhileLoading(SUPERVISED, true);
    assert.equal(sent.loading, 1);
    assert.match(error, /exited before logging/);
    assert.doesNotMatch(error, /listening on/);
    assert.match(error, /worker \d+ terminated with signal 15 \(SIGTERM\) after SIGTERM/);
    assert.equal(status.code, 128 + 15);
  },
});
