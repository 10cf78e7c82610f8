/**
 * `dkimd serve` handles its signals (SIGHUP and SIGUSR1 reload, SIGTERM and SIGINT stop) from
 * the moment anything says it is up: whoever learns it from the PidFile (`kill -HUP $(cat
 * PidFile)`) or from READY=1 (systemd's ExecReload) may signal at once, and a signal that finds
 * no handler kills the process. Checked by sending SIGHUP at that very moment (and seeing the
 * reload); also through the supervisor (AutoRestart),
 * which writes the PidFile when its worker says it is ready. A systemd that is slow to read its
 * notification socket (a full queue: the READY=1 waits) holds dkimd between the PidFile and
 * READY=1, so the PidFile moment is tested without depending on timing.
 * /proc/PID/status's SigCgt is no witness: Deno 2.9.6 itself catches SIGHUP, SIGINT, SIGUSR1 and
 * SIGTERM from its start (with no listener it then ends the process with that signal, status
 * 129 for SIGHUP), so the mask is the same whether dkimd listens or not.
 * The stand-in needs Deno's datagram API (--unstable-net): see `unstable_net.ts`.
 */
import assert from "node:assert/strict";
import { KEYS_DIR } from "../helpers/dkim_fixtures.ts";
import { type DkimdProcess, startDkimd } from "../helpers/dkimd_process.ts";
import { listenNotify, parseNotifyMessage } from "../helpers/notify_listener.ts";
import { HAS_DATAGRAMS, rerunUnderUnstableNet } from "../helpers/unstable_net.ts";

rerunUnderUnstableNet(
  "dkimd serve's signal window tests pass under --unstable-net",
  import.meta.url,
  /ok \| 3 passed \| 0 failed/,
);

/** A test that needs the stand-in's datagram socket. */
function test(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, ignore: !HAS_DATAGRAMS, fn });
}

async function keyDir(): Promise<string> {
  const dir = await Deno.makeTempDir();
  await Deno.copyFile(new URL("ed25519.pem", KEYS_DIR), `${dir}/ed.private`);
  await Deno.chmod(`${dir}/ed.private`, 0o600);
  return dir;
}

const conf = (dir: string, extra = "") => (socket: string) =>
  `Mode sv\nSocket ${socket}\nDomain example.com\nSelector ed\nKeyFile ${dir}/ed.private\n` +
  `PidFile ${dir}/dkimd.pid\n${extra}`;

/** Polls (every 2 ms) until `path` holds a process id, and returns it. */
async function pidFileAppears(path: string, dkimd: DkimdProcess): Promise<number> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const text = await Deno.readTextFile(path).catch(() => "");
    if (/^\d+\n/.test(text)) return Number(text.trim());
    if (Date.now() > deadline) throw new Error(`no PidFile ${path}:\n${dkimd.log()}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/**
 * A systemd that reads its notification socket only when told: its queue is filled first, so
 * dkimd's READY=1 waits in `send` until {@link SlowSystemd.drain}.
 */
interface SlowSystemd {
  readonly notifySocket: string;
  /**
   * Reads on: resolves to the next message with `name`=`value`; throws when `dkimd` exits or
   * none comes within 20 seconds.
   */
  drain(dkimd: DkimdProcess, name: string, value: string): Promise<Record<string, string>>;
  close(): void;
}

async function slowSystemd(dir: string): Promise<SlowSystemd> {
  const path = `${dir}/notify`;
  const socket = Deno.listenDatagram({ transport: "unixpacket", path });
  const filler = Deno.listenDatagram({ transport: "unixpacket", path: `${dir}/filler` });
  // Fills the queue until a send stalls (net.unix.max_dgram_qlen, 10 by default, plus one); the
  // stalled one goes through once the queue is read.
  const pending: Promise<number>[] = [];
  for (let n = 0;; n++) {
    assert.ok(n < 10_000, "the notification queue never filled");
    const sent = filler.send(new TextEncoder().encode("FILLER=1\n"), {
      transport: "unixpacket",
      path,
    });
    pending.push(sent);
    const stalled = await Promise.race([
      sent.then(() => false),
      new Promise<boolean>((r) => setTimeout(() => r(true), 200)),
    ]);
    if (stalled) break;
  }
  return {
    notifySocket: path,
    async drain(dkimd, name, value) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const failed = new Promise<never>((_, reject) => {
        const fail = (why: string) =>
          reject(new Error(`no ${name}=${value}: ${why}:\n${dkimd.log()}`));
        dkimd.status.then((s) => fail(`dkimd exited (${JSON.stringify(s)})`));
        timer = setTimeout(() => fail("none within 20 s"), 20_000);
      });
      try {
        for (;;) {
          const [data] = await Promise.race([socket.receive(), failed]);
          const fields = parseNotifyMessage(new TextDecoder().decode(data));
          if (fields[name] === value) return fields;
        }
      } finally {
        clearTimeout(timer);
      }
    },
    close() {
      socket.close();
      filler.close();
      // The stalled filler's send fails once the sockets are closed.
      for (const p of pending) p.catch(() => {});
    },
  };
}

test("dkimd serve: a SIGHUP sent the moment READY=1 arrives reloads it", async () => {
  const dir = await keyDir();
  const systemd = listenNotify(dir);
  let dkimd: DkimdProcess | undefined;
  // Read and signalled in the callback of the datagram's arrival, with no await in between.
  const ready = systemd.next((m) => m.fields.READY === "1").then((m) => {
    Deno.kill(m.pid, "SIGHUP");
    return m;
  });
  try {
    dkimd = await startDkimd(dir, conf(dir), { env: { NOTIFY_SOCKET: systemd.notifySocket } });
    assert.equal((await ready).pid, dkimd.pid);
    await dkimd.waitForLog(/configuration reloaded from /);
    await systemd.next((m) => m.fields.RELOADING === "1");
    assert.equal(await dkimd.stop(), 0, dkimd.log());
  } finally {
    await dkimd?.stop();
    systemd.close();
    await Deno.remove(dir, { recursive: true });
  }
});

test("dkimd serve: a SIGHUP sent the moment its PidFile appears, though systemd has not read READY=1 yet, reloads it", async () => {
  const dir = await keyDir();
  const systemd = await slowSystemd(dir);
  let dkimd: DkimdProcess | undefined;
  try {
    dkimd = await startDkimd(dir, conf(dir), { env: { NOTIFY_SOCKET: systemd.notifySocket } });
    const pid = await pidFileAppears(`${dir}/dkimd.pid`, dkimd);
    assert.equal(pid, dkimd.pid);
    Deno.kill(pid, "SIGHUP");
    // systemd catches up: READY=1 (its STATUS= says it started), then the reload.
    assert.match(
      (await systemd.drain(dkimd, "READY", "1")).STATUS,
      /^mode sv, signing for 1 domain/,
    );
    await systemd.drain(dkimd, "RELOADING", "1");
    await dkimd.waitForLog(/configuration reloaded from /);
    // The reload waited for READY=1 to go out rather than colliding with it.
    assert.doesNotMatch(dkimd.log(), /cannot notify systemd/);
    assert.equal(await dkimd.stop(), 0, dkimd.log());
  } finally {
    await dkimd?.stop();
    systemd.close();
    await Deno.remove(dir, { recursive: true });
  }
});

test("dkimd serve with a supervisor: a SIGHUP sent the moment the PidFile appears reloads the same worker", async () => {
  const dir = await keyDir();
  // The worker, which notifies systemd, waits in its READY=1 while the supervisor, told on a
  // pipe that the worker is ready, writes the PidFile.
  const systemd = await slowSystemd(dir);
  let dkimd: DkimdProcess | undefined;
  try {
    dkimd = await startDkimd(dir, conf(dir, "AutoRestart yes\n"), {
      env: { NOTIFY_SOCKET: systemd.notifySocket },
    });
    const pid = await pidFileAppears(`${dir}/dkimd.pid`, dkimd);
    assert.equal(pid, dkimd.pid, "the supervisor's own PID, as OpenDKIM's parent writes");
    const worker = Number(
      (await Deno.readTextFile(`/proc/${pid}/task/${pid}/children`)).trim().split(/\s+/)[0],
    );
    assert.ok(worker > 0 && worker !== pid);
    Deno.kill(pid, "SIGHUP");
    await systemd.drain(dkimd, "READY", "1");
    await systemd.drain(dkimd, "RELOADING", "1");
    await dkimd.waitForLog(/configuration reloaded from /);
    // The same worker, still serving.
    assert.equal(
      Number((await Deno.readTextFile(`/proc/${pid}/task/${pid}/children`)).trim().split(/\s+/)[0]),
      worker,
    );
    assert.doesNotMatch(dkimd.log(), /worker \d+ (terminated|exited)/);
    assert.doesNotMatch(dkimd.log(), /cannot notify systemd/);
    assert.equal(await dkimd.stop(), 0, dkimd.log());
  } finally {
    await dkimd?.stop();
    systemd.close();
    await Deno.remove(dir, { recursive: true });
  }
});
