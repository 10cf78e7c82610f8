/**
 * Loggers that keep their lines in memory, for tests that assert what was logged: a
 * {@link MilterLogger} for the milter library and the filter, and the service's {@link Logger}
 * (with `notice`, a destination and `close()`) for the supervisor.
 *
 * @module
 */

import type { MilterLogger } from "../../lib/milter/logger.ts";
import type { Logger, LogLevel } from "../../lib/ops/log.ts";

/** One logged line with its level. */
export interface LogLine {
  readonly level: LogLevel;
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

  /** Every line as `level: message`, one a line: for assertions on the whole log. */
  text(): string {
    return this.lines.map((l) => `${l.level}: ${l.message}`).join("\n");
  }
}

/** A {@link MemoryLogger} that is also the service's {@link Logger}, writing "to stderr". */
export class MemoryServiceLogger extends MemoryLogger implements Logger {
  readonly destination = "stderr" as const;

  notice(message: string): void {
    this.lines.push({ level: "notice", message });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
