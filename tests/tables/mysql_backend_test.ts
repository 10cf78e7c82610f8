/**
 * openMysql() against a real, private MariaDB: lookups, filter=, NULLs, hostile keys,
 * a wrong password, an outage and its end, a slow query, TLS, and the `start` task's limited
 * permissions.
 */
import assert from "node:assert/strict";
import { openMysql } from "../../lib/tables/mysql_backend.ts";
import type { BackendOptions } from "../../lib/tables/backend_options.ts";
import type { DsnSpec } from "../../lib/tables/dsn_spec.ts";
import { SERVICE_DENO_FLAGS } from "../../lib/ops/self_command.ts";
import { type MariadbServer, startMariadb } from "../helpers/mariadb_server.ts";
import { HOSTILE_KEYS } from "./sql_backend_cases.ts";

const OPTIONS: BackendOptions = { queryTimeoutMs: 2000, connectTimeoutMs: 2000 };
/** A generous deadline for one lookup in a test: the back end's own timeout plus slack. */
const SIGNAL_MS = 10_000;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;
const BACKEND_URL = new URL("../../lib/tables/mysql_backend.ts", import.meta.url).href;

const SETUP = `
CREATE TABLE signing (sender varchar(255), keyname varchar(255), extra varchar(255), active boolean);
INSERT INTO signing VALUES
  ('example.com', 'k1', 'x1', true),
  ('example.com', 'k1-second-row', 'x2', true),
  ('example.org', 'k2', 'x3', true),
  ('null.example', NULL, NULL, true),
  ('off.example', 'k3', 'x4', false),
  ('Mixed.Example', 'k4', 'x5', true);
CREATE FUNCTION slow(k varchar(255)) RETURNS boolean SQL SECURITY INVOKER RETURN SLEEP(5) = 0;
`;

function spec(db: MariadbServer, extra: Partial<DsnSpec> = {}): DsnSpec {
  return {
    backend: "mysql",
    user: db.user,
    password: db.password,
    host: db.host,
    port: db.port,
    database: db.database,
    table: "signing",
    keycol: "sender",
    datacols: ["keyname", "extra"],
    ...extra,
  };
}

/** Prepared statements the server has executed so far (every session). */
async function executions(db: MariadbServer): Promise<number> {
  const out = await db.sql("SHOW GLOBAL STATUS LIKE 'Com_stmt_execute'");
  return Number(out.trim().split("\t")[1]);
}

async function withServer(
  fn: (db: MariadbServer) => Promise<void>,
  options: { tls?: boolean } = {},
) {
  await using db = await startMariadb(options);
  await db.sql(SETUP);
  await fn(db);
}

Deno.test("openMysql() answers several keys in one query, first row, NULL as empty, missing as undefined", async () => {
  await withServer(async (db) => {
    const backend = openMysql(spec(db), OPTIONS);
    try {
      const before = await executions(db);
      assert.deepEqual(
        await backend.query(
          ["example.org", "missing.example", "example.com", "null.example"],
          AbortSignal.timeout(SIGNAL_MS),
        ),
        [["k2", "x3"], undefined, ["k1", "x1"], ["", ""]],
      );
      // One statement for the four keys, as the server counted them.
      assert.equal(await executions(db) - before, 1);
      // The database's own comparison, as OpenDKIM's `keycol = 'key'`: MariaDB's default
      // collation ignores case.
      assert.deepEqual(
        await backend.query(["mixed.example", "Mixed.Example"], AbortSignal.timeout(SIGNAL_MS)),
        [["k4", "x5"], ["k4", "x5"]],
      );
      assert.deepEqual(await backend.query([], AbortSignal.timeout(SIGNAL_MS)), []);
      assert.match(backend.describe, /^dsn:mysql:\/\/dkimd_test:\*\*\*@\d+\+127\.0\.0\.1\/dkim\//);
      assert.ok(!backend.describe.includes(db.password));
    } finally {
      await backend.close();
    }
    await assert.rejects(
      backend.query(["example.com"], AbortSignal.timeout(SIGNAL_MS)),
      /closed/,
    );
  });
});

Deno.test("openMysql() applies filter= and several datacols; scan() walks with the filter", async () => {
  await withServer(async (db) => {
    const backend = openMysql(
      spec(db, { datacols: ["extra", "keyname", "sender"], filter: "active" }),
      OPTIONS,
    );
    try {
      assert.deepEqual(
        await backend.query(["off.example", "example.org"], AbortSignal.timeout(SIGNAL_MS)),
        [undefined, ["x3", "k2", "example.org"]],
      );
      const rows = await backend.scan(100, AbortSignal.timeout(SIGNAL_MS));
      assert.equal(rows.length, 5);
      assert.ok(!rows.some((r) => r.key === "off.example"));
      assert.deepEqual(rows.find((r) => r.key === "null.example")?.columns, [
        "",
        "",
        "null.example",
      ]);
      assert.equal((await backend.scan(2, AbortSignal.timeout(SIGNAL_MS))).length, 2);
    } finally {
      await backend.close();
    }
  });
});

Deno.test("openMysql() refuses a table or column that is not a plain identifier", () => {
  const base: DsnSpec = {
    backend: "mysql",
    user: "u",
    host: "127.0.0.1",
    database: "d",
    table: "t",
    keycol: "k",
    datacols: ["v"],
  };
  assert.throws(() => openMysql({ ...base, table: "t; DROP TABLE t" }, OPTIONS), /"table"|table/);
  assert.throws(() => openMysql({ ...base, keycol: 'k"' }, OPTIONS), /keycol/);
  assert.throws(() => openMysql({ ...base, datacols: ["v", "1bad"] }, OPTIONS), /datacol/);
  assert.throws(() => openMysql({ ...base, user: undefined }, OPTIONS), /names no user/);
});

Deno.test("openMysql() binds hostile keys as values: no match, no error, the table intact", async () => {
  await withServer(async (db) => {
    const backend = openMysql(spec(db), OPTIONS);
    try {
      const answers = await backend.query(HOSTILE_KEYS, AbortSignal.timeout(SIGNAL_MS));
      assert.deepEqual(answers, HOSTILE_KEYS.map(() => undefined));
      assert.equal((await db.sql("SELECT count(*) FROM signing")).trim(), "6");
      assert.deepEqual(
        await backend.query(["example.com"], AbortSignal.timeout(SIGNAL_MS)),
        [["k1", "x1"]],
      );
    } finally {
      await backend.close();
    }
  });
});

Deno.test("openMysql() rejects a wrong password with a clear message that does not contain it", async () => {
  await withServer(async (db) => {
    const wrong = "Wr0ng-Secret-Pw";
    for (
      const backend of [
        openMysql(spec(db, { password: wrong }), OPTIONS),
        openMysql(spec(db), { ...OPTIONS, password: wrong }),
      ]
    ) {
      try {
        await assert.rejects(
          backend.query(["example.com"], AbortSignal.timeout(SIGNAL_MS)),
          (error: Error) => {
            assert.match(error.message, /^Cannot query dsn:mysql:\/\/dkimd_test:\*\*\*@/);
            assert.match(error.message, /Access denied for user 'dkimd_test'/);
            assert.ok(!error.message.includes(wrong), error.message);
            assert.ok(!String(error.stack).includes(wrong));
            return true;
          },
        );
      } finally {
        await backend.close();
      }
    }
    // options.password overrides the DSN's.
    const right = openMysql(spec(db, { password: wrong }), { ...OPTIONS, password: db.password });
    try {
      assert.deepEqual(
        await right.query(["example.org"], AbortSignal.timeout(SIGNAL_MS)),
        [["k2", "x3"]],
      );
    } finally {
      await right.close();
    }
  });
});

Deno.test("openMysql() rejects promptly while the server is down, then answers again by itself", async () => {
  await withServer(async (db) => {
    const backend = openMysql(spec(db), OPTIONS);
    try {
      assert.deepEqual(
        await backend.query(["example.com"], AbortSignal.timeout(SIGNAL_MS)),
        [["k1", "x1"]],
      );
      await db.stop();
      for (let i = 0; i < 3; i++) {
        const started = Date.now();
        await assert.rejects(
          backend.query(["example.com"], AbortSignal.timeout(SIGNAL_MS)),
          /^Error: Cannot query dsn:mysql:/,
        );
        assert.ok(Date.now() - started < OPTIONS.queryTimeoutMs + 1000, `${Date.now() - started}`);
      }
      await db.start();
      assert.deepEqual(
        await backend.query(["example.com", "example.org"], AbortSignal.timeout(SIGNAL_MS)),
        [["k1", "x1"], ["k2", "x3"]],
      );
    } finally {
      await backend.close();
    }
  });
});

Deno.test("openMysql() abandons a slow query at the timeout, cancels it on the server, and goes on", async () => {
  await withServer(async (db) => {
    const options = { ...OPTIONS, queryTimeoutMs: 500 };
    const slow = openMysql(spec(db, { filter: "slow(sender)" }), options);
    const fast = openMysql(spec(db), options);
    try {
      const started = Date.now();
      await assert.rejects(
        slow.query(["example.com"], AbortSignal.timeout(SIGNAL_MS)),
        /^Error: Cannot query dsn:mysql:.*no answer within the query timeout \(500 ms\)/,
      );
      const took = Date.now() - started;
      assert.ok(took >= 450 && took < 2500, `${took} ms`);
      // The caller's own signal is honoured too.
      await assert.rejects(
        slow.query(["example.com"], AbortSignal.timeout(100)),
        /Cannot query dsn:mysql:/,
      );
      assert.deepEqual(
        await fast.query(["example.org"], AbortSignal.timeout(SIGNAL_MS)),
        [["k2", "x3"]],
      );
      // The server stopped sleeping: the query was cancelled, not left to run.
      // Well before the 5 s sleep would end by itself.
      const deadline = Date.now() + 2000;
      while (
        (await db.sql(
          "SELECT count(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%slow(sender)%' AND ID <> CONNECTION_ID()",
        )).trim() !== "0"
      ) {
        assert.ok(Date.now() < deadline, "the slow query still runs on the server");
        await new Promise((r) => setTimeout(r, 100));
      }
      // The slow back end's own connection works for the next query.
      await db.sql(
        "DROP FUNCTION slow; CREATE FUNCTION slow(k varchar(255)) RETURNS boolean RETURN TRUE",
      );
      assert.deepEqual(
        await slow.query(["example.com"], AbortSignal.timeout(SIGNAL_MS)),
        [["k1", "x1"]],
      );
    } finally {
      await slow.close();
      await fast.close();
    }
  });
});

Deno.test("openMysql() with TLS required uses TLS, and refuses a server without it", async () => {
  // The filter matches only on a TLS session, so an answer proves the connection was encrypted.
  const tlsOnly =
    "(SELECT VARIABLE_VALUE <> '' FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_cipher')";
  await withServer(async (db) => {
    const backend = openMysql(spec(db, { filter: tlsOnly }), { ...OPTIONS, tls: "require" });
    try {
      assert.deepEqual(
        await backend.query(["example.com"], AbortSignal.timeout(SIGNAL_MS)),
        [["k1", "x1"]],
      );
    } finally {
      await backend.close();
    }
  }, { tls: true });
  await withServer(async (db) => {
    const required = openMysql(spec(db), { ...OPTIONS, tls: "require" });
    const preferred = openMysql(spec(db), { ...OPTIONS, tls: true });
    try {
      await assert.rejects(
        required.query(["example.com"], AbortSignal.timeout(SIGNAL_MS)),
        (error: Error) => {
          assert.match(error.message, /^Cannot query dsn:mysql:.*TLS is required/);
          assert.ok(!error.message.includes(db.password));
          return true;
        },
      );
      // tls: true only prefers TLS: a server without it is used in the clear.
      assert.deepEqual(
        await preferred.query(["example.com"], AbortSignal.timeout(SIGNAL_MS)),
        [["k1", "x1"]],
      );
    } finally {
      await required.close();
      await preferred.close();
    }
  });
});

Deno.test("openMysql() works under the start task's permissions, ignoring MYSQL_* variables", async () => {
  await withServer(async (db) => {
    const script = `
      import { openMysql } from ${JSON.stringify(BACKEND_URL)};
      const backend = openMysql(${JSON.stringify(spec(db))}, ${JSON.stringify(OPTIONS)});
      const answers = await backend.query(["example.com"], AbortSignal.timeout(10000));
      await backend.close();
      console.log(JSON.stringify(answers));
    `;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", ...SERVICE_DENO_FLAGS, `--config=${CONFIG}`, "--quiet", "-"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      clearEnv: true,
      env: {
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        HOME: Deno.env.get("HOME") ?? "/root",
        NO_COLOR: "1",
        // A client that read these would connect elsewhere, or throw NotCapable.
        MYSQL_HOST: "192.0.2.1",
        MYSQL_PWD: "from-the-environment",
        MYSQL_TCP_PORT: "1",
      },
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(script));
    await writer.close();
    const out = await child.output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text);
    assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), [["k1", "x1"]]);
  });
});
