/**
 * The harness of the crash tests of `dkimd rotate` (tests/rotate/rotate_crash_test.ts and
 * rotate_crash_overlap_test.ts): a rotation killed with SIGKILL at every boundary between its
 * steps, then run again.
 *
 * Every effect of a rotation that must survive a crash ends with a rename: the state file, the
 * new key file and the KeyTable are each replaced atomically (writeFileAtomic), and the DNS
 * changes (UPDATE) happen between two state writes. So the boundaries between steps are the
 * moments just before and just after each rename. The test makes them observable from outside,
 * with no hook in dkimd: strace delays every rename on entry and on exit (`inject=...:delay_enter,
 * delay_exit`), the test watches the directories for the temporary file of each write (it
 * appears before the rename and vanishes with it), and kills the process with SIGKILL in the
 * pause before or after the chosen rename. One run per boundary, each from a fresh rotation of
 * its own domain in the same knot zone (primary and secondary); a few such runs at once, as
 * they mostly wait (strace's pauses, knot's transfers).
 *
 * After each kill: the KeyTable names the old selector, whose record is still a valid key, or
 * the new one, which every server already serves; never an unproven or a revoked key. Then
 * `dkimd rotate` is run again to the end: the rotation is done, the KeyTable names the new key,
 * every server serves it, the old record and key file are gone, and the state file holds one
 * finished rotation. Later times (retirement waits for the record's TTL) come from faketime
 * (libfaketime preloaded into dkimd only).
 *
 * @module
 */
import assert from "node:assert/strict";
import { generateSigningKey, importPrivateKey } from "../../lib/crypto/private_key.ts";
import { toBase64 } from "../../lib/bytes.ts";
import { parseNameserver } from "../../lib/dns/nameserver.ts";
import { StubResolver } from "../../lib/dns/stub.ts";
import { DnsError } from "../../lib/dns/resolver.ts";
import { sendUpdate } from "../../lib/dns/update.ts";
import { ROTATE_EXIT } from "../../lib/cli/rotate.ts";
import { readRotationState } from "../../lib/rotate/state_file.ts";
import { SERVICE_DENO_FLAGS } from "../../lib/ops/self_command.ts";
import { findProgram } from "./dns_server.ts";
import { type KnotZone, startKnotZone } from "./knot_servers.ts";
import { dkimdEnv } from "./dkimd_env.ts";
import { writeRotationFiles } from "./rotation_files.ts";

/** The zone every case's domain is in. */
export const ZONE = "example.com";
const SECRET = toBase64(crypto.getRandomValues(new Uint8Array(32)));
const TSIG = {
  name: "dkimd-rotate",
  algorithm: "hmac-sha256" as const,
  secret: Uint8Array.from(atob(SECRET), (c) => c.charCodeAt(0)),
};
const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const DENO_CONFIG = new URL("../../deno.json", import.meta.url).pathname;
/** How long strace holds each rename, before and after it: ample for a 20 ms poll to see. */
const RENAME_PAUSE_US = 250_000;
/**
 * The clocks of the two phases (faketime offsets): activation in the first, retirement (the
 * record's 300 s TTL past activation) in the second; each within TSIG's 300 s fudge of knot's
 * clock, which a larger skew makes answer BADTIME, as it should.
 */
const CLOCKS = ["-250s", "+100s"] as const;
/**
 * With RotationOverlap ({@link OVERLAP}): the overlap starts, it ends and the keys switch, then
 * the old record is retired the TTL after the switch.
 */
const OVERLAP_CLOCKS = ["-290s", "-225s", "+80s"] as const;
/** RotationOverlap of the overlap cases, seconds: less than the first two clocks apart. */
const OVERLAP = 60;
/** Debian's libfaketime, as the faketime program preloads it. */
const FAKETIME_LIBRARY = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
/** A rotate's temporary file of an atomic write, as writeFileAtomic names it. */
const TEMP_FILE = /^\..+\.[0-9a-f]{8}\.tmp$/;

/** One rotation's files and domain. */
interface Case {
  readonly dir: string;
  readonly domain: string;
  readonly conf: string;
  /** The clocks of its phases, in order. */
  readonly clocks: readonly string[];
}

async function txt(server: string, name: string): Promise<string[]> {
  const resolver = new StubResolver({
    nameservers: [parseNameserver(server)],
    timeoutMs: 1000,
    attempts: 1,
  });
  try {
    return await resolver.resolveTxt(name);
  } catch (e) {
    if (e instanceof DnsError && (e.code === "nxdomain" || e.code === "nodata")) return [];
    throw e;
  }
}

/** A domain `dN.example.com` with its old key published and served by both servers. */
async function newCase(dns: KnotZone, n: number, overlap = false): Promise<Case> {
  const domain = `${overlap ? "o" : "d"}${n}.${ZONE}`;
  const dir = await Deno.makeTempDir({ prefix: "dkimd-rotate-crash-" });
  const oldKey = await generateSigningKey("ed25519");
  const record = `v=DKIM1; k=ed25519; p=${toBase64(oldKey.publicKey)}`;
  await sendUpdate({
    server: parseNameserver(dns.primary.nameserver),
    zone: ZONE,
    key: TSIG,
    changes: [{ op: "replace-txt", name: `old._domainkey.${domain}`, ttl: 300, records: [record] }],
  });
  for (
    let i = 0;
    (await txt(dns.secondary!.nameserver, `old._domainkey.${domain}`))[0] !== record;
    i++
  ) {
    if (i > 100) throw new Error("the secondary never served the old record");
    await new Promise((r) => setTimeout(r, 100));
  }
  await writeRotationFiles(dir, domain, oldKey, SECRET);
  const conf = `${dir}/opendkim.conf`;
  await Deno.writeTextFile(
    conf,
    [
      "Mode s",
      "Socket inet:8891@127.0.0.1",
      "Syslog no",
      `KeyTable file:${dir}/key.table`,
      `SigningTable refile:${dir}/signing.table`,
      `Nameservers ${dns.primary.nameserver}`,
      "DNSTimeout 2",
      `DNSUpdateKey ${dir}/update.key`,
      `DNSUpdateServer ${dns.primary.nameserver}`,
      `DNSProofServers ${dns.primary.nameserver},${dns.secondary!.nameserver}`,
      `RotationStateFile ${dir}/state/rotation.json`,
      "RotationRetireAfter 0",
      "RotationDeleteAfter 0",
      ...(overlap ? [`RotationOverlap ${OVERLAP}`, "MultipleSignatures yes"] : []),
      "",
    ].join("\n"),
  );
  return { dir, domain, conf, clocks: overlap ? OVERLAP_CLOCKS : CLOCKS };
}

/** The temporary files of atomic writes in the rotation's directories now. */
async function tempFiles(c: Case): Promise<Set<string>> {
  const found = new Set<string>();
  for (const dir of [c.dir, `${c.dir}/keys`, `${c.dir}/state`]) {
    try {
      for await (const e of Deno.readDir(dir)) {
        if (TEMP_FILE.test(e.name)) found.add(`${dir}/${e.name}`);
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  return found;
}

/**
 * Counts the rename boundaries seen across runs: each temporary file seen is one (the pause
 * before its rename), and its disappearance another (the pause after).
 */
class Boundaries {
  count = 0;
  #open = new Set<string>();
  #done = new Set<string>();
  /** Only the boundaries of the files this matches are passed on (default all). */
  constructor(readonly only: RegExp = /(?:)/) {}
  /** Polls once; resolves how many new boundaries were passed. */
  async poll(c: Case): Promise<string[]> {
    const now = await tempFiles(c);
    const passed: string[] = [];
    for (const f of this.#open) {
      if (!now.has(f)) {
        this.#open.delete(f);
        this.#done.add(f);
        if (this.only.test(f)) passed.push(`after the rename of ${f}`);
      }
    }
    for (const f of now) {
      if (!this.#open.has(f) && !this.#done.has(f)) {
        this.#open.add(f);
        if (this.only.test(f)) passed.push(`before the rename of ${f}`);
      }
    }
    return passed;
  }
}

/** What one run is asked to do: at which clock, and, when traced, where to kill it. */
interface RunOptions {
  /** The clock of the phase, a libfaketime offset. */
  readonly clock: string;
  /** The boundaries counted so far, when the run is traced; untraced runs are not killed. */
  readonly trace?: { readonly boundaries: Boundaries; readonly killAt: number };
}

/**
 * Runs `dkimd rotate -x CONF ARGS` as users run it (the start task's flags), with libfaketime's
 * clock; traced, under strace holding each rename, and killed with SIGKILL at the chosen
 * boundary. Resolves its exit code, or the boundary it was killed at.
 */
async function runRotate(
  c: Case,
  args: readonly string[],
  options: RunOptions,
): Promise<number | { killed: string }> {
  const deno = [
    Deno.execPath(),
    "run",
    ...SERVICE_DENO_FLAGS,
    `--config=${DENO_CONFIG}`,
    "--quiet",
    MAIN,
    "rotate",
    "-x",
    c.conf,
    ...args,
  ];
  const faketime = { LD_PRELOAD: FAKETIME_LIBRARY, FAKETIME: options.clock };
  const { trace } = options;
  const argv = trace
    ? [
      await findProgram("strace"),
      "-f",
      // Stop dkimd at the traced calls only (a seccomp filter), not at every system call.
      "--seccomp-bpf",
      "-qq",
      "-o",
      "/dev/null",
      "-e",
      "trace=rename,renameat,renameat2",
      "-e",
      `inject=rename,renameat,renameat2:delay_enter=${RENAME_PAUSE_US}:delay_exit=${RENAME_PAUSE_US}`,
      // libfaketime in dkimd's environment only: strace's pauses keep real time.
      ...Object.entries(faketime).flatMap(([k, v]) => ["-E", `${k}=${v}`]),
      ...deno,
    ]
    : deno;
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdout: "null",
    stderr: "piped",
    clearEnv: true,
    env: dkimdEnv({ NO_COLOR: "1", ...(trace ? {} : faketime) }),
  }).spawn();
  const stderr = new Response(child.stderr).text();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  let killed: string | undefined;
  const hung = setTimeout(() => child.kill("SIGKILL"), 60_000);
  while (trace && !exited && killed === undefined) {
    for (const b of await trace.boundaries.poll(c)) {
      if (trace.boundaries.count++ === trace.killAt) {
        killed = b;
        break;
      }
    }
    if (killed !== undefined) {
      // SIGKILL the traced dkimd itself (strace's child), as a crash would; strace follows.
      const denoPid = await tracedChild(child.pid);
      if (denoPid !== undefined) Deno.kill(denoPid, "SIGKILL");
      else killed = undefined; // it has just exited: the boundary passed without a kill
      break;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const s = await status;
  clearTimeout(hung);
  const text = await stderr;
  if (killed !== undefined) return { killed };
  if (s.code !== ROTATE_EXIT.ok && s.code !== ROTATE_EXIT.waiting) {
    throw new Error(`dkimd rotate exited ${s.code}: ${text}`);
  }
  return s.code;
}

/** The process strace started: the deno running dkimd. */
async function tracedChild(pid: number): Promise<number | undefined> {
  try {
    const children = (await Deno.readTextFile(`/proc/${pid}/task/${pid}/children`)).trim();
    return children ? Number(children.split(/\s+/)[0]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The rotation as an admin runs it: `--now` first when `start`, then plain runs (a timer's)
 * until they stop waiting for DNS, first at the activation clock, then at the retirement one.
 * Resolves the boundary it was killed at, if it was.
 */
async function rotateAll(
  c: Case,
  start: boolean,
  trace?: RunOptions["trace"],
): Promise<string | undefined> {
  for (const [phase, clock] of c.clocks.entries()) {
    const deadline = Date.now() + 30_000;
    for (let first = true;; first = false) {
      const args = start && first && phase === 0 ? ["--now"] : [];
      const r = await runRotate(c, args, { clock, ...(trace ? { trace } : {}) });
      if (typeof r !== "number") return r.killed;
      if (r === ROTATE_EXIT.ok) break;
      if (Date.now() > deadline) throw new Error("dkimd rotate kept waiting for DNS");
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  return undefined;
}

/** The selector and key file the KeyTable's line names. */
async function keyTableEntry(c: Case): Promise<{ selector: string; keyFile: string }> {
  const line = (await Deno.readTextFile(`${c.dir}/key.table`)).trim();
  const m = line.match(/^main [^:]+:([^:]+):(.+)$/);
  assert.ok(m, `the KeyTable line is "${line}"`);
  return { selector: m[1], keyFile: m[2] };
}

/** What both servers serve for `selector` in the case's domain. */
async function served(dns: KnotZone, c: Case, selector: string): Promise<string[][]> {
  const name = `${selector}._domainkey.${c.domain}`;
  return [await txt(dns.primary.nameserver, name), await txt(dns.secondary!.nameserver, name)];
}

/**
 * The invariant at any instant: every key the SigningTable names (both, during an overlap) is
 * one every server serves, unrevoked; and the SigningTable names no entry the KeyTable lacks.
 */
async function assertSignsWithAServedKey(dns: KnotZone, c: Case, at: string): Promise<void> {
  const keys = new Map(
    (await Deno.readTextFile(`${c.dir}/key.table`)).split("\n").filter((l) => l.trim())
      .map((l) => {
        const m = l.match(/^(\S+) [^:]+:([^:]+):(.+)$/);
        assert.ok(m, `the KeyTable line is "${l}"`);
        return [m[1], { selector: m[2], keyFile: m[3] }] as const;
      }),
  );
  const named = (await Deno.readTextFile(`${c.dir}/signing.table`)).split("\n")
    .filter((l) => l.trim()).map((l) => l.split(/\s+/)[1]);
  assert.ok(named.includes("main"), `killed ${at}: the SigningTable lost "main"`);
  for (const name of named) {
    const entry = keys.get(name);
    assert.ok(entry, `killed ${at}: the SigningTable names "${name}", not in the KeyTable`);
    const { selector, keyFile } = entry;
    const key = await importPrivateKey(await Deno.readFile(keyFile));
    const record = `v=DKIM1; k=ed25519; p=${toBase64(key.publicKey)}`;
    assert.deepEqual(
      await served(dns, c, selector),
      [[record], [record]],
      `killed ${at}: the KeyTable signs with "${selector}", which not every server serves`,
    );
  }
  // The state file is never torn.
  await readRotationState(`${c.dir}/state/rotation.json`);
}

/** What one case saw: the boundaries its traced runs passed, and the one it was killed at. */
interface CaseOutcome {
  readonly count: number;
  /** The boundary killed at (DIR for the case's directory); none for the reference run. */
  readonly at?: string;
}

/**
 * One case: a fresh rotation killed at boundary `n` (counted from 0), its state checked after
 * the kill and after a rerun to the end; a rotation with fewer boundaries is not killed.
 */
async function crashAt(
  dns: KnotZone,
  n: number,
  overlap: boolean,
  only?: RegExp,
): Promise<CaseOutcome> {
  const c = await newCase(dns, n, overlap);
  try {
    const boundaries = new Boundaries(only);
    const at = await rotateAll(c, true, { boundaries, killAt: n });
    // No boundary left to kill at: this undisturbed run is the reference.
    if (at === undefined) return { count: boundaries.count };
    await assertSignsWithAServedKey(dns, c, at);
    // Run again to the end, untraced; with --now only if the kill came before the state
    // file held the rotation (--now after a finished rotation starts another).
    const before = await readRotationState(`${c.dir}/state/rotation.json`);
    const again = await rotateAll(c, before.rotations.length === 0);
    assert.equal(again, undefined);
    const state = await readRotationState(`${c.dir}/state/rotation.json`);
    assert.deepEqual(
      state.rotations.map((r) => r.step),
      ["done"],
      `killed ${at}`,
    );
    const [rotation] = state.rotations;
    const { selector, keyFile } = await keyTableEntry(c);
    assert.equal(selector, rotation.newSelector, `killed ${at}`);
    assert.equal(keyFile, rotation.newKeyFile);
    // The SigningTable is as it was (an overlap's twins gone), naming the switched entry.
    assert.equal(
      await Deno.readTextFile(`${c.dir}/signing.table`),
      `*@${c.domain} main\n`,
      `killed ${at}`,
    );
    await assertSignsWithAServedKey(dns, c, at);
    // The deletion is not proven (a missing record breaks nothing): give the secondary
    // the time its NOTIFY and transfer take.
    let old = await served(dns, c, "old");
    for (let i = 0; i < 50 && old.some((r) => r.length > 0); i++) {
      await new Promise((r) => setTimeout(r, 100));
      old = await served(dns, c, "old");
    }
    assert.deepEqual(old, [[], []], `killed ${at}`);
    await assert.rejects(Deno.stat(`${c.dir}/keys/old.private`), Deno.errors.NotFound);
    // A kill before a rename left its temporary file (a new key's is a private key):
    // the rerun removed it.
    assert.deepEqual([...await tempFiles(c)], [], `killed ${at}`);
    return { count: boundaries.count, at: at.replace(c.dir, "DIR") };
  } finally {
    await Deno.remove(c.dir, { recursive: true });
  }
}

/**
 * Cases run at once. Each mostly waits (strace holds every rename, knot's secondary transfers,
 * deno starts), so a few overlap well on two cores; more would slow the other test files.
 */
const CONCURRENT_CASES = 3;

/**
 * Kills a rotation at each boundary `only` matches (one fresh case each, boundary 0, 1, ...
 * until a case passes every boundary without a kill: that undisturbed run is the reference),
 * checks the state after the kill and after a rerun to the end; resolves the boundaries killed
 * at, in order. Cases run {@link CONCURRENT_CASES} at a time; those started past the reference
 * are checked all the same, and not counted.
 */
export async function crashAtEveryBoundary(
  dns: KnotZone,
  overlap: boolean,
  only?: RegExp,
): Promise<string[]> {
  const outcomes: CaseOutcome[] = [];
  let next = 0;
  /** The first case not killed (the reference) once seen; none started after it. */
  let reference = Infinity;
  const failures: unknown[] = [];
  const worker = async () => {
    while (next < reference && failures.length === 0) {
      const n = next++;
      try {
        outcomes[n] = await crashAt(dns, n, overlap, only);
        if (outcomes[n].at === undefined) reference = Math.min(reference, n);
      } catch (e) {
        failures.push(e);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENT_CASES }, worker));
  if (failures.length > 0) throw failures[0];
  assert.equal(outcomes[reference].count, reference, "every boundary was killed at once");
  return outcomes.slice(0, reference).map((o) => o.at!);
}

/** The knot zone of the crash tests (primary and secondary), taking updates signed with TSIG. */
export async function startCrashZone(): Promise<KnotZone> {
  return await startKnotZone({
    zone: ZONE,
    records: {},
    key: { name: "dkimd-rotate", secret: SECRET },
    secondary: true,
  });
}
