/**
 * Opening the data sets kept in databases (`dsn:` and `ldap:`): the DataSet* and LDAP*
 * settings as back-end options (reading DataSetPasswordFile and DataSetTLSCAFile once, so a
 * missing file fails the load, not every lookup), then a back end each behind a
 * {@link CachedTable}. No connection is made here: a database that is down at start does not
 * stop the server, as with OpenDKIM.
 *
 * @module
 */

import { isAbsolute, join } from "node:path";
import { fileErrorMessage } from "../error_message.ts";
import type { DatabaseSource, DataSetSource } from "../policy/dataset.ts";
import type { PrivateKeyInfo } from "../policy/key_table.ts";
import { formatOrigin, type Origin } from "../policy/origin.ts";
import type { BackendOptions } from "../tables/backend_options.ts";
import { CachedTable } from "../tables/cached_table.ts";
import { parseDsn, redactDsnText } from "../tables/dsn.ts";
import type { LdapOptions } from "../tables/ldap_backend.ts";
import { openDsn, openLdapUri } from "../tables/open_backend.ts";
import type { TableBackend } from "../tables/table_backend.ts";
import type { OpenedDatabases } from "./build_policy.ts";
import { ConfigError, type ConfigWarning } from "./config_error.ts";
import { readLimited } from "./limited_read.ts";
import { cannotRead, type LoadContext } from "./load_context.ts";
import type { Config, ReadResult, SettingField } from "./schema.ts";
import { SETTING_LIST } from "./settings.ts";

const decoder = new TextDecoder();

/** Settings whose value is a data set, with their OpenDKIM names (from the settings table). */
export const DATA_SET_SETTINGS: readonly [SettingField, string][] = SETTING_LIST
  .filter((s) => s.kind.type === "dataSet").map((s) => [s.field, s.name]);

/**
 * Opens the back end of a `dsn:` or `ldap:` data set with lib/tables (connections are made at
 * the first query, not here; a relative SQLite file is chosen here, once, and `warn` is told
 * when it is not the file OpenDKIM opens). The client of a PostgreSQL, MySQL or LDAP back end
 * is loaded here, when first needed, so the promise may take a moment.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openDatabase } from "./database_data_sets.ts";
 * const t = await openDatabase(
 *   { kind: "dsn", text: "dsn:sqlite3://%/dkim.db/table=t?keycol=k?datacol=v" },
 *   { queryTimeoutMs: 1000, connectTimeoutMs: 1000 },
 *   "/var/lib/dkimd",
 * );
 * assert.match(t.describe, /^dsn:sqlite3:\/\/\/var\/lib\/dkimd\/%dkim\.db\//);
 * ```
 */
export async function openDatabase(
  source: DatabaseSource,
  options: BackendOptions & LdapOptions,
  directory: string,
  warn?: (message: string) => void,
): Promise<TableBackend> {
  // Awaited here so a DSN that does not parse rejects, as every other mistake, not throws.
  return source.kind === "dsn"
    ? await openDsn(parseDsn(source.text), options, directory, warn)
    : await openLdapUri(source.uri, options);
}

/** The options `dsn:` and LDAP back ends are opened with. */
export interface DatabaseOptions {
  /** For `dsn:` data sets: timeouts, DataSetPasswordFile's password, DataSetTLS, the CA. */
  readonly dsnOptions: BackendOptions;
  /** For `ldap:` data sets: timeouts, the CA and the LDAP* settings. */
  readonly ldapOptions: BackendOptions & LdapOptions;
}

// The `dsn:` and `ldap:` data sets the configuration names.
function databaseSources(config: Config) {
  return DATA_SET_SETTINGS.flatMap(([field, name]) => {
    const source = config[field as keyof Config] as DataSetSource | undefined;
    return source && (source.kind === "dsn" || source.kind === "ldap")
      ? [{ field, name, source }]
      : [];
  });
}

/**
 * The DataSet* and LDAP* settings as back-end options, when a data set is kept in a database or
 * a Lua script may open one (`odkim.db_open()`). The DataSetPasswordFile, when set, is read once
 * here (a relative name from `$CREDENTIALS_DIRECTORY`) and overrides every DSN's password.
 */
export async function databaseOptions<K extends PrivateKeyInfo>(
  read: ReadResult,
  ctx: LoadContext<K>,
  scriptsSet: boolean,
): Promise<DatabaseOptions | undefined> {
  const { config } = read;
  if (databaseSources(config).length === 0 && !scriptsSet) return undefined;
  const password = await readPasswordFile(config, ctx);
  const ca = await readCaFile(config, ctx);
  const options: BackendOptions = {
    queryTimeoutMs: config.dataSetQueryTimeout * 1000,
    connectTimeoutMs: config.dataSetConnectTimeout * 1000,
  };
  // The password file is the SQL password; LDAP has LDAPBindPassword and the other LDAP*
  // settings (opendkim.conf(5)), applied to every LDAP data set as OpenDKIM applies them.
  // DataSetTLS is the SQL servers' TLS (OpenDBX has none: "no" leaves it off); the CA serves both.
  const tls = DATA_SET_TLS_OPTION[config.dataSetTls];
  const dsnOptions: BackendOptions = {
    ...options,
    ...(password === undefined ? {} : { password }),
    ...(tls === undefined ? {} : { tls }),
    ...(ca === undefined ? {} : { ca }),
  };
  const ldapOptions: BackendOptions & LdapOptions = {
    ...options,
    ...(ca === undefined ? {} : { tlsCa: ca }),
    ...(config.ldapBindUser === undefined ? {} : { bindDn: config.ldapBindUser }),
    ...(config.ldapBindPassword === undefined ? {} : { bindPassword: config.ldapBindPassword }),
    ...(config.ldapAuthMechanism === undefined ? {} : { authMechanism: config.ldapAuthMechanism }),
    useTls: config.ldapUseTls,
    timeoutMs: config.ldapTimeout * 1000,
  };
  return { dsnOptions, ldapOptions };
}

/**
 * Opens every `dsn:` and `ldap:` data set: a back end each (no connection yet) behind a
 * {@link CachedTable} with the DataSet* settings. What opening warns about (a SQLite file other
 * than OpenDKIM's) goes to `warnings`.
 */
export async function openDatabases<K extends PrivateKeyInfo>(
  read: ReadResult,
  ctx: LoadContext<K>,
  warnings: ConfigWarning[],
  options: DatabaseOptions | undefined,
): Promise<OpenedDatabases> {
  const { config } = read;
  const sources = databaseSources(config);
  if (sources.length === 0 || options === undefined) return {};
  const { dsnOptions, ldapOptions } = options;
  const open = ctx.io.openTable ?? openDatabase;
  const out: { [F in SettingField]?: CachedTable } = {};
  for (const { field, name, source } of sources) {
    const at = ctx.originOf(field);
    const warn = (message: string) =>
      warnings.push({
        message: `"${name}" at ${formatOrigin(at)}: ${message}`,
        origin: at,
        setting: name,
      });
    try {
      out[field] = new CachedTable(
        await open(source, source.kind === "dsn" ? dsnOptions : ldapOptions, ctx.base, warn),
        {
          setting: name,
          cacheTtlMs: config.dataSetCacheTtl * 1000,
          staleMs: config.dataSetStaleLimit * 1000,
          queryTimeoutMs: config.dataSetQueryTimeout * 1000,
        },
      );
    } catch (e) {
      const text = source.kind === "dsn" ? redactDsnText(source.text) : source.uri;
      ctx.errors.push(
        new ConfigError(`Cannot open "${name}" data set "${text}"`, at, fileErrorMessage(e), {
          setting: name,
          cause: e,
        }),
      );
    }
  }
  return out;
}

/** Largest DataSetPasswordFile read: a password, not a document. */
const MAX_PASSWORD_FILE_BYTES = 4096;

/** Largest DataSetTLSCAFile read: room for a system CA bundle (about 200 KiB), not more. */
const MAX_CA_FILE_BYTES = 1024 * 1024;

/** What each DataSetTLS value asks of the dsn:pgsql and dsn:mysql back ends. */
const DATA_SET_TLS_OPTION: Record<Config["dataSetTls"], BackendOptions["tls"]> = {
  no: undefined,
  prefer: true,
  require: "require",
  verify: "verify",
};

// A DataSet* setting's file, read whole (up to `max` bytes) as text; undefined, with the
// error in ctx.errors, when it cannot be read.
async function readSettingText<K extends PrivateKeyInfo>(
  ctx: LoadContext<K>,
  setting: string,
  at: Origin,
  path: string,
  max: number,
): Promise<string | undefined> {
  try {
    return decoder.decode(await readLimited(ctx.io, path, max));
  } catch (e) {
    ctx.errors.push(cannotRead(setting, at, `"${path}": ${fileErrorMessage(e)}`, e));
    return undefined;
  }
}

// DataSetPasswordFile's first line: an absolute path, or a name in $CREDENTIALS_DIRECTORY.
async function readPasswordFile<K extends PrivateKeyInfo>(
  config: Config,
  ctx: LoadContext<K>,
): Promise<string | undefined> {
  const name = config.dataSetPasswordFile;
  if (name === undefined) return undefined;
  const at = ctx.originOf("dataSetPasswordFile");
  let path = name;
  if (!isAbsolute(name)) {
    const dir = ctx.io.credentialsDirectory?.();
    if (dir === undefined || dir === "") {
      ctx.errors.push(
        cannotRead(
          "DataSetPasswordFile",
          at,
          `"${name}" is relative, so it names a systemd credential, but $CREDENTIALS_DIRECTORY ` +
            `is not set (use LoadCredential= in the unit, or an absolute path)`,
        ),
      );
      return undefined;
    }
    path = join(dir, name);
  }
  const text = await readSettingText(ctx, "DataSetPasswordFile", at, path, MAX_PASSWORD_FILE_BYTES);
  return text?.split(/\r?\n/)[0];
}

// DataSetTLSCAFile: PEM certificates, read once here (relative to BaseDirectory, as data set
// files are), so a missing or wrong file fails the load, not every lookup.
async function readCaFile<K extends PrivateKeyInfo>(
  config: Config,
  ctx: LoadContext<K>,
): Promise<string | undefined> {
  const name = config.dataSetTlsCaFile;
  if (name === undefined) return undefined;
  const at = ctx.originOf("dataSetTlsCaFile");
  const path = isAbsolute(name) ? name : join(ctx.base, name);
  const text = await readSettingText(ctx, "DataSetTLSCAFile", at, path, MAX_CA_FILE_BYTES);
  if (text === undefined || text.includes("-----BEGIN CERTIFICATE-----")) return text;
  ctx.errors.push(
    cannotRead(
      "DataSetTLSCAFile",
      at,
      `"${path}": no PEM certificate (-----BEGIN CERTIFICATE-----) in it`,
    ),
  );
  return undefined;
}
