/**
 * Reading a private key file the one way both `dkimd serve` (through the loader) and
 * `dkimd testkey` read it: resolve the path (realpath(3)), stat every component from `/` down,
 * judge them by RequireSafeKeys' rule (`safe_keys.ts`, OpenDKIM's `dkimf_securefile()`), then
 * read at most {@link MAX_PRIVATE_KEY_INPUT_BYTES} bytes of the resolved file. Whether an unsafe
 * key is refused or only warned about is the caller's setting; the rule and the words are the
 * same everywhere.
 *
 * @module
 */

import { MAX_PRIVATE_KEY_INPUT_BYTES } from "../crypto/private_key.ts";
import { type FileReadIo, readLimited } from "./limited_read.ts";
import {
  checkKeyPath,
  describeNode,
  type FsNode,
  type KeyPathProblem,
  type SafetyContext,
} from "./safe_keys.ts";
import type { UserDb } from "./user_db.ts";

/** The I/O a key file read needs; the loader's `LoadIo` has it. */
export interface KeyFileIo extends FileReadIo {
  /** realpath(3). */
  realPath(path: string): Promise<string>;
}

/** How {@link readPrivateKeyFile} treats what the safety check finds. */
export interface KeyFileOptions {
  /** Who may own and read the key besides root (see {@link keyFileSafety}). */
  readonly safety: SafetyContext;
  /**
   * RequireSafeKeys: refuse a key with a fatal problem ({@link UnsafeKeyError}). When false,
   * every problem is passed to `warn` and the key is read anyway.
   */
  readonly requireSafe: boolean;
  /** Told each problem that does not refuse the key, with its description, before the read. */
  readonly warn: (problem: KeyPathProblem, description: string) => void;
}

/**
 * A key file refused by RequireSafeKeys; the message lists each fatal problem with its fix,
 * joined by "; and ".
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { UnsafeKeyError } from "./private_key_file.ts";
 * const e = new UnsafeKeyError('file "/k" can be read by every user', []);
 * assert.equal(e.name, "UnsafeKeyError");
 * ```
 */
export class UnsafeKeyError extends Error {
  /** The fatal problems. */
  readonly problems: readonly KeyPathProblem[];

  /** Makes the error for `problems`, described by `message`. */
  constructor(message: string, problems: readonly KeyPathProblem[]) {
    super(message);
    this.name = "UnsafeKeyError";
    this.problems = problems;
  }
}

/**
 * Who a key file may belong to besides root: the user running now (`euid`) and the users
 * named (UserID's), as far as the account database `accounts` knows them. Unknown names are
 * left out: reporting them is the configuration's business.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { keyFileSafety } from "./private_key_file.ts";
 * import { UserDb } from "./user_db.ts";
 * const db = UserDb.parse("root:x:0:0::/:/bin/sh\nopendkim:x:110:117::/:/bin/false\n", "");
 * const safety = keyFileSafety(0, db, ["opendkim", "nobody"]);
 * assert.deepEqual(safety.trustedUids, [0, 110]);
 * assert.deepEqual(safety.trustedNames, ["root", "opendkim"]);
 * ```
 */
export function keyFileSafety(
  euid: number | null,
  accounts: UserDb | undefined,
  users: readonly string[] = [],
): SafetyContext {
  const trustedUids: number[] = [];
  const trustedNames: string[] = [];
  if (euid !== null) {
    trustedUids.push(euid);
    if (accounts) trustedNames.push(accounts.userName(euid));
  }
  for (const name of users) {
    const user = accounts?.user(name);
    if (user === undefined) continue;
    trustedUids.push(user.uid);
    trustedNames.push(user.name);
  }
  return { trustedUids, trustedNames, ...(accounts ? { users: accounts } : {}) };
}

/**
 * One problem in words, with the node's owner and mode and the fix:
 * `file "/k" can be read by every user (owner root, group root, mode 0644); fix: chmod 640 /k`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeKeyPathProblem } from "./private_key_file.ts";
 * const node = { path: "/k", isFile: true, isDirectory: false, mode: 0o644, uid: 0, gid: 0 };
 * assert.equal(
 *   describeKeyPathProblem({ node, problem: "can be read by every user", fix: "chmod 640 /k", fatal: true }),
 *   'file "/k" can be read by every user (owner 0, group 0, mode 0644); fix: chmod 640 /k',
 * );
 * ```
 */
export function describeKeyPathProblem(p: KeyPathProblem, users?: UserDb): string {
  return `${p.node.isDirectory ? "directory" : "file"} "${p.node.path}" ${p.problem} ` +
    `(${describeNode(p.node, users)}); fix: ${p.fix}`;
}

/**
 * stat(2) of every component of the resolved path `real`, from `/` to the file, as
 * `checkKeyPath()` takes them. A platform without modes or owners reads as private and root's.
 */
export async function keyPathNodes(io: FileReadIo, real: string): Promise<FsNode[]> {
  const parts = real.split("/").filter((p) => p !== "");
  const paths = ["/", ...parts.map((_, i) => "/" + parts.slice(0, i + 1).join("/"))];
  const out: FsNode[] = [];
  for (const p of paths) {
    const info = await io.stat(p);
    out.push({
      path: p,
      isFile: info.isFile,
      isDirectory: info.isDirectory,
      mode: info.mode ?? 0o700,
      uid: info.uid ?? 0,
      gid: info.gid ?? 0,
    });
  }
  return out;
}

/**
 * Reads the private key file at `path`: resolves it, checks every component of the resolved
 * path (`checkKeyPath()`), refuses it with {@link UnsafeKeyError} when `requireSafe` and a
 * problem is fatal, passes every other problem to `warn`, then reads the resolved file, at most
 * {@link MAX_PRIVATE_KEY_INPUT_BYTES} bytes. Other rejections are {@link readLimited}'s and
 * `io`'s (Deno's `NotFound` for a missing file).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readPrivateKeyFile, UnsafeKeyError } from "./private_key_file.ts";
 * const modes: Record<string, number> = { "/": 0o755, "/keys": 0o755, "/keys/k.private": 0o644 };
 * const io = {
 *   realPath: (p: string) => Promise.resolve(p),
 *   stat: (p: string) =>
 *     Promise.resolve({ isFile: p.endsWith(".private"), isDirectory: !p.endsWith(".private"), mode: modes[p], uid: 0, gid: 0, size: 4 }),
 *   readFile: () => Promise.resolve(new TextEncoder().encode("key\n")),
 * };
 * const safety = { trustedUids: [0], trustedNames: ["root"] };
 * const warnings: string[] = [];
 * const warn = (_: unknown, text: string) => void warnings.push(text);
 * await assert.rejects(readPrivateKeyFile(io, "/keys/k.private", { safety, requireSafe: true, warn }), UnsafeKeyError);
 * const bytes = await readPrivateKeyFile(io, "/keys/k.private", { safety, requireSafe: false, warn });
 * assert.equal(bytes.length, 4);
 * assert.match(warnings[0], /^file "\/keys\/k.private" can be read by every user/);
 * ```
 */
export async function readPrivateKeyFile(
  io: KeyFileIo,
  path: string,
  options: KeyFileOptions,
): Promise<Uint8Array> {
  const real = await io.realPath(path);
  const problems = checkKeyPath(await keyPathNodes(io, real), options.safety);
  const describe = (p: KeyPathProblem) => describeKeyPathProblem(p, options.safety.users);
  const fatal = problems.filter((p) => p.fatal);
  if (fatal.length > 0 && options.requireSafe) {
    throw new UnsafeKeyError(fatal.map(describe).join("; and "), fatal);
  }
  for (const p of problems) options.warn(p, describe(p));
  return await readLimited(io, real, MAX_PRIVATE_KEY_INPUT_BYTES);
}
