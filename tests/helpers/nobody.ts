/**
 * The machine's unprivileged user `nobody`, as UserID resolves it, for tests that run something
 * as another user (they run as root, and are skipped otherwise).
 *
 * @module
 */
import assert from "node:assert/strict";
import { readUserDb, resolveRunAs, type RunAs } from "../../lib/ops/run_as.ts";

/** `UserID nobody`, resolved from the machine's /etc/passwd and /etc/group. */
export async function nobody(): Promise<RunAs> {
  const db = await readUserDb();
  const user = db.user("nobody");
  assert.ok(user, "the system has a nobody user");
  return resolveRunAs({ user: "nobody" }, db);
}
