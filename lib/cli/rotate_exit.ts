/**
 * `dkimd rotate`'s exit statuses, in a file of their own: the command, its run lock and the tests
 * that drive it all name them, and none of those may import the others in a cycle.
 *
 * @module
 */

/** `dkimd rotate`'s exit statuses. */
export const ROTATE_EXIT = {
  /** Every rotation is done, or waits for a time to pass. */
  ok: 0,
  /** An error: one line each on standard error. */
  error: 1,
  /** Some rotation waits for DNS (EX_TEMPFAIL): run again later. */
  waiting: 75,
  /**
   * Another run holds the lock (EX_TEMPFAIL too: run again later). Not an error: the timer
   * firing while an administrator runs rotate by hand is normal, and the unit counts 75 as
   * success.
   */
  locked: 75,
} as const;
