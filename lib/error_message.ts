/**
 * The words for a thrown value, in log lines and error messages: what every layer says when
 * something it called failed. A thrown value need not be an `Error`, nor even turn into a string
 * (`Object.create(null)`), and describing it must never throw in turn: the description is
 * usually on the way to a log line or to the MTA's reply.
 *
 * @module
 */

/** What {@link errorMessage} says of a value that cannot be shown as text. */
const UNSHOWABLE = "a value that cannot be shown";

function show(value: unknown): string {
  try {
    return String(value);
  } catch {
    return UNSHOWABLE;
  }
}

/**
 * The message of an `Error`, or the value as text; never throws.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { errorMessage } from "./error_message.ts";
 * assert.equal(errorMessage(new RangeError("too big")), "too big");
 * assert.equal(errorMessage("plain"), "plain");
 * assert.equal(errorMessage(Object.create(null)), "a value that cannot be shown");
 * ```
 */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : show(e);
}

/**
 * The name and message of an `Error` (`TypeError: x is not a function`), for reports of
 * failures that are bugs, where the kind matters; other values as text. Never throws.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { errorDescription } from "./error_message.ts";
 * assert.equal(errorDescription(new TypeError("boom")), "TypeError: boom");
 * assert.equal(errorDescription(42), "42");
 * ```
 */
export function errorDescription(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : show(e);
}

/**
 * A file operation's failure in the words of strerror(3) for the two a user fixes, and the
 * message otherwise: "no such file or directory", "permission denied".
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fileErrorMessage } from "./error_message.ts";
 * assert.equal(fileErrorMessage(new Deno.errors.NotFound("open '/x'")), "no such file or directory");
 * assert.equal(fileErrorMessage(new Error("larger than 10 bytes")), "larger than 10 bytes");
 * ```
 */
export function fileErrorMessage(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "no such file or directory";
  if (e instanceof Deno.errors.PermissionDenied) return "permission denied";
  return errorMessage(e);
}
