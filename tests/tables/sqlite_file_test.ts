// Which SQLite file a relative `dsn:sqlite3://HOST/DATABASE` reads, chosen once at load so that
// an opendkim.conf that works with Debian's OpenDKIM works unchanged: OpenDKIM's file (host and
// database glued, as OpenDBX opens it) when it exists, else the host-as-directory file with a
// warning, else OpenDKIM's file, named by the error at query time.
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { parseDsn } from "../../lib/tables/dsn.ts";
import { openDsn } from "../../lib/tables/open_backend.ts";
import { chooseSqliteFile } from "../../lib/tables/sqlite_backend.ts";

const OPTIONS = { queryTimeoutMs: 1000, connectTimeoutMs: 1000 };
const signal = () => AbortSignal.timeout(5000);
const PERCENT = parseDsn("dsn:sqlite3://%/dkim.db/table=signing?keycol=sender?datacol=keyname");

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A SQLite file at `file` whose one signing row names `keyname`. */
function database(file: string, keyname: string): void {
  const db = new DatabaseSync(file);
  db.exec("CREATE TABLE signing (sender TEXT, keyname TEXT)");
  db.prepare("INSERT INTO signing VALUES ('example.com', ?)").run(keyname);
  db.close();
}

/** openDsn() on `spec` in `dir`: the warnings it gave and what "example.com" answers. */
async function lookup(spec = PERCENT, dir: string) {
  const warnings: string[] = [];
  const table = await openDsn(spec, OPTIONS, dir, (w) => warnings.push(w));
  try {
    const rows = await table.query(["example.com"], signal());
    return { warnings, describe: table.describe, rows };
  } finally {
    await table.close();
  }
}

Deno.test("%/dkim.db reads %dkim.db, the file OpenDKIM opens, without a warning", async () => {
  await withDir(async (dir) => {
    database(`${dir}/%dkim.db`, "opendkim");
    assert.deepEqual(chooseSqliteFile(PERCENT, dir), { file: `${dir}/%dkim.db` });
    const got = await lookup(PERCENT, dir);
    assert.deepEqual(got.rows, [["opendkim"]]);
    assert.deepEqual(got.warnings, []);
    assert.match(got.describe, /^dsn:sqlite3:\/\/\/.*\/%dkim\.db\/table=signing/);
  });
});

Deno.test("%/dkim.db prefers %dkim.db when dkim.db exists too, without a warning", async () => {
  await withDir(async (dir) => {
    database(`${dir}/%dkim.db`, "opendkim");
    database(`${dir}/dkim.db`, "other");
    const got = await lookup(PERCENT, dir);
    assert.deepEqual(got.rows, [["opendkim"]]);
    assert.deepEqual(got.warnings, []);
  });
});

Deno.test("%/dkim.db falls back to dkim.db when only that exists, warning with both paths and why", async () => {
  await withDir(async (dir) => {
    database(`${dir}/dkim.db`, "fallback");
    const got = await lookup(PERCENT, dir);
    assert.deepEqual(got.rows, [["fallback"]]);
    assert.match(got.describe, new RegExp(`^dsn:sqlite3://${dir}/dkim\\.db/table=signing`));
    assert.equal(got.warnings.length, 1);
    const [warning] = got.warnings;
    assert.ok(warning.includes(`"${dir}/%dkim.db"`), warning);
    assert.ok(warning.includes(`"${dir}/dkim.db"`), warning);
    assert.match(warning, /OpenDBX joins the host and the database name without a slash/);
    // Decided at load: a %dkim.db created later is not picked up by this data set.
    const table = await openDsn(PERCENT, OPTIONS, dir);
    database(`${dir}/%dkim.db`, "opendkim");
    assert.deepEqual(await table.query(["example.com"], signal()), [["fallback"]]);
    await table.close();
  });
});

Deno.test("%/dkim.db with neither file: no warning, the query fails naming %dkim.db, and nothing is created", async () => {
  await withDir(async (dir) => {
    const warnings: string[] = [];
    const table = await openDsn(PERCENT, OPTIONS, dir, (w) => warnings.push(w));
    assert.deepEqual(warnings, []);
    await assert.rejects(
      table.query(["example.com"], signal()),
      (e: Error) => {
        assert.ok(e.message.includes(`"${dir}/%dkim.db"`), e.message);
        assert.match(e.message, /unable to open/);
        return true;
      },
    );
    // Unlike OpenDKIM, which creates an empty database there and then signs nothing.
    await assert.rejects(Deno.stat(`${dir}/%dkim.db`), Deno.errors.NotFound);
    await table.close();
  });
});

Deno.test("HOST/FILE reads HOSTFILE as OpenDKIM does, else HOST/FILE with a warning", async () => {
  await withDir(async (dir) => {
    const spec = parseDsn("dsn:sqlite3://d/x.db/table=signing?keycol=sender?datacol=keyname");
    await Deno.mkdir(`${dir}/d`);
    database(`${dir}/d/x.db`, "directory");
    const fallback = await lookup(spec, dir);
    assert.deepEqual(fallback.rows, [["directory"]]);
    assert.equal(fallback.warnings.length, 1);
    assert.ok(fallback.warnings[0].includes(`"${dir}/dx.db"`), fallback.warnings[0]);
    assert.ok(fallback.warnings[0].includes(`"${dir}/d/x.db"`), fallback.warnings[0]);
    database(`${dir}/dx.db`, "opendkim");
    const glued = await lookup(spec, dir);
    assert.deepEqual(glued.rows, [["opendkim"]]);
    assert.deepEqual(glued.warnings, []);
  });
});

Deno.test("an absolute path is read as written, existing or not, without a warning", async () => {
  await withDir(async (dir) => {
    const spec = parseDsn(
      `dsn:sqlite3://${dir}/dkim.db/table=signing?keycol=sender?datacol=keyname`,
    );
    assert.deepEqual(chooseSqliteFile(spec, "/elsewhere"), { file: `${dir}/dkim.db` });
    database(`${dir}/dkim.db`, "absolute");
    const got = await lookup(spec, "/elsewhere");
    assert.deepEqual(got.rows, [["absolute"]]);
    assert.deepEqual(got.warnings, []);
  });
});

Deno.test("chooseSqliteFile() keeps OpenDKIM's file when its stat fails for another reason than missing", () => {
  const asked: string[] = [];
  const choice = chooseSqliteFile(PERCENT, "/srv", (p) => {
    asked.push(p);
    return p !== "/srv/dkim.db";
  });
  assert.deepEqual(choice, { file: "/srv/%dkim.db" });
  assert.deepEqual(asked, ["/srv/%dkim.db"]);
});
