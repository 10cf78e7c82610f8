// A KeyTable and a SigningTable in SQLite, through a running dkimd (the start task's
// permissions) and the milter: mail for a domain in the database is signed with its key and
// verifies; a row added is used within DataSetCacheTTL without a reload; a database that goes
// away defers mail (On-InternalError tempfail: not signed, not passed unsigned) with one log
// line for the outage and one when it is back; a row with a bad key is logged once, naming the
// table and the key.
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import { verifyMessage } from "../../lib/dkim/verify.ts";
import { type MessageResult, MilterClient } from "../../lib/milter/client.ts";
import type { Reply } from "../../lib/milter/reply.ts";
import { KEYS_DIR, loadKey, recordFor } from "../helpers/dkim_fixtures.ts";
import { startDkimd } from "../helpers/dkimd_process.ts";
import { applyModifications, buildMessage, type HeaderPair } from "../helpers/milter_apply.ts";
import { mtaMessage } from "../helpers/mta_message.ts";
import { ZoneResolver } from "../helpers/zone_resolver.ts";

const KEY = await loadKey("rsa2048_pkcs8.pem");
const ZONE = new ZoneResolver({
  "sel._domainkey.example.com": [recordFor(KEY)],
  "new._domainkey.new.example": [recordFor(KEY)],
});

function headers(domain: string, subject: string): HeaderPair[] {
  return [
    ["From", ` <alice@${domain}>`],
    ["To", " <bob@example.org>"],
    ["Subject", ` ${subject}`],
    ["Date", " Fri, 27 Nov 2026 12:00:00 +0000"],
  ];
}
const BODY = "Hello.\r\n";

async function send(port: number, domain: string, qid: string): Promise<MessageResult> {
  const client = await MilterClient.connect({ kind: "inet", host: "127.0.0.1", port });
  try {
    const head = headers(domain, qid);
    const bytes = fromLatin1(`${head.map(([n, v]) => `${n}:${v}\r\n`).join("")}\r\n${BODY}`);
    return await client.sendMessage(mtaMessage(bytes, { qid, address: "127.0.0.1" }));
  } finally {
    client.close();
  }
}

function signatures(r: MessageResult): string[] {
  return r.modifications
    .filter((m): m is Extract<Reply, { type: "insheader" }> =>
      m.type === "insheader" && m.name === "DKIM-Signature"
    )
    .map((m) => (typeof m.value === "string" ? m.value : latin1(m.value)));
}

async function verified(r: MessageResult, domain: string, qid: string): Promise<string[]> {
  const delivered = buildMessage(applyModifications(headers(domain, qid), r.modifications), BODY);
  const verdicts = await verifyMessage(delivered, { resolver: ZONE, now: () => Date.now() / 1000 });
  return verdicts.map((v) => `${v.domain} ${v.selector} ${v.result}`);
}

// Deferred: On-InternalError tempfail, a 451 4.7.1 reply.
function deferred(r: MessageResult): boolean {
  return r.final.type === "replycode" && r.final.code === 451 &&
    r.final.text.startsWith("4.7.1 DKIM filter error, try later");
}

const count = (text: string, re: RegExp) => text.split("\n").filter((l) => re.test(l)).length;

Deno.test("dkimd signs from a SQLite KeyTable and SigningTable, follows row changes, and defers mail while the database is gone", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/dkim.db`;
  await Deno.copyFile(new URL("rsa2048_pkcs8.pem", KEYS_DIR), `${dir}/key.pem`);
  await Deno.chmod(`${dir}/key.pem`, 0o600);
  await Deno.writeTextFile(
    `${dir}/bad.pem`,
    "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n",
  );
  await Deno.chmod(`${dir}/bad.pem`, 0o600);
  const db = new DatabaseSync(file);
  db.exec(`CREATE TABLE signing (sender TEXT, keyname TEXT);
    CREATE TABLE keys (id TEXT, domain TEXT, selector TEXT, key TEXT);
    INSERT INTO signing VALUES ('example.com', 'main'), ('bad.example', 'broken');
    INSERT INTO keys VALUES ('main', 'example.com', 'sel', '${dir}/key.pem');
    INSERT INTO keys VALUES ('broken', 'bad.example', 'sel', '${dir}/bad.pem');`);
  db.close();
  const dsn = (rest: string) => `dsn:sqlite3://${file}/${rest}`;
  const d = await startDkimd(
    dir,
    (socket) =>
      `Mode sv\nSocket ${socket}\nSyslog no\nBackground no\n` +
      `KeyTable ${dsn("table=keys?keycol=id?datacol=domain,selector,key")}\n` +
      `SigningTable ${dsn("table=signing?keycol=sender?datacol=keyname")}\n` +
      `DataSetCacheTTL 1\nDataSetStaleLimit 0\n`,
  );
  try {
    // A domain in the database: signed with its row's key, and the signature verifies.
    const first = await send(d.port, "example.com", "Q1");
    assert.equal(first.final.type, "accept");
    assert.equal(signatures(first).length, 1, JSON.stringify(first.modifications));
    assert.deepEqual(await verified(first, "example.com", "Q1"), ["example.com sel pass"]);

    // A domain not in the database: not signed; added, it is signed within the TTL, no reload.
    const before = await send(d.port, "new.example", "Q2");
    assert.equal(before.final.type, "accept");
    assert.deepEqual(signatures(before), []);
    const w = new DatabaseSync(file);
    w.exec(`INSERT INTO signing VALUES ('new.example', 'fresh');
      INSERT INTO keys VALUES ('fresh', 'new.example', 'new', '${dir}/key.pem');`);
    w.close();
    await new Promise((r) => setTimeout(r, 1_200));
    const after = await send(d.port, "new.example", "Q3");
    assert.deepEqual(await verified(after, "new.example", "Q3"), ["new.example new pass"]);

    // A row whose key is bad: mail deferred, logged once naming the table and the key.
    for (const qid of ["B1", "B2", "B3"]) {
      const bad = await send(d.port, "bad.example", qid);
      assert.ok(deferred(bad), `${qid}: ${JSON.stringify(bad.final)}`);
      assert.deepEqual(signatures(bad), []);
    }
    await d.waitForLog(/KeyTable entry "broken"/);
    assert.equal(
      count(
        d.log(),
        /Cannot load the key of KeyTable entry "broken" at KeyTable dsn:sqlite3:\/\/\/.*table=keys.* row "broken"/,
      ),
      1,
      d.log(),
    );

    // The database goes away: deferred, neither signed nor passed unsigned; one log line.
    await Deno.rename(file, `${dir}/gone.db`);
    await new Promise((r) => setTimeout(r, 1_100));
    for (const qid of ["D1", "D2", "D3", "D4"]) {
      const down = await send(d.port, "example.com", qid);
      assert.ok(deferred(down), `${qid}: ${JSON.stringify(down.final)}`);
      assert.deepEqual(signatures(down), []);
    }
    await d.waitForLog(/is unavailable/);
    // One line for the outage, not one per message (the SigningTable is asked first).
    assert.equal(count(d.log(), / is unavailable: /), 1, d.log());
    assert.equal(count(d.log(), /SigningTable dsn:sqlite3:.* is unavailable: /), 1, d.log());

    // Back: signing resumes by itself (after the retry delay), and the recovery is logged.
    await Deno.rename(`${dir}/gone.db`, file);
    let back: MessageResult | undefined;
    for (let i = 0; i < 40 && !(back && signatures(back).length === 1); i++) {
      await new Promise((r) => setTimeout(r, 250));
      back = await send(d.port, "example.com", `R${i}`);
    }
    assert.equal(back && signatures(back).length, 1);
    await d.waitForLog(/SigningTable dsn:sqlite3:.* answers again after \d+ s unavailable/);
  } finally {
    await d.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
