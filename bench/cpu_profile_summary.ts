/**
 * Summarises a V8 `.cpuprofile` (what `deno run --cpu-prof` writes, and `deno task bench
 * --cpu-prof DIR` asks of dkimd) as a table of functions by self time: each sample's time goes to
 * the function on top of the stack, and the table gives each function's share of the busy time
 * (every sample but `(idle)`, `(program)` counted as busy: it is V8 and Deno's native work). Same
 * function names in different files stay apart. Run:
 * `deno run --allow-read bench/cpu_profile_summary.ts FILE.cpuprofile [--top N] [--json]
 * [--callers REGEX]` (`--callers`: whose calls the matching functions' self time came from).
 *
 * @module
 */
import { parseArgs } from "node:util";

/** One node of a V8 CPU profile: a call site with its children. */
export interface ProfileNode {
  /** The node's id, which samples refer to. */
  readonly id: number;
  /** The function and where it is. */
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
  };
  /** Ids of the nodes it called. */
  readonly children?: readonly number[];
}

/** A V8 CPU profile as `--cpu-prof` writes it. */
export interface CpuProfile {
  /** Every call site. */
  readonly nodes: readonly ProfileNode[];
  /** Microseconds from start to end. */
  readonly startTime: number;
  /** Microseconds from start to end. */
  readonly endTime: number;
  /** The node on top of the stack at each sample. */
  readonly samples: readonly number[];
  /** Microseconds since the previous sample, per sample. */
  readonly timeDeltas: readonly number[];
}

/** One row of the summary: a function and its self time. */
export interface SelfTimeRow {
  /** `name (file:line)`, `(anonymous)` for a nameless function, or V8's own `(garbage collector)`. */
  readonly name: string;
  /** Self time in milliseconds. */
  readonly ms: number;
  /** Share of the busy time, 0 to 1. */
  readonly share: number;
}

/** A profile's self-time summary. */
export interface SelfTimeSummary {
  /** Milliseconds sampled in all. */
  readonly totalMs: number;
  /** Milliseconds not `(idle)`. */
  readonly busyMs: number;
  /** Functions by self time, largest first. */
  readonly rows: readonly SelfTimeRow[];
}

function label(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName === "" ? "(anonymous)" : functionName;
  if (url === "") return name;
  const file = url.replace(/^.*\/(lib|bench|tests|ext|node)\//, "$1/").replace(/^file:\/\//, "");
  return `${name} (${file}:${lineNumber + 1})`;
}

/**
 * Sums self time per function over a profile's samples.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { summarizeProfile } from "./cpu_profile_summary.ts";
 * const frame = (functionName: string) => ({ functionName, url: "", lineNumber: 0 });
 * const summary = summarizeProfile({
 *   nodes: [
 *     { id: 1, callFrame: frame("(root)"), children: [2, 3] },
 *     { id: 2, callFrame: frame("(idle)") },
 *     { id: 3, callFrame: frame("work") },
 *   ],
 *   startTime: 0,
 *   endTime: 4000,
 *   samples: [2, 3, 3, 2],
 *   timeDeltas: [1000, 1000, 1000, 1000],
 * });
 * assert.equal(summary.busyMs, 2);
 * assert.deepEqual(summary.rows, [{ name: "work", ms: 2, share: 1 }]);
 * ```
 */
export function summarizeProfile(profile: CpuProfile): SelfTimeSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  // A sample's delta is the time since the previous sample; V8 charges it to this sample's node.
  for (let i = 0; i < profile.samples.length; i++) {
    const us = profile.timeDeltas[i] ?? 0;
    const node = byId.get(profile.samples[i]);
    totalUs += us;
    if (!node) continue;
    if (node.callFrame.functionName === "(idle)") {
      idleUs += us;
      continue;
    }
    const key = label(node);
    selfUs.set(key, (selfUs.get(key) ?? 0) + us);
  }
  const busyUs = totalUs - idleUs;
  const rows = [...selfUs].map(([name, us]) => ({
    name,
    ms: us / 1000,
    share: busyUs > 0 ? us / busyUs : 0,
  })).sort((a, b) => b.ms - a.ms);
  return { totalMs: totalUs / 1000, busyMs: busyUs / 1000, rows };
}

/**
 * Where the self time of the functions whose label matches `pattern` came from: the time summed
 * per caller (the frame below), largest first, as `[caller, ms]` pairs.
 */
export function callersOf(profile: CpuProfile, pattern: RegExp): [string, number][] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, ProfileNode>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n);
  const us = new Map<string, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]);
    if (!node || !pattern.test(label(node))) continue;
    const up = parent.get(node.id);
    const key = up ? label(up) : "(none)";
    us.set(key, (us.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  return [...us].map(([k, v]): [string, number] => [k, v / 1000]).sort((a, b) => b[1] - a[1]);
}

/** The summary as a Markdown table of the `top` largest rows. */
export function markdownSummary(summary: SelfTimeSummary, top: number): string {
  const lines = [
    `busy ${summary.busyMs.toFixed(0)} ms of ${summary.totalMs.toFixed(0)} ms sampled`,
    "",
    "| self ms | % busy | function |",
    "| ---: | ---: | --- |",
  ];
  for (const row of summary.rows.slice(0, top)) {
    lines.push(`| ${row.ms.toFixed(1)} | ${(row.share * 100).toFixed(1)} | ${row.name} |`);
  }
  return lines.join("\n");
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: {
      top: { type: "string", default: "30" },
      json: { type: "boolean" },
      callers: { type: "string" },
    },
    allowPositionals: true,
  });
  for (const file of positionals) {
    const profile: CpuProfile = JSON.parse(await Deno.readTextFile(file));
    if (values.callers) {
      for (const [caller, ms] of callersOf(profile, new RegExp(values.callers))) {
        console.log(`${ms.toFixed(1).padStart(8)} ms  ${caller}`);
      }
      continue;
    }
    const summary = summarizeProfile(profile);
    if (values.json) console.log(JSON.stringify(summary));
    else console.log(`## ${file}\n\n${markdownSummary(summary, Number(values.top))}\n`);
  }
}
