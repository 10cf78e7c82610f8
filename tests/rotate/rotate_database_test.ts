// `dkimd rotate` with the KeyTable in a database (issue 15 step 4: "a transaction for a database
// table, then ... the database cache TTL"): PostgreSQL, MariaDB and SQLite, each started for the
// test, with knot as the zone's primary. The mail path reads through a read-only user; rotate
// writes as RotationDataSetUser, and a rotation without that user is refused by the database.
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { fromLatin1, toBase64 } from "../../lib/bytes.ts";
import { generateSigningKey } from "../../lib/crypto/private_key.ts";
import { MilterClient } from "../../lib/milter/client.ts";
import { ROTATE_EXIT, runRotate } from "../../lib/cli/rotate.ts";
import { readRotationState } from "../../lib/rotate/state_file.ts";
import { startKnotZone } from "../helpers/knot_servers.ts";
import { startPostgres } from "../helpers/postgres_server.ts";
import { startMariadb } from "../helpers/mariadb_server.ts";
import { startDkimd } from "../helpers/dkimd_process.ts";
import { runCli } from "../helpers/run_cli.ts";

const ZONE = "example.com";
const SECRET = toBase64(crypto.getRandomValues(new Uint8Array(32)));
const T0 = Date.parse("2026-12-07T10:00:00Z");
const NEW = "202612-ed25519";
/** DataSetCacheTTL of the configurations (DataSetStaleLimit is 1): a switch shows in 3 s. */
const TTL_S = 2;
const STALE_S = 1;

/** One database holding the KeyTable, as the test sees it. */
interface KeyDb {
  /** The KeyTable's DSN, with the read-only user. */
  readonly dsn: string;
  /** The SigningTable's, in the same database (a SigningTable file cannot name its keys). */
  readonly signingDsn: string;
  /** Settings that let rotate write (RotationDataSetUser...), or none for a read-only run. */
  readonly writerSettings: readonly string[];
  /** The row of key "main": selector and key. */
  row(): Promise<{ selector: string; key: string }>;
  close(): Promise<void>;
}

async function openKeyDb(kind: "pgsql" | "mysql" | "sqlite3", dir: string): Promise<KeyDb> {
  const create = "CREATE TABLE dkim_keys (id varchar(64) PRIMARY KEY, domain_name varchar(255), " +
    "selector varchar(64), private_key text)";
  const insert =
    `INSERT INTO dkim_keys VALUES ('main', 'example.com', 'old', '${dir}/keys/old.private')`;
  const cols = "table=dkim_keys?keycol=id?datacol=domain_name,selector,private_key";
  const signing =
    "CREATE TABLE dkim_signing (sender varchar(255) PRIMARY KEY, key_id varchar(64)); " +
    "INSERT INTO dkim_signing VALUES ('example.com', 'main')";
  const signingCols = "table=dkim_signing?keycol=sender?datacol=key_id";
  if (kind === "pgsql") {
    const pg = await startPostgres();
    await pg.sql(`${create}; ${insert}; ${signing};
      CREATE ROLE dkimd_reader LOGIN PASSWORD 'reader-pw';
      GRANT SELECT ON dkim_keys, dkim_signing TO dkimd_reader;`);
    await Deno.writeTextFile(`${dir}/rotate.password`, `${pg.password}\n`, { mode: 0o600 });
    return {
      dsn: `dsn:pgsql://dkimd_reader:reader-pw@${pg.port}+${pg.host}/${pg.database}/${cols}`,
      signingDsn:
        `dsn:pgsql://dkimd_reader:reader-pw@${pg.port}+${pg.host}/${pg.database}/${signingCols}`,
      writerSettings: [
        `RotationDataSetUser ${pg.user}`,
        `RotationDataSetPasswordFile ${dir}/rotate.password`,
      ],
      async row() {
        const [selector, key] = (await pg.sql(
          "SELECT selector, private_key FROM dkim_keys WHERE id = 'main'",
        )).trim().split("|");
        return { selector, key };
      },
      close: () => pg.close(),
    };
  }
  if (kind === "mysql") {
    const db = await startMariadb();
    await db.sql(`${create}; ${insert}; ${signing};
      CREATE USER 'dkimd_reader'@'127.0.0.1' IDENTIFIED BY 'reader-pw';
      GRANT SELECT ON ${db.database}.dkim_keys TO 'dkimd_reader'@'127.0.0.1';
      GRANT SELECT ON ${db.database}.dkim_signing TO 'dkimd_reader'@'127.0.0.1';`);
    await Deno.writeTextFile(`${dir}/rotate.password`, `${db.password}\n`, { mode: 0o600 });
    return {
      dsn: `dsn:mysql://dkimd_reader:reader-pw@${db.port}+${db.host}/${db.database}/${cols}`,
      signingDsn:
        `dsn:mysql://dkimd_reader:reader-pw@${db.port}+${db.host}/${db.database}/${signingCols}`,
      writerSettings: [
        `RotationDataSetUser ${db.user}`,
        `RotationDataSetPasswordFile ${dir}/rotate.password`,
      ],
      async row() {
        const lines = (await db.sql(
          "SELECT selector, private_key FROM dkim_keys WHERE id = 'main'",
        )).trim().split("\n");
        const [selector, key] = lines[lines.length - 1].split("\t");
        return { selector, key };
      },
      close: () => db.close(),
    };
  }
  const file = `${dir}/dkim.db`;
  const db = new DatabaseSync(file);
  db.exec(`${create}; ${insert}; ${signing};`);
  db.close();
  return {
    dsn: `dsn:sqlite3://${file}/${cols}`,
    signingDsn: `dsn:sqlite3://${file}/${signingCols}`,
    writerSettings: [],
    row() {
      const db = new DatabaseSync(file, { readOnly: true });
      try {
        const r = db.prepare("SELECT selector, private_key FROM dkim_keys WHERE id = 'main'")
          .get() as { selector: string; private_key: string };
        return Promise.resolve({ selector: r.selector, key: r.private_key });
      } finally {
        db.close();
      }
    },
    close: () => Promise.resolve(),
  };
}

interface World {
  readonly dir: string;
  readonly db: KeyDb;
  readonly conf: (socket: string) => string;
  /** Runs `dkimd rotate ARGS` in this process at `at` (ms). */
  run(at: number, ...args: string[]): Promise<{ status: number; out: string[]; err: string[] }>;
}

async function withWorld(
  kind: "pgsql" | "mysql" | "sqlite3",
  options: { writer: boolean },
  fn: (w: World) => Promise<void>,
) {
  const oldKey = await generateSigningKey("ed25519");
  const dns = await startKnotZone({
    zone: ZONE,
    records: {
      "old._domainkey.example.com": [`v=DKIM1; k=ed25519; p=${toBase64(oldKey.publicKey)}`],
    },
    key: { name: "dkimd-rotate", secret: SECRET },
  });
  const dir = await Deno.makeTempDir({ prefix: `dkimd-rotate-${kind}-` });
  let db: KeyDb | undefined;
  try {
    await Deno.mkdir(`${dir}/keys`, { mode: 0o700 });
    await Deno.writeTextFile(`${dir}/keys/old.private`, await oldKey.toPem(), { mode: 0o600 });
    await Deno.writeTextFile(
      `${dir}/update.key`,
      `key "dkimd-rotate" {\n\talgorithm hmac-sha256;\n\tsecret "${SECRET}";\n};\n`,
      { mode: 0o600 },
    );
    const keyDb = db = await openKeyDb(kind, dir);
    const conf = (socket: string) =>
      [
        "Mode sv",
        `Socket ${socket}`,
        "Syslog no",
        `KeyTable ${keyDb.dsn}`,
        `SigningTable ${keyDb.signingDsn}`,
        `DataSetCacheTTL ${TTL_S}`,
        `DataSetStaleLimit ${STALE_S}`,
        `Nameservers ${dns.primary.nameserver}`,
        "DNSTimeout 2",
        `DNSUpdateKey ${dir}/update.key`,
        `DNSUpdateServer ${dns.primary.nameserver}`,
        `DNSProofServers ${dns.primary.nameserver}`,
        `RotationStateFile ${dir}/state/rotation.json`,
        "RotationRetireAfter 0",
        "RotationDeleteAfter 0",
        ...(options.writer ? keyDb.writerSettings : []),
        "",
      ].join("\n");
    await Deno.writeTextFile(`${dir}/opendkim.conf`, conf("inet:8891@127.0.0.1"));
    await fn({
      dir,
      db: keyDb,
      conf,
      async run(at, ...args) {
        const out: string[] = [];
        const err: string[] = [];
        const status = await runRotate(["-x", `${dir}/opendkim.conf`, ...args], {
          now: () => at,
          out: (l) => out.push(l),
          err: (l) => err.push(l),
        });
        return { status, out, err };
      },
    });
  } finally {
    await db?.close();
    await Deno.remove(dir, { recursive: true });
    await dns.close();
  }
}

/** Runs rotate at `at` until it stops waiting for DNS (75), at most 15 s. */
async function settle(w: World, at: number, ...args: string[]) {
  const deadline = Date.now() + 15_000;
  const out: string[] = [];
  const err: string[] = [];
  for (;;) {
    const r = await w.run(at, ...args);
    out.push(...r.out);
    err.push(...r.err);
    if (r.status !== ROTATE_EXIT.waiting || Date.now() > deadline) {
      return { status: r.status, out, err, text: [...out, ...err].join("\n") };
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

/** The selectors (s=) of the signatures dkimd adds to a message from `from`. */
async function signedWith(port: number, from: string): Promise<string[]> {
  const client = await MilterClient.connect({ kind: "inet", host: "127.0.0.1", port });
  try {
    const r = await client.sendMessage({
      connect: { hostname: "localhost", address: "127.0.0.1" },
      macros: { mail: { i: "Q1" } },
      from: `<${from}>`,
      headers: [["From", ` ${from}`], ["Subject", " hi"]],
      body: fromLatin1("hello\r\n"),
    });
    return r.modifications
      .filter((m) => m.type === "insheader" && m.name === "DKIM-Signature")
      .map((m) =>
        new TextDecoder().decode((m as { value: Uint8Array }).value).match(
          /(?:^|[\s;])s=([^;\s]+)/,
        )?.[1] ?? "?"
      );
  } finally {
    client.close();
  }
}

/** The selector RotationSelectorFormat's default gives an Ed25519 key now. */
function newSelectorNow(): string {
  const d = new Date();
  return `${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, "0")}-ed25519`;
}

Deno.test("dkimd rotate, KeyTable in PostgreSQL: the row switches in one transaction, a running dkimd signs with the new selector after the TTL without a reload, then revoke and delete", async () => {
  await withWorld("pgsql", { writer: true }, async (w) => {
    // dkimd started as users start it, reading through the read-only user; no PidFile.
    const dkimd = await startDkimd(w.dir, w.conf);
    try {
      assert.deepEqual(await signedWith(dkimd.port, "a@example.com"), ["old"]);
      const selector = newSelectorNow();
      const conf = `${w.dir}/opendkim.conf`;
      const deadline = Date.now() + 20_000;
      let r = await runCli(["rotate", "-x", conf, "--now"]);
      while (r.code === ROTATE_EXIT.waiting && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 300));
        r = await runCli(["rotate", "-x", conf]);
      }
      const switchedAt = Date.now();
      assert.equal(r.code, ROTATE_EXIT.ok, r.text + r.stderr);
      assert.equal(r.stderr, "");
      assert.match(
        r.text,
        new RegExp(
          `switched the KeyTable row "main" of dsn:pgsql://dkimd_test:\\*\\*\\*@.* to "${selector}" \\(committed\\); running dkimds use it within ${
            TTL_S + STALE_S
          } s`,
        ),
      );
      assert.match(r.text, /no PidFile: reload dkimd yourself/);
      assert.match(r.text, /waiting until .* for running dkimds to drop the old KeyTable row/);
      assert.doesNotMatch(r.text + r.stderr, /reader-pw|pw-/);
      assert.deepEqual(await w.db.row(), {
        selector,
        key: `${w.dir}/keys/${selector}.private`,
      });
      // --status says what activation waits for.
      const status = await runCli(["rotate", "-x", conf, "--status"]);
      assert.match(
        status.text,
        /next step: activate; waits for running dkimds to drop the old KeyTable row from their caches \(DataSetCacheTTL \+ DataSetStaleLimit\)/,
      );
      // Within the TTL the running dkimd takes the new row by itself.
      let seen: string[] = [];
      while (Date.now() < switchedAt + (TTL_S + 2) * 1000) {
        seen = await signedWith(dkimd.port, "a@example.com");
        if (seen[0] === selector) break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      assert.deepEqual(seen, [selector]);
      assert.doesNotMatch(dkimd.log(), /reloaded/);

      // After TTL + stale limit the activation completes; retirement counts from then.
      await new Promise((resolve) => setTimeout(resolve, (TTL_S + STALE_S) * 1000));
      const done = await runCli(["rotate", "-x", conf]);
      assert.equal(done.code, ROTATE_EXIT.ok, done.text + done.stderr);
      assert.match(done.text, /activated: every running dkimd's cached row of "main" has expired/);
      assert.match(done.text, /waiting until .* for the old key's signatures to expire/);
      const [rotation] = (await readRotationState(`${w.dir}/state/rotation.json`)).rotations;
      assert.equal(rotation.step, "retire");
      assert.ok(rotation.activatedAt! >= rotation.switchedAt! + TTL_S + STALE_S);

      // Past the record's TTL: revoke, prove, delete, done.
      const later = await settle(w, Date.now() + 400_000);
      assert.equal(later.status, ROTATE_EXIT.ok, later.text);
      assert.match(later.text, /deleted the old key file/);
      assert.match(later.text, new RegExp(`rotation to "${selector}" done`));
      await assert.rejects(Deno.stat(`${w.dir}/keys/old.private`), Deno.errors.NotFound);
      assert.deepEqual(await signedWith(dkimd.port, "a@example.com"), [selector]);
    } finally {
      await dkimd.stop();
    }
  });
});

for (const kind of ["pgsql", "mysql"] as const) {
  Deno.test(`dkimd rotate, KeyTable in ${kind}: a read-only database user is refused in one line (exit 1), nothing changed, and the state resumes`, async () => {
    await withWorld(kind, { writer: false }, async (w) => {
      const all = await settle(w, T0, "--now");
      assert.equal(all.status, ROTATE_EXIT.error, all.text);
      assert.equal(all.err.length, 1, all.err.join("\n"));
      assert.match(
        all.err[0],
        new RegExp(
          `^dkimd rotate: main \\(example\\.com\\): Cannot switch the KeyTable row "main" in dsn:${kind}://dkimd_reader:\\*\\*\\*@.*: .*(permission denied|command denied).*; rotation needs a database user with UPDATE on the KeyTable \\(RotationDataSetUser, RotationDataSetPasswordFile\\)$`,
        ),
      );
      assert.doesNotMatch(all.err[0], /reader-pw/);
      assert.deepEqual(await w.db.row(), { selector: "old", key: `${w.dir}/keys/old.private` });
      const [rotation] = (await readRotationState(`${w.dir}/state/rotation.json`)).rotations;
      assert.equal(rotation.step, "activate");
      assert.equal(rotation.switchedAt, undefined);
      assert.match(rotation.lastError!, /UPDATE on the KeyTable/);

      // Given the writer's user, the same rotation resumes and switches the row.
      const conf = await Deno.readTextFile(`${w.dir}/opendkim.conf`);
      await Deno.writeTextFile(
        `${w.dir}/opendkim.conf`,
        conf + w.db.writerSettings.join("\n") + "\n",
      );
      const resumed = await settle(w, T0 + 60_000);
      assert.equal(resumed.status, ROTATE_EXIT.ok, resumed.text);
      assert.deepEqual(await w.db.row(), { selector: NEW, key: `${w.dir}/keys/${NEW}.private` });
    });
  });
}

for (const kind of ["mysql", "sqlite3"] as const) {
  Deno.test(`dkimd rotate, KeyTable in ${kind}: the row switches, activation completes after DataSetCacheTTL + DataSetStaleLimit, and a rerun changes nothing`, async () => {
    await withWorld(kind, { writer: true }, async (w) => {
      const r = await settle(w, T0, "--now");
      assert.equal(r.status, ROTATE_EXIT.ok, r.text);
      assert.match(
        r.text,
        new RegExp(
          `switched the KeyTable row "main" of dsn:${kind}:.* to "${NEW}" \\(committed\\)`,
        ),
      );
      assert.deepEqual(await w.db.row(), { selector: NEW, key: `${w.dir}/keys/${NEW}.private` });
      // Within TTL + stale limit: still activating, whatever runs.
      const early = await w.run(T0 + (TTL_S + STALE_S - 1) * 1000);
      assert.equal(early.status, ROTATE_EXIT.ok);
      assert.match(early.out.join("\n"), /waiting until .* for running dkimds to drop/);
      let [rotation] = (await readRotationState(`${w.dir}/state/rotation.json`)).rotations;
      assert.equal(rotation.step, "activate");
      assert.equal(rotation.switchedAt, T0 / 1000);
      // After it: the activation completes (the row is checked again, unchanged).
      const done = await w.run(T0 + (TTL_S + STALE_S) * 1000);
      assert.equal(done.status, ROTATE_EXIT.ok, [...done.out, ...done.err].join("\n"));
      assert.match(done.out.join("\n"), /activated: every running dkimd's cached row/);
      [rotation] = (await readRotationState(`${w.dir}/state/rotation.json`)).rotations;
      assert.equal(rotation.step, "retire");
      assert.equal(rotation.activatedAt, T0 / 1000 + TTL_S + STALE_S);
      assert.deepEqual(await w.db.row(), { selector: NEW, key: `${w.dir}/keys/${NEW}.private` });
    });
  });
}

Deno.test("dkimd rotate refuses RotationOverlap with a KeyTable in a database in one line", async () => {
  await withWorld("sqlite3", { writer: true }, async (w) => {
    const conf = await Deno.readTextFile(`${w.dir}/opendkim.conf`);
    await Deno.writeTextFile(
      `${w.dir}/opendkim.conf`,
      conf + "RotationOverlap 600\nMultipleSignatures yes\n",
    );
    const r = await w.run(T0, "--now");
    assert.equal(r.status, ROTATE_EXIT.error);
    assert.deepEqual(r.err, [
      "dkimd rotate: RotationOverlap needs a KeyTable file: with a KeyTable in a database (dsn:) set RotationOverlap 0 (the new key would need a second KeyTable row)",
    ]);
    assert.deepEqual(r.out, []);
    assert.deepEqual(await w.db.row(), { selector: "old", key: `${w.dir}/keys/old.private` });
  });
});
