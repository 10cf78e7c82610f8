/**
 * The Lua virtual machine the policy scripts run in (opendkim-lua(3)): Lua 5.4 compiled to
 * WebAssembly (npm `wasmoon`), so no native code is loaded and a script cannot reach the file
 * system or the process: only the base, string, table, math and utf8 libraries are opened (no
 * `io`, `os`, `package`, `debug`; OpenDKIM opens them all, and a policy script needs none).
 *
 * A script is read and compiled once, at configuration load, so a syntax error stops the load
 * naming the file and line (OpenDKIM finds it only in the dry run at start, or per message). Each
 * call then runs the script in a fresh Lua state, as OpenDKIM does, with a budget: at most
 * {@link LUA_TIME_BUDGET_MS} of wall-clock time (checked every few thousand instructions, and
 * after each lookup the script waits for) and {@link LUA_MEMORY_BUDGET_BYTES} of memory. A
 * script that goes over, or raises an error, fails with a {@link LuaRunError} naming the script
 * and the line; the filter answers that message as On-InternalError says.
 *
 * @module
 */
import { type LuaEngine, LuaFactory, LuaLibraries } from "wasmoon";
import { SourceError } from "../policy/origin.ts";

/** Longest one call of a script may take, lookups included: a policy decision, not a job. */
export const LUA_TIME_BUDGET_MS = 1_000;

/** Most memory one call of a script may allocate: far more than any policy script needs. */
export const LUA_MEMORY_BUDGET_BYTES = 16 * 1024 * 1024;

/** Largest script file read: a policy script is a page of code, not a data set. */
export const LUA_SCRIPT_MAX_BYTES = 1024 * 1024;

/** The Lua libraries a script gets (see the module doc for those left out). */
const LIBRARIES = [
  LuaLibraries.Base,
  LuaLibraries.String,
  LuaLibraries.Table,
  LuaLibraries.Math,
  LuaLibraries.UTF8,
  LuaLibraries.Coroutine,
];

/** Base-library functions that read files: a script has no business there. */
const REMOVED_GLOBALS = ["dofile", "loadfile", "require"];

/** A policy script, compiled and ready to run. */
export interface LuaScript {
  /** The file it was read from, as named in the configuration. */
  readonly file: string;
  /** Its text. */
  readonly source: string;
}

/** A script that does not compile: its file and line, and Lua's complaint. */
export class LuaScriptError extends SourceError {
  /** Makes the error; `detail` is Lua's message without the place. */
  constructor(file: string, line: number, detail: string, options?: ErrorOptions) {
    super("Cannot compile Lua script", { file, line }, detail, options);
    this.name = "LuaScriptError";
  }
}

/** Why a call of a script failed. */
export type LuaFailure = "error" | "time" | "memory";

/** A call of a script that failed: an error it raised, or a budget it went over. */
export class LuaRunError extends Error {
  /** The script's file. */
  readonly file: string;
  /** The line the script was at, or 0 when Lua did not say. */
  readonly line: number;
  /** What went wrong. */
  readonly failure: LuaFailure;

  /** Makes the error; the message names the script and the line. */
  constructor(file: string, line: number, failure: LuaFailure, detail: string) {
    super(`Lua script ${line > 0 ? `${file}:${line}` : file}: ${detail}`);
    this.name = "LuaRunError";
    this.file = file;
    this.line = line;
    this.failure = failure;
  }
}

/** The budget of one call (the defaults are the constants above; tests may lower them). */
export interface LuaBudget {
  /** Wall-clock milliseconds. */
  readonly timeMs: number;
  /** Bytes of Lua memory. */
  readonly memoryBytes: number;
}

/** The budget every call gets unless told otherwise. */
export const LUA_DEFAULT_BUDGET: LuaBudget = {
  timeMs: LUA_TIME_BUDGET_MS,
  memoryBytes: LUA_MEMORY_BUDGET_BYTES,
};

// One WebAssembly module for the process, made when the first script is compiled: a service
// whose configuration has no scripts never loads it.
let factory: LuaFactory | undefined;

async function newEngine(memoryBytes: number): Promise<LuaEngine> {
  factory ??= new LuaFactory(undefined, {});
  const engine = await factory.createEngine({
    openStandardLibs: false,
    injectObjects: false,
    enableProxy: false,
    traceAllocations: true,
  });
  for (const lib of LIBRARIES) engine.global.loadLibrary(lib);
  for (const name of REMOVED_GLOBALS) engine.global.set(name, undefined);
  engine.global.setMemoryMax(engine.global.getMemoryUsed() + memoryBytes);
  return engine;
}

// Lua names a chunk loaded as "@file" by the file; its messages start "file:line: ".
function chunkName(file: string): string {
  return `@${file}`;
}

// The first "file:line:" of the script in Lua's message (or the traceback under it).
function lineIn(file: string, text: string): number {
  const escaped = file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const m = new RegExp(`${escaped}:(\\d+):`).exec(text);
  return m ? Number(m[1]) : 0;
}

// Lua's message without the place and the traceback.
function detailOf(file: string, text: string): string {
  const first = text.split("\n")[0].replace(/^Error: /, "");
  return first.startsWith(`${file}:`) ? first.replace(/^[^:]*:\d+:\s*/, "") : first;
}

/**
 * Compiles a script, so a syntax error is found at configuration load; rejects with a
 * {@link LuaScriptError} naming the file and line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileLuaScript, LuaScriptError } from "./lua_vm.ts";
 * const ok = await compileLuaScript("setup.lua", "odkim.sign(ctx, 'k')");
 * assert.equal(ok.file, "setup.lua");
 * await assert.rejects(() => compileLuaScript("bad.lua", "\nif x then"), LuaScriptError);
 * ```
 */
export async function compileLuaScript(file: string, source: string): Promise<LuaScript> {
  const engine = await newEngine(LUA_MEMORY_BUDGET_BYTES);
  try {
    engine.global.loadString(source, chunkName(file));
  } catch (e) {
    const text = e instanceof Error ? e.message : String(e);
    throw new LuaScriptError(file, lineIn(file, text), detailOf(file, text), { cause: e });
  } finally {
    engine.global.close();
  }
  return { file, source };
}

/**
 * Runs a script once in a fresh Lua state with `globals` set (functions, tables of functions,
 * values; objects wrapped with `decorateUserdata` reach Lua as opaque handles). A JS function
 * may return a promise; the script sees its value when the Lua wrapper calls `:await()` on it.
 * Rejects with a {@link LuaRunError} on an error or a budget crossed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileLuaScript, runLuaScript } from "./lua_vm.ts";
 * const script = await compileLuaScript("s.lua", "seen(1 + 2)");
 * let got = 0;
 * await runLuaScript(script, { seen: (n: number) => { got = n; } });
 * assert.equal(got, 3);
 * ```
 */
export async function runLuaScript(
  script: LuaScript,
  globals: Readonly<Record<string, unknown>>,
  prelude = "",
  budget: LuaBudget = LUA_DEFAULT_BUDGET,
): Promise<void> {
  const { file } = script;
  const engine = await newEngine(budget.memoryBytes);
  try {
    for (const [name, value] of Object.entries(globals)) engine.global.set(name, value);
    if (prelude) engine.doStringSync(prelude);
    const thread = engine.global.newThread();
    try {
      thread.loadString(script.source, chunkName(file));
    } catch (e) {
      const text = e instanceof Error ? e.message : String(e);
      throw new LuaRunError(file, lineIn(file, text), "error", detailOf(file, text));
    }
    try {
      await thread.run(0, { timeout: budget.timeMs });
    } catch (e) {
      const text = e instanceof Error ? e.message : String(e);
      if (/thread timeout exceeded/.test(text)) {
        throw new LuaRunError(
          file,
          lineIn(file, text),
          "time",
          `ran longer than its budget of ${budget.timeMs} ms`,
        );
      }
      if (/not enough memory/.test(text)) {
        throw new LuaRunError(
          file,
          lineIn(file, text),
          "memory",
          `used more than its budget of ${budget.memoryBytes} bytes of memory`,
        );
      }
      throw new LuaRunError(file, lineIn(file, text), "error", detailOf(file, text));
    }
  } finally {
    engine.global.close();
  }
}
