import assert from "node:assert/strict";
import { describeDsn, parseDsn, redactDsnText } from "../../lib/tables/dsn.ts";

const good: { name: string; text: string; want: Record<string, unknown> }[] = [
  {
    name: "OpenDKIM's README.SQL MySQL KeyTable",
    text:
      "dsn:mysql://USER:PASSWORD@SERVER/DBNAME/table=dkim?keycol=id?datacol=domain_name,selector,private_key",
    want: {
      backend: "mysql",
      user: "USER",
      password: "PASSWORD",
      host: "SERVER",
      database: "DBNAME",
      table: "dkim",
      keycol: "id",
      datacols: ["domain_name", "selector", "private_key"],
    },
  },
  {
    name: "PORT+HOST, user without password",
    text: "dsn:pgsql://dkim@5433+10.0.0.1/mail/table=signing?keycol=sender?datacol=keyname",
    want: {
      backend: "pgsql",
      user: "dkim",
      host: "10.0.0.1",
      port: 5433,
      database: "mail",
      table: "signing",
      keycol: "sender",
      datacols: ["keyname"],
    },
  },
  {
    name: "host only, parameters in another order and case, a later one wins",
    text: "dsn:pgsql://db.example/mail/DataCol=a?TABLE=s.t?keycol=x?keycol=k?junk?other=1",
    want: {
      backend: "pgsql",
      host: "db.example",
      database: "mail",
      table: "s.t",
      keycol: "k",
      datacols: ["a"],
    },
  },
  {
    name: "filter with =XX escapes",
    text: "dsn:mysql://h/d/table=t?keycol=k?datacol=v?filter=active=3D1 AND kind=3D'x=3F'",
    want: {
      backend: "mysql",
      host: "h",
      database: "d",
      table: "t",
      keycol: "k",
      datacols: ["v"],
      filter: "active=1 AND kind='x?'",
    },
  },
  {
    name: "sqlite3 in the working directory (Modoboa's form)",
    text:
      "dsn:sqlite3://%/dkim.db/table=dkim?keycol=id?datacol=domain_name,selector,private_key_path",
    want: {
      backend: "sqlite3",
      host: "%",
      database: "dkim.db",
      table: "dkim",
      keycol: "id",
      datacols: ["domain_name", "selector", "private_key_path"],
    },
  },
  {
    name: "sqlite3 relative path with directories",
    text: "dsn:sqlite3://%/db/dkim.db/table=t?keycol=k?datacol=v",
    want: {
      backend: "sqlite3",
      host: "%",
      database: "db/dkim.db",
      table: "t",
      keycol: "k",
      datacols: ["v"],
    },
  },
  {
    name: "sqlite3 absolute path",
    text: "dsn:sqlite3:///var/lib/dkimd/dkim.db/table=t?keycol=k?datacol=v",
    want: {
      backend: "sqlite3",
      database: "/var/lib/dkimd/dkim.db",
      table: "t",
      keycol: "k",
      datacols: ["v"],
    },
  },
  {
    name: "without the dsn: prefix, surrounding blanks, datacol with blanks",
    text: "  mysql://h/d/table=t?keycol=k?datacol=a, b ,c  ",
    want: {
      backend: "mysql",
      host: "h",
      database: "d",
      table: "t",
      keycol: "k",
      datacols: ["a", "b", "c"],
    },
  },
];

for (const c of good) {
  Deno.test(`parseDsn() reads ${c.name}`, () => {
    assert.deepEqual({ ...parseDsn(c.text) }, c.want);
  });
}

const bad: { name: string; text: string; error: RegExp }[] = [
  { name: "no back end", text: "dsn:nothing", error: /expected "BACKEND:\/\/\.\.\."/ },
  {
    name: "unknown back end",
    text: "dsn:oracle://h/d/table=t?keycol=k?datacol=v",
    error: /unknown DSN back end "oracle"/,
  },
  { name: "no //", text: "dsn:pgsql:h/d/table=t?keycol=k?datacol=v", error: /expected "\/\/"/ },
  { name: "no host", text: "dsn:pgsql:///d/table=t?keycol=k?datacol=v", error: /no host/ },
  { name: "no database", text: "dsn:pgsql://h", error: /no "\/DATABASE\/"/ },
  { name: "no / before the parameters", text: "dsn:pgsql://h/d", error: /no "\/" between/ },
  {
    name: "empty database",
    text: "dsn:pgsql://h//table=t?keycol=k?datacol=v",
    error: /no database name/,
  },
  { name: "missing table", text: "dsn:pgsql://h/d/keycol=k?datacol=v", error: /no "table="/ },
  { name: "missing keycol", text: "dsn:pgsql://h/d/table=t?datacol=v", error: /no "keycol="/ },
  { name: "missing datacol", text: "dsn:pgsql://h/d/table=t?keycol=k", error: /no "datacol="/ },
  { name: "bad port", text: "dsn:pgsql://x+h/d/table=t?keycol=k?datacol=v", error: /port "x"/ },
  {
    name: "port out of range",
    text: "dsn:pgsql://70000+h/d/table=t?keycol=k?datacol=v",
    error: /port "70000"/,
  },
  {
    name: "two colons",
    text: "dsn:pgsql://a:b:c@h/d/table=t?keycol=k?datacol=v",
    error: /second ":"/,
  },
  {
    name: "= in the password",
    text: "dsn:pgsql://u:p=w@h/d/table=t?keycol=k?datacol=v",
    error: /unexpected "="/,
  },
  {
    name: "SQL in table",
    text: "dsn:pgsql://h/d/table=t;DROP TABLE x?keycol=k?datacol=v",
    error: /"table=t;DROP TABLE x" is not/,
  },
  {
    name: "quote in keycol",
    text: "dsn:pgsql://h/d/table=t?keycol=k'?datacol=v",
    error: /"keycol=k'"/,
  },
  {
    name: "expression in datacol",
    text: "dsn:pgsql://h/d/table=t?keycol=k?datacol=a||b",
    error: /"datacol=a\|\|b"/,
  },
  {
    name: "empty datacol element",
    text: "dsn:pgsql://h/d/table=t?keycol=k?datacol=a,,b",
    error: /"datacol="/,
  },
  {
    name: "three-part name",
    text: "dsn:pgsql://h/d/table=a.b.c?keycol=k?datacol=v",
    error: /"table=a\.b\.c"/,
  },
  {
    name: "sqlite3 without a directory",
    text: "dsn:sqlite3://dkim.db/table=t?keycol=k?datacol=v",
    error: /"%\/dkim\.db"/,
  },
  { name: "sqlite3 without parameters", text: "dsn:sqlite3://%/dkim.db", error: /no "\/table=/ },
];

for (const c of bad) {
  Deno.test(`parseDsn() refuses ${c.name}`, () => {
    assert.throws(() => parseDsn(c.text), c.error);
  });
}

Deno.test("parseDsn() never quotes the password in an error", () => {
  for (
    const text of [
      "dsn:pgsql://u:s3cret@h/d/table=t?keycol=k",
      "dsn:pgsql://u:s3cret@x+h/d/table=t?keycol=k?datacol=v",
      "dsn:pgsql://u:s3cret@h/d/table=t'?keycol=k?datacol=v",
    ]
  ) {
    assert.throws(() => parseDsn(text), (e: Error) => !e.message.includes("s3cret"));
  }
});

Deno.test("describeDsn() redacts the password and round-trips through parseDsn()", () => {
  for (
    const text of [
      "dsn:pgsql://dkim:secret@5432+db.example/mail/table=keys?keycol=id?datacol=domain,selector,key",
      "dsn:mysql://dkim@h/mail/table=keys?keycol=id?datacol=a?filter=active = 1",
      "dsn:sqlite3://%/dkim.db/table=t?keycol=k?datacol=v",
      "dsn:sqlite3:///var/lib/dkim.db/table=t?keycol=k?datacol=v",
    ]
  ) {
    const spec = parseDsn(text);
    const described = describeDsn(spec);
    assert.ok(!described.includes("secret"), described);
    const again = parseDsn(described);
    assert.deepEqual({ ...again, password: undefined }, { ...spec, password: undefined });
  }
  assert.equal(
    describeDsn(parseDsn("dsn:pgsql://dkim:secret@5432+h/m/table=t?keycol=k?datacol=v")),
    "dsn:pgsql://dkim:***@5432+h/m/table=t?keycol=k?datacol=v",
  );
});

Deno.test("redactDsnText() hides a password in text that does not parse", () => {
  assert.equal(redactDsnText("dsn:pgsql://u:pw@h/d/bad"), "dsn:pgsql://u:***@h/d/bad");
  assert.equal(redactDsnText("dsn:pgsql://u@h/d"), "dsn:pgsql://u@h/d");
  assert.equal(redactDsnText("dsn:sqlite3://%/a:b@c.db/t"), "dsn:sqlite3://%/a:b@c.db/t");
});
