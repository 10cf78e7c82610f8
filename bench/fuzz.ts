/**
 * `deno task fuzz`: the property and mutation fuzz tests of tests/fuzz with many more cases than
 * CI runs (100 times as many by default) and a fresh random seed, printed first and last so a
 * failure can be replayed. CI runs the same tests with a fixed seed and the base counts.
 *
 * ```
 * deno task fuzz                              # 100x the cases, random seed
 * deno task fuzz --scale 1000                 # longer
 * deno task fuzz --seed 123 --filter verify   # replay a seed, only the verify properties
 * deno task fuzz --seed 123 --path "17:3:1" --filter "passes a mutated"  # replay one case
 * ```
 *
 * A failing property reports its counterexample and the fast-check `seed` and `path`; pass both
 * back (with `--filter` naming the test) to run just that case again.
 *
 * @module
 */
import { errorMessage } from "../lib/error_message.ts";
import { parseArgs } from "node:util";

/** Case-count multiplier of an on-demand run: a CI run's counts times this. */
export const FUZZ_SCALE_DEFAULT = 100;

const FUZZ_DIR = new URL("../tests/fuzz/", import.meta.url);

/** What a run is asked to do. */
export interface FuzzRunOptions {
  /** The seed; random when absent. */
  readonly seed?: number;
  /** Case-count multiplier. */
  readonly scale: number;
  /** Exact case count per property, overriding `scale`. */
  readonly runs?: number;
  /** A fast-check path to replay. */
  readonly path?: string;
  /** Only tests whose name contains (or matches, as /re/) this. */
  readonly filter?: string;
}

function integer(name: string, text: string | undefined, min: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min) {
    throw new RangeError(`Invalid "--${name}" "${text}": expected an integer of at least ${min}`);
  }
  return n;
}

/**
 * Reads the command line of `deno task fuzz`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseFuzzArgs } from "./fuzz.ts";
 * assert.deepEqual(parseFuzzArgs(["--seed", "7", "--filter", "verify"]), {
 *   seed: 7, scale: 100, runs: undefined, path: undefined, filter: "verify",
 * });
 * assert.throws(() => parseFuzzArgs(["--scale", "0"]), RangeError);
 * ```
 */
export function parseFuzzArgs(args: readonly string[]): FuzzRunOptions {
  const { values } = parseArgs({
    args: [...args],
    options: {
      seed: { type: "string" },
      scale: { type: "string" },
      runs: { type: "string" },
      path: { type: "string" },
      filter: { type: "string" },
    },
    strict: true,
    allowPositionals: false,
  });
  return {
    seed: integer("seed", values.seed, -0x80000000),
    scale: integer("scale", values.scale, 1) ?? FUZZ_SCALE_DEFAULT,
    runs: integer("runs", values.runs, 1),
    path: values.path,
    filter: values.filter,
  };
}

/** Runs the fuzz tests as `options` say; resolves to the exit code of `deno test`. */
export async function runFuzz(options: FuzzRunOptions): Promise<number> {
  const seed = options.seed ?? crypto.getRandomValues(new Int32Array(1))[0];
  const env: Record<string, string> = {
    DKIMD_FUZZ_SEED: String(seed),
    DKIMD_FUZZ_SCALE: String(options.scale),
  };
  if (options.runs !== undefined) env.DKIMD_FUZZ_RUNS = String(options.runs);
  if (options.path !== undefined) env.DKIMD_FUZZ_PATH = options.path;
  const settings = Object.entries(env).map(([k, v]) => `${k}=${v}`).join(" ");
  console.log(`Fuzzing with ${settings}`);
  const args = ["test", "--allow-all", "--parallel"];
  if (options.filter !== undefined) args.push("--filter", options.filter);
  args.push(FUZZ_DIR.pathname);
  const { code } = await new Deno.Command(Deno.execPath(), {
    args,
    env,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  console.log(
    code === 0
      ? `Fuzzing passed with ${settings}`
      : `Fuzzing FAILED with ${settings}; replay: deno task fuzz --seed ${seed} --scale ${options.scale}` +
        " (add --path and --filter from the report to replay one case)",
  );
  return code;
}

if (import.meta.main) {
  let options: FuzzRunOptions;
  try {
    options = parseFuzzArgs(Deno.args);
  } catch (error) {
    console.error(errorMessage(error));
    Deno.exit(64);
  }
  Deno.exit(await runFuzz(options));
}
