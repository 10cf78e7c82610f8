/**
 * Debian's OpenDKIM signs from a KeyTable and SigningTable in PostgreSQL, MariaDB and SQLite
 * (`dsn:` through OpenDBX): the behaviour dkimd's dsn: data sets are compared with.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { signWithOpenDkimDsn } from "../helpers/opendkim_dsn.ts";
import { generateTestKey } from "../helpers/peers.ts";
import { startPostgres } from "../helpers/postgres_server.ts";
import { startMariadb } from "../helpers/mariadb_server.ts";

/** From → the selector OpenDKIM signs with (undefined: not signed). */
const EXPECTED: readonly [string, string | undefined][] = [
  ["a@example.com", "sel1"],
  // The full address is looked up first.
  ["b@example.com", "sel2"],
  // OpenDKIM lowercases the domain, not the local part, and leaves the comparison to the
  // database: PostgreSQL's and SQLite's `=` are case-sensitive, so the domain row (sel1) matches;
  // MariaDB's default collation is not, so the address row (sel2) does (see CASE_INSENSITIVE).
  ["B@EXAMPLE.COM", "sel1"],
  // Without SubDomains, a subdomain is not looked up under its parent.
  ["a@sub.example.com", undefined],
  ["a@example.net", undefined],
];

async function withKeys(fn: (dir: string, pem: string) => Promise<void>) {
  const key = await generateTestKey("rsa-sha256");
  const dir = await Deno.makeTempDir({ prefix: "dkimd-opendkim-dsn-" });
  try {
    await Deno.writeTextFile(`${dir}/k.pem`, key.privatePem, { mode: 0o600 });
    await fn(dir, key.privatePem);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function rows(dir: string, pem: string): string {
  const q = (s: string) => `'${s.replaceAll("'", "''")}'`;
  return [
    "CREATE TABLE dkim_keys (id varchar(64), domain varchar(255), selector varchar(64), keydata text)",
    "CREATE TABLE signing (sender varchar(255), keyname varchar(64))",
    // k1 names a key file, k2 holds the PEM itself: OpenDKIM takes either.
    `INSERT INTO dkim_keys VALUES ('k1', 'example.com', 'sel1', ${q(`${dir}/k.pem`)}), ` +
    `('k2', 'example.com', 'sel2', ${q(pem)})`,
    "INSERT INTO signing VALUES ('example.com', 'k1'), ('b@example.com', 'k2')",
  ].join(";\n") + ";";
}

/** {@link EXPECTED} where the database compares without case (MariaDB's default collation). */
const CASE_INSENSITIVE: ReadonlyMap<string, string | undefined> = new Map([[
  "B@EXAMPLE.COM",
  "sel2",
]]);

async function assertSigns(
  dir: string,
  dsn: (t: string, k: string, d: string) => string,
  overrides: ReadonlyMap<string, string | undefined> = new Map(),
) {
  for (const [from, expected] of EXPECTED) {
    const selector = overrides.has(from) ? overrides.get(from) : expected;
    const signed = await signWithOpenDkimDsn(dir, [
      `KeyTable ${dsn("dkim_keys", "id", "domain,selector,keydata")}`,
      `SigningTable ${dsn("signing", "sender", "keyname")}`,
    ], new TextEncoder().encode(`From: ${from}\r\nSubject: x\r\n\r\nHi\r\n`));
    assert.equal(signed.selector, selector, `${from}: ${signed.output}`);
    if (selector) assert.equal(signed.domain, "example.com");
  }
}

Deno.test("OpenDKIM signs from a dsn:pgsql KeyTable and SigningTable", async () => {
  await using pg = await startPostgres();
  await withKeys(async (dir, pem) => {
    await pg.sql(rows(dir, pem));
    await assertSigns(
      dir,
      (t, k, d) =>
        `dsn:pgsql://${pg.user}:${pg.password}@${pg.port}+${pg.host}/${pg.database}/table=${t}?keycol=${k}?datacol=${d}`,
    );
  });
});

Deno.test("OpenDKIM signs from a dsn:mysql KeyTable and SigningTable (MariaDB)", async () => {
  await using db = await startMariadb();
  await withKeys(async (dir, pem) => {
    await db.sql(rows(dir, pem));
    await assertSigns(
      dir,
      (t, k, d) =>
        `dsn:mysql://${db.user}:${db.password}@${db.port}+${db.host}/${db.database}/table=${t}?keycol=${k}?datacol=${d}`,
      CASE_INSENSITIVE,
    );
  });
});

Deno.test("OpenDKIM opens dsn:sqlite3://HOST/DATABASE as the file HOST+DATABASE in its working directory", async () => {
  await withKeys(async (dir, pem) => {
    // OpenDBX glues host and database name together with no separator, relative to the working
    // directory: `%/dkim.db` is the file `%dkim.db` (an absolute path cannot be written: the
    // host may not be empty), and a missing file is created empty, so nothing is signed.
    const db = new DatabaseSync(`${dir}/%dkim.db`);
    db.exec(rows(dir, pem));
    db.close();
    await assertSigns(
      dir,
      (t, k, d) => `dsn:sqlite3://%/dkim.db/table=${t}?keycol=${k}?datacol=${d}`,
    );
  });
});
