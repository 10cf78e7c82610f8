/**
 * The account the filter runs as (OpenDKIM's `UserID user[:group]`): resolved from
 * `/etc/passwd` and `/etc/group` as OpenDKIM resolves it (a name, else a number; the group
 * defaults to the user's primary group), and a check, made while still root, that the worker
 * will be able to read every file it needs, naming the file, the user and the fix. Deno starts
 * the worker with `setgid` and `setuid` and no supplementary groups (Rust's process spawning
 * clears them), where OpenDKIM calls initgroups(3): only the owner and the one group count.
 *
 * @module
 */

import { dirname } from "node:path";
import { UserDb } from "../config/user_db.ts";
import type { UserId } from "../config/values.ts";

/** A resolved UserID. */
export interface RunAs {
  /** The login name (or the number, when there is no such entry). */
  readonly user: string;
  /** The uid. */
  readonly uid: number;
  /** The group name (or the number). */
  readonly group: string;
  /** The gid. */
  readonly gid: number;
}

/**
 * UserID names no account, or dkimd cannot become it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { UserIdError } from "./run_as.ts";
 * assert.equal(new UserIdError('no such user "opendkim"').message, 'Invalid "UserID": no such user "opendkim"');
 * ```
 */
export class UserIdError extends Error {
  /** Makes the error with `detail`. */
  constructor(detail: string, options?: ErrorOptions) {
    super(`Invalid "UserID": ${detail}`, options);
    this.name = "UserIdError";
  }
}

/**
 * Resolves `userId` against the account database, as OpenDKIM does: the user by name or
 * number, the group by name or number, else the user's primary group.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { UserDb } from "../config/user_db.ts";
 * import { resolveRunAs } from "./run_as.ts";
 * const db = UserDb.parse("opendkim:x:104:108::/run/opendkim:/usr/sbin/nologin\n", "opendkim:x:108:\npostfix:x:105:\n");
 * assert.deepEqual(resolveRunAs({ user: "opendkim" }, db), { user: "opendkim", uid: 104, group: "opendkim", gid: 108 });
 * assert.deepEqual(resolveRunAs({ user: "opendkim", group: "postfix" }, db).gid, 105);
 * assert.throws(() => resolveRunAs({ user: "nosuch" }, db), /no such user "nosuch"/);
 * ```
 */
export function resolveRunAs(userId: UserId, db: UserDb): RunAs {
  const user = db.user(userId.user);
  if (!user) throw new UserIdError(`no such user "${userId.user}"`);
  if (userId.group !== undefined) {
    const group = db.group(userId.group);
    if (!group) throw new UserIdError(`no such group "${userId.group}"`);
    return { user: user.name, uid: user.uid, group: group.name, gid: group.gid };
  }
  if (user.gid < 0) {
    throw new UserIdError(
      `uid ${user.uid} has no account, so it has no group: write "UserID ${userId.user}:GROUP"`,
    );
  }
  return { user: user.name, uid: user.uid, group: db.groupName(user.gid), gid: user.gid };
}

/**
 * Reads `/etc/passwd` and `/etc/group`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readUserDb } from "./run_as.ts";
 * assert.equal((await readUserDb()).user("root")?.uid, 0);
 * ```
 */
export async function readUserDb(): Promise<UserDb> {
  const [passwd, group] = await Promise.all([
    Deno.readTextFile("/etc/passwd"),
    Deno.readTextFile("/etc/group"),
  ]);
  return UserDb.parse(passwd, group);
}

/** What stat(2) says about a path; tests pass their own. */
export interface StatLike {
  /** Mode bits, or null where the platform has none. */
  readonly mode: number | null;
  /** Owner. */
  readonly uid: number | null;
  /** Group. */
  readonly gid: number | null;
  /** True for a directory. */
  readonly isDirectory: boolean;
}

function allowed(info: StatLike, who: RunAs, bit: number): boolean {
  if (who.uid === 0) return true;
  const mode = info.mode ?? 0;
  if (info.uid === who.uid) return (mode & (bit << 6)) !== 0;
  if (info.gid === who.gid) return (mode & (bit << 3)) !== 0;
  return (mode & bit) !== 0;
}

function octal(mode: number | null): string {
  return ((mode ?? 0) & 0o7777).toString(8).padStart(4, "0");
}

/** What keeps a user from reading a path: a directory above it, or the file itself. */
export interface ReadBlock {
  /** The directory that cannot be entered, or the path that cannot be read. */
  readonly path: string;
  /** True when it is a directory above the path (no search permission). */
  readonly enter: boolean;
  /** Its stat. */
  readonly info: StatLike;
}

/**
 * What keeps `who` from reading `path`: the first directory above it it cannot enter, else the
 * path itself when it is a file it cannot read; undefined when nothing does, or when the path
 * does not exist (the loader reports that itself).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readBlock } from "./run_as.ts";
 * const stat = (p: string) => Promise.resolve(
 *   p === "/root"
 *     ? { mode: 0o40700, uid: 0, gid: 0, isDirectory: true }
 *     : { mode: 0o40755, uid: 0, gid: 0, isDirectory: p !== "/root/dkimd/main.ts" },
 * );
 * const who = { user: "opendkim", uid: 104, group: "opendkim", gid: 108 };
 * assert.deepEqual((await readBlock("/root/dkimd/main.ts", who, stat))?.path, "/root");
 * assert.equal(await readBlock("/opt/dkimd/main.ts", who, stat), undefined);
 * ```
 */
export async function readBlock(
  path: string,
  who: RunAs,
  stat: (path: string) => Promise<StatLike> = (p) => Deno.stat(p),
): Promise<ReadBlock | undefined> {
  let info: StatLike;
  try {
    info = await stat(path);
  } catch {
    return undefined;
  }
  const dirs: string[] = [];
  for (let d = dirname(path);; d = dirname(d)) {
    dirs.unshift(d);
    if (d === dirname(d)) break;
  }
  for (const dir of dirs) {
    let d: StatLike;
    try {
      d = await stat(dir);
    } catch {
      continue;
    }
    if (!allowed(d, who, 0o1)) return { path: dir, enter: true, info: d };
  }
  if (info.isDirectory || allowed(info, who, 0o4)) return undefined;
  return { path, enter: false, info };
}

/**
 * The owner and mode of a path as the messages say them: `owner root:opendkim, mode 0640`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeOwnership } from "./run_as.ts";
 * assert.equal(describeOwnership({ mode: 0o100640, uid: 0, gid: 108, isDirectory: false }), "owner 0:108, mode 0640");
 * ```
 */
export function describeOwnership(info: StatLike, db?: UserDb): string {
  const name = (uid: number | null) => uid === null ? "?" : db?.userName(uid) ?? String(uid);
  const group = (gid: number | null) => gid === null ? "?" : db?.groupName(gid) ?? String(gid);
  return `owner ${name(info.uid)}:${group(info.gid)}, mode ${octal(info.mode)}`;
}

/**
 * For each of `paths` the worker running as `who` could not read, one sentence naming the file
 * or the directory in the way, its owner and mode, and a fix. Paths that do not exist are left
 * to the loader, which reports them itself.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { UserDb } from "../config/user_db.ts";
 * import { unreadableFiles } from "./run_as.ts";
 * const db = UserDb.parse("root:x:0:0::/root:/bin/sh\nopendkim:x:104:108::/:/bin/false\n", "root:x:0:\nopendkim:x:108:\n");
 * const stat = (p: string) => Promise.resolve(
 *   p === "/k.private"
 *     ? { mode: 0o100600, uid: 0, gid: 0, isDirectory: false }
 *     : { mode: 0o40755, uid: 0, gid: 0, isDirectory: true },
 * );
 * const [problem] = await unreadableFiles(["/k.private"], { user: "opendkim", uid: 104, group: "opendkim", gid: 108 }, { stat, db });
 * assert.match(problem, /^File "\/k.private" is not readable by user "opendkim" \(uid 104, gid 108\): owner root:root, mode 0600/);
 * ```
 */
export async function unreadableFiles(
  paths: readonly string[],
  who: RunAs,
  io: { stat?: (path: string) => Promise<StatLike>; db?: UserDb } = {},
): Promise<string[]> {
  const stat = io.stat ?? ((p: string) => Deno.stat(p));
  const account = `user "${who.user}" (uid ${who.uid}, gid ${who.gid})`;
  const problems: string[] = [];
  for (const path of [...new Set(paths)]) {
    const block = await readBlock(path, who, stat);
    if (!block) continue;
    const owner = describeOwnership(block.info, io.db);
    problems.push(
      block.enter
        ? `Directory "${block.path}" cannot be entered by ${account}, so "${path}" cannot be ` +
          `read: ${owner}; fix: chgrp ${who.group} "${block.path}" && chmod g+x "${block.path}"`
        : `File "${path}" is not readable by ${account}: ${owner}; fix: chgrp ${who.group} ` +
          `"${path}" && chmod g+r "${path}"`,
    );
  }
  return problems;
}
