// "Lookups per message, never a walk", proven by structure rather than by time: with a KeyTable
// and a SigningTable of 100,000 rows in PostgreSQL, dkimd (started as the `start` task starts
// it) starts and reloads without sending the database a single statement, nor even opening a
// connection; the first message then sends exactly the lookups it needs, for its own keys.
// PostgreSQL logs every statement (log_statement=all), so the test reads what dkimd asked.
// OpenDKIM checks every SigningTable row against the KeyTable at start (5.7 s at 100,000 rows).
import assert from "node:assert/strict";
import { fromLatin1 } from "../../lib/bytes.ts";
import { MilterClient } from "../../lib/milter/client.ts";
import { KEYS_DIR } from "../helpers/dkim_fixtures.ts";
import { startDkimd, until } from "../helpers/dkimd_process.ts";
import { mtaMessage } from "../helpers/mta_message.ts";
import { startPostgres } from "../helpers/postgres_server.ts";

const ROWS = 100_000;

/** The statements PostgreSQL logged between two marker queries. */
function statementsBetween(log: string, from: string, to: string): string[] {
  const start = log.indexOf(from);
  const end = log.indexOf(to, start);
  assert.ok(start >= 0 && end > start, `markers not in the server log:\n${log}`);
  // From the line after the first marker's to the line before the second's.
  return log.slice(log.indexOf("\n", start) + 1, log.lastIndexOf("\n", end)).split("\n")
    .filter((l) => /LOG: {2}(statement|execute [^:]*):/.test(l));
}

Deno.test("dkimd starts and reloads on 100,000 database rows without one query, then asks only a message's keys", async () => {
  await using pg = await startPostgres({ logStatements: true });
  const pem = await Deno.readTextFile(new URL("rsa2048_pkcs8.pem", KEYS_DIR));
  await pg.sql(`CREATE TABLE dkim_keys (id text PRIMARY KEY, domain_name text, selector text,
      private_key text);
    CREATE TABLE dkim_signing (sender text PRIMARY KEY, key_id text);
    INSERT INTO dkim_keys SELECT 'k' || i, 'd' || i || '.example', 'sel', $k$${pem}$k$
      FROM generate_series(1, ${ROWS}) AS i;
    INSERT INTO dkim_signing SELECT 'd' || i || '.example', 'k' || i
      FROM generate_series(1, ${ROWS}) AS i;`);
  assert.equal((await pg.sql("SELECT count(*) FROM dkim_signing")).trim(), String(ROWS));

  const dir = await Deno.makeTempDir();
  const db = `${pg.user}:${pg.password}@${pg.port}+${pg.host}/${pg.database}`;
  await pg.sql("SELECT 'mark-before-start'");
  const d = await startDkimd(
    dir,
    (socket) =>
      `Mode sv\nSocket ${socket}\nSyslog no\nBackground no\n` +
      `KeyTable dsn:pgsql://${db}/table=dkim_keys?keycol=id?datacol=domain_name,selector,private_key\n` +
      `SigningTable dsn:pgsql://${db}/table=dkim_signing?keycol=sender?datacol=key_id\n`,
  );
  const message = (from: string, qid: string, address: string) =>
    mtaMessage(
      fromLatin1(
        `From: <alice@${from}>\r\nTo: <bob@example.org>\r\nSubject: hi\r\n` +
          "Date: Fri, 27 Nov 2026 12:00:00 +0000\r\n\r\nHello.\r\n",
      ),
      { qid, address },
    );
  const send = async (m: ReturnType<typeof message>) => {
    const client = await MilterClient.connect({ kind: "inet", host: "127.0.0.1", port: d.port });
    try {
      return await client.sendMessage(m);
    } finally {
      client.close();
    }
  };
  try {
    // dkimd installs its SIGHUP handler just after it listens: wait until the kernel says the
    // process catches SIGHUP (bit 0 of SigCgt), or the signal would end it.
    await until("dkimd to catch SIGHUP", async () => {
      const status = await Deno.readTextFile(`/proc/${d.pid}/status`);
      return (BigInt(`0x${/^SigCgt:\s*([0-9a-f]+)$/m.exec(status)![1]}`) & 1n) === 1n;
    });
    d.signal("SIGHUP");
    await d.waitForLog(/configuration reloaded/);
    // Not even a connection: dkimd's client connects at its first query.
    assert.equal(
      (await pg.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dkimd'"))
        .trim(),
      "0",
    );
    await pg.sql("SELECT 'mark-after-reload'");
    assert.deepEqual(
      statementsBetween(pg.log(), "mark-before-start", "mark-after-reload").filter((l) =>
        !l.includes("pg_stat_activity")
      ),
      [],
    );

    // The control: one message makes dkimd query, and the log shows it, with bound keys only.
    const r = await send(message("d77777.example", "S1", "127.0.0.1"));
    assert.equal(r.final.type, "accept");
    assert.ok(r.modifications.some((m) => m.type === "insheader" && m.name === "DKIM-Signature"));
    await pg.sql("SELECT 'mark-after-message'");
    const asked = statementsBetween(pg.log(), "mark-after-reload", "mark-after-message");
    assert.ok(asked.some((l) => /dkim_signing/.test(l)), asked.join("\n"));
    assert.ok(asked.some((l) => /dkim_keys/.test(l)), asked.join("\n"));
    // Never a scan: every statement has a WHERE on the key column.
    for (const l of asked) assert.match(l, /WHERE .*"(sender|id)"/i, l);
    assert.ok(asked.length <= 4, asked.join("\n"));
  } finally {
    await d.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
