// Loading a configuration whose data sets live in databases: each dsn: setting becomes a cached
// table asked by key (never read whole at load), for every setting OpenDKIM lets a database hold;
// the DataSetPasswordFile comes from a file or systemd's credentials directory.
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { denoLoadIo, loadConfig, type LoadIo } from "../../lib/config/load.ts";
import { importPrivateKey, type SigningKey } from "../../lib/crypto/private_key.ts";
import { chooseSigners } from "../../lib/policy/signers.ts";
import type { DatabaseSource } from "../../lib/policy/dataset.ts";
import type { BackendOptions } from "../../lib/tables/backend_options.ts";
import type { LdapOptions } from "../../lib/tables/ldap_backend.ts";
import { KEYS_DIR } from "../helpers/dkim_fixtures.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function database(file: string): void {
  const db = new DatabaseSync(file);
  db.exec(`CREATE TABLE names (k TEXT, v TEXT);
    INSERT INTO names VALUES ('example.com', 'main'), ('joe@example.com', 'joe'),
      ('main', 'example.com:sel:KEY'), ('joe', 'example.com:joe:KEY'),
      ('10.0.0.0/8', ''), ('.internal.example', ''), ('exempt.example', ''),
      ('bob@blocked.example', ''), ('MSA', ''), ('login@example.com', 'example.com');`);
  db.close();
}

Deno.test("loadConfig() asks every database data set by key: KeyTable, SigningTable, host lists, name sets", async () => {
  await withDir(async (dir) => {
    const key = (await Deno.readTextFile(new URL("ed25519.pem", KEYS_DIR))).replace(/\n/g, "")
      .replace(/-----[A-Z ]+-----/g, "");
    database(`${dir}/dkim.db`);
    const db = new DatabaseSync(`${dir}/dkim.db`);
    db.prepare("UPDATE names SET v = replace(v, 'KEY', ?)").run(key);
    db.close();
    const set = (col = "v") => `dsn:sqlite3://%/dkim.db/table=names?keycol=k?datacol=${col}`;
    const conf = [
      "Mode sv",
      `BaseDirectory ${dir}`,
      `KeyTable ${set()}`,
      `SigningTable ${set()}`,
      `InternalHosts ${set("k")}`,
      `PeerList ${set("k")}`,
      `ExternalIgnoreList ${set("k")}`,
      `ExemptDomains ${set("k")}`,
      `DontSignMailTo ${set("k")}`,
      `MTA ${set("k")}`,
      `AuthorizedSigners ${set()}`,
    ].join("\n");
    await Deno.writeTextFile(`${dir}/opendkim.conf`, conf + "\n");
    const loaded = await loadConfig(`${dir}/opendkim.conf`, denoLoadIo(importPrivateKey));
    try {
      assert.deepEqual(
        loaded.tables.map((t) => t.setting),
        [
          "KeyTable",
          "SigningTable",
          "InternalHosts",
          "ExternalIgnoreList",
          "PeerList",
          "MTA",
          "DontSignMailTo",
          "ExemptDomains",
          "AuthorizedSigners",
        ],
      );
      assert.match(
        loaded.tables[0].backend.describe,
        new RegExp(`^dsn:sqlite3://${dir}/dkim\\.db/`),
      );
      assert.equal(loaded.keyTable?.keyed, true);
      const choice = await chooseSigners(loaded, "joe", "Example.COM");
      assert.deepEqual(choice.signers.map((s) => [s.domain, s.selector, s.key.type]), [[
        "example.com",
        "joe",
        "ed25519",
      ]]);
      assert.match(choice.signers[0].explanation, /KeyTable dsn:sqlite3:.* row "joe"/);
      const other = await chooseSigners(loaded, "ann", "example.com");
      assert.equal(other.signers[0].selector, "sel");
      assert.equal((await loaded.hosts.internal.match(undefined, "10.1.2.3")).matched, true);
      assert.equal(
        (await loaded.hosts.internal.match("a.internal.example", "192.0.2.1")).matched,
        true,
      );
      assert.equal((await loaded.hosts.peers!.match("x.example", "192.0.2.1")).matched, false);
      assert.ok(loaded.hosts.externalIgnore?.keyed);
      assert.deepEqual(
        (await loaded.exemptDomains!.lookup(["exempt.example", "no.example"])).map((e) => e?.key),
        ["exempt.example", undefined],
      );
      assert.equal(
        (await loaded.dontSignMailTo!.lookup(["bob@blocked.example"]))[0]?.key,
        "bob@blocked.example",
      );
      assert.equal((await loaded.mta!.lookup(["MSA"]))[0]?.key, "MSA");
      assert.equal(
        (await loaded.authorizedSigners!.authorize("login@example.com", "a", "example.com"))
          .allowed,
        true,
      );
      // Nothing was read whole: the data sets as read hold no database set.
      assert.deepEqual(Object.keys(loaded.dataSets), []);
    } finally {
      await Promise.all(loaded.tables.map((t) => t.close()));
    }
  });
});

/** Loads `conf` with real files, recording what each database back end is opened with. */
async function loadRecording(dir: string, conf: string, credentials?: string) {
  const opened: {
    source: DatabaseSource;
    options: BackendOptions & LdapOptions;
    directory: string;
  }[] = [];
  const real = denoLoadIo(importPrivateKey);
  const io: LoadIo<SigningKey> = {
    ...real,
    credentialsDirectory: () => credentials,
    openTable: (source, options, directory) => {
      opened.push({ source, options, directory });
      return {
        describe: "memory",
        query: (keys) => Promise.resolve(keys.map(() => undefined)),
        scan: () => Promise.resolve([]),
        close: () => Promise.resolve(),
      };
    },
  };
  await Deno.writeTextFile(`${dir}/dkimd.conf`, conf);
  const loaded = await loadConfig(`${dir}/dkimd.conf`, io);
  return { loaded, opened };
}

Deno.test("loadConfig() reads DataSetPasswordFile from $CREDENTIALS_DIRECTORY or a path, for dsn: only", async () => {
  await withDir(async (dir) => {
    await Deno.mkdir(`${dir}/creds`);
    await Deno.writeTextFile(`${dir}/creds/dkim-db`, "s3cret\n");
    const base =
      "Mode v\nExemptDomains dsn:pgsql://dkim:inline@db/mail/table=t?keycol=k?datacol=v\n" +
      "PeerList ldap://ldap.example/dc=example\nDataSetQueryTimeout 2\nDataSetConnectTimeout 7\n";
    const { opened } = await loadRecording(
      dir,
      `${base}DataSetPasswordFile dkim-db\n`,
      `${dir}/creds`,
    );
    assert.deepEqual(opened.map((o) => [o.source.kind, o.options]), [
      // LDAP gets the LDAP* settings (defaults here: no StartTLS, LDAPTimeout 5 s), not the file.
      ["ldap", { queryTimeoutMs: 2000, connectTimeoutMs: 7000, timeoutMs: 5000, useTls: false }],
      ["dsn", { queryTimeoutMs: 2000, connectTimeoutMs: 7000, password: "s3cret" }],
    ]);
    const ldap = await loadRecording(
      dir,
      `${base}LDAPBindUser cn=dkim,dc=example
LDAPBindPassword pw
LDAPUseTLS yes
LDAPTimeout 3
`,
    );
    assert.deepEqual(ldap.opened[0].options, {
      queryTimeoutMs: 2000,
      connectTimeoutMs: 7000,
      bindDn: "cn=dkim,dc=example",
      bindPassword: "pw",
      useTls: true,
      timeoutMs: 3000,
    });
    const absolute = await loadRecording(dir, `${base}DataSetPasswordFile ${dir}/creds/dkim-db\n`);
    assert.equal(absolute.opened[1].options.password, "s3cret");
    const none = await loadRecording(dir, base);
    assert.equal(none.opened[1].options.password, undefined);
    await assert.rejects(
      loadRecording(dir, `${base}DataSetPasswordFile dkim-db\n`),
      /"DataSetPasswordFile" at .*: "dkim-db" is relative, so it names a systemd credential, but \$CREDENTIALS_DIRECTORY is not set/,
    );
    await assert.rejects(
      loadRecording(dir, `${base}DataSetPasswordFile missing\n`, `${dir}/creds`),
      /Cannot read "DataSetPasswordFile" at .*creds\/missing/,
    );
  });
});

Deno.test("loadConfig() reports a back end that cannot be opened, naming the setting and line, password hidden", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/dkimd.conf`,
      "Mode v\nExemptDomains dsn:pgsql://dkim:s3cret@db/mail/table=t?keycol=k?datacol=v\n",
    );
    const io: LoadIo<SigningKey> = {
      ...denoLoadIo(importPrivateKey),
      openTable: () => {
        throw new Error("no client for this back end");
      },
    };
    await assert.rejects(loadConfig(`${dir}/dkimd.conf`, io), (e: Error) => {
      assert.match(
        e.message,
        /Cannot open "ExemptDomains" data set "dsn:pgsql:\/\/dkim:\*\*\*@db\/mail\/table=t\?keycol=k\?datacol=v" at .*dkimd\.conf:2: no client for this back end/,
      );
      assert.ok(!e.message.includes("s3cret"), e.message);
      return true;
    });
  });
});

Deno.test("loadConfig() warns, naming the setting, its line and both paths, when %/FILE is read as FILE", async () => {
  await withDir(async (dir) => {
    database(`${dir}/dkim.db`);
    const conf = `${dir}/dkimd.conf`;
    await Deno.writeTextFile(
      conf,
      `Mode v\nBaseDirectory ${dir}\n` +
        "ExemptDomains dsn:sqlite3://%/dkim.db/table=names?keycol=k?datacol=k\n",
    );
    const io = denoLoadIo(importPrivateKey);
    const fallback = await loadConfig(conf, io);
    try {
      const warnings = fallback.warnings.filter((w) => w.setting === "ExemptDomains");
      assert.equal(warnings.length, 1, JSON.stringify(fallback.warnings));
      assert.equal(warnings[0].origin.line, 3);
      assert.ok(
        warnings[0].message.startsWith(
          `"ExemptDomains" at ${conf}:3: the SQLite file "${dir}/%dkim.db"`,
        ),
        warnings[0].message,
      );
      assert.ok(
        warnings[0].message.includes(`reads "${dir}/dkim.db" instead`),
        warnings[0].message,
      );
      assert.equal(
        (await fallback.exemptDomains!.lookup(["exempt.example"]))[0]?.key,
        "exempt.example",
      );
    } finally {
      await Promise.all(fallback.tables.map((t) => t.close()));
    }
    await Deno.rename(`${dir}/dkim.db`, `${dir}/%dkim.db`);
    const opendkim = await loadConfig(conf, io);
    try {
      assert.deepEqual(opendkim.warnings.filter((w) => w.setting === "ExemptDomains"), []);
      assert.match(opendkim.tables[0].backend.describe, /\/%dkim\.db\/table=names/);
      assert.equal(
        (await opendkim.exemptDomains!.lookup(["exempt.example"]))[0]?.key,
        "exempt.example",
      );
    } finally {
      await Promise.all(opendkim.tables.map((t) => t.close()));
    }
  });
});

Deno.test("loadConfig() gives DataSetTLS to dsn: data sets and DataSetTLSCAFile to dsn: and LDAP", async () => {
  await withDir(async (dir) => {
    const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    await Deno.writeTextFile(`${dir}/ca.pem`, pem);
    const base = "Mode v\nExemptDomains dsn:pgsql://dkim@db/mail/table=t?keycol=k?datacol=v\n" +
      "PeerList ldap://ldap.example/dc=example\n";
    const tlsOf = async (conf: string) =>
      (await loadRecording(dir, base + conf)).opened.map((o) => o.options.tls);
    // "no", the default, is OpenDKIM's plain text: no tls option at all.
    assert.deepEqual(await tlsOf(""), [undefined, undefined]);
    assert.deepEqual(await tlsOf("DataSetTLS no\n"), [undefined, undefined]);
    assert.deepEqual(await tlsOf("DataSetTLS Prefer\n"), [undefined, true]);
    assert.deepEqual(await tlsOf("DataSetTLS require\n"), [undefined, "require"]);
    // BaseDirectory is where a relative CA file is.
    const { opened } = await loadRecording(
      dir,
      `${base}BaseDirectory ${dir}\nDataSetTLS verify\nDataSetTLSCAFile ca.pem\n`,
    );
    assert.deepEqual(
      opened.map((o) => [o.source.kind, o.options.tls, o.options.ca, o.options.tlsCa]),
      [
        ["ldap", undefined, undefined, pem],
        ["dsn", "verify", pem, undefined],
      ],
    );
    await assert.rejects(
      loadRecording(dir, `${base}DataSetTLS always\n`),
      /"DataSetTLS".*unknown mode "always": expected no, prefer, require, verify/,
    );
  });
});
