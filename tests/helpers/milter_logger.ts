/**
 * A {@link MilterLogger} that keeps its lines in memory, for tests that assert what was logged.
 *
 * @module
 */

import type { MilterLogger } from "../../lib/milter/logger.ts";

/** One logged line with its level. */
export interface LogLine {
  readonly level: "debug" | "info" | "warn" | "error";
  readonly message: string;
}

/** Records every line; `find()` looks one up by level and pattern. */
export class MemoryLogger implements MilterLogger {
  readonly lines: LogLine[] = [];

  debug(message: string): void {
    this.lines.push({ level: "debug", message });
  }

  info(message: string): void {
    this.lines.push({ level: "info", message });
  }

  warn(message: string): void {
    this.lines.push({ level: "warn", message });
  }

  error(message: string): void {
    this.lines.push({ level: "error", message });
  }

  /** The first line of `level` whose message matches `pattern`. */
  find(level: LogLine["level"], pattern: RegExp): LogLine | undefined {
    return this.lines.find((l) => l.level === level && pattern.test(l.message));
  }

  /** The lines at `level`. */
  at(level: LogLine["level"]): string[] {
    return this.lines.filter((l) => l.level === level).map((l) => l.message);
  }
}
