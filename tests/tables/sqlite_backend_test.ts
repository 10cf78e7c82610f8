import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { parseDsn } from "../../lib/tables/dsn.ts";
import { openSqlite, sqliteDirectoryFile, sqliteFile } from "../../lib/tables/sqlite_backend.ts";

const OPTIONS = { queryTimeoutMs: 1000, connectTimeoutMs: 1000 };
const signal = () => AbortSignal.timeout(5000);

async function withDb(
  fn: (dir: string, file: string, db: DatabaseSync) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/dkim.db`;
  const db = new DatabaseSync(file);
  db.exec(
    `CREATE TABLE dkim (id INTEGER, domain_name TEXT, selector TEXT, private_key TEXT, active INTEGER);
    INSERT INTO dkim VALUES (1, 'example.com', 'sel1', '/k1.pem', 1);
    INSERT INTO dkim VALUES (2, 'example.com', 'sel2', '/k2.pem', 1);
    INSERT INTO dkim VALUES (3, 'example.org', 'org', NULL, 0);
    INSERT INTO dkim VALUES (4, 'a''b', 'quote', '/q.pem', 1);`,
  );
  try {
    await fn(dir, file, db);
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const dsn = (file: string, rest: string) => parseDsn(`dsn:sqlite3://${file}/${rest}`);

Deno.test("openSqlite() answers the first row of each key, in the order asked", async () => {
  await withDb(async (_, file) => {
    const t = openSqlite(dsn(file, "table=dkim?keycol=domain_name?datacol=id"), OPTIONS);
    assert.deepEqual(await t.query(["example.org", "nope", "example.com"], signal()), [
      ["3"],
      undefined,
      ["1"],
    ]);
    const kt = openSqlite(
      dsn(file, "table=dkim?keycol=id?datacol=domain_name,selector,private_key"),
      OPTIONS,
    );
    assert.deepEqual(await kt.query(["2", "3"], signal()), [
      ["example.com", "sel2", "/k2.pem"],
      ["example.org", "org", ""],
    ]);
    assert.match(
      t.describe,
      /^dsn:sqlite3:\/\/\/.*\/dkim\.db\/table=dkim\?keycol=domain_name\?datacol=id$/,
    );
  });
});

Deno.test("openSqlite() compares keys as SQLite does: exactly, as OpenDKIM leaves it to the database", async () => {
  await withDb(async (_, file) => {
    const t = openSqlite(dsn(file, "table=dkim?keycol=domain_name?datacol=id"), OPTIONS);
    assert.deepEqual(await t.query(["EXAMPLE.COM"], signal()), [undefined]);
  });
});

Deno.test("openSqlite() ANDs the filter into the query", async () => {
  await withDb(async (_, file) => {
    const t = openSqlite(
      dsn(file, "table=dkim?keycol=domain_name?datacol=selector?filter=active=3D1"),
      OPTIONS,
    );
    assert.deepEqual(await t.query(["example.org", "example.com"], signal()), [undefined, [
      "sel1",
    ]]);
    assert.deepEqual(
      (await t.scan(10, signal())).map((r) => r.key),
      ["example.com", "example.com", "a'b"],
    );
  });
});

Deno.test("openSqlite() binds keys as values: quotes, backslashes, NUL, % and _ find nothing and harm nothing", async () => {
  await withDb(async (_, file, db) => {
    const t = openSqlite(dsn(file, "table=dkim?keycol=domain_name?datacol=selector"), OPTIONS);
    const hostile = [
      "' OR '1'='1",
      "example.com' --",
      "x'); DROP TABLE dkim; --",
      "example.com\\",
      "\\' OR 1=1 --",
      "example.com\0",
      "\0",
      "%",
      "example.%",
      "_xample.com",
      "%' OR domain_name LIKE '%",
      '" OR ""="',
    ];
    assert.deepEqual(await t.query(hostile, signal()), hostile.map(() => undefined));
    assert.deepEqual(await t.query(["a'b"], signal()), [["quote"]], "a quote in a key is data");
    const count = db.prepare("SELECT count(*) AS n FROM dkim").get() as { n: number };
    assert.equal(count.n, 4);
  });
});

Deno.test("openSqlite() opens read-only and notices a removed file at the next query", async () => {
  await withDb(async (dir, file) => {
    const t = openSqlite(dsn(file, "table=dkim?keycol=domain_name?datacol=selector"), OPTIONS);
    assert.deepEqual(await t.query(["example.com"], signal()), [["sel1"]]);
    await Deno.rename(file, `${dir}/moved.db`);
    await assert.rejects(
      t.query(["example.com"], signal()),
      /dsn:sqlite3:.*dkim\.db.*unable to open/,
    );
    await Deno.rename(`${dir}/moved.db`, file);
    assert.deepEqual(await t.query(["example.com"], signal()), [["sel1"]]);
    const w = openSqlite(
      dsn(
        file,
        "table=dkim?keycol=domain_name?datacol=selector?filter=1=3D1); DELETE FROM dkim; --",
      ),
      OPTIONS,
    );
    // The filter is the administrator's SQL; even so, the read-only open keeps the file intact
    // (and node:sqlite compiles only the first statement).
    await w.query(["example.com"], signal()).catch(() => undefined);
    assert.deepEqual(await t.query(["example.org"], signal()), [["org"]]);
    await t.close();
    await assert.rejects(t.query(["example.com"], signal()), /closed/);
  });
});

Deno.test("openSqlite() fails a query on an aborted signal, a missing table or a missing column", async () => {
  await withDb(async (_, file) => {
    const t = openSqlite(dsn(file, "table=dkim?keycol=domain_name?datacol=selector"), OPTIONS);
    await assert.rejects(t.query(["x"], AbortSignal.abort(new Error("too late"))), /too late/);
    const noTable = openSqlite(dsn(file, "table=nope?keycol=k?datacol=v"), OPTIONS);
    await assert.rejects(noTable.query(["x"], signal()), /no such table: nope/);
    const noColumn = openSqlite(dsn(file, "table=dkim?keycol=domain_name?datacol=nope"), OPTIONS);
    await assert.rejects(noColumn.query(["x"], signal()), /no such column: nope/);
  });
});

Deno.test("openSqlite() batches a long key list and scan() stops at the limit", async () => {
  await withDb(async (_, file) => {
    const t = openSqlite(dsn(file, "table=dkim?keycol=domain_name?datacol=selector"), OPTIONS);
    const keys = Array.from({ length: 1200 }, (_, i) => `d${i}.example`);
    keys[1100] = "example.com";
    const rows = await t.query(keys, signal());
    assert.equal(rows.length, 1200);
    assert.deepEqual(rows[1100], ["sel1"]);
    assert.equal(rows.filter((r) => r !== undefined).length, 1);
    assert.equal((await t.scan(2, signal())).length, 2);
  });
});

Deno.test("sqliteFile() is OpenDKIM's file (host and database glued); sqliteDirectoryFile() reads the host as a directory", () => {
  const spec = parseDsn("dsn:sqlite3://%/db/dkim.db/table=t?keycol=k?datacol=v");
  assert.equal(sqliteDirectoryFile(spec, "/etc/opendkim"), "/etc/opendkim/db/dkim.db");
  assert.equal(sqliteFile(spec, "/etc/opendkim"), "/etc/opendkim/%db/dkim.db");
  const host = parseDsn("dsn:sqlite3://d/x.db/table=t?keycol=k?datacol=v");
  assert.equal(sqliteFile(host, "/srv"), "/srv/dx.db");
  assert.equal(sqliteDirectoryFile(host, "/srv"), "/srv/d/x.db");
  const absolute = parseDsn("dsn:sqlite3:///var/lib/dkimd/dkim.db/table=t?keycol=k?datacol=v");
  assert.equal(sqliteFile(absolute, "/srv"), "/var/lib/dkimd/dkim.db");
  assert.equal(sqliteDirectoryFile(absolute, "/srv"), "/var/lib/dkimd/dkim.db");
});

Deno.test("openSqlite() works under the start task's permissions (FFI only for libcrypto)", async () => {
  await withDb(async (dir, file) => {
    const script = `${dir}/probe.ts`;
    await Deno.writeTextFile(
      script,
      `import { openSqlite } from ${
        JSON.stringify(new URL("../../lib/tables/sqlite_backend.ts", import.meta.url).href)
      };
import { parseDsn } from ${
        JSON.stringify(new URL("../../lib/tables/dsn.ts", import.meta.url).href)
      };
const t = openSqlite(parseDsn(${
        JSON.stringify(`dsn:sqlite3://${file}/table=dkim?keycol=domain_name?datacol=selector`)
      }), { queryTimeoutMs: 1000, connectTimeoutMs: 1000 });
console.log(JSON.stringify(await t.query(["example.com"], AbortSignal.timeout(1000))));
`,
    );
    const config = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
    const flags = (config.tasks.start as string).split(" ").filter((f) =>
      f.startsWith("--allow") || f === "--no-prompt" || f === "--unstable-net"
    );
    // node:sqlite needs no FFI: the only FFI the task allows is CryptoBackend's libcrypto,
    // scoped to its paths (an unscoped --allow-ffi would let any native code load).
    for (const f of flags.filter((f) => f.startsWith("--allow-ffi"))) {
      assert.match(f, /^--allow-ffi=/);
      for (const path of f.slice("--allow-ffi=".length).split(",")) {
        assert.match(path, /\/libcrypto\.so\.3$/);
      }
    }
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...flags, script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(new TextDecoder().decode(out.stderr), "");
    assert.equal(new TextDecoder().decode(out.stdout).trim(), '[["sel1"]]');
  });
});
