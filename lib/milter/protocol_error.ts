/**
 * The error for a peer that broke the milter protocol, thrown by the frame decoder and by the
 * command and reply codecs alike, so the server has one thing to catch before it closes the
 * connection.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MilterProtocolError } from "./protocol_error.ts";
 * const error = new MilterProtocolError("Malformed milter HELO command: missing NUL", 0x48);
 * assert.ok(error instanceof SyntaxError);
 * assert.equal(error.code, 0x48);
 * ```
 *
 * @module
 */

/**
 * The peer broke the milter protocol: a frame too large or empty, a truncated or malformed
 * payload, or a value that cannot be encoded. The connection cannot be trusted to stay in step
 * after this, so the server closes it; no reply is owed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeCommand } from "./command.ts";
 * import { MilterProtocolError } from "./protocol_error.ts";
 * assert.throws(
 *   () => decodeCommand({ code: 0x48, data: new Uint8Array([0x61]) }),
 *   MilterProtocolError,
 * );
 * ```
 */
export class MilterProtocolError extends SyntaxError {
  /** The command or reply byte of the offending frame, when known. */
  readonly code?: number;
  /** For a frame over the size limit: the length its prefix announced, and the limit. */
  readonly oversized?: { readonly length: number; readonly limit: number };

  /** Makes an error about the frame with byte `code`. */
  constructor(
    message: string,
    code?: number,
    options?: ErrorOptions & { oversized?: { length: number; limit: number } },
  ) {
    super(message, options);
    this.name = "MilterProtocolError";
    this.code = code;
    if (options?.oversized) this.oversized = { ...options.oversized };
  }
}
