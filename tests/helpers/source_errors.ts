/**
 * The promise every reader of configuration text keeps, whatever the bytes: it returns, or it
 * throws a typed error naming a place (a SourceError, or ConfigErrors made of them), never a
 * TypeError or a RangeError from deep inside.
 *
 * @module
 */
import assert from "node:assert/strict";
import { ConfigErrors } from "../../lib/config/config_error.ts";
import { SourceError } from "../../lib/policy/origin.ts";

/** Runs `fn`; asserts that whatever it throws is SourceErrors with a line. */
export function assertOnlySourceErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    const list = e instanceof ConfigErrors ? e.errors : [e];
    for (const x of list) {
      assert.ok(x instanceof SourceError, `untyped error: ${x}`);
      assert.ok(x.line >= 0);
    }
  }
}

/** The place hostile text is said to come from. */
export const HOSTILE_ORIGIN = { file: "f", line: 1 } as const;
