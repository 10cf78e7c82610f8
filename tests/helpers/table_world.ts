/**
 * One KeyTable, one SigningTable and any one-column sets (InternalHosts, PeerList,
 * ExemptDomains...) held in a private database server of each kind dkimd and OpenDKIM read
 * (PostgreSQL, MariaDB, SQLite, OpenLDAP), with the configuration lines that name them, so one
 * test body can run against every back end.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { startMariadb } from "./mariadb_server.ts";
import { startPostgres } from "./postgres_server.ts";
import { SLAPD_BIND_DN, SLAPD_BIND_PASSWORD, SLAPD_SUFFIX, startSlapd } from "./slapd_server.ts";

/** The back ends, by the name a DSN or URI gives them. */
export type TableBackendName = "pgsql" | "mysql" | "sqlite3" | "ldap";

/** Every back end, in the order tests run them. */
export const TABLE_BACKENDS: readonly TableBackendName[] = ["pgsql", "mysql", "sqlite3", "ldap"];

/** One KeyTable row: the key name, then OpenDKIM's three data columns. */
export interface KeyRow {
  /** The key name the SigningTable maps to. */
  readonly id: string;
  /** d=. */
  readonly domain: string;
  /** s=. */
  readonly selector: string;
  /** A key file's path, or the PEM itself. */
  readonly key: string;
}

/** The rows a world starts with. */
export interface TableRows {
  /** KeyTable rows. */
  readonly keys: readonly KeyRow[];
  /** SigningTable rows: [sender pattern (address or domain), key name]. */
  readonly signing: readonly (readonly [string, string])[];
  /** One-column sets by table name (letters and `_` only): their keys. */
  readonly sets?: Readonly<Record<string, readonly string[]>>;
}

/** A database holding {@link TableRows}, and how to name it in opendkim.conf. */
export interface TableWorld extends AsyncDisposable {
  /** Which back end. */
  readonly backend: TableBackendName;
  /** The KeyTable value (a `dsn:` or an LDAP URI). */
  readonly keyTable: string;
  /** The SigningTable value. */
  readonly signingTable: string;
  /** Other lines the data sets need (LDAPBindUser and LDAPBindPassword for LDAP). */
  readonly lines: readonly string[];
  /** The data-set value of set `name`. */
  set(name: string): string;
  /** The SQL server's or slapd's own data-set value with `password` in place of the right one. */
  withPassword(value: string, password: string): string;
  /** The number of SigningTable and KeyTable rows, to show the tables intact. */
  count(): Promise<{ signing: number; keys: number }>;
  /** Runs SQL as the administrator (SQL back ends only). */
  sql(sql: string): Promise<string>;
  /** Stops the server (an outage); SQLite: moves the file away. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  /** The server's log tail (PostgreSQL and MariaDB), for statements. */
  serverLog(): string;
  /** Stops the server and removes its data. */
  close(): Promise<void>;
}

/** What {@link startTableWorld} takes besides the back end and the rows. */
export interface TableWorldOptions {
  /** A directory for the SQLite file (and nothing else). */
  readonly dir: string;
  /** SQLite: name the file `%/FILE` (relative to the working directory, as Debian's OpenDKIM
   * needs); the file is then `dir/%dkim.db` as OpenDBX opens it. Default: an absolute path. */
  readonly sqliteRelative?: boolean;
  /** PostgreSQL: log every statement. */
  readonly logStatements?: boolean;
}

const q = (s: string) => `'${s.replaceAll("'", "''")}'`;
const q_my = (s: string) => `'${s.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;

function sqlRows(rows: TableRows, quote: (s: string) => string): string {
  const out = [
    "CREATE TABLE dkim_keys (id varchar(64), domain varchar(255), selector varchar(64), keydata text)",
    "CREATE TABLE signing (sender varchar(255), keyname varchar(64))",
  ];
  if (rows.keys.length) {
    out.push(
      "INSERT INTO dkim_keys VALUES " +
        rows.keys.map((k) => `(${[k.id, k.domain, k.selector, k.key].map(quote).join(", ")})`)
          .join(", "),
    );
  }
  if (rows.signing.length) {
    out.push(
      "INSERT INTO signing VALUES " +
        rows.signing.map(([s, k]) => `(${quote(s)}, ${quote(k)})`).join(", "),
    );
  }
  for (const [name, keys] of Object.entries(rows.sets ?? {})) {
    out.push(`CREATE TABLE ${name} (k varchar(255))`);
    if (keys.length) {
      out.push(`INSERT INTO ${name} VALUES ` + keys.map((k) => `(${quote(k)})`).join(", "));
    }
  }
  return out.join(";\n") + ";";
}

/**
 * The LDIF of `rows` under slapd_server.ts's ou=keys, ou=signing and one ou per set, in the
 * attributes of its DKIM schema (dkimKeyName, dkimDomain, dkimSelector, dkimKey, dkimIdentity).
 */
export function ldif(rows: TableRows): string {
  const b64 = (s: string) => btoa(String.fromCharCode(...new TextEncoder().encode(s)));
  const entries: string[] = [];
  rows.keys.forEach((k, i) =>
    entries.push(
      `dn: cn=key${i},ou=keys,${SLAPD_SUFFIX}\nobjectClass: applicationProcess\n` +
        `objectClass: dkimEntry\ncn: key${i}\ndkimKeyName: ${k.id}\ndkimDomain: ${k.domain}\n` +
        `dkimSelector: ${k.selector}\ndkimKey:: ${b64(k.key)}\n`,
    )
  );
  rows.signing.forEach(([sender, key], i) =>
    entries.push(
      `dn: cn=sig${i},ou=signing,${SLAPD_SUFFIX}\nobjectClass: applicationProcess\n` +
        `objectClass: dkimEntry\ncn: sig${i}\ndkimIdentity:: ${b64(sender)}\n` +
        `dkimKeyName: ${key}\n`,
    )
  );
  for (const [name, keys] of Object.entries(rows.sets ?? {})) {
    entries.push(`dn: ou=${name},${SLAPD_SUFFIX}\nobjectClass: organizationalUnit\nou: ${name}\n`);
    keys.forEach((k, i) =>
      entries.push(
        `dn: cn=${name}${i},ou=${name},${SLAPD_SUFFIX}\nobjectClass: applicationProcess\n` +
          `objectClass: dkimEntry\ncn: ${name}${i}\ndkimIdentity:: ${b64(k)}\n`,
      )
    );
  }
  return entries.join("\n");
}

/** Starts a server of kind `backend` (SQLite: a file in `options.dir`) holding `rows`. */
export async function startTableWorld(
  backend: TableBackendName,
  rows: TableRows,
  options: TableWorldOptions,
): Promise<TableWorld> {
  const noSql = () => Promise.reject(new Error(`no SQL on ${backend}`));
  if (backend === "pgsql" || backend === "mysql") {
    const server = backend === "pgsql"
      ? await startPostgres({ logStatements: options.logStatements })
      : await startMariadb();
    try {
      await server.sql(sqlRows(rows, backend === "pgsql" ? q : q_my));
    } catch (e) {
      await server.close();
      throw e;
    }
    const auth = (password: string) =>
      `${server.user}:${password}@${server.port}+${server.host}/${server.database}`;
    const dsn = (table: string, key: string, data: string, password = server.password) =>
      `dsn:${backend}://${auth(password)}/table=${table}?keycol=${key}?datacol=${data}`;
    const count = async (table: string) =>
      Number((await server.sql(`SELECT count(*) FROM ${table}`)).trim());
    return {
      backend,
      keyTable: dsn("dkim_keys", "id", "domain,selector,keydata"),
      signingTable: dsn("signing", "sender", "keyname"),
      lines: [],
      set: (name) => dsn(name, "k", "k"),
      withPassword: (value, password) => value.replace(auth(server.password), auth(password)),
      count: async () => ({ signing: await count("signing"), keys: await count("dkim_keys") }),
      sql: (sql) => server.sql(sql),
      stop: () => server.stop(),
      start: () => server.start(),
      serverLog: () => server.log(),
      close: () => server.close(),
      [Symbol.asyncDispose]: () => server.close(),
    };
  }
  if (backend === "sqlite3") {
    const name = options.sqliteRelative ? "%dkim.db" : "dkim.db";
    const file = `${options.dir}/${name}`;
    const db = new DatabaseSync(file);
    db.exec(sqlRows(rows, q));
    db.close();
    const where = options.sqliteRelative ? "%/dkim.db" : file;
    const dsn = (table: string, key: string, data: string) =>
      `dsn:sqlite3://${where}/table=${table}?keycol=${key}?datacol=${data}`;
    const count = (table: string) => {
      const d = new DatabaseSync(file);
      try {
        return Number((d.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n);
      } finally {
        d.close();
      }
    };
    return {
      backend,
      keyTable: dsn("dkim_keys", "id", "domain,selector,keydata"),
      signingTable: dsn("signing", "sender", "keyname"),
      lines: [],
      set: (name) => dsn(name, "k", "k"),
      withPassword: (value) => value,
      count: () => Promise.resolve({ signing: count("signing"), keys: count("dkim_keys") }),
      sql: (sql) => {
        const d = new DatabaseSync(file);
        try {
          d.exec(sql);
          return Promise.resolve("");
        } finally {
          d.close();
        }
      },
      stop: () => Deno.rename(file, `${file}.away`),
      start: () => Deno.rename(`${file}.away`, file),
      serverLog: () => "",
      close: () => Promise.resolve(),
      [Symbol.asyncDispose]: () => Promise.resolve(),
    };
  }
  const slapd = await startSlapd({ ldif: ldif(rows) });
  const uri = (ou: string, attrs: string, attr: string) =>
    `${slapd.url}/ou=${ou},${SLAPD_SUFFIX}?${attrs}?one?(${attr}=$d)`;
  const count = async (ou: string) => {
    const out = await new Deno.Command("/usr/bin/ldapsearch", {
      args: [
        "-x",
        "-LLL",
        "-H",
        slapd.url,
        "-D",
        SLAPD_BIND_DN,
        "-w",
        SLAPD_BIND_PASSWORD,
        "-b",
        `ou=${ou},${SLAPD_SUFFIX}`,
        "-s",
        "one",
        "(objectClass=dkimEntry)",
        "dn",
      ], // deno-fmt-ignore
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
    return new TextDecoder().decode(out.stdout).split("\n").filter((l) => l.startsWith("dn:"))
      .length;
  };
  const bindLine = `LDAPBindPassword ${SLAPD_BIND_PASSWORD}`;
  return {
    backend,
    keyTable: uri("keys", "dkimDomain,dkimSelector,dkimKey", "dkimKeyName"),
    signingTable: uri("signing", "dkimKeyName", "dkimIdentity"),
    // No LDAPAuthMechanism: unset is a simple bind for both (OpenDKIM refuses "simple").
    lines: [`LDAPBindUser ${SLAPD_BIND_DN}`, bindLine],
    set: (name) => uri(name, "dkimIdentity", "dkimIdentity"),
    withPassword: (value) => value,
    count: async () => ({ signing: await count("signing"), keys: await count("keys") }),
    sql: noSql,
    stop: () => slapd.stop(),
    start: () => slapd.start(),
    serverLog: () => "",
    close: () => slapd.close(),
    [Symbol.asyncDispose]: () => slapd.close(),
  };
}
