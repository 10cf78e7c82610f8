/**
 * Where the milter layer's log lines go. Structural, so the operations layer passes its own
 * journal or syslog logger and tests pass a recording one, and the milter layer never imports
 * either.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { MilterLogger } from "./logger.ts";
 * const lines: string[] = [];
 * const logger: MilterLogger = {
 *   debug() {},
 *   info(message) { lines.push(message); },
 *   warn(message) { lines.push(message); },
 *   error(message) { lines.push(message); },
 * };
 * logger.warn("7: HELO inside a transaction: aborting it");
 * assert.deepEqual(lines, ["7: HELO inside a transaction: aborting it"]);
 * ```
 *
 * @module
 */

/**
 * Where log lines go. Structural, so the operations layer can pass its own logger; every line is
 * a complete sentence with the connection's label in front.
 */
export interface MilterLogger {
  /** Protocol detail, off in production. */
  debug(message: string): void;
  /** Normal events worth a line. */
  info(message: string): void;
  /** Something unexpected that was handled. */
  warn(message: string): void;
  /** A failure: a filter error, a broken connection. */
  error(message: string): void;
}
