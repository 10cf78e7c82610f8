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

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** Runs `dkimd args...` with `stdin` as standard input, bounded by a timeout. */
export async function runCli(
  args: readonly string[],
  options: { stdin?: Uint8Array; cwd?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", MAIN, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    cwd: options.cwd,
    env: { NO_COLOR: "1" },
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
