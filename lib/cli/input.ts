/**
 * Reading a message for `sign` and `verify`: from a file or standard input, with Unix line ends
 * made CRLF for DKIM and made LF again on output.
 *
 * @module
 */
import { concat, CR, LF } from "../bytes.ts";
import { UsageError } from "./args.ts";

/** Largest message read from a file or stdin: far above real mail, below memory trouble. */
export const MAX_MESSAGE_BYTES = 256 * 1024 * 1024;

/** A message as read, in the CRLF form DKIM hashes. */
export interface InputMessage {
  /** The message with CRLF line ends. */
  readonly bytes: Uint8Array;
  /** True when the input used bare LF line ends (a Unix file), so output should too. */
  readonly unixLineEnds: boolean;
  /** The original bytes. */
  readonly original: Uint8Array;
}

// How errors name the input: the file, or standard input for `-` or no path.
function inputName(path: string | undefined): string {
  return path === undefined || path === "-" ? "standard input" : `"${path}"`;
}

/** Reads `path` (or standard input for `-` or no path), naming the file in errors. */
export async function readMessage(command: string, path?: string): Promise<InputMessage> {
  let original: Uint8Array;
  const name = inputName(path);
  try {
    original = path === undefined || path === "-"
      ? await readAll(Deno.stdin.readable)
      : await Deno.readFile(path);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    const why = e instanceof Deno.errors.NotFound
      ? "no such file"
      : e instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : e instanceof Error
      ? e.message
      : String(e);
    throw new UsageError(`${command}: cannot read ${name}: ${why}`, { cause: e });
  }
  if (original.length === 0) throw new UsageError(`${command}: ${name} is empty, not a message`);
  const unixLineEnds = original.includes(LF) && !original.includes(CR);
  return { bytes: unixLineEnds ? lfToCrlf(original) : original, unixLineEnds, original };
}

/** The usage error for input at `path` that `command` could not parse as a message. */
export function notAMessage(command: string, path: string | undefined, e: Error): UsageError {
  return new UsageError(`${command}: ${inputName(path)} is not a message: ${e.message}`, {
    cause: e,
  });
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of stream) {
    length += chunk.length;
    if (length > MAX_MESSAGE_BYTES) {
      throw new UsageError(`standard input is larger than ${MAX_MESSAGE_BYTES} bytes`);
    }
    parts.push(chunk);
  }
  return concat(parts);
}

/** Turns every bare LF into CRLF. */
export function lfToCrlf(bytes: Uint8Array): Uint8Array {
  let count = 0;
  for (let i = 0; i < bytes.length; i++) if (bytes[i] === LF && bytes[i - 1] !== CR) count++;
  const out = new Uint8Array(bytes.length + count);
  let o = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === LF && bytes[i - 1] !== CR) out[o++] = CR;
    out[o++] = bytes[i];
  }
  return out;
}

/** Turns every CRLF into LF, for output to a Unix file. */
export function crlfToLf(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length);
  let o = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === CR && bytes[i + 1] === LF) continue;
    out[o++] = bytes[i];
  }
  return out.subarray(0, o);
}

/** Writes all of `bytes` to standard output. */
export async function writeStdout(bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await Deno.stdout.write(bytes.subarray(offset));
}
