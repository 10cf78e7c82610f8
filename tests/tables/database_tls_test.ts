/**
 * DataSetTLS and DataSetTLSCAFile as a user has them: an opendkim.conf loaded by loadConfig()
 * under the `start` task's permissions (SERVICE_DENO_FLAGS), then a lookup in the data set,
 * against real PostgreSQL, MariaDB and slapd servers with and without TLS.
 *
 * That the connection really is encrypted is shown by the server: the table asked is a view
 * whose rows appear only to a session the server itself sees as TLS (PostgreSQL's pg_stat_ssl,
 * MariaDB's Ssl_cipher for the session), so a found row is the server's word for it.
 */
import assert from "node:assert/strict";
import { SERVICE_DENO_FLAGS } from "../../lib/ops/self_command.ts";
import { dkimdEnv } from "../helpers/dkimd_env.ts";
import { type MariadbServer, startMariadb } from "../helpers/mariadb_server.ts";
import { type PostgresServer, startPostgres } from "../helpers/postgres_server.ts";
import {
  SLAPD_BIND_DN,
  SLAPD_BIND_PASSWORD,
  SLAPD_SUFFIX,
  startSlapd,
} from "../helpers/slapd_server.ts";

const CONFIG = new URL("../../deno.json", import.meta.url).pathname;
const LOAD = new URL("../../lib/config/load.ts", import.meta.url).href;
const PRIVATE_KEY = new URL("../../lib/crypto/private_key.ts", import.meta.url).href;

/** What one configuration gave: the key found for "example.com", or the error's message. */
type Outcome = { found: string | null } | { error: string };

/**
 * Loads each configuration in a child run as the `start` task runs dkimd, and asks its
 * ExemptDomains for "example.com".
 */
async function lookups(confs: string[]): Promise<Outcome[]> {
  const dir = await Deno.makeTempDir({ prefix: "dkimd-db-tls-" });
  try {
    const script = `${dir}/lookup.ts`;
    await Deno.writeTextFile(
      script,
      `import { denoLoadIo, loadConfig } from ${JSON.stringify(LOAD)};
import { importPrivateKey } from ${JSON.stringify(PRIVATE_KEY)};
const out = [];
for (const path of Deno.args) {
  try {
    const loaded = await loadConfig(path, denoLoadIo(importPrivateKey));
    try {
      const [entry] = await loaded.exemptDomains.lookup(["example.com"]);
      out.push({ found: entry?.key ?? null });
    } finally {
      await Promise.all(loaded.tables.map((t) => t.close()));
    }
  } catch (e) {
    out.push({ error: e.message });
  }
}
console.log(JSON.stringify(out));
`,
    );
    const paths = await Promise.all(confs.map(async (conf, i) => {
      const path = `${dir}/dkimd-${i}.conf`;
      await Deno.writeTextFile(path, `Mode v\nDataSetQueryTimeout 10\n${conf}\n`);
      return path;
    }));
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...SERVICE_DENO_FLAGS, `--config=${CONFIG}`, "--quiet", script, ...paths],
      stdout: "piped",
      stderr: "piped",
      clearEnv: true,
      env: dkimdEnv({ NO_COLOR: "1" }),
      signal: AbortSignal.timeout(120_000),
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    return JSON.parse(new TextDecoder().decode(out.stdout));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Asserts `outcome` is a refusal naming the data set, without its password. */
function assertRefused(outcome: Outcome, password: string, why: RegExp): void {
  assert.ok("error" in outcome, `expected an error, got ${JSON.stringify(outcome)}`);
  assert.match(outcome.error, why);
  assert.ok(!outcome.error.includes(password), outcome.error);
}

/** `ExemptDomains` on `table` of a PostgreSQL server, by address or `host`. */
function pgDsn(pg: PostgresServer, table: string, host = pg.host): string {
  return `ExemptDomains dsn:pgsql://${pg.user}:${pg.password}@${pg.port}+${host}/${pg.database}/table=${table}?keycol=k?datacol=k`;
}

/** `ExemptDomains` on `table` of a MariaDB server, by address or `host`. */
function mysqlDsn(db: MariadbServer, table: string, host = db.host): string {
  return `ExemptDomains dsn:mysql://${db.user}:${db.password}@${db.port}+${host}/${db.database}/table=${table}?keycol=k?datacol=k`;
}

Deno.test("DataSetTLS for dsn:pgsql: require and verify use TLS, verify checks the certificate, plain servers are refused", async () => {
  await using pg = await startPostgres({ tls: true });
  await using plain = await startPostgres();
  for (const server of [pg, plain]) {
    await server.sql(`CREATE TABLE t (k text); INSERT INTO t VALUES ('example.com');
      CREATE VIEW tls_only AS SELECT k FROM t
        WHERE (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid());`);
  }
  const ca = `DataSetTLSCAFile ${pg.caFile}`;
  const [none, prefer, require, verified, untrusted, byName, requirePlain, verifyPlain] =
    await lookups([
      pgDsn(pg, "tls_only"),
      `${pgDsn(pg, "tls_only")}\nDataSetTLS prefer`,
      `${pgDsn(pg, "tls_only")}\nDataSetTLS require`,
      `${pgDsn(pg, "tls_only")}\nDataSetTLS verify\n${ca}`,
      `${pgDsn(pg, "tls_only")}\nDataSetTLS verify`,
      // The certificate lists 127.0.0.1 and localhost: a name it lists passes too.
      `${pgDsn(pg, "tls_only", "localhost")}\nDataSetTLS verify\n${ca}`,
      `${pgDsn(plain, "t")}\nDataSetTLS require`,
      `${pgDsn(plain, "t")}\nDataSetTLS verify\n${ca}`,
    ]);
  // The default is OpenDKIM's plain text: the TLS-only view shows nothing.
  assert.deepEqual(none, { found: null });
  assert.deepEqual(prefer, { found: "example.com" });
  assert.deepEqual(require, { found: "example.com" });
  assert.deepEqual(verified, { found: "example.com" });
  assert.deepEqual(byName, { found: "example.com" });
  assertRefused(
    untrusted,
    pg.password,
    /^ExemptDomains dsn:pgsql:\/\/dkimd_test:\*\*\*@\d+\+127\.0\.0\.1\/dkim\/table=tls_only.* is unavailable: .*certificate.*the server's certificate was refused/,
  );
  assertRefused(requirePlain, plain.password, /^ExemptDomains dsn:pgsql:.*TLS is required/);
  assertRefused(verifyPlain, plain.password, /^ExemptDomains dsn:pgsql:.*TLS is required/);
});

Deno.test("DataSetTLS verify for dsn:pgsql checks the DSN's address against the certificate", async () => {
  // The CA trusted did issue the certificate, but for the name localhost only: the DSN's
  // address, 127.0.0.1, is not in it, so only the name check can refuse it.
  await using pg = await startPostgres({ tls: true, certificateNames: ["DNS:localhost"] });
  await pg.sql(`CREATE TABLE t (k text); INSERT INTO t VALUES ('example.com');`);
  const [other] = await lookups([
    `${pgDsn(pg, "t", "127.0.0.1")}\nDataSetTLS verify\nDataSetTLSCAFile ${pg.caFile}`,
  ]);
  assertRefused(other, pg.password, /IP: 127\.0\.0\.1 is not in the cert's list/);
});

Deno.test("DataSetTLS for dsn:mysql: require and verify use TLS, verify checks the certificate, plain servers are refused", async () => {
  await using db = await startMariadb({ tls: true });
  await using plain = await startMariadb();
  for (const server of [db, plain]) {
    await server.sql(`CREATE TABLE t (k VARCHAR(64)); INSERT INTO t VALUES ('example.com');
      CREATE VIEW tls_only AS SELECT k FROM t WHERE (SELECT VARIABLE_VALUE <> ''
        FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_cipher');`);
  }
  const ca = `DataSetTLSCAFile ${db.caFile}`;
  const [none, require, verified, untrusted, byAddress, requirePlain] = await lookups([
    mysqlDsn(db, "tls_only"),
    `${mysqlDsn(db, "tls_only")}\nDataSetTLS require`,
    // mysql2 checks a certificate's name against a host name only: verify needs one.
    `${mysqlDsn(db, "tls_only", "localhost")}\nDataSetTLS verify\n${ca}`,
    `${mysqlDsn(db, "tls_only", "localhost")}\nDataSetTLS verify`,
    `${mysqlDsn(db, "tls_only")}\nDataSetTLS verify\n${ca}`,
    `${mysqlDsn(plain, "t")}\nDataSetTLS require`,
  ]);
  assert.deepEqual(none, { found: null });
  assert.deepEqual(require, { found: "example.com" });
  assert.deepEqual(verified, { found: "example.com" });
  assertRefused(
    untrusted,
    db.password,
    /^ExemptDomains dsn:mysql:\/\/dkimd_test:\*\*\*@\d+\+localhost\/dkim\/table=tls_only.* is unavailable: .*certificate.*the server's certificate was refused/,
  );
  assertRefused(
    byAddress,
    db.password,
    /Cannot open "ExemptDomains" data set "dsn:mysql:\/\/dkimd_test:\*\*\*@.*names its server by the address "127\.0\.0\.1"/,
  );
  assertRefused(requirePlain, plain.password, /^ExemptDomains dsn:mysql:.*TLS is required/);
});

Deno.test("DataSetTLSCAFile is the CA LDAPUseTLS trusts; a missing or non-PEM file fails the load", async () => {
  const slapd = await startSlapd({
    tls: true,
    ldif: `dn: cn=example.com,ou=keys,${SLAPD_SUFFIX}
objectClass: applicationProcess
objectClass: dkimEntry
cn: example.com
dkimKeyName: example.com
`,
  });
  const dir = await Deno.makeTempDir({ prefix: "dkimd-ldap-ca-" });
  try {
    await Deno.writeTextFile(`${dir}/ca.pem`, slapd.caPem!);
    await Deno.writeTextFile(`${dir}/not.pem`, "hello\n");
    const ldap = `ExemptDomains ${slapd.url}/ou=keys,${SLAPD_SUFFIX}?cn?one?(dkimKeyName=$d)
LDAPBindUser ${SLAPD_BIND_DN}
LDAPBindPassword ${SLAPD_BIND_PASSWORD}
LDAPUseTLS yes`;
    const [trusted, untrusted, missing, notPem] = await lookups([
      `${ldap}\nDataSetTLSCAFile ${dir}/ca.pem`,
      ldap,
      `${ldap}\nDataSetTLSCAFile ${dir}/missing.pem`,
      `${ldap}\nDataSetTLSCAFile ${dir}/not.pem`,
    ]);
    assert.deepEqual(trusted, { found: "example.com" });
    assertRefused(untrusted, SLAPD_BIND_PASSWORD, /StartTLS \(LDAPUseTLS\) failed/);
    assertRefused(missing, SLAPD_BIND_PASSWORD, /Cannot read "DataSetTLSCAFile" at .*missing\.pem/);
    assertRefused(notPem, SLAPD_BIND_PASSWORD, /no PEM certificate/);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await slapd.close();
  }
});
