/**
 * The KeyTable entries `dkimd rotate` rotates, and how long each has signed. Apart from the
 * command because the file and database KeyTables both produce them, and the status printing and
 * the run both read their age.
 *
 * @module
 */
import { isAbsolute, join, normalize } from "node:path";
import type { Config } from "../config/schema.ts";
import { keySignedSince, type RotatedKey, type Rotation } from "../rotate/rotation.ts";

/** A KeyTable entry that rotates, with where its line is (a file) or its row (a database). */
export interface Candidate extends RotatedKey {
  /** The KeyTable file, for a file KeyTable. */
  readonly file?: string;
  /** The entry's line there. */
  readonly line?: number;
}

/** `path` (a key file's, from the KeyTable or DNSUpdateKey) resolved against BaseDirectory. */
export function keyPath(path: string, config: Config): string {
  if (isAbsolute(path)) return path;
  return normalize(join(baseDirectory(config), path));
}

/** BaseDirectory as an absolute path (the working directory when it is unset or relative). */
export function baseDirectory(config: Config): string {
  const base = config.baseDirectory ?? ".";
  return isAbsolute(base) ? base : join(Deno.cwd(), base);
}

/**
 * How long `key` has signed, in seconds: since the activation the state file recorded for it
 * ({@link keySignedSince}), else since its file's mtime (a key rotate did not make).
 */
export async function keyAge(
  key: Candidate,
  rotations: readonly Rotation[],
  now: number,
): Promise<number> {
  const since = keySignedSince(rotations, key.keyName, key.selector) ??
    Math.floor(((await Deno.stat(key.keyFile)).mtime?.getTime() ?? now * 1000) / 1000);
  return Math.max(0, now - since);
}
