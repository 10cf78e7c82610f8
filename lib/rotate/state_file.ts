/**
 * The rotation state file (`RotationStateFile`) and the atomic file replacement every rotation
 * write uses: a new file beside the old one, written, fsynced, renamed over it, and the
 * directory fsynced, so a crash leaves either the old file or the new one, never a mix
 * (rename(2) is atomic within a file system). The rotation layer's file edge.
 *
 * @module
 */

import { basename, dirname } from "node:path";
import type { Rotation, RotationStep } from "./rotation.ts";

/** The state file's format version. */
export const ROTATION_STATE_VERSION = 1;

/** Largest state file read: thousands of rotations fit in far less. */
export const MAX_ROTATION_STATE_BYTES = 4 * 1024 * 1024;

/** What the state file holds. */
export interface RotationState {
  /** {@link ROTATION_STATE_VERSION}. */
  readonly version: number;
  /** Every rotation, finished ones included (their selectors are never reused). */
  readonly rotations: readonly Rotation[];
}

/** A state file that cannot be read or written; names the file. */
export class RotationStateError extends Error {
  /** Makes the error: `Cannot read the rotation state file "PATH": DETAIL`. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RotationStateError";
  }
}

const STEPS: readonly RotationStep[] = [
  "generate",
  "publish",
  "prove",
  "activate",
  "retire",
  "prove-revoked",
  "delete",
  "done",
];

function checkRotation(value: unknown, path: string, index: number): Rotation {
  const fail = (why: string) =>
    new RotationStateError(
      `Cannot read the rotation state file "${path}": rotation ${index + 1} ${why}`,
    );
  if (typeof value !== "object" || value === null) throw fail("is not an object");
  const r = value as Record<string, unknown>;
  for (
    const field of [
      "keyName",
      "domain",
      "keyType",
      "oldSelector",
      "oldKeyFile",
      "newSelector",
      "newKeyFile",
    ]
  ) {
    if (typeof r[field] !== "string") throw fail(`has no "${field}"`);
  }
  if (r.keyType !== "rsa" && r.keyType !== "ed25519") throw fail(`has key type "${r.keyType}"`);
  if (!STEPS.includes(r.step as RotationStep)) throw fail(`has an unknown step "${r.step}"`);
  for (const field of ["startedAt", "updatedAt"]) {
    if (typeof r[field] !== "number") throw fail(`has no "${field}"`);
  }
  return r as unknown as Rotation;
}

/**
 * Reads the state file at `path`; a missing file is an empty state. Rejects with
 * {@link RotationStateError} for a file that is not a state file of this version.
 */
export async function readRotationState(path: string): Promise<RotationState> {
  let text: string;
  try {
    const info = await Deno.stat(path);
    if (info.size > MAX_ROTATION_STATE_BYTES) {
      throw new RotationStateError(
        `Cannot read the rotation state file "${path}": larger than ${MAX_ROTATION_STATE_BYTES} bytes`,
      );
    }
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return { version: ROTATION_STATE_VERSION, rotations: [] };
    }
    if (error instanceof RotationStateError) throw error;
    throw new RotationStateError(
      `Cannot read the rotation state file "${path}": ${(error as Error).message}`,
      { cause: error },
    );
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new RotationStateError(
      `Cannot read the rotation state file "${path}": not JSON (${(error as Error).message})`,
      { cause: error },
    );
  }
  const state = data as { version?: unknown; rotations?: unknown };
  if (state?.version !== ROTATION_STATE_VERSION || !Array.isArray(state.rotations)) {
    throw new RotationStateError(
      `Cannot read the rotation state file "${path}": expected version ${ROTATION_STATE_VERSION} with a "rotations" list`,
    );
  }
  return {
    version: ROTATION_STATE_VERSION,
    rotations: state.rotations.map((r, i) => checkRotation(r, path, i)),
  };
}

/**
 * Replaces the file at `path` with `bytes` atomically: a temporary file in the same directory
 * (created exclusively with `mode`), written and fsynced, renamed over `path`, then the directory
 * fsynced so the rename itself survives a crash.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeFileAtomic } from "./state_file.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomic(`${dir}/f`, new TextEncoder().encode("one"), 0o600);
 * await writeFileAtomic(`${dir}/f`, new TextEncoder().encode("two"), 0o600);
 * assert.equal(await Deno.readTextFile(`${dir}/f`), "two");
 * assert.equal((await Deno.stat(`${dir}/f`)).mode! & 0o777, 0o600);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeFileAtomic(
  path: string,
  bytes: Uint8Array,
  mode: number,
): Promise<void> {
  const dir = dirname(path);
  const temp = `${dir}/.${basename(path)}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    const file = await Deno.open(temp, { write: true, createNew: true, mode });
    try {
      for (let written = 0; written < bytes.length;) {
        written += await file.write(bytes.subarray(written));
      }
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.chmod(temp, mode); // the umask may have narrowed it
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
  const d = await Deno.open(dir, { read: true });
  try {
    await d.sync();
  } catch {
    // Some file systems cannot fsync a directory; the rename is still atomic.
  } finally {
    d.close();
  }
}

/**
 * Whether `name` (a file name, no directory) is a temporary file {@link writeFileAtomic} makes
 * for the file named `target`: `.TARGET.XXXXXXXX.tmp`, eight lowercase hex digits, nothing else.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isTempFileOf } from "./state_file.ts";
 * assert.ok(isTempFileOf(".key.table.0a1b2c3d.tmp", "key.table"));
 * assert.ok(!isTempFileOf(".key.table.tmp", "key.table"));
 * assert.ok(!isTempFileOf(".key.table.0a1b2c3d9.tmp", "key.table"));
 * assert.ok(!isTempFileOf(".other.table.0a1b2c3d.tmp", "key.table"));
 * ```
 */
export function isTempFileOf(name: string, target: string): boolean {
  const prefix = `.${target}.`;
  return name.startsWith(prefix) && /^[0-9a-f]{8}\.tmp$/.test(name.slice(prefix.length));
}

/**
 * Removes the temporary files a killed {@link writeFileAtomic} left beside each of `paths` (a
 * kill between the write and the rename leaves one; the new private key's is a key, 0600 but
 * still a key); only names {@link isTempFileOf} accepts, and only regular files. Resolves the
 * paths removed. A missing directory has none.
 *
 * Two runs at once would race here as they do on the state file: `dkimd rotate` holds its run
 * lock (lib/ops/run_lock.ts) before it calls this.
 */
export async function removeLeftoverTempFiles(paths: Iterable<string>): Promise<string[]> {
  const byDir = new Map<string, Set<string>>();
  for (const path of paths) {
    const dir = dirname(path);
    const names = byDir.get(dir) ?? new Set<string>();
    names.add(basename(path));
    byDir.set(dir, names);
  }
  const removed: string[] = [];
  for (const [dir, targets] of byDir) {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) continue;
      throw error;
    }
    for (const e of entries) {
      if (!e.isFile || ![...targets].some((t) => isTempFileOf(e.name, t))) continue;
      const path = `${dir}/${e.name}`;
      try {
        await Deno.remove(path);
        removed.push(path);
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
    }
  }
  return removed;
}

/** Writes `state` to `path` atomically (mode 0600: it names key files). */
export async function writeRotationState(path: string, state: RotationState): Promise<void> {
  try {
    await Deno.mkdir(dirname(path), { recursive: true, mode: 0o750 });
    await writeFileAtomic(
      path,
      new TextEncoder().encode(JSON.stringify(state, null, 2) + "\n"),
      0o600,
    );
  } catch (error) {
    throw new RotationStateError(
      `Cannot write the rotation state file "${path}": ${(error as Error).message}`,
      { cause: error },
    );
  }
}
