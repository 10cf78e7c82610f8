// The tools on data sets kept in a database (SQLite here), run as users run them: check-config
// says whether each is reachable, explain names the row that matched, testkey -x checks every
// key of a database KeyTable.
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { KEYS_DIR, loadKey, recordFor } from "../helpers/dkim_fixtures.ts";
import { runCli } from "../helpers/run_cli.ts";

async function setup(): Promise<{ dir: string; conf: string }> {
  const dir = await Deno.makeTempDir();
  await Deno.copyFile(new URL("ed25519.pem", KEYS_DIR), `${dir}/ed.pem`);
  await Deno.chmod(`${dir}/ed.pem`, 0o600);
  const db = new DatabaseSync(`${dir}/dkim.db`);
  db.exec(`CREATE TABLE signing (sender TEXT, keyname TEXT);
    CREATE TABLE keys (id TEXT, domain TEXT, selector TEXT, key TEXT);
    INSERT INTO signing VALUES ('example.com', 'ed');
    INSERT INTO keys VALUES ('ed', 'example.com', 'ed', '${dir}/ed.pem');
    INSERT INTO keys VALUES ('broken', 'example.net', 'x', 'not:a:key');`);
  db.close();
  const key = await loadKey("ed25519.pem");
  await Deno.writeTextFile(`${dir}/keys.txt`, `ed._domainkey.example.com ${recordFor(key)}\n`);
  const conf = `${dir}/dkimd.conf`;
  await Deno.writeTextFile(
    conf,
    `Mode sv\nSocket inet:8891@127.0.0.1\nBaseDirectory ${dir}\n` +
      "KeyTable dsn:sqlite3://%/dkim.db/table=keys?keycol=id?datacol=domain,selector,key\n" +
      "SigningTable dsn:sqlite3://%/dkim.db/table=signing?keycol=sender?datacol=keyname\n" +
      "ExemptDomains dsn:sqlite3://%/missing.db/table=t?keycol=k?datacol=k\n" +
      `TestPublicKeys ${dir}/keys.txt\n`,
  );
  return { dir, conf };
}

Deno.test("check-config, explain and testkey -x work on data sets in a database", async () => {
  const { dir, conf } = await setup();
  try {
    const check = await runCli(["check-config", conf]);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.text, /KeyTable +in a database: dsn:sqlite3:\/\/\/.*dkim\.db\/table=keys/);
    assert.match(check.text, /Data sets in databases:\n/);
    assert.match(check.text, /SigningTable +reachable \(has rows\): dsn:sqlite3:/);
    assert.match(check.text, /ExemptDomains +NOT reachable: .*\/%missing\.db.*unable to open/);
    assert.match(
      check.text,
      /warning\(s\):\n(.|\n)*ExemptDomains NOT reachable: .*On-InternalError/,
    );

    const explain = await runCli(["explain", "-x", conf, "--from", "joe@example.com"]);
    // ExemptDomains is asked first and its database is missing: On-InternalError.
    assert.equal(explain.code, 1, explain.stderr);
    assert.match(explain.text, /ExemptDomains dsn:sqlite3:.*\/%missing\.db.* is unavailable/);
    assert.match(explain.text, /Decision: On-InternalError tempfail/);
    await Deno.writeTextFile(
      conf,
      (await Deno.readTextFile(conf)).replace(/^ExemptDomains .*\n/m, ""),
    );
    const signs = await runCli(["explain", "-x", conf, "--from", "joe@example.com"]);
    assert.equal(signs.code, 0, signs.stderr);
    assert.match(
      signs.text,
      /SigningTable entry "example\.com" at SigningTable dsn:sqlite3:.* row "example\.com" names key "ed"/,
    );
    assert.match(signs.text, /KeyTable dsn:sqlite3:.*table=keys.* row "ed"/);
    assert.match(signs.text, /Decision: SIGN\n +d=example\.com s=ed a=ed25519-sha256/);

    const testkey = await runCli(["testkey", "-x", conf, "-vvv"]);
    assert.match(testkey.stderr, /KeyTable entry "broken" at KeyTable dsn:sqlite3:.* row "broken"/);
    assert.equal(testkey.code, 78, "a row that does not parse is a configuration mistake");
    assert.match(testkey.stderr, /key "ed" loaded from .*ed\.pem \(Ed25519\)/);
    assert.match(testkey.text + testkey.stderr, /key ed: OK/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
