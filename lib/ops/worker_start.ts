/**
 * Whether a worker started as UserID's user can load dkimd, and if not, why and how to fix it,
 * in one line. Run from source (`deno task start` as root), the worker is `deno run main.ts` as
 * that user: it reads the checkout (main.ts, deno.json, deno.lock, lib/) and the npm packages in
 * the checkout's `node_modules` (deno.json's `nodeModulesDir`, filled by `deno install` or by the
 * root supervisor's own start), and it needs to write neither, nor Deno's cache, which is root's
 * (under a home of mode 0700 it cannot even look). Two checks, since a user cannot fix a Deno
 * trace: before the first start, as root, whether the user can read the program's files
 * ({@link unreadableProgram}); and when a worker exits before it is ready, what Deno said
 * ({@link diagnoseStartFailure}, over the text `worker_stderr.ts` held back). A compiled dkimd
 * carries its code and npm packages inside, so neither applies to it.
 *
 * @module
 */

import { dirname, join, relative } from "node:path";
import type { UserDb } from "../config/user_db.ts";
import { describeOwnership, readBlock, type RunAs, type StatLike } from "./run_as.ts";
import { isCompiledProgram, type Program, type SelfCommand } from "./self_command.ts";

/** The fix when dkimd's checkout sits where the user cannot reach it (under /root, say). */
const MOVE_FIX = `clone dkimd where that user can read it (e.g. /opt/dkimd, then "deno install" ` +
  `there), or install the compiled dkimd ("deno task compile")`;

/**
 * The checkout a worker command runs from: the directory of its `--config=deno.json` (see
 * `self_command.ts`); undefined for a compiled dkimd.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkoutOf } from "./worker_start.ts";
 * assert.equal(checkoutOf({ command: "deno", args: ["run", "--config=/opt/dkimd/deno.json", "/opt/dkimd/main.ts"] }), "/opt/dkimd");
 * assert.equal(checkoutOf({ command: "/usr/local/sbin/dkimd", args: ["-f"] }), undefined);
 * ```
 */
export function checkoutOf(command: SelfCommand): string | undefined {
  const config = command.args.find((a) => a.startsWith("--config="));
  return config === undefined ? undefined : dirname(config.slice("--config=".length));
}

/**
 * The files a worker run from source must read before any dkimd code runs: the main module,
 * deno.json and deno.lock beside it, and the npm packages' directory (`node_modules/.deno`).
 * None for a compiled dkimd.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { programFiles } from "./worker_start.ts";
 * assert.deepEqual(
 *   programFiles({ execPath: "/usr/bin/deno", mainModule: "file:///opt/dkimd/main.ts", configFile: "/opt/dkimd/deno.json" }),
 *   ["/opt/dkimd/main.ts", "/opt/dkimd/deno.json", "/opt/dkimd/deno.lock", "/opt/dkimd/node_modules/.deno"],
 * );
 * assert.deepEqual(programFiles({ execPath: "/usr/local/sbin/dkimd", mainModule: "file:///tmp/deno-compile-dkimd/main.ts" }), []);
 * ```
 */
export function programFiles(program: Program): string[] {
  if (isCompiledProgram(program.mainModule) || !program.mainModule.startsWith("file:")) return [];
  const main = new URL(program.mainModule).pathname;
  const dir = program.configFile ? dirname(program.configFile) : dirname(main);
  return [
    main,
    ...(program.configFile ? [program.configFile] : []),
    join(dir, "deno.lock"),
    join(dir, "node_modules", ".deno"),
  ];
}

function inside(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel === "" || (!rel.startsWith("..") && !rel.startsWith("/"));
}

/**
 * One line when the worker, running as `who`, could not read dkimd's own files (see
 * {@link programFiles}): what is in the way, its owner and mode, and the fix; undefined when it
 * can. Missing files are left to Deno, which names them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { unreadableProgram } from "./worker_start.ts";
 * const stat = (p: string) => Promise.resolve(
 *   p === "/root"
 *     ? { mode: 0o40700, uid: 0, gid: 0, isDirectory: true }
 *     : { mode: p.endsWith(".ts") || p.endsWith(".json") ? 0o100644 : 0o40755, uid: 0, gid: 0, isDirectory: !p.includes(".") },
 * );
 * const program = { execPath: "/usr/bin/deno", mainModule: "file:///root/dkimd/main.ts", configFile: "/root/dkimd/deno.json" };
 * const who = { user: "opendkim", uid: 104, group: "opendkim", gid: 108 };
 * assert.match(
 *   (await unreadableProgram(program, who, { stat })) ?? "",
 *   /^User "opendkim" \(uid 104, gid 108\) cannot read dkimd's own files: directory "\/root" \(owner 0:0, mode 0700\) is in the way of "\/root\/dkimd\/main.ts"; fix: clone dkimd where/,
 * );
 * ```
 */
export async function unreadableProgram(
  program: Program,
  who: RunAs,
  io: { stat?: (path: string) => Promise<StatLike>; db?: UserDb } = {},
): Promise<string | undefined> {
  const files = programFiles(program);
  if (files.length === 0) return undefined;
  const checkout = dirname(program.configFile ?? files[0]);
  for (const path of files) {
    const block = await readBlock(path, who, io.stat);
    if (!block) continue;
    const owner = describeOwnership(block.info, io.db);
    const what = block.path === path
      ? `"${path}" (${owner}) is not readable`
      : `directory "${block.path}" (${owner}) is in the way of "${path}"`;
    const fix = inside(block.path, checkout)
      ? `chmod -R a+rX "${checkout}" (dkimd's code holds no secrets), or ${MOVE_FIX}`
      : MOVE_FIX;
    return `User "${who.user}" (uid ${who.uid}, gid ${who.gid}) cannot read dkimd's own files: ` +
      `${what}; fix: ${fix}`;
  }
  return undefined;
}

/** The paths Deno's error names, in order: quoted paths and `file://` URLs. */
function namedPaths(output: string): string[] {
  return [...output.matchAll(/'((?:file:\/\/)?\/[^']*)'/g)].map((m) =>
    m[1].startsWith("file://") ? decodeURIComponent(new URL(m[1]).pathname) : m[1]
  );
}

/** Deno's first error line, without its `error: ` prefix. */
function firstError(output: string): string {
  const line = output.split("\n").find((l) => l.startsWith("error: ")) ?? "";
  return line.slice("error: ".length).trim();
}

/**
 * The cause and the fix, in one line, of a worker running as `who` that exited before it was
 * ready with `output` (Deno's messages) on its standard error; undefined when the output is not
 * one of the failures a user cannot otherwise make sense of:
 *
 * - Deno tried to fetch npm packages into its cache ("Failed caching npm package"): they were
 *   not in the checkout's `node_modules`, and the user cannot write root's cache;
 * - `node_modules` itself is not readable, or not complete, so Deno tried to write it;
 * - a file of the checkout is not readable ("Permission denied" naming it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { diagnoseStartFailure } from "./worker_start.ts";
 * const who = { user: "opendkim", uid: 104, group: "opendkim", gid: 108 };
 * const output = "error: Failed caching npm package 'yaml@2.9.1'\n    0: failed to create directory " +
 *   "'/root/.cache/deno/npm/registry.npmjs.org/yaml/2.9.1': Permission denied (os error 13)\n";
 * assert.match(
 *   diagnoseStartFailure(output, who, "/opt/dkimd") ?? "",
 *   /^user "opendkim" \(uid 104\) cannot write Deno's npm cache .*; fix: as root, run "deno install" in \/opt\/dkimd/,
 * );
 * assert.equal(diagnoseStartFailure("error: Uncaught SyntaxError\n", who, "/opt/dkimd"), undefined);
 * ```
 */
export function diagnoseStartFailure(
  output: string,
  who: RunAs,
  checkout?: string,
): string | undefined {
  const account = `user "${who.user}" (uid ${who.uid})`;
  const modulesDir = checkout === undefined ? "node_modules" : `${checkout}/node_modules`;
  const install = `as root, run "deno install" in ${checkout ?? "the dkimd checkout"} and ` +
    `"chmod -R a+rX ${modulesDir}" (deno.json keeps the npm packages there, for that user to read)`;
  const denied = /Permission denied/.test(output);
  const paths = namedPaths(output);
  const modules = paths.find((p) => /(^|\/)node_modules(\/|$)/.test(p));
  if (/Failed caching npm package/.test(output) && modules === undefined) {
    const target = paths.find((p) => p.includes("/npm/"));
    const cause = denied && target
      ? `cannot write Deno's npm cache ("${target}": Permission denied)`
      : `cannot fetch the npm packages (${firstError(output)})`;
    return `${account} ${cause}: the npm packages were not in ${modulesDir} for it to read; ` +
      `fix: ${install}, or use the compiled dkimd ("deno task compile")`;
  }
  if (!denied) return undefined;
  if (modules !== undefined) {
    const dir = modules.slice(0, modules.search(/node_modules(\/|$)/) + "node_modules".length);
    return `${account} cannot read "${dir}" ("${modules}": Permission denied); fix: ${install}`;
  }
  const file = paths[0];
  if (file === undefined) return undefined;
  const fix = checkout !== undefined && inside(file, checkout)
    ? `chmod -R a+rX "${checkout}" (dkimd's code holds no secrets), or ${MOVE_FIX}`
    : `make "${file}" readable by that user, or ${MOVE_FIX}`;
  return `${account} cannot read "${file}" (Permission denied); fix: ${fix}`;
}
