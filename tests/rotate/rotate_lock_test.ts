/**
 * `dkimd rotate`'s run lock (lib/ops/run_lock.ts): one run at a time, the second exiting 75 with
 * one line naming the lock file and the holder's pid; a run killed with SIGKILL leaves no lock
 * behind; `--status` and `--dry-run` answer while a run holds it.
 *
 * To hold a run inside its locked section without relying on timing, its DNS UPDATE goes to a
 * UDP socket of the test's that never answers: once the update arrives there, the run has taken
 * the lock, started the rotation and generated the key, and waits for an answer (DNSTimeout
 * 120 makes that four minutes) until the test kills it. Then the configuration points the update
 * at knot, and the next run carries the rotation on.
 *
 * @module
 */
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { generateSigningKey } from "../../lib/crypto/private_key.ts";
import { toBase64 } from "../../lib/bytes.ts";
import { ROTATE_EXIT, ROTATE_LOCK_SUFFIX, runRotate } from "../../lib/cli/rotate.ts";
import { acquireRunLock } from "../../lib/ops/run_lock.ts";
import { SERVICE_DENO_FLAGS } from "../../lib/ops/self_command.ts";
import { readRotationState } from "../../lib/rotate/state_file.ts";
import { type KnotZone, startKnotZone } from "../helpers/knot_servers.ts";
import { dkimdEnv } from "../helpers/dkimd_env.ts";
import { runCli } from "../helpers/run_cli.ts";
import { writeRotationFiles } from "../helpers/rotation_files.ts";

const ZONE = "example.com";
const SECRET = toBase64(crypto.getRandomValues(new Uint8Array(32)));
const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const DENO_CONFIG = new URL("../../deno.json", import.meta.url).pathname;

interface LockSetup {
  readonly dns: KnotZone;
  readonly dir: string;
  readonly conf: string;
  readonly stateFile: string;
  readonly lockFile: string;
  /** Resolves when the first DNS UPDATE reaches the server that never answers. */
  readonly updateHeld: Promise<void>;
  /** Rewrites the configuration so that updates go to knot's primary. */
  updateToKnot(): Promise<void>;
}

async function withLockSetup(fn: (s: LockSetup) => Promise<void>): Promise<void> {
  const oldKey = await generateSigningKey("ed25519");
  const dns = await startKnotZone({
    zone: ZONE,
    records: {
      "old._domainkey.example.com": [`v=DKIM1; k=ed25519; p=${toBase64(oldKey.publicKey)}`],
    },
    key: { name: "dkimd-rotate", secret: SECRET },
  });
  const hold = dgram.createSocket("udp4");
  const updateHeld = new Promise<void>((resolve) => hold.once("message", () => resolve()));
  await new Promise<void>((resolve) => hold.bind(0, "127.0.0.1", resolve));
  const dir = await Deno.makeTempDir({ prefix: "dkimd-rotate-lock-" });
  try {
    await writeRotationFiles(dir, ZONE, oldKey, SECRET);
    const conf = `${dir}/opendkim.conf`;
    const stateFile = `${dir}/state/rotation.json`;
    const write = (updateServer: string) =>
      Deno.writeTextFile(
        conf,
        [
          "Mode s",
          "Socket inet:8891@127.0.0.1",
          "Syslog no",
          `KeyTable file:${dir}/key.table`,
          `SigningTable refile:${dir}/signing.table`,
          `Nameservers ${dns.primary.nameserver}`,
          // The update's deadline is twice this: far past any wait of the test's.
          "DNSTimeout 120",
          `DNSUpdateKey ${dir}/update.key`,
          `DNSUpdateServer ${updateServer}`,
          `DNSProofServers ${dns.primary.nameserver}`,
          `RotationStateFile ${stateFile}`,
          "RotationRetireAfter 0",
          "RotationDeleteAfter 0",
          "",
        ].join("\n"),
      );
    await write(`127.0.0.1@${hold.address().port}`);
    await fn({
      dns,
      dir,
      conf,
      stateFile,
      lockFile: `${stateFile}${ROTATE_LOCK_SUFFIX}`,
      updateHeld,
      updateToKnot: () => write(dns.primary.nameserver),
    });
  } finally {
    hold.close();
    await Deno.remove(dir, { recursive: true });
    await dns.close();
  }
}

/** How a `dkimd rotate` child ended. */
interface Ended {
  readonly code: number;
  readonly signal: Deno.Signal | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A `dkimd rotate` child, started as users run it (the start task's flags). */
interface RotateChild {
  readonly pid: number;
  readonly ended: Promise<Ended>;
}

function spawnRotate(conf: string, args: readonly string[]): RotateChild {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...SERVICE_DENO_FLAGS,
      `--config=${DENO_CONFIG}`,
      "--quiet",
      MAIN,
      "rotate",
      "-x",
      conf,
      ...args,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    clearEnv: true,
    env: dkimdEnv({ NO_COLOR: "1" }),
  }).spawn();
  // A run the test forgot is killed, long after any wait of the test's.
  const hung = setTimeout(() => child.kill("SIGKILL"), 180_000);
  const ended = child.output().then((o) => {
    clearTimeout(hung);
    return {
      code: o.code,
      signal: o.signal,
      stdout: new TextDecoder().decode(o.stdout),
      stderr: new TextDecoder().decode(o.stderr),
    };
  });
  return { pid: child.pid, ended };
}

/**
 * Starts one run with `--now` and resolves once it holds the lock inside its run (its update
 * reached the server that never answers); fails if it ends first.
 */
async function heldRun(s: LockSetup): Promise<RotateChild> {
  const run = spawnRotate(s.conf, ["--now"]);
  const first = await Promise.race([s.updateHeld.then(() => undefined), run.ended]);
  assert.equal(first, undefined, `the run ended before its update: ${JSON.stringify(first)}`);
  return run;
}

/** Kills `run` with SIGKILL, as a crash would, and waits for it to be gone. */
async function kill(run: RotateChild): Promise<void> {
  Deno.kill(run.pid, "SIGKILL");
  assert.equal((await run.ended).signal, "SIGKILL");
}

Deno.test("dkimd rotate: two runs started at once, one proceeds and the other exits 75 naming the lock and the holder's pid; --status answers meanwhile", async () => {
  await withLockSetup(async (s) => {
    const runs = [spawnRotate(s.conf, ["--now"]), spawnRotate(s.conf, ["--now"])];
    // The run that takes the lock cannot end before the test kills it (its update is never
    // answered), so the first to end is the other one.
    const first = await Promise.race(runs.map((r, i) => r.ended.then((ended) => ({ i, ended }))));
    const other = first.ended;
    const holder = runs[1 - first.i];
    assert.equal(other.code, ROTATE_EXIT.locked, other.stderr + other.stdout);
    assert.equal(other.stdout, "", "the second run did nothing");
    assert.equal(
      other.stderr,
      `dkimd rotate: Another run holds the lock "${s.lockFile}" (pid ${holder.pid} on ${Deno.hostname()}): try again later\n`,
    );
    // The holder went on: its rotation started, its key written, its update sent.
    const reached = await Promise.race([s.updateHeld.then(() => undefined), holder.ended]);
    assert.equal(reached, undefined, `the holder ended: ${JSON.stringify(reached)}`);
    assert.equal(await Deno.readTextFile(s.lockFile), `${holder.pid} ${Deno.hostname()}\n`);

    // --status takes no lock: it answers during the run, from the state file as last written.
    const status = await runCli(["rotate", "-x", s.conf, "--status"]);
    assert.equal(status.code, ROTATE_EXIT.ok, status.stderr);
    assert.match(
      status.text,
      /^main \(example\.com\): selector "old" \(ed25519, \d+ days old\); rotating to "[^"]+", next step: publish/,
    );
    const dryRun = await runCli(["rotate", "-x", s.conf, "--dry-run"]);
    assert.equal(dryRun.code, ROTATE_EXIT.ok, dryRun.stderr);
    assert.match(dryRun.text, /main \(example\.com\): would publish/);

    // One rotation in a valid state file, one new key: no second run wrote anything.
    const state = await readRotationState(s.stateFile);
    assert.deepEqual(state.rotations.map((r) => [r.keyName, r.step]), [["main", "publish"]]);
    const keys = (await Array.fromAsync(Deno.readDir(`${s.dir}/keys`))).map((e) => e.name).sort();
    assert.deepEqual(keys, [`${state.rotations[0].newSelector}.private`, "old.private"].sort());
    await kill(holder);
  });
});

Deno.test("dkimd rotate: a run killed with SIGKILL while it holds the lock does not block the next, which carries the rotation on", async () => {
  await withLockSetup(async (s) => {
    const killed = await heldRun(s);
    await kill(killed);
    // The dead run's line stays in the file; only the kernel's lock counted, and it went with it.
    assert.equal(await Deno.readTextFile(s.lockFile), `${killed.pid} ${Deno.hostname()}\n`);
    await s.updateToKnot();
    // Until it stops waiting for DNS: knot serves the update at once, but a run may ask first.
    let next: Ended;
    for (let i = 0;; i++) {
      next = await spawnRotate(s.conf, []).ended;
      if (next.code !== ROTATE_EXIT.waiting || i === 20) break;
      assert.doesNotMatch(next.stderr, /Another run holds the lock/);
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(next.code, ROTATE_EXIT.ok, next.stderr + next.stdout);
    assert.equal(next.stderr, "");
    assert.match(next.stdout, /published the record .* by DNS UPDATE/);
    assert.match(next.stdout, /activated: .*key\.table:1 now signs with/);
    const state = await readRotationState(s.stateFile);
    assert.deepEqual(state.rotations.map((r) => r.step), ["retire"]);
    assert.equal(
      await Deno.readTextFile(`${s.dir}/key.table`),
      `main ${ZONE}:${state.rotations[0].newSelector}:${state.rotations[0].newKeyFile}\n`,
    );
    // A run that ends releases the lock and empties its line.
    assert.equal(await Deno.readTextFile(s.lockFile), "");
  });
});

Deno.test("runRotate() while another process holds the lock: 75 and one line, nothing read or written; --status and --dry-run still answer", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dkimd-rotate-lock-" });
  try {
    const key = await generateSigningKey("ed25519");
    await Deno.writeTextFile(`${dir}/old.private`, await key.toPem(), { mode: 0o600 });
    await Deno.writeTextFile(`${dir}/key.table`, `main ${ZONE}:old:${dir}/old.private\n`);
    await Deno.writeTextFile(`${dir}/signing.table`, `*@${ZONE} main\n`);
    const stateFile = `${dir}/state/rotation.json`;
    await Deno.writeTextFile(
      `${dir}/opendkim.conf`,
      [
        "Mode s",
        "Syslog no",
        `KeyTable file:${dir}/key.table`,
        `SigningTable refile:${dir}/signing.table`,
        "Nameservers 127.0.0.1@9",
        `RotationStateFile ${stateFile}`,
        "",
      ].join("\n"),
    );
    const run = async (...args: string[]) => {
      const out: string[] = [];
      const err: string[] = [];
      const status = await runRotate(["-x", `${dir}/opendkim.conf`, ...args], {
        now: () => Date.parse("2026-12-07T10:00:00Z"),
        out: (l) => out.push(l),
        err: (l) => err.push(l),
      });
      return { status, out, err };
    };
    // A second open file: flock(2) locks belong to the open file, so this process's own
    // run finds it held as another process's would.
    const lock = await acquireRunLock(`${stateFile}${ROTATE_LOCK_SUFFIX}`);
    try {
      const locked = await run("--now");
      assert.equal(locked.status, ROTATE_EXIT.locked);
      assert.deepEqual(locked.out, []);
      assert.equal(locked.err.length, 1, locked.err.join("\n"));
      assert.match(
        locked.err[0],
        new RegExp(
          `^dkimd rotate: Another run holds the lock "${stateFile}\\.lock" \\(pid ${Deno.pid}( on \\S+)?\\): try again later$`,
        ),
      );
      await assert.rejects(Deno.stat(stateFile), Deno.errors.NotFound);
      const status = await run("--status");
      assert.equal(status.status, ROTATE_EXIT.ok, status.err.join("\n"));
      assert.match(status.out.join("\n"), /main \(example\.com\): selector "old".*; no rotation/);
      const dryRun = await run("--dry-run", "--now");
      assert.equal(dryRun.status, ROTATE_EXIT.ok, dryRun.err.join("\n"));
      assert.match(dryRun.out.join("\n"), /would start a rotation from "old"/);
    } finally {
      lock.release();
    }
    // Released: the next run goes on (nothing is due without --now: it ends there).
    const after = await run();
    assert.equal(after.status, ROTATE_EXIT.ok, after.err.join("\n"));
    assert.deepEqual(after.err, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
