/**
 * RequireSafeKeys (opendkim.conf(5)): a private key file must not be readable or replaceable
 * by anyone but root and the user dkimd runs as. The checks follow OpenDKIM's
 * `dkimf_securefile()`/`dkimf_checkfsnode()`, which walk the resolved path from `/` down:
 *
 * - every directory: not writable by others (unless sticky, see below); writable by its group
 *   only when nobody else is in that group; owned by root or dkimd's user (OpenDKIM checks the
 *   owner only when the owner may write, but an owner can always grant itself that); a
 *   directory that only its owner can enter ends the walk of directories ("if nobody else can
 *   execute below here, that's good enough");
 * - the file: a regular file owned by root or dkimd's user, not readable or writable by others,
 *   not writable by its group.
 *
 * Differences, each deliberate:
 * - the file itself is always checked, even below a private directory, so a world-readable key
 *   is refused wherever it is (the fix is one chmod);
 * - a group-readable key whose group has other members is a warning, not a refusal: `root:opendkim
 *   0640` is the documented setup, and adding `postfix` to that group (for the socket) is common;
 * - a sticky world-writable directory such as /tmp is allowed: others cannot rename or remove
 *   what is below it (sticky bit, unlink(2) EPERM), which is what the check is protecting.
 *
 * Each problem comes with the one command that fixes it.
 *
 * @module
 */

import type { UserDb } from "./user_db.ts";

/** What the check needs to know about one path component. */
export interface FsNode {
  /** The absolute path of this component. */
  readonly path: string;
  /** True for a regular file. */
  readonly isFile: boolean;
  /** True for a directory. */
  readonly isDirectory: boolean;
  /** The permission bits (with set-id and sticky bits); file type bits are ignored. */
  readonly mode: number;
  /** The owner's uid. */
  readonly uid: number;
  /** The group's gid. */
  readonly gid: number;
}

/** Who counts as "us": root always, and the users dkimd runs as. */
export interface SafetyContext {
  /** Uids trusted besides root: the current effective uid and UserID's. */
  readonly trustedUids: readonly number[];
  /** Names of those users, for group membership checks. */
  readonly trustedNames: readonly string[];
  /** The account database, for names in messages and group members; absent if unreadable. */
  readonly users?: UserDb;
}

/** One unsafe thing about a key path. */
export interface KeyPathProblem {
  /** The file or directory that is unsafe. */
  readonly node: FsNode;
  /** What is wrong, in words ("can be read by every user"). */
  readonly problem: string;
  /** The one command that fixes it. */
  readonly fix: string;
  /** False for problems dkimd only warns about. */
  readonly fatal: boolean;
}

const S_ISVTX = 0o1000;

/**
 * Quotes a path for a shell command when it needs it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { shellQuote } from "./safe_keys.ts";
 * assert.equal(shellQuote("/etc/opendkim/keys/a.private"), "/etc/opendkim/keys/a.private");
 * assert.equal(shellQuote("/tmp/it's here"), "'/tmp/it'\\''s here'");
 * ```
 */
export function shellQuote(path: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(path) ? path : `'${path.replaceAll("'", "'\\''")}'`;
}

/**
 * Describes a node for a message: `owner root, group opendkim, mode 0640`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeNode } from "./safe_keys.ts";
 * const node = { path: "/k", isFile: true, isDirectory: false, mode: 0o644, uid: 0, gid: 0 };
 * assert.equal(describeNode(node), "owner 0, group 0, mode 0644");
 * ```
 */
export function describeNode(node: FsNode, users?: UserDb): string {
  const owner = users ? users.userName(node.uid) : String(node.uid);
  const group = users ? users.groupName(node.gid) : String(node.gid);
  return `owner ${owner}, group ${group}, mode ${
    (node.mode & 0o7777).toString(8).padStart(4, "0")
  }`;
}

/** Group members other than root and the trusted users, or undefined when unknown. */
function otherMembers(gid: number, ctx: SafetyContext): string[] | undefined {
  if (!ctx.users) return undefined;
  return ctx.users.groupUsers(gid).filter((n) => n !== "root" && !ctx.trustedNames.includes(n));
}

/**
 * Checks the components of a key file's resolved path, from `/` to the file. Returns every
 * problem found, each with its fix; problems with `fatal` false are warnings.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkKeyPath } from "./safe_keys.ts";
 * const dir = (path: string, mode: number) => ({ path, isFile: false, isDirectory: true, mode, uid: 0, gid: 0 });
 * const file = { path: "/etc/k.private", isFile: true, isDirectory: false, mode: 0o644, uid: 0, gid: 0 };
 * const [p] = checkKeyPath([dir("/", 0o755), dir("/etc", 0o755), file], { trustedUids: [110], trustedNames: ["opendkim"] });
 * assert.equal(p.problem, "can be read by every user");
 * assert.equal(p.fix, "chmod 640 /etc/k.private");
 * ```
 */
export function checkKeyPath(nodes: readonly FsNode[], ctx: SafetyContext): KeyPathProblem[] {
  const problems: KeyPathProblem[] = [];
  const trusted = (uid: number) => uid === 0 || ctx.trustedUids.includes(uid);
  const name = (uid: number) => (ctx.users ? ctx.users.userName(uid) : `uid ${uid}`);
  const groupName = (gid: number) => (ctx.users ? ctx.users.groupName(gid) : `gid ${gid}`);
  const file = nodes[nodes.length - 1];
  const dirs = nodes.slice(0, -1);
  for (const d of dirs) {
    const q = shellQuote(d.path);
    if ((d.mode & 0o002) !== 0 && (d.mode & S_ISVTX) === 0) {
      problems.push({
        node: d,
        problem: "can be written by every user",
        fix: `chmod o-w ${q}`,
        fatal: true,
      });
    }
    if ((d.mode & 0o020) !== 0) {
      const others = otherMembers(d.gid, ctx);
      if (others === undefined || others.length > 0) {
        const who = others?.length ? ` (also "${others.slice(0, 3).join('", "')}")` : "";
        problems.push({
          node: d,
          problem: `can be written by group ${groupName(d.gid)}${who}`,
          fix: `chmod g-w ${q}`,
          fatal: true,
        });
      }
    }
    // OpenDKIM checks only an owner-writable directory, but an owner can always add the bit.
    if (!trusted(d.uid)) {
      problems.push({
        node: d,
        problem: `is owned by ${name(d.uid)}, who is neither root nor dkimd's user`,
        fix: `chown root ${q}`,
        fatal: true,
      });
    }
    if ((d.mode & 0o011) === 0 && trusted(d.uid)) break;
  }
  if (!file) return problems;
  const q = shellQuote(file.path);
  if (!file.isFile) {
    problems.push({ node: file, problem: "is not a regular file", fix: `ls -l ${q}`, fatal: true });
    return problems;
  }
  if (!trusted(file.uid)) {
    problems.push({
      node: file,
      problem: `is owned by ${name(file.uid)}, who is neither root nor dkimd's user`,
      fix: `chown root ${q}`,
      fatal: true,
    });
  }
  const perms = file.mode & 0o777;
  const fixed = (perms & ~0o027).toString(8).padStart(3, "0");
  if ((perms & 0o006) !== 0) {
    const what = (perms & 0o004) && (perms & 0o002)
      ? "can be read and written by every user"
      : perms & 0o004
      ? "can be read by every user"
      : "can be written by every user";
    problems.push({ node: file, problem: what, fix: `chmod ${fixed} ${q}`, fatal: true });
  } else if ((perms & 0o020) !== 0) {
    problems.push({
      node: file,
      problem: `can be written by group ${groupName(file.gid)}`,
      fix: `chmod ${fixed} ${q}`,
      fatal: true,
    });
  }
  if ((perms & 0o040) !== 0) {
    const others = otherMembers(file.gid, ctx);
    if (others && others.length > 0) {
      problems.push({
        node: file,
        problem: `can be read by group ${groupName(file.gid)}, which also has "${
          others.slice(0, 3).join('", "')
        }"`,
        fix: ctx.trustedNames.some((n) => n !== "root")
          ? `chown ${ctx.trustedNames.find((n) => n !== "root")} ${q} && chmod 600 ${q}`
          : `chmod 600 ${q}`,
        fatal: false,
      });
    }
  }
  return problems;
}
