/**
 * A {@link LoadIo} over files held in memory, for loading configurations without writing
 * temporary files. Files are owned by root with mode 0600, and every directory above one exists
 * with mode 0755, as RequireSafeKeys wants; a path held nowhere does not exist, or, with
 * `fallback`, is asked of it (the real file system, for tests that overlay a few files on it).
 *
 * @module
 */
import type { FileInfo, LoadIo } from "../../lib/config/load.ts";
import type { UserDb } from "../../lib/config/user_db.ts";
import { importPrivateKey, type SigningKey } from "../../lib/crypto/private_key.ts";

/** How {@link memoryIo} answers what files do not say. */
export interface MemoryIoOptions {
  /** Where paths not held in memory go; without it they do not exist. */
  readonly fallback?: LoadIo<SigningKey>;
  /** The key importer (default: the fallback's, else lib/crypto's `importPrivateKey`). */
  readonly importKey?: LoadIo<SigningKey>["importKey"];
  /** The working directory (default: the fallback's, else `/`). */
  readonly cwd?: string;
}

/** Files in memory by absolute path, as text or bytes. */
export type MemoryFiles =
  | Readonly<Record<string, string | Uint8Array>>
  | ReadonlyMap<string, string | Uint8Array>;

/** The I/O of loading, over `files`. */
export function memoryIo(files: MemoryFiles, options: MemoryIoOptions = {}): LoadIo<SigningKey> {
  const held = new Map<string, Uint8Array>();
  const entries = files instanceof Map ? files.entries() : Object.entries(files);
  for (const [path, content] of entries) {
    held.set(path, typeof content === "string" ? new TextEncoder().encode(content) : content);
  }
  const isDirectory = (path: string) => {
    const prefix = path.endsWith("/") ? path : `${path}/`;
    for (const file of held.keys()) if (file.startsWith(prefix)) return true;
    return false;
  };
  const info = (path: string): FileInfo | undefined => {
    const file = held.get(path);
    if (file) {
      return {
        isFile: true,
        isDirectory: false,
        mode: 0o100600,
        uid: 0,
        gid: 0,
        size: file.length,
      };
    }
    if (isDirectory(path)) {
      return { isFile: false, isDirectory: true, mode: 0o40755, uid: 0, gid: 0, size: 4096 };
    }
    return undefined;
  };
  const { fallback } = options;
  const absent = (path: string) => new Deno.errors.NotFound(`No such file or directory: "${path}"`);
  return {
    readFile: (path) => {
      const file = held.get(path);
      if (file) return Promise.resolve(file);
      return fallback ? fallback.readFile(path) : Promise.reject(absent(path));
    },
    stat: (path) => {
      const found = info(path);
      if (found) return Promise.resolve(found);
      return fallback ? fallback.stat(path) : Promise.reject(absent(path));
    },
    realPath: (path) => {
      if (info(path)) return Promise.resolve(path);
      return fallback ? fallback.realPath(path) : Promise.reject(absent(path));
    },
    importKey: options.importKey ?? fallback?.importKey ?? importPrivateKey,
    euid: () => fallback ? fallback.euid() : 0,
    cwd: () => options.cwd ?? fallback?.cwd() ?? "/",
    accounts: (): Promise<UserDb | undefined> =>
      fallback ? fallback.accounts() : Promise.resolve(undefined),
  };
}
