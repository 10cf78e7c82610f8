/**
 * The memory pass (issue 16): one filter process, started once, takes every cell of the issue's
 * memory target in turn (sign and verify, 2 KB and 2 MB, 4 and 16 connections), and its peak
 * resident size (`VmHWM`, never reset) is read over the whole pass, with its resident size idle
 * after start and idle again after the load. The side-by-side cells instead restart the
 * filters per (key, size) and reset the peak per cell, so none of them shows what a service
 * that has seen every kind of traffic holds.
 *
 * @module
 */
import type { Cell } from "./cells.ts";
import type { FilterName, FilterProcess } from "./filters.ts";
import { type LoadRunTiming, runCell } from "./load_run.ts";
import { memory, type ResidentByKind, residentByKind } from "./proc_stats.ts";

/** The issue's memory target: dkimd's peak RSS over the whole pass, with the service's flags. */
export const MEMORY_TARGET_BYTES = 90 * 1048576;

/** How long the filter is left alone after it listens, and after the load, before "idle" RSS. */
export const IDLE_SETTLE_MS = 1000;

/**
 * The cells of the memory pass, smallest messages first: sign and verify of 2 KB then 2 MB
 * messages (RSA-2048), each at 4 then 16 connections.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { memoryCells } from "./memory_pass.ts";
 * const cells = memoryCells();
 * assert.equal(cells.length, 8);
 * assert.ok(cells.every((c) => c.algorithm === "rsa" && c.quickAck));
 * assert.deepEqual([...new Set(cells.map((c) => c.concurrency))], [4, 16]);
 * ```
 */
export function memoryCells(): Cell[] {
  const cells: Cell[] = [];
  for (const size of ["2KB", "2MB"] as const) {
    for (const mode of ["sign", "verify"] as const) {
      for (const concurrency of [4, 16]) {
        cells.push({ mode, size, concurrency, algorithm: "rsa", quickAck: true });
      }
    }
  }
  return cells;
}

/** One cell of the pass: its throughput, and the process's peak RSS so far. */
export interface MemoryStep {
  readonly cell: Cell;
  readonly msgsPerSecond: number;
  readonly messages: number;
  readonly errors: number;
  /** `VmHWM` after the cell: the peak since the filter started. */
  readonly peakSoFarBytes: number;
}

/** What one filter process held over the pass. */
export interface MemoryPass {
  readonly filter: FilterName;
  /** Which repeat of the benchmark. */
  readonly repeat: number;
  /** Resident size once started and idle, before any message. */
  readonly idleRssBytes: number;
  /** Peak resident size over the whole pass (`VmHWM`, from the process's start). */
  readonly peakRssBytes: number;
  /** Resident size idle again after the pass. */
  readonly afterRssBytes: number;
  /** Where the idle resident size is, by kind of mapping. */
  readonly idleByKind: ResidentByKind;
  /** The same after the pass (the peak itself cannot be split: it is only a number). */
  readonly afterByKind: ResidentByKind;
  readonly steps: readonly MemoryStep[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs the pass against `filter`, a freshly started process, for repeat `repeat` of the
 * benchmark; `corpusOf` names the message
 * directory of a cell. `onStep` sees each cell as it ends.
 */
export async function runMemoryPass(
  filter: FilterProcess,
  repeat: number,
  corpusOf: (cell: Cell) => string,
  timing: LoadRunTiming,
  onStep: (step: MemoryStep) => void = () => {},
): Promise<MemoryPass> {
  await sleep(IDLE_SETTLE_MS);
  const idleRssBytes = (await memory(filter.pid)).rss;
  const idleByKind = await residentByKind(filter.pid);
  const steps: MemoryStep[] = [];
  for (const cell of memoryCells()) {
    // Without the filter's pid the load client leaves the peak alone (no clear_refs).
    const r = await runCell(cell, filter, corpusOf(cell), timing, false);
    const step = {
      cell,
      msgsPerSecond: r.msgsPerSecond,
      messages: r.messages,
      errors: r.errors,
      peakSoFarBytes: (await memory(filter.pid)).peakRss,
    };
    steps.push(step);
    onStep(step);
  }
  await sleep(IDLE_SETTLE_MS);
  const end = await memory(filter.pid);
  const afterByKind = await residentByKind(filter.pid);
  return {
    filter: filter.name,
    repeat,
    idleRssBytes,
    peakRssBytes: end.peakRss,
    afterRssBytes: end.rss,
    idleByKind,
    afterByKind,
    steps,
  };
}

function mib(bytes: number): string {
  return (bytes / 1048576).toFixed(1);
}

/**
 * The passes as Markdown: per filter and repeat its idle RSS, the peak so far after each cell
 * (with the cell's messages per second), the overall peak and the idle RSS after, then dkimd's
 * highest peak against {@link MEMORY_TARGET_BYTES}; then where the resident memory is, idle and
 * after the pass, by kind of mapping.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { markdownMemory, memoryCells } from "./memory_pass.ts";
 * const MiB = 1048576;
 * const steps = memoryCells().map((cell) => ({
 *   cell, msgsPerSecond: 100, messages: 100, errors: 0, peakSoFarBytes: 80 * MiB,
 * }));
 * const kinds = { executable: 40 * MiB, otherFiles: 3 * MiB, mallocHeap: 5 * MiB, anonymous: 12 * MiB };
 * const text = markdownMemory([{
 *   filter: "dkimd", repeat: 1, idleRssBytes: 60 * MiB, peakRssBytes: 80 * MiB, afterRssBytes: 70 * MiB,
 *   idleByKind: kinds, afterByKind: kinds, steps,
 * }]);
 * assert.match(text, /\| dkimd \| 1 \| idle \| 40\.0 \| 3\.0 \| 5\.0 \| 12\.0 \|/);
 * assert.match(text, /dkimd peak RSS over the memory pass ≤ 90 MiB \| 80\.0 MiB \| yes/);
 * ```
 */
export function markdownMemory(passes: readonly MemoryPass[]): string {
  const lines = [
    "| filter | repeat | idle RSS MiB | " +
    memoryCells().map((c) => `${c.mode} ${c.size} c=${c.concurrency}`).join(" | ") +
    " | peak RSS MiB | idle after MiB | errors |",
    `| --- | ---: | ---: | ${memoryCells().map(() => "---:").join(" | ")} | ---: | ---: | ---: |`,
  ];
  for (const p of passes) {
    const errors = p.steps.reduce((n, s) => n + s.errors, 0);
    const messages = p.steps.reduce((n, s) => n + s.messages, 0);
    lines.push(
      `| ${p.filter} | ${p.repeat} | ${mib(p.idleRssBytes)} | ${
        p.steps.map((s) => `${mib(s.peakSoFarBytes)} (${s.msgsPerSecond.toFixed(0)}/s)`).join(" | ")
      } | **${mib(p.peakRssBytes)}** | ${mib(p.afterRssBytes)} | ${errors}/${messages} |`,
    );
  }
  lines.push(
    "",
    "| filter | repeat | when | executable MiB | other files MiB | malloc heap MiB | anonymous MiB |",
    "| --- | ---: | --- | ---: | ---: | ---: | ---: |",
  );
  for (const p of passes) {
    for (const [when, k] of [["idle", p.idleByKind], ["after", p.afterByKind]] as const) {
      lines.push(
        `| ${p.filter} | ${p.repeat} | ${when} | ${mib(k.executable)} | ${mib(k.otherFiles)} | ${
          mib(k.mallocHeap)
        } | ${mib(k.anonymous)} |`,
      );
    }
  }
  const peaks = passes.filter((p) => p.filter === "dkimd").map((p) => p.peakRssBytes);
  if (peaks.length > 0) {
    const peak = Math.max(...peaks);
    const met = peak <= MEMORY_TARGET_BYTES;
    lines.push(
      "",
      "| target | measured | met |",
      "| --- | --- | --- |",
      `| dkimd peak RSS over the memory pass ≤ ${MEMORY_TARGET_BYTES / 1048576} MiB | ${
        mib(peak)
      } MiB${peaks.length > 1 ? ` (highest of ${peaks.map(mib).join(", ")})` : ""} | ${
        met ? "yes" : "**no**"
      } |`,
    );
  }
  return lines.join("\n");
}
