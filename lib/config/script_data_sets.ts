/**
 * The data sets a Lua policy script opens itself with `odkim.db_open(name[, icase])`
 * (opendkim-lua(3)): any spec a data set setting takes (a file, `file:`, `refile:`, `csl:` or a
 * bare list, `dsn:`, an LDAP URI), opened as the configuration's own data sets are, with the
 * DataSet* and LDAP* settings, relative paths under BaseDirectory.
 *
 * OpenDKIM opens the set on every call (dkimf_db_open()) and closes it when the Lua state is
 * collected; dkimd does the same, per call: a file is read then, and a database back end is
 * closed when the script's call ends, so a script cannot leave connections behind. Keys are
 * compared as OpenDKIM compares them: exactly, or ASCII case-insensitively when `icase` is
 * true; a `refile:` set's keys are wildcard patterns, as in `refile:` SigningTables.
 *
 * @module
 */
import { CachedTable } from "../tables/cached_table.ts";
import type { TableBackend } from "../tables/table_backend.ts";
import type { BackendOptions } from "../tables/backend_options.ts";
import type { LdapOptions } from "../tables/ldap_backend.ts";
import type { DataSetLookup } from "../policy/data_set_lookup.ts";
import {
  type DatabaseSource,
  type DataSetEntry,
  MAX_DATA_SET_FILE_BYTES,
  parseDataSetFile,
  parseDataSetSpec,
  withOrigin,
} from "../policy/dataset.ts";
import { NameSet } from "../policy/name_set.ts";
import { wildcardMatch } from "../policy/signing_table.ts";
import type { ScriptDataSet } from "../lua/odkim_api.ts";
import { type FileInfo, readLimited } from "./limited_read.ts";

/** What opening needs: how to read a file, how to open a database, and with which options. */
export interface ScriptDataSetIo {
  /** Reads a whole file. */
  readFile(path: string): Promise<Uint8Array>;
  /** stat(2), following symbolic links. */
  stat(path: string): Promise<FileInfo>;
  /** A relative path made absolute (BaseDirectory). */
  resolve(path: string): string;
  /** Opens a `dsn:` or `ldap:` back end, as the configuration's own data sets are opened. */
  openTable(
    source: DatabaseSource,
    options: BackendOptions & LdapOptions,
  ): TableBackend | Promise<TableBackend>;
  /** The options of `dsn:` sets. */
  readonly dsnOptions: BackendOptions;
  /** The options of LDAP sets. */
  readonly ldapOptions: BackendOptions & LdapOptions;
}

/** A `refile:` set: the first pattern that matches the key. */
class PatternSet implements DataSetLookup {
  constructor(readonly entries: readonly DataSetEntry[]) {}

  lookup(keys: readonly string[]): Promise<readonly (DataSetEntry | undefined)[]> {
    return Promise.resolve(keys.map((k) => this.entries.find((e) => wildcardMatch(e.key, k))));
  }
}

const decoder = new TextDecoder();

// The system's words, as OpenDKIM's strerror() gives them ("No such file or directory"), without
// Deno's "(os error 2): stat '...'" after them.
function systemMessage(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  const m = /^(.*?) \(os error \d+\)/.exec(text);
  return m ? m[1] : text;
}

/**
 * Makes the opener the filter hands to `odkim.db_open()`: it rejects with OpenDKIM's message,
 * `NAME: odkim.db_open(): REASON`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scriptDataSetOpener } from "./script_data_sets.ts";
 * const open = scriptDataSetOpener({
 *   readFile: () => Promise.reject(new Deno.errors.NotFound("No such file or directory")),
 *   stat: () => Promise.reject(new Deno.errors.NotFound("No such file or directory")),
 *   resolve: (p) => p,
 *   openTable: () => { throw new Error("no databases here"); },
 *   dsnOptions: { queryTimeoutMs: 1000, connectTimeoutMs: 1000 },
 *   ldapOptions: { queryTimeoutMs: 1000, connectTimeoutMs: 1000 },
 * });
 * const set = await open("csl:a@example.com,Example.NET", false);
 * assert.deepEqual((await set.lookup.lookup(["Example.NET", "example.net"])).map(Boolean), [true, false]);
 * await assert.rejects(() => open("/nonexistent", false), /^Error: \/nonexistent: odkim\.db_open\(\): /);
 * ```
 */
export function scriptDataSetOpener(
  io: ScriptDataSetIo,
): (name: string, ignoreCase: boolean) => Promise<ScriptDataSet> {
  return async (name, ignoreCase) => {
    const fail = (why: string, cause?: unknown): never => {
      throw new Error(`${name}: odkim.db_open(): ${why}`, { cause });
    };
    const at = { file: "odkim.db_open()", line: 0 };
    let source;
    try {
      source = parseDataSetSpec(name, at, "odkim.db_open()");
    } catch (e) {
      return fail((e as Error & { detail?: string }).detail ?? (e as Error).message, e);
    }
    if (source.kind === "inline") {
      const entries = withOrigin(source.entries, at);
      return {
        lookup: source.patterns ? new PatternSet(entries) : new NameSet(entries, ignoreCase),
        close: () => Promise.resolve(),
      };
    }
    if (source.kind === "file" || source.kind === "refile") {
      const path = io.resolve(source.path);
      let entries: DataSetEntry[] = [];
      try {
        const bytes = await readLimited(io, path, MAX_DATA_SET_FILE_BYTES);
        entries = parseDataSetFile(decoder.decode(bytes), path);
      } catch (e) {
        fail(systemMessage(e), e);
      }
      return {
        lookup: source.kind === "refile"
          ? new PatternSet(entries)
          : new NameSet(entries, ignoreCase),
        close: () => Promise.resolve(),
      };
    }
    let table: CachedTable | undefined;
    try {
      const options = source.kind === "dsn" ? io.dsnOptions : io.ldapOptions;
      table = new CachedTable(await io.openTable(source, options), {
        setting: "odkim.db_open()",
        cacheTtlMs: 0,
        staleMs: 0,
        queryTimeoutMs: options.queryTimeoutMs,
      });
    } catch (e) {
      fail((e as Error).message, e);
    }
    const opened = table!;
    const lookup: DataSetLookup = {
      lookup: (keys) => opened.lookup(ignoreCase ? keys.map((k) => k.toLowerCase()) : keys),
    };
    return { lookup, close: () => opened.close() };
  };
}
