// A From address is chosen by whoever sends the mail: through the milter, From addresses whose
// local part or domain holds SQL or LDAP-filter syntax (quotes, backslashes, %, _, *, parentheses; NUL
// cannot be in a header) reach a PostgreSQL and an LDAP SigningTable as data only: nothing is
// signed that no row names, nothing is deferred or broken, the tables are intact afterwards,
// and the rows still sign. PostgreSQL logs every statement, which shows the values travelling
// as parameters ($1...), never in the SQL text.
import assert from "node:assert/strict";
import { KEYS_DIR } from "../helpers/dkim_fixtures.ts";
import { startDkimd } from "../helpers/dkimd_process.ts";
import { sendFrom, signatures, tag } from "../helpers/signing_client.ts";
import { startTableWorld } from "../helpers/table_world.ts";

/** From addresses that must not sign: none names a row, though a careless query would match. */
const HOSTILE = [
  "a@x'y.example",
  "a@x';DROP/**/TABLE/**/signing;--.example",
  "a@x'/**/OR/**/'1'='1",
  "a@ex\\ample.com",
  "a@example.com\\",
  "a@%",
  "a@%.com",
  "a@exampl_.com",
  "a@_xample.com",
  "a@*",
  "a@*.com",
  "a@example.com)(dkimIdentity=*",
  "a@*)(|(dkimIdentity=*",
  "a@example.com\\2a",
  "%@%",
  "*@*",
  // The local part reaches the full-address lookup with quotes, %, _, * and, quoted, with
  // backslashes and parentheses. With LIKE or an unescaped LDAP filter, the wildcards would
  // match the row "o'brien@example.org".
  "x'OR'1'='1@example.org",
  "o'brien'--@example.org",
  "%@example.org",
  "_'brien@example.org",
  "o%@example.org",
  "*@example.org",
  "o*@example.org",
  '"*)(dkimIdentity=*"@example.org',
  `"o\\\\'brien"@example.org`,
] as const;

async function injection(backend: "pgsql" | "ldap") {
  const dir = await Deno.makeTempDir({ prefix: `dkimd-inject-${backend}-` });
  const keyFile = `${dir}/key.pem`;
  await Deno.copyFile(new URL("rsa2048_pkcs8.pem", KEYS_DIR), keyFile);
  await Deno.chmod(keyFile, 0o600);
  await using world = await startTableWorld(backend, {
    keys: [
      { id: "k", domain: "example.com", selector: "sel", key: keyFile },
      { id: "q", domain: "example.com", selector: "quoted", key: keyFile },
    ],
    // A row whose key holds a quote (an address: a domain cannot hold one), found as data.
    signing: [["example.com", "k"], ["o'brien@example.org", "q"]],
  }, { dir, logStatements: true });
  const before = await world.count();
  const d = await startDkimd(dir, (socket) =>
    [
      "Mode s",
      `Socket ${socket}`,
      "Syslog no",
      "Background no",
      `KeyTable ${world.keyTable}`,
      `SigningTable ${world.signingTable}`,
      ...world.lines,
      "",
    ].join("\n"));
  try {
    for (const [i, from] of HOSTILE.entries()) {
      const sent = await sendFrom(d.port, from, `I${i}`);
      assert.equal(
        sent.result.final.type,
        "accept",
        `${from}: ${JSON.stringify(sent.result.final)}`,
      );
      assert.deepEqual(signatures(sent.result), [], from);
    }
    // The rows still sign: the plain one, and the one with a quote in its key.
    const plain = await sendFrom(d.port, "a@example.com", "OK1");
    assert.equal(tag(signatures(plain.result)[0] ?? "", "s"), "sel", d.log());
    const quoted = await sendFrom(d.port, "o'brien@example.org", "OK2");
    assert.equal(tag(signatures(quoted.result)[0] ?? "", "s"), "quoted", d.log());
    // Nothing unavailable, nothing dropped or added.
    // "permerror" is the answer to a From without an address (IgnoreMalformedMail, as OpenDKIM).
    assert.doesNotMatch(d.log(), /unavailable|\berror\b/i);
    assert.deepEqual(await world.count(), before);
    if (backend === "pgsql") {
      const log = world.serverLog();
      // dkimd's statements: the keys as parameters, the SQL text free of them.
      const statements = log.split("\n").filter((l) => /LOG: +(execute|statement)/.test(l));
      const ours = statements.filter((l) => l.includes('"signing"'));
      assert.ok(ours.length > 0, log);
      for (const line of ours) {
        assert.match(line, /\$1/, line);
        assert.doesNotMatch(line, /DROP|example|%|'/, line);
      }
      // The hostile local parts did reach the database, as parameter values.
      assert.match(log, /parameters: \$1 = 'x''OR''1''=''1@example\.org'/, log);
      assert.match(log, /parameters: \$1 = '%@example\.org'/, log);
      assert.match(log, /parameters: \$1 = '_''brien@example\.org'/, log);
    }
  } finally {
    await d.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("hostile From addresses reach a PostgreSQL SigningTable as parameters: nothing signed, nothing broken, the table intact", async () => {
  await injection("pgsql");
});

Deno.test("hostile From addresses reach an LDAP SigningTable escaped: nothing signed, nothing broken, the directory intact", async () => {
  await injection("ldap");
});
