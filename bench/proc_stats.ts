/**
 * What a filter process costs, read from Linux's /proc (proc(5)): CPU time (utime + stime of
 * every thread, dead or alive, from `/proc/PID/stat`), current and peak resident memory
 * (`VmRSS`, `VmHWM` from `/proc/PID/status`), and a reset of the peak (`clear_refs` 5), so each
 * benchmark cell sees its own peak.
 *
 * @module
 */

/**
 * Clock ticks per second of the /proc CPU counters: USER_HZ, which Linux fixes at 100 for user
 * space on x86 and ARM whatever the kernel's HZ (`getconf CLK_TCK`).
 */
export const USER_HZ = 100;

/** CPU time used so far by a process, all threads included. */
export interface CpuTime {
  /** User-mode milliseconds. */
  readonly userMs: number;
  /** Kernel-mode milliseconds. */
  readonly systemMs: number;
}

/**
 * Parses the text of `/proc/PID/stat`. The command name (field 2) may hold spaces and
 * parentheses, so fields are counted after its last `)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseStat } from "./proc_stats.ts";
 * const text = "42 (deno (x)) S 1 42 42 0 -1 4194560 1 0 0 0 250 75 0 0 20 0 9 0 1 1 1";
 * assert.deepEqual(parseStat(text), { userMs: 2500, systemMs: 750 });
 * ```
 */
export function parseStat(text: string): CpuTime {
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // rest[0] is field 3 (state): utime is field 14, stime field 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) {
    throw new SyntaxError(`Cannot read utime and stime from "${text.slice(0, 80)}"`);
  }
  return { userMs: (utime * 1000) / USER_HZ, systemMs: (stime * 1000) / USER_HZ };
}

/** CPU time used so far by process `pid`. */
export async function cpuTime(pid: number): Promise<CpuTime> {
  return parseStat(await Deno.readTextFile(`/proc/${pid}/stat`));
}

/**
 * The name Deno's runtime gives the threads of its blocking pool (tokio's `spawn_blocking`),
 * where WebCrypto computes RSA signatures; the event loop, V8's helper threads and Web Workers
 * have other names.
 */
export const BLOCKING_POOL_THREAD = "tokio-runtime-w";

/**
 * CPU milliseconds (user + system) used so far by each thread of process `pid` whose name
 * (`/proc/PID/task/TID/comm`) is not `exclude`, keyed by thread id. Threads that end between
 * two readings drop out of both, so compare only the threads present in both.
 */
export async function threadCpuMs(pid: number, exclude: string): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for await (const entry of Deno.readDir(`/proc/${pid}/task`)) {
    try {
      const dir = `/proc/${pid}/task/${entry.name}`;
      if ((await Deno.readTextFile(`${dir}/comm`)).trim() === exclude) continue;
      const t = parseStat(await Deno.readTextFile(`${dir}/stat`));
      out.set(Number(entry.name), t.userMs + t.systemMs);
    } catch {
      // The thread ended while being read.
    }
  }
  return out;
}

/**
 * CPU milliseconds the threads present in both readings used between them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { threadCpuDelta } from "./proc_stats.ts";
 * const before = new Map([[1, 100], [2, 50], [3, 10]]);
 * const after = new Map([[1, 130], [2, 60], [4, 500]]);
 * assert.equal(threadCpuDelta(before, after), 40);
 * ```
 */
export function threadCpuDelta(
  before: ReadonlyMap<number, number>,
  after: ReadonlyMap<number, number>,
): number {
  let sum = 0;
  for (const [tid, ms] of after) {
    const start = before.get(tid);
    if (start !== undefined) sum += ms - start;
  }
  return sum;
}

/** Resident memory of a process in bytes. */
export interface Memory {
  /** Resident now (`VmRSS`). */
  readonly rss: number;
  /** Peak resident since start or the last {@link resetPeakRss} (`VmHWM`). */
  readonly peakRss: number;
}

/**
 * Parses the text of `/proc/PID/status` for `VmRSS` and `VmHWM`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseStatus } from "./proc_stats.ts";
 * const text = "Name:\tdeno\nVmHWM:\t  81920 kB\nVmRSS:\t  40960 kB\n";
 * assert.deepEqual(parseStatus(text), { rss: 40960 * 1024, peakRss: 81920 * 1024 });
 * ```
 */
export function parseStatus(text: string): Memory {
  const kb = (name: string) => {
    const m = text.match(new RegExp(`^${name}:\\s+(\\d+) kB$`, "m"));
    if (!m) throw new SyntaxError(`No "${name}" in the process status`);
    return Number(m[1]) * 1024;
  };
  return { rss: kb("VmRSS"), peakRss: kb("VmHWM") };
}

/** Resident memory of process `pid`. */
export async function memory(pid: number): Promise<Memory> {
  return parseStatus(await Deno.readTextFile(`/proc/${pid}/status`));
}

/**
 * Resets the peak resident size of `pid` to its current size (writing 5 to
 * `/proc/PID/clear_refs`, Linux 4.0+; needs the right to ptrace the process). Resolves to false
 * when not permitted: the peak then counts from the process's start.
 */
export async function resetPeakRss(pid: number): Promise<boolean> {
  try {
    await Deno.writeTextFile(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/** Resident bytes of a process by kind of mapping, from `/proc/PID/smaps`. */
export interface ResidentByKind {
  /** The executable's own pages (its code, read-only data, data): `deno` or `opendkim`. */
  readonly executable: number;
  /** Other files: shared libraries, Deno's caches. */
  readonly otherFiles: number;
  /** The main malloc arena (`[heap]`, glibc's brk heap). */
  readonly mallocHeap: number;
  /**
   * Anonymous mappings: the V8 heap, thread stacks, other threads' malloc arenas, large
   * malloc blocks.
   */
  readonly anonymous: number;
}

/**
 * Sums the `Rss:` of each mapping of a `/proc/PID/smaps` text by kind; `exe` is the path of the
 * process's executable (`/proc/PID/exe`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSmaps } from "./proc_stats.ts";
 * const text = [
 *   "55d0-55e0 r-xp 00000000 08:01 12 /usr/bin/deno",
 *   "Rss:                 300 kB",
 *   "55e0-55f0 rw-p 00000000 00:00 0                  [heap]",
 *   "Rss:                  20 kB",
 *   "7f00-7f10 rw-p 00000000 00:00 0",
 *   "Rss:                  40 kB",
 *   "7f10-7f20 r-xp 00000000 08:01 13 /usr/lib/libc.so.6",
 *   "Rss:                   8 kB",
 * ].join("\n");
 * assert.deepEqual(parseSmaps(text, "/usr/bin/deno"), {
 *   executable: 300 * 1024, otherFiles: 8 * 1024, mallocHeap: 20 * 1024, anonymous: 40 * 1024,
 * });
 * ```
 */
export function parseSmaps(text: string, exe: string): ResidentByKind {
  const out = { executable: 0, otherFiles: 0, mallocHeap: 0, anonymous: 0 };
  let kind: keyof typeof out | undefined = "anonymous";
  for (const line of text.split("\n")) {
    const header = line.match(/^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/);
    if (header) {
      const name = header[1].trim();
      kind = name === ""
        ? "anonymous"
        : name === exe
        ? "executable"
        : name === "[heap]"
        ? "mallocHeap"
        : name.startsWith("/")
        ? "otherFiles"
        : name === "[stack]"
        ? "anonymous"
        : undefined; // [vdso], [vvar]: the kernel's
      continue;
    }
    const rss = line.match(/^Rss:\s+(\d+) kB$/);
    if (rss && kind) out[kind] += Number(rss[1]) * 1024;
  }
  return out;
}

/** Resident bytes of process `pid` by kind of mapping. */
export async function residentByKind(pid: number): Promise<ResidentByKind> {
  const [text, exe] = await Promise.all([
    Deno.readTextFile(`/proc/${pid}/smaps`),
    Deno.readLink(`/proc/${pid}/exe`),
  ]);
  return parseSmaps(text, exe);
}

/** `pid` and every process below it, from the parent ids in `/proc/PID/stat`. */
export async function processTree(pid: number): Promise<number[]> {
  const parents = new Map<number, number[]>();
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry.name)]);
    } catch {
      // The process ended while being read.
    }
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...(parents.get(out[i]) ?? []));
  return out;
}

/**
 * CPU time used so far by `pid` and the processes below it, and by the children they have
 * reaped (cutime, cstime), so a worker that exits between two readings is not lost.
 */
export async function treeCpuTime(pid: number): Promise<CpuTime> {
  let userMs = 0;
  let systemMs = 0;
  for (const p of await processTree(pid)) {
    try {
      const t = parseStat(await Deno.readTextFile(`/proc/${p}/stat`));
      userMs += t.userMs;
      systemMs += t.systemMs;
    } catch {
      // Gone.
    }
  }
  return { userMs, systemMs };
}

/** Resident memory of `pid` and the processes below it, summed (peaks summed too). */
export async function treeMemory(pid: number): Promise<Memory> {
  let rss = 0;
  let peakRss = 0;
  for (const p of await processTree(pid)) {
    try {
      const m = await memory(p);
      rss += m.rss;
      peakRss += m.peakRss;
    } catch {
      // Gone.
    }
  }
  return { rss, peakRss };
}

/** {@link resetPeakRss} for `pid` and every process below it; false if any refused. */
export async function resetTreePeakRss(pid: number): Promise<boolean> {
  let all = true;
  for (const p of await processTree(pid)) all = (await resetPeakRss(p)) && all;
  return all;
}
