/**
 * Runs the dkimd command line as a user would (`deno run main.ts ...`), in a child process.
 *
 * @module
 */

/** What a run printed and how it ended. */
export interface CliResult {
  readonly code: number;
  readonly stdout: Uint8Array;
  readonly stderr: string;
  /** Standard output as text. */
  readonly text: string;
}

import assert from "node:assert/strict";
import { SERVICE_DENO_FLAGS } from "../../lib/ops/self_command.ts";
import { dkimdEnv } from "./dkimd_env.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

/**
 * Runs `dkimd args...` with `stdin` as standard input, bounded by a timeout. `umask` sets the
 * child's umask (through `sh`); by default it inherits this process's, which is the caller's.
 */
export async function runCli(
  args: readonly string[],
  options: { stdin?: Uint8Array; cwd?: string; timeoutMs?: number; umask?: number } = {},
): Promise<CliResult> {
  // The permissions of `deno task start`, so the commands are tested as users run them.
  const deno = [
    Deno.execPath(),
    "run",
    ...SERVICE_DENO_FLAGS,
    `--config=${CONFIG}`,
    "--quiet",
    MAIN,
    ...args,
  ];
  const [command, ...commandArgs] = options.umask === undefined ? deno : [
    "/bin/sh",
    "-c",
    `umask ${options.umask.toString(8).padStart(3, "0")} && exec "$@"`,
    "sh",
    ...deno,
  ];
  const child = new Deno.Command(command, {
    args: commandArgs,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    cwd: options.cwd,
    clearEnv: true,
    env: dkimdEnv({ NO_COLOR: "1" }),
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 30_000);
  const writer = child.stdin.getWriter();
  if (options.stdin) await writer.write(options.stdin);
  await writer.close();
  const out = await child.output();
  clearTimeout(timer);
  return {
    code: out.code,
    stdout: out.stdout,
    stderr: new TextDecoder().decode(out.stderr),
    text: new TextDecoder().decode(out.stdout),
  };
}

/** A bad command line and what its one line of complaint says. */
export interface UsageErrorCase {
  /** What is wrong, for the test's name. */
  readonly name: string;
  /** The arguments. */
  readonly args: string[];
  /** Standard input, when the command reads it. */
  readonly stdin?: string;
  /** The complaint. */
  readonly message: RegExp;
}

/** Asserts that `r` is a usage error: status 2, one line on stderr matching `message`, no trace. */
export function assertUsageError(r: CliResult, message: RegExp): void {
  assert.equal(r.code, 2, r.stderr);
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], message);
  assert.doesNotMatch(r.stderr, /^\s+at /m);
}
