// A fleet on one database (issue 14, "A fleet, shown"): two dkimd, each on its own socket as
// two MTAs would run them, started as the `start` task starts dkimd, share one PostgreSQL that
// holds the KeyTable and the SigningTable, read through a read-only role (the README's grants).
// One has the password in its DSN, the other from a systemd credential (CREDENTIALS_DIRECTORY
// and DataSetPasswordFile). A domain added and a key changed in the database are used by both
// once DataSetCacheTTL has passed, without a reload. The database stopped mid-stream defers mail:
// a real Postfix relays into another real Postfix whose milter is the first dkimd, the message
// stays in the relay's queue (deferred, 4.7.1), and it is delivered signed with the right key
// once the database is back; both dkimd recover by themselves and log the outage once.
import assert from "node:assert/strict";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import { verifyMessage } from "../../lib/dkim/verify.ts";
import { type MessageResult, MilterClient } from "../../lib/milter/client.ts";
import type { Reply } from "../../lib/milter/reply.ts";
import { KEYS_DIR, loadKey, recordFor } from "../helpers/dkim_fixtures.ts";
import { type DkimdProcess, freePort, startDkimd } from "../helpers/dkimd_process.ts";
import { applyModifications, buildMessage, type HeaderPair } from "../helpers/milter_apply.ts";
import { mtaMessage } from "../helpers/mta_message.ts";
import { type PostfixInstance, startPostfix } from "../helpers/postfix.ts";
import { startPostgres } from "../helpers/postgres_server.ts";
import { ZoneResolver } from "../helpers/zone_resolver.ts";

/** The cache TTL both instances run with, in seconds. */
const TTL_S = 2;
const DELIVERY_TIMEOUT_MS = 60_000;

const RSA = await loadKey("rsa2048_pkcs8.pem");
const ED = await loadKey("ed25519.pem");
const RSA_PEM = await Deno.readTextFile(new URL("rsa2048_pkcs8.pem", KEYS_DIR));
const ED_PEM = await Deno.readTextFile(new URL("ed25519.pem", KEYS_DIR));
const ZONE = new ZoneResolver({
  "sel1._domainkey.example.com": [recordFor(RSA)],
  "sel2._domainkey.example.com": [recordFor(ED)],
  "new._domainkey.new.example": [recordFor(RSA)],
});

function headers(domain: string, subject: string): HeaderPair[] {
  return [
    ["From", ` <alice@${domain}>`],
    ["To", " <bob@example.org>"],
    ["Subject", ` ${subject}`],
    ["Date", " Fri, 27 Nov 2026 12:00:00 +0000"],
    ["Message-ID", ` <${subject}@${domain}>`],
  ];
}
const BODY = "Hello from the fleet.\r\n";

async function send(d: DkimdProcess, domain: string, qid: string): Promise<MessageResult> {
  const client = await MilterClient.connect({ kind: "inet", host: "127.0.0.1", port: d.port });
  try {
    const head = headers(domain, qid);
    const bytes = fromLatin1(`${head.map(([n, v]) => `${n}:${v}\r\n`).join("")}\r\n${BODY}`);
    return await client.sendMessage(mtaMessage(bytes, { qid, address: "127.0.0.1" }));
  } finally {
    client.close();
  }
}

function signatureCount(r: MessageResult): number {
  return r.modifications.filter((m): m is Extract<Reply, { type: "insheader" }> =>
    m.type === "insheader" && m.name === "DKIM-Signature"
  ).length;
}

/** What a verifier says of the message `r` made: `domain selector result` per signature. */
async function verdicts(r: MessageResult, domain: string, qid: string): Promise<string[]> {
  const delivered = buildMessage(applyModifications(headers(domain, qid), r.modifications), BODY);
  return await verdictsOf(delivered);
}

async function verdictsOf(message: Uint8Array): Promise<string[]> {
  const found = await verifyMessage(message, { resolver: ZONE, now: () => Date.now() / 1000 });
  return found.map((v) => `${v.domain} ${v.selector} ${v.result}`);
}

// Deferred: On-InternalError tempfail, a 451 4.7.1 reply.
function deferred(r: MessageResult): boolean {
  return r.final.type === "replycode" && r.final.code === 451 &&
    r.final.text.startsWith("4.7.1 ");
}

const count = (text: string, re: RegExp) => text.split("\n").filter((l) => re.test(l)).length;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function metric(port: number, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split("\n").find((l) => pattern.test(l));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1));
}

/** `psql` text for a string literal that may hold newlines and quotes. */
const literal = (text: string) => `$k$${text}$k$`;

Deno.test("two dkimd share one PostgreSQL: changes reach both within the TTL, an outage defers mail through Postfix and both recover", async () => {
  await using pg = await startPostgres();
  // The README's schema and grants, verbatim: a read-only role for the fleet.
  await pg.sql(`CREATE TABLE dkim_keys (
      id          text PRIMARY KEY,
      domain_name text NOT NULL,
      selector    text NOT NULL,
      private_key text NOT NULL);
    CREATE TABLE dkim_signing (
      sender text PRIMARY KEY,
      key_id text NOT NULL REFERENCES dkim_keys (id));`);
  const readerPassword = `r-${crypto.randomUUID()}`;
  await pg.sql(`CREATE ROLE dkimd_reader LOGIN PASSWORD '${readerPassword}';
    GRANT CONNECT ON DATABASE ${pg.database} TO dkimd_reader;
    GRANT USAGE ON SCHEMA public TO dkimd_reader;
    GRANT SELECT ON dkim_keys, dkim_signing TO dkimd_reader;`);
  await pg.sql(`INSERT INTO dkim_keys VALUES ('main', 'example.com', 'sel1', ${literal(RSA_PEM)});
    INSERT INTO dkim_signing VALUES ('example.com', 'main');`);
  // The role reads and cannot write.
  await assert.rejects(
    pg.sql(`SET ROLE dkimd_reader; DELETE FROM dkim_signing`),
    /permission denied/,
  );

  const dir = await Deno.makeTempDir();
  const creds = `${dir}/credentials`;
  await Deno.mkdir(creds, { mode: 0o700 });
  await Deno.writeTextFile(`${creds}/dkim-db`, `${readerPassword}\n`, { mode: 0o400 });
  const where = `${pg.port}+${pg.host}/${pg.database}`;
  const tables = (auth: string) =>
    `KeyTable dsn:pgsql://${auth}@${where}/table=dkim_keys?keycol=id?datacol=domain_name,selector,private_key\n` +
    `SigningTable dsn:pgsql://${auth}@${where}/table=dkim_signing?keycol=sender?datacol=key_id\n` +
    `DataSetCacheTTL ${TTL_S}\nDataSetStaleLimit 0\n`;
  const metricsPort = freePort();
  const fleet: DkimdProcess[] = [];
  let inner: PostfixInstance | undefined;
  let relay: PostfixInstance | undefined;
  try {
    // MTA one's dkimd: the password in the DSN, as OpenDKIM has it; /metrics on.
    await Deno.mkdir(`${dir}/one`);
    fleet.push(
      await startDkimd(
        `${dir}/one`,
        (socket) =>
          `Mode sv\nSocket ${socket}\nSyslog no\nBackground no\n` +
          `MetricsListen 127.0.0.1:${metricsPort}\n` + tables(`dkimd_reader:${readerPassword}`),
      ),
    );
    // MTA two's dkimd: no password in its configuration, a systemd credential instead.
    await Deno.mkdir(`${dir}/two`);
    fleet.push(
      await startDkimd(
        `${dir}/two`,
        (socket) =>
          `Mode sv\nSocket ${socket}\nSyslog no\nBackground no\n` +
          `DataSetPasswordFile dkim-db\n` + tables("dkimd_reader"),
        { env: { CREDENTIALS_DIRECTORY: creds } },
      ),
    );
    assert.ok(!(await Deno.readTextFile(fleet[1].config)).includes(readerPassword));
    const [one] = fleet;

    // Both sign example.com with the row's key; new.example has no row yet.
    for (const [i, d] of fleet.entries()) {
      const r = await send(d, "example.com", `A${i}`);
      assert.equal(r.final.type, "accept", d.log());
      assert.deepEqual(await verdicts(r, "example.com", `A${i}`), ["example.com sel1 pass"]);
      const none = await send(d, "new.example", `N${i}`);
      assert.equal(none.final.type, "accept");
      assert.equal(signatureCount(none), 0);
    }

    // One transaction adds a domain and changes example.com's key (RSA sel1 to Ed25519 sel2).
    // Every answer cached before it expires within the TTL, so the first message after the
    // TTL uses the new rows, on both instances, without a reload.
    await pg.sql(`BEGIN;
      INSERT INTO dkim_keys VALUES ('fresh', 'new.example', 'new', ${literal(RSA_PEM)});
      INSERT INTO dkim_signing VALUES ('new.example', 'fresh');
      UPDATE dkim_keys SET selector = 'sel2', private_key = ${literal(ED_PEM)} WHERE id = 'main';
      COMMIT;`);
    await sleep(TTL_S * 1000 + 100);
    for (const [i, d] of fleet.entries()) {
      const added = await send(d, "new.example", `B${i}`);
      assert.deepEqual(await verdicts(added, "new.example", `B${i}`), ["new.example new pass"]);
      const changed = await send(d, "example.com", `C${i}`);
      assert.deepEqual(await verdicts(changed, "example.com", `C${i}`), [
        "example.com sel2 pass",
      ]);
    }

    // Real MTAs: Postfix "inner" runs dkimd one as its milter and delivers to its sink; Postfix
    // "relay" (no milter) sends everything to inner, as a site's outbound relay would.
    inner = await startPostfix({ smtpdMilters: `inet:127.0.0.1:${one.port}` });
    relay = await startPostfix({
      hostname: "relay.postfix.test",
      mainCf: {
        default_transport: `smtp:[127.0.0.1]:${inner.smtpPort}`,
        relay_transport: `smtp:[127.0.0.1]:${inner.smtpPort}`,
      },
    });
    const mail = (qid: string) =>
      fromLatin1(
        `${headers("example.com", qid).map(([n, v]) => `${n}:${v}\r\n`).join("")}\r\n${BODY}`,
      );
    const ok = await relay.sendSmtp({
      from: "alice@example.com",
      to: "bob@example.org",
      data: mail("P1"),
    });
    assert.ok(ok.accepted, JSON.stringify(ok.reply));
    const [before] = await inner.waitForMessages(1, DELIVERY_TIMEOUT_MS);
    assert.deepEqual(await verdictsOf(before.data), ["example.com sel2 pass"]);

    // The database stops mid-stream. Once the TTL has passed (DataSetStaleLimit 0: nothing
    // stale is served), mail for example.com is deferred by both, neither signed nor passed.
    await pg.stop();
    const down = Date.now();
    await sleep(TTL_S * 1000 + 100);
    const queued = await relay.sendSmtp({
      from: "alice@example.com",
      to: "bob@example.org",
      data: mail("P2"),
    });
    assert.ok(queued.accepted, JSON.stringify(queued.reply));
    // The relay keeps it: inner's smtpd answered 451 4.7.1 with what dkimd said.
    const deferredLog = await relay.waitForLog(
      new RegExp(`${queued.queueId}: .*status=deferred .*451 4\\.7\\.1`),
      DELIVERY_TIMEOUT_MS,
    );
    assert.match(deferredLog, /DKIM filter error, try later/);
    assert.match(await relay.postqueue(), new RegExp(queued.queueId!));
    for (const [i, d] of fleet.entries()) {
      for (const qid of [`D${i}a`, `D${i}b`, `D${i}c`]) {
        const r = await send(d, "example.com", qid);
        assert.ok(deferred(r), `${qid}: ${JSON.stringify(r.final)}`);
        assert.equal(signatureCount(r), 0);
      }
    }
    assert.equal(inner.sink.messages.length, 1, "nothing passed unsigned");
    // One warning per instance for the outage, not one per message or per retry.
    for (const d of fleet) {
      await d.waitForLog(/ is unavailable: /);
      assert.equal(count(d.log(), / is unavailable: /), 1, d.log());
    }
    assert.ok(await metric(metricsPort, /^dkimd_table_lookups_total\{.*source="failed"/) > 0);
    const outageMs = Date.now() - down;

    // Back: both sign again by themselves, and the deferred message is delivered signed.
    await pg.start();
    const back = Date.now();
    const recovered: number[] = [];
    for (const [i, d] of fleet.entries()) {
      let r: MessageResult | undefined;
      for (let n = 0; !(r && signatureCount(r) === 1); n++) {
        assert.ok(Date.now() - back < 60_000, `dkimd ${i} did not recover:\n${d.log()}`);
        await sleep(250);
        r = await send(d, "example.com", `R${i}x${n}`);
      }
      recovered.push(Date.now() - back);
      await d.waitForLog(/ answers again after \d+ s unavailable/);
      assert.equal(count(d.log(), / answers again after /), 1, d.log());
    }
    // Postfix retries on its own (backoff 1-2 s here), but a loaded machine can stretch its
    // queue runs past the wait below: flush, as an administrator would once the database is
    // back. The relay's log is in the failure message either way.
    await relay.flush();
    const delivered = await inner.waitForMessages(2, DELIVERY_TIMEOUT_MS).catch(async (e) => {
      throw new Error(`${e}\nrelay log:\n${await relay?.log()}`);
    });
    assert.equal(delivered.length, 2);
    assert.deepEqual(await verdictsOf(delivered[1].data), ["example.com sel2 pass"]);
    assert.match(latin1(delivered[1].data), /Subject: P2\r\n/);
    assert.match(await relay.log(), new RegExp(`${queued.queueId}: .*status=sent`));
    console.log(
      `fleet: outage ${outageMs} ms; signing again ${recovered.join(" and ")} ms after ` +
        `PostgreSQL was back (retry delay 1 s doubling to 30 s)`,
    );
  } finally {
    await relay?.stop();
    await inner?.stop();
    for (const d of fleet) await d.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
