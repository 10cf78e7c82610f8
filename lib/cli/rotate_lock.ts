/**
 * `dkimd rotate`'s run lock: one run that changes anything at a time, holding
 * `RotationStateFile` + `.lock` (lib/ops/run_lock.ts) from before it reads the KeyTable to its
 * exit. Apart from the command because where the lock lives, and what a held lock means (exit
 * 75, not an error), is its own decision.
 *
 * @module
 */
import { errorMessage } from "../error_message.ts";
import { acquireRunLock, type RunLock, RunLockHeldError } from "../ops/run_lock.ts";
import { ROTATE_EXIT } from "./rotate_exit.ts";
import { loadRuntime } from "./runtime.ts";

/** The run lock's file: `RotationStateFile` with this appended, beside it. */
export const ROTATE_LOCK_SUFFIX = ".lock";

/**
 * Takes the run lock beside the configuration's RotationStateFile into `opened`; resolves the
 * exit status when the run must stop instead (the lock held, or an error, said on stderr).
 */
export async function takeRunLock(
  configPath: string,
  opened: { lock?: RunLock },
  err: (line: string) => void,
): Promise<number | undefined> {
  try {
    const { loaded } = await loadRuntime(configPath);
    await Promise.all(loaded.tables.map((t) => t.close().catch(() => {})));
    opened.lock = await acquireRunLock(`${loaded.config.rotationStateFile}${ROTATE_LOCK_SUFFIX}`);
    return undefined;
  } catch (error) {
    err(`dkimd rotate: ${errorMessage(error)}`);
    return error instanceof RunLockHeldError ? ROTATE_EXIT.locked : ROTATE_EXIT.error;
  }
}
