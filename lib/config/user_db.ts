/**
 * The system's users and groups, read from the text of `/etc/passwd` and `/etc/group`
 * (passwd(5), group(5)): enough to name the owner of a key file in a message, to find the uid
 * of UserID, and to see who else is in a key file's group, as OpenDKIM's key safety check
 * does with getpwent(3) and getgrgid(3). Parsing is pure; the loader reads the files.
 *
 * @module
 */

/** A user account. */
export interface UserEntry {
  /** The login name. */
  readonly name: string;
  /** The user id. */
  readonly uid: number;
  /** The primary group id. */
  readonly gid: number;
}

/** A group. */
export interface GroupEntry {
  /** The group name. */
  readonly name: string;
  /** The group id. */
  readonly gid: number;
  /** The supplementary members' login names. */
  readonly members: readonly string[];
}

/** Most lines read from either file, a bound on memory. */
export const MAX_ACCOUNT_LINES = 1_000_000;

/**
 * Users and groups by name and id.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { UserDb } from "./user_db.ts";
 * const db = UserDb.parse(
 *   "root:x:0:0:root:/root:/bin/bash\nopendkim:x:110:117::/run/opendkim:/usr/sbin/nologin\n",
 *   "root:x:0:\nopendkim:x:117:postfix\n",
 * );
 * assert.equal(db.user("opendkim")?.uid, 110);
 * assert.equal(db.groupName(117), "opendkim");
 * assert.deepEqual(db.groupUsers(117), ["opendkim", "postfix"]);
 * ```
 */
export class UserDb {
  readonly #users: UserEntry[];
  readonly #groups: GroupEntry[];

  private constructor(users: UserEntry[], groups: GroupEntry[]) {
    this.#users = users;
    this.#groups = groups;
  }

  /** Parses passwd(5) and group(5) text; malformed lines are skipped, as getpwent(3) skips them. */
  static parse(passwd: string, group: string): UserDb {
    const users: UserEntry[] = [];
    for (const line of passwd.split("\n").slice(0, MAX_ACCOUNT_LINES)) {
      const f = line.split(":");
      if (f.length < 4 || !/^[0-9]+$/.test(f[2]) || !/^[0-9]+$/.test(f[3])) continue;
      users.push({ name: f[0], uid: Number(f[2]), gid: Number(f[3]) });
    }
    const groups: GroupEntry[] = [];
    for (const line of group.split("\n").slice(0, MAX_ACCOUNT_LINES)) {
      const f = line.split(":");
      if (f.length < 3 || !/^[0-9]+$/.test(f[2])) continue;
      const members = (f[3] ?? "").split(",").map((m) => m.trim()).filter((m) => m !== "");
      groups.push({ name: f[0], gid: Number(f[2]), members });
    }
    return new UserDb(users, groups);
  }

  /** The user with this name, or with this number if `nameOrId` is all digits. */
  user(nameOrId: string): UserEntry | undefined {
    if (/^[0-9]+$/.test(nameOrId)) {
      const uid = Number(nameOrId);
      return this.#users.find((u) => u.uid === uid) ?? { name: nameOrId, uid, gid: -1 };
    }
    return this.#users.find((u) => u.name === nameOrId);
  }

  /** The group with this name, or with this number if `nameOrId` is all digits. */
  group(nameOrId: string): GroupEntry | undefined {
    if (/^[0-9]+$/.test(nameOrId)) {
      const gid = Number(nameOrId);
      return this.#groups.find((g) => g.gid === gid) ?? { name: nameOrId, gid, members: [] };
    }
    return this.#groups.find((g) => g.name === nameOrId);
  }

  /** The login name of `uid`, or the number as text. */
  userName(uid: number): string {
    return this.#users.find((u) => u.uid === uid)?.name ?? String(uid);
  }

  /** The name of `gid`, or the number as text. */
  groupName(gid: number): string {
    return this.#groups.find((g) => g.gid === gid)?.name ?? String(gid);
  }

  /**
   * Every user in group `gid`: those whose primary group it is and its listed members, each
   * once, in that order.
   */
  groupUsers(gid: number): string[] {
    const out: string[] = [];
    for (const u of this.#users) if (u.gid === gid && !out.includes(u.name)) out.push(u.name);
    const g = this.#groups.find((x) => x.gid === gid);
    for (const m of g?.members ?? []) if (!out.includes(m)) out.push(m);
    return out;
  }
}
