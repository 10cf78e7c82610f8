/**
 * Reading a whole file no larger than a limit, through passed-in I/O: configuration, data sets
 * and key files are read this way, so a wrong path (a device, a log) is refused by its size
 * before it is held in memory (DESIGN.md: "every buffer has a limit").
 *
 * @module
 */

/**
 * Largest YAML configuration read, a bound on memory and parse time. (Here rather than in
 * yaml_conf.ts, so the loader can size its read without loading the YAML parser.)
 */
export const MAX_YAML_BYTES = 4 * 1024 * 1024;

/** What {@link FileReadIo.stat} reports: Deno.FileInfo's fields that matter here. */
export interface FileInfo {
  /** True for a regular file. */
  readonly isFile: boolean;
  /** True for a directory. */
  readonly isDirectory: boolean;
  /** st_mode, or null where the platform has none. */
  readonly mode: number | null;
  /** Owner uid, or null where the platform has none. */
  readonly uid: number | null;
  /** Group gid, or null where the platform has none. */
  readonly gid: number | null;
  /** Size in bytes. */
  readonly size: number;
}

/** The I/O {@link readLimited} needs; the loader's `LoadIo` has it. */
export interface FileReadIo {
  /** Reads a whole file. */
  readFile(path: string): Promise<Uint8Array>;
  /** stat(2), following symbolic links. */
  stat(path: string): Promise<FileInfo>;
}

/**
 * Reads the regular file at `path` if it is at most `limit` bytes, checked before the read and
 * again after it (the file may grow in between). Rejects with `Error("not a regular file")` or
 * `Error("larger than <limit> bytes")`, and with what `io` throws (Deno's `NotFound`...).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readLimited } from "./limited_read.ts";
 * const io = {
 *   stat: () => Promise.resolve({ isFile: true, isDirectory: false, mode: 0o600, uid: 0, gid: 0, size: 3 }),
 *   readFile: () => Promise.resolve(Uint8Array.of(1, 2, 3)),
 * };
 * assert.deepEqual(await readLimited(io, "/k", 3), Uint8Array.of(1, 2, 3));
 * await assert.rejects(readLimited(io, "/k", 2), { message: "larger than 2 bytes" });
 * ```
 */
export async function readLimited(
  io: FileReadIo,
  path: string,
  limit: number,
): Promise<Uint8Array> {
  const info = await io.stat(path);
  if (!info.isFile) throw new Error("not a regular file");
  if (info.size > limit) throw new Error(`larger than ${limit} bytes`);
  const bytes = await io.readFile(path);
  if (bytes.length > limit) throw new Error(`larger than ${limit} bytes`);
  return bytes;
}
