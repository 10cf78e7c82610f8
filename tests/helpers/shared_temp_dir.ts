/**
 * Temporary directories another user must reach: tests that check files as UserID's user, or
 * run a worker as that user, need every directory above theirs searchable by it.
 *
 * @module
 */

/** Where such directories go: /tmp, searchable by every user (mode 1777 on Linux). */
export const SHARED_TEMP_PARENT = "/tmp";

/**
 * Makes a new directory under {@link SHARED_TEMP_PARENT} with `mode`, not under `$TMPDIR`,
 * which may be private to the caller (libpam-tmpdir sets `/tmp/user/UID`, mode 0700; root's
 * `$HOME/tmp` is under `/root`), so that another user's view of it is the test's alone.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { makeSharedTempDir } from "./shared_temp_dir.ts";
 * const dir = await makeSharedTempDir(0o755);
 * assert.match(dir, /^\/tmp\//);
 * assert.equal((await Deno.stat(dir)).mode! & 0o777, 0o755);
 * await Deno.remove(dir);
 * ```
 */
export async function makeSharedTempDir(mode: number): Promise<string> {
  const dir = await Deno.makeTempDir({ dir: SHARED_TEMP_PARENT, prefix: "dkimd-shared-" });
  await Deno.chmod(dir, mode);
  return dir;
}
