// Outages of a PostgreSQL or MariaDB KeyTable and SigningTable, through a running dkimd (the
// start task's permissions) and the milter (the SQLite case is tests/e2e/sqlite_tables_test.ts):
// - the server stopped mid-stream: mail deferred (On-InternalError tempfail, 451 4.7.1), never
//   signed, one log line for the outage however many messages; restarted: signing resumes by
//   itself, no reload, and the recovery is logged;
// - a query slower than DataSetQueryTimeout: deferred; fast again: signed;
// - within DataSetStaleLimit, an answer cached before the outage still signs, while a lookup
//   never made is deferred;
// - a wrong password: deferred, with a log line saying why that holds neither password.
import assert from "node:assert/strict";
import { KEYS_DIR, loadKey, recordFor } from "../helpers/dkim_fixtures.ts";
import { type DkimdProcess, startDkimd } from "../helpers/dkimd_process.ts";
import {
  countLines,
  deferred,
  sendFrom,
  type Sent,
  signatures,
  verifiedWith,
} from "../helpers/signing_client.ts";
import { startTableWorld, type TableWorld } from "../helpers/table_world.ts";

const KEY = await loadKey("rsa2048_pkcs8.pem");
const RECORDS = { "sel._domainkey.example.com": recordFor(KEY) };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends from `from` until it is signed (at most ~20 s); returns the signed message. */
async function untilSigned(port: number, from: string, tag: string): Promise<Sent> {
  for (let i = 0;; i++) {
    const sent = await sendFrom(port, from, `${tag}${i}`);
    if (signatures(sent.result).length === 1) return sent;
    assert.ok(deferred(sent.result), JSON.stringify(sent.result.final));
    assert.ok(i < 80, `${from} not signed again`);
    await sleep(250);
  }
}

async function assertDeferred(port: number, from: string, qids: readonly string[]) {
  for (const qid of qids) {
    const sent = await sendFrom(port, from, qid);
    assert.ok(deferred(sent.result), `${qid}: ${JSON.stringify(sent.result.final)}`);
    assert.deepEqual(signatures(sent.result), []);
  }
}

async function outages(backend: "pgsql" | "mysql") {
  const dir = await Deno.makeTempDir({ prefix: `dkimd-outage-${backend}-` });
  const keyFile = `${dir}/key.pem`;
  await Deno.copyFile(new URL("rsa2048_pkcs8.pem", KEYS_DIR), keyFile);
  await Deno.chmod(keyFile, 0o600);
  await using world: TableWorld = await startTableWorld(backend, {
    keys: [{ id: "k", domain: "example.com", selector: "sel", key: keyFile }],
    signing: [["example.com", "k"], ["other.example.com", "k"]],
  }, { dir });
  // The SigningTable becomes a view that sleeps as long as the one-row table `delay` says.
  await world.sql(
    backend === "pgsql"
      ? "CREATE TABLE delay (s float); INSERT INTO delay VALUES (0);" +
        "ALTER TABLE signing RENAME TO signing_rows;" +
        "CREATE VIEW signing AS SELECT * FROM signing_rows " +
        "WHERE (SELECT true FROM pg_sleep((SELECT s FROM delay)));"
      : "CREATE TABLE delay (s double); INSERT INTO delay VALUES (0);" +
        "RENAME TABLE signing TO signing_rows;" +
        "CREATE VIEW signing AS SELECT * FROM signing_rows " +
        "WHERE SLEEP((SELECT s FROM delay)) = 0;",
  );
  const started: DkimdProcess[] = [];
  const start = async (name: string, lines: string[]) => {
    await Deno.mkdir(`${dir}/${name}`);
    const d = await startDkimd(`${dir}/${name}`, (socket) =>
      [
        "Mode s",
        `Socket ${socket}`,
        "Syslog no",
        "Background no",
        "DataSetCacheTTL 1",
        "DataSetQueryTimeout 1",
        "DataSetConnectTimeout 2",
        ...lines,
        "",
      ].join("\n"));
    started.push(d);
    return d;
  };
  const tables = [`KeyTable ${world.keyTable}`, `SigningTable ${world.signingTable}`];
  try {
    const d = await start("main", ["DataSetStaleLimit 0", ...tables]);
    const stale = await start("stale", ["DataSetStaleLimit 60", ...tables]);
    const wrong = "not-the-password-4711";
    const refused = await start("refused", [
      `KeyTable ${world.withPassword(world.keyTable, wrong)}`,
      `SigningTable ${world.withPassword(world.signingTable, wrong)}`,
    ]);

    // Up: signed, and the signature verifies.
    const first = await sendFrom(d.port, "a@example.com", "U1");
    assert.deepEqual(await verifiedWith(first, RECORDS), ["example.com sel pass"], d.log());
    // The stale-limit instance caches a@example.com's answers now.
    assert.equal(signatures((await sendFrom(stale.port, "a@example.com", "U2")).result).length, 1);

    // A wrong password: deferred; the log says why, and holds neither password.
    await assertDeferred(refused.port, "a@example.com", ["P1", "P2"]);
    await refused.waitForLog(/SigningTable dsn:.* is unavailable: /);
    const refusedLog = refused.log();
    assert.equal(countLines(refusedLog, / is unavailable: /), 1, refusedLog);
    assert.match(refusedLog, /password|[Aa]ccess denied|authentication/, refusedLog);
    assert.ok(!refusedLog.includes(wrong), refusedLog);
    const password = /:([^:@]+)@\d+\+/.exec(world.keyTable)![1];
    assert.ok(!refusedLog.includes(password), refusedLog);
    assert.match(refusedLog, new RegExp(`dsn:${backend}://dkimd_test:\\*\\*\\*@`));

    // The server stops mid-stream: deferred, never signed; one log line for the outage.
    await world.stop();
    await sleep(1_100);
    await assertDeferred(d.port, "a@example.com", ["D1", "D2", "D3", "D4"]);
    await d.waitForLog(/is unavailable/);
    assert.equal(countLines(d.log(), / is unavailable: /), 1, d.log());
    assert.equal(countLines(d.log(), /SigningTable dsn:.* is unavailable: /), 1, d.log());

    // Meanwhile, past the TTL but within DataSetStaleLimit, the answer cached before the
    // outage still signs; a sender never looked up is deferred.
    const served = await sendFrom(stale.port, "a@example.com", "S1");
    assert.deepEqual(await verifiedWith(served, RECORDS), ["example.com sel pass"], stale.log());
    await assertDeferred(stale.port, "b@other.example.com", ["S2"]);

    // Back: signing resumes by itself, without a reload; the recovery is logged.
    await world.start();
    const back = await untilSigned(d.port, "a@example.com", "R");
    assert.deepEqual(await verifiedWith(back, RECORDS), ["example.com sel pass"]);
    await d.waitForLog(/SigningTable dsn:.* answers again after \d+ s unavailable/);
    assert.equal(countLines(d.log(), / is unavailable: /), 1, d.log());

    // A query slower than DataSetQueryTimeout (1 s): deferred; fast again: signed.
    await world.sql("UPDATE delay SET s = 3");
    await sleep(1_100);
    await assertDeferred(d.port, "a@example.com", ["T1", "T2"]);
    await d.waitForLog(/SigningTable dsn:.* is unavailable: no answer within 1000 ms/);
    await world.sql("UPDATE delay SET s = 0");
    await untilSigned(d.port, "a@example.com", "F");
  } finally {
    for (const d of started) await d.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("dkimd with a PostgreSQL KeyTable and SigningTable defers mail while the server is down, slow or refusing, and recovers by itself", async () => {
  await outages("pgsql");
});

Deno.test("dkimd with a MariaDB KeyTable and SigningTable defers mail while the server is down, slow or refusing, and recovers by itself", async () => {
  await outages("mysql");
});
