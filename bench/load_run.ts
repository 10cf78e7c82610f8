/**
 * One load run: the load client (bench/load_client.ts) started in its own process against one
 * filter for one cell, so the client's work never counts as the filter's.
 *
 * @module
 */
import { type Cell, cellKey } from "./cells.ts";
import type { FilterProcess } from "./filters.ts";
import type { LoadResult } from "./load_client.ts";

const LOAD_CLIENT = new URL("./load_client.ts", import.meta.url).pathname;
const DENO_CONFIG = new URL("../deno.json", import.meta.url).pathname;

/** How long a load run lasts. */
export interface LoadRunTiming {
  /** Traffic before the measured window, in milliseconds. */
  readonly warmupMs: number;
  /** The measured window, in milliseconds. */
  readonly durationMs: number;
}

/**
 * Runs `cell` against `filter` with the messages in `corpus`. With `measureFilter` (the default)
 * the client measures the filter's CPU time and resets and reads its peak memory over the
 * window; without it the filter's peak memory is left alone, so it keeps counting from the
 * filter's start.
 */
export async function runCell(
  cell: Cell,
  filter: FilterProcess,
  corpus: string,
  timing: LoadRunTiming,
  measureFilter = true,
): Promise<LoadResult> {
  const args = [
    "run",
    "--allow-all",
    `--config=${DENO_CONFIG}`,
    "--quiet",
    LOAD_CLIENT,
    "--socket",
    `127.0.0.1:${filter.port}`,
    "--corpus",
    corpus,
    "--mode",
    cell.mode,
    "--concurrency",
    String(cell.concurrency),
    "--duration",
    String(timing.durationMs),
    "--warmup",
    String(timing.warmupMs),
    ...(measureFilter ? ["--pid", String(filter.pid)] : []),
    ...(measureFilter && filter.tree ? ["--tree"] : []),
    ...(cell.mode === "sign"
      ? ["--algorithm", cell.algorithm === "rsa" ? "rsa-sha256" : "ed25519-sha256"]
      : []),
    ...(cell.quickAck ? ["--quickack"] : []),
  ];
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timing.warmupMs + timing.durationMs + 120_000),
  }).output();
  const stdout = new TextDecoder().decode(out.stdout).trim();
  if (out.code !== 0 || stdout === "") {
    throw new Error(
      `The load client failed (${out.code}) on ${cellKey(cell)} against ${filter.name}:\n${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
  return JSON.parse(stdout.split("\n").at(-1)!) as LoadResult;
}
