/**
 * The capabilities loading a configuration needs, passed in rather than taken from `Deno.`, so
 * tests load from memory ({@link LoadIo}) and the key importer is lib/crypto's
 * `importPrivateKey`; {@link denoLoadIo} is the real one, the loader's only tie to the system.
 *
 * @module
 */

import type { DatabaseSource } from "../policy/dataset.ts";
import type { PrivateKeyInfo } from "../policy/key_table.ts";
import type { BackendOptions } from "../tables/backend_options.ts";
import type { LdapOptions } from "../tables/ldap_backend.ts";
import type { TableBackend } from "../tables/table_backend.ts";
import type { CryptoBackendName } from "../crypto/crypto_backend.ts";
import type { FileInfo } from "./limited_read.ts";
import { UserDb } from "./user_db.ts";

export type { FileInfo } from "./limited_read.ts";

/** The capabilities loading needs. */
export interface LoadIo<K extends PrivateKeyInfo> {
  /** Reads a whole file. */
  readFile(path: string): Promise<Uint8Array>;
  /** stat(2), following symbolic links. */
  stat(path: string): Promise<FileInfo>;
  /** realpath(3). */
  realPath(path: string): Promise<string>;
  /**
   * Imports a private key (lib/crypto's `importPrivateKey`) with the configuration's
   * CryptoBackend; rejects with a `KeyError`.
   */
  importKey(input: Uint8Array | string, source?: string, backend?: CryptoBackendName): Promise<K>;
  /** The effective uid, or null where there is none. */
  euid(): number | null;
  /** The working directory, against which relative paths resolve without BaseDirectory. */
  cwd(): string;
  /** The account database, or undefined when it cannot be read. */
  accounts(): Promise<UserDb | undefined>;
  /** systemd's `$CREDENTIALS_DIRECTORY` (LoadCredential=), when set and readable. */
  credentialsDirectory?(): string | undefined;
  /**
   * Opens the back end of a `dsn:` or `ldap:` data set; `directory` is where a relative SQLite
   * file lives, and `warn` takes what the load should warn about (a SQLite file that is not
   * the one OpenDKIM opens). Default: database_data_sets.ts' `openDatabase`.
   */
  openTable?(
    source: DatabaseSource,
    options: BackendOptions & LdapOptions,
    directory: string,
    warn?: (message: string) => void,
  ): TableBackend | Promise<TableBackend>;
}

/**
 * The real I/O: Deno's file system, `/etc/passwd` and `/etc/group`, and the given importer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { denoLoadIo } from "./load_io.ts";
 * const io = denoLoadIo(() => Promise.reject(new Error("no keys here")));
 * assert.equal(typeof io.cwd(), "string");
 * ```
 */
export function denoLoadIo<K extends PrivateKeyInfo>(
  importKey: (
    input: Uint8Array | string,
    source?: string,
    backend?: CryptoBackendName,
  ) => Promise<K>,
): LoadIo<K> {
  return {
    readFile: (path) => Deno.readFile(path),
    stat: (path) => Deno.stat(path),
    realPath: (path) => Deno.realPath(path),
    importKey,
    euid: () => Deno.uid(),
    cwd: () => Deno.cwd(),
    credentialsDirectory: () => {
      try {
        return Deno.env.get("CREDENTIALS_DIRECTORY");
      } catch {
        return undefined; // not in --allow-env: as if unset
      }
    },
    accounts: async () => {
      try {
        const [passwd, group] = await Promise.all([
          Deno.readTextFile("/etc/passwd"),
          Deno.readTextFile("/etc/group"),
        ]);
        return UserDb.parse(passwd, group);
      } catch {
        return undefined;
      }
    },
  };
}
