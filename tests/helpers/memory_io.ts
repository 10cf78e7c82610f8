/**
 * A {@link LoadIo} over files held in memory, for loading configurations and reading key files
 * without writing temporary files. A file given as text or bytes is owned by root with mode
 * 0600, and every directory above a file exists with mode 0755, as RequireSafeKeys wants; a
 * {@link MemoryNode} sets a file's or a directory's owner and mode itself. A path held nowhere
 * does not exist, or, with `fallback`, is asked of it (the real file system, for tests that
 * overlay a few files on it).
 *
 * @module
 */
import type { FileInfo, LoadIo } from "../../lib/config/load.ts";
import type { UserDb } from "../../lib/config/user_db.ts";
import { importPrivateKey, type SigningKey } from "../../lib/crypto/private_key.ts";

/** A file (with `data`) or a directory (without), with what stat(2) says of it. */
export interface MemoryNode {
  /** st_mode, as stat(2) gives it (default 0o100600 for a file, 0o40755 for a directory). */
  readonly mode?: number;
  /** The owner (default root). */
  readonly uid?: number;
  /** The group (default root). */
  readonly gid?: number;
  /** A file's contents; a node without is a directory. */
  readonly data?: string | Uint8Array;
  /** What the file holds when it is read, if not `data` (it grew after stat()). */
  readonly readAs?: Uint8Array;
}

/** How {@link memoryIo} answers what files do not say. */
export interface MemoryIoOptions {
  /** Where paths not held in memory go; without it they do not exist. */
  readonly fallback?: LoadIo<SigningKey>;
  /** The key importer (default: the fallback's, else lib/crypto's `importPrivateKey`). */
  readonly importKey?: LoadIo<SigningKey>["importKey"];
  /** The working directory (default: the fallback's, else `/`). */
  readonly cwd?: string;
  /** Symbolic links: what realpath(3) resolves each path to. */
  readonly links?: Readonly<Record<string, string>>;
  /** The account database (default: the fallback's, else none). */
  readonly accounts?: UserDb;
}

/** Files in memory by absolute path: text, bytes, or a node with its owner and mode. */
export type MemoryFiles =
  | Readonly<Record<string, string | Uint8Array | MemoryNode>>
  | ReadonlyMap<string, string | Uint8Array | MemoryNode>;

interface Held {
  readonly info: FileInfo;
  readonly data?: Uint8Array;
  readonly readAs?: Uint8Array;
}

const bytesOf = (data: string | Uint8Array) =>
  typeof data === "string" ? new TextEncoder().encode(data) : data;

function hold(content: string | Uint8Array | MemoryNode): Held {
  const node: MemoryNode = typeof content === "string" || content instanceof Uint8Array
    ? { data: content }
    : content;
  const data = node.data === undefined ? undefined : bytesOf(node.data);
  const file = data !== undefined;
  return {
    info: {
      isFile: file,
      isDirectory: !file,
      mode: node.mode ?? (file ? 0o100600 : 0o40755),
      uid: node.uid ?? 0,
      gid: node.gid ?? 0,
      size: data?.length ?? 4096,
    },
    data,
    readAs: node.readAs,
  };
}

/** The I/O of loading, over `files`. */
export function memoryIo(files: MemoryFiles, options: MemoryIoOptions = {}): LoadIo<SigningKey> {
  const held = new Map<string, Held>();
  const entries = files instanceof Map ? files.entries() : Object.entries(files);
  for (const [path, content] of entries) held.set(path, hold(content));
  const isDirectory = (path: string) => {
    const prefix = path.endsWith("/") ? path : `${path}/`;
    for (const name of held.keys()) if (name.startsWith(prefix)) return true;
    return false;
  };
  const implicitDirectory: FileInfo = {
    isFile: false,
    isDirectory: true,
    mode: 0o40755,
    uid: 0,
    gid: 0,
    size: 4096,
  };
  const info = (path: string): FileInfo | undefined =>
    held.get(path)?.info ?? (isDirectory(path) ? implicitDirectory : undefined);
  const { fallback, links = {} } = options;
  const absent = (path: string) => new Deno.errors.NotFound(`No such file or directory: "${path}"`);
  return {
    readFile: (path) => {
      const file = held.get(path);
      if (file?.data) return Promise.resolve(file.readAs ?? file.data);
      if (file) return Promise.reject(new Deno.errors.IsADirectory(`Is a directory: "${path}"`));
      return fallback ? fallback.readFile(path) : Promise.reject(absent(path));
    },
    stat: (path) => {
      const found = info(path);
      if (found) return Promise.resolve(found);
      return fallback ? fallback.stat(path) : Promise.reject(absent(path));
    },
    realPath: (path) => {
      if (links[path] !== undefined) return Promise.resolve(links[path]);
      if (info(path)) return Promise.resolve(path);
      return fallback ? fallback.realPath(path) : Promise.reject(absent(path));
    },
    importKey: options.importKey ?? fallback?.importKey ?? importPrivateKey,
    euid: () => fallback ? fallback.euid() : 0,
    cwd: () => options.cwd ?? fallback?.cwd() ?? "/",
    accounts: (): Promise<UserDb | undefined> =>
      options.accounts
        ? Promise.resolve(options.accounts)
        : fallback
        ? fallback.accounts()
        : Promise.resolve(undefined),
  };
}
