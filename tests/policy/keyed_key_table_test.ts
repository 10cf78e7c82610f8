import assert from "node:assert/strict";
import type { DataSetLookup } from "../../lib/policy/data_set_lookup.ts";
import type { DataSetEntry } from "../../lib/policy/dataset.ts";
import { KeyResolutionError, type KeySource, KeyTable } from "../../lib/policy/key_table.ts";
import { KeyedKeyTable } from "../../lib/policy/keyed_key_table.ts";

const ED = { type: "ed25519" as const, bits: 256 };
const RSA = { type: "rsa" as const, bits: 2048 };

/** Rows by key name, changeable, as a database table. */
class Rows implements DataSetLookup {
  readonly rows = new Map<string, string>();
  lookups = 0;
  lookup(keys: readonly string[]): Promise<readonly (DataSetEntry | undefined)[]> {
    this.lookups++;
    return Promise.resolve(keys.map((key) => {
      const value = this.rows.get(key);
      const origin = {
        file: `KeyTable dsn:sqlite3:///k.db/table=keys?keycol=id?datacol=d,s,k row "${key}"`,
        line: 0,
      };
      return value === undefined ? undefined : { key, value, origin };
    }));
  }
}

function setup() {
  const rows = new Rows();
  const imports: KeySource[] = [];
  const logged: string[] = [];
  const importer = (source: KeySource) => {
    imports.push(source);
    if (source.kind === "file" && source.path.includes("bad")) {
      return Promise.reject(new Error("not a private key"));
    }
    return Promise.resolve(source.kind === "inline" ? RSA : ED);
  };
  const table = new KeyedKeyTable(rows, importer, (m) => logged.push(m));
  return { rows, imports, logged, table };
}

Deno.test("KeyedKeyTable.resolve() reads the row, replaces %, and imports the key once per row", async () => {
  const { rows, imports, table } = setup();
  rows.rows.set("mail", "%:sel:/keys/%.pem");
  const a = await table.resolve("mail", "Example.COM");
  assert.equal(a.domain, "example.com");
  assert.equal(a.selector, "sel");
  assert.equal(a.path, "/keys/example.com.pem");
  assert.equal(a.key, ED);
  await table.resolve("mail", "example.com");
  await table.resolve("mail", "example.org");
  assert.deepEqual(imports, [
    { kind: "file", path: "/keys/example.com.pem" },
    { kind: "file", path: "/keys/example.org.pem" },
  ]);
  // A changed row is a new key.
  rows.rows.set("mail", "example.com:sel2:MIIBVQIBADANBgkqhkiG9w0BAQEFAASC");
  const b = await table.resolve("mail", "example.com");
  assert.equal(b.selector, "sel2");
  assert.equal(b.key, RSA);
  assert.equal(imports.length, 3);
});

Deno.test("KeyedKeyTable.resolve() logs a bad row or a bad key once, naming the table and key", async () => {
  const { rows, logged, table } = setup();
  rows.rows.set("broken", "example.com:only-two");
  rows.rows.set("badkey", "example.com:sel:/keys/bad.pem");
  rows.rows.set("wrongalg", "example.com:sel:/keys/ed.pem:rsa-sha256");
  for (let i = 0; i < 5; i++) {
    await assert.rejects(table.resolve("broken", "example.com"), KeyResolutionError);
    await assert.rejects(table.resolve("badkey", "example.com"), /not a private key/);
    await assert.rejects(table.resolve("wrongalg", "example.com"), /the entry asks for rsa-sha256/);
  }
  assert.equal(logged.length, 3);
  assert.match(
    logged[0],
    /KeyTable entry "broken" at KeyTable dsn:sqlite3:.*row "broken": .*domain:selector:keyfile/,
  );
  assert.match(
    logged[1],
    /KeyTable entry "badkey" at KeyTable dsn:sqlite3:.*row "badkey" from "\/keys\/bad\.pem": not a private key/,
  );
  assert.match(logged[2], /"wrongalg"/);
});

Deno.test("KeyedKeyTable.resolve() rejects an unknown name and passes a database failure on", async () => {
  const { table } = setup();
  await assert.rejects(table.resolve("nope", "example.com"), /No KeyTable entry named "nope"/);
  const down = new KeyedKeyTable(
    { lookup: () => Promise.reject(new Error("database is down")) },
    () => Promise.resolve(ED),
    () => {},
  );
  await assert.rejects(down.resolve("mail", "example.com"), /database is down/);
});

Deno.test("KeyTable.keyed() answers through its lookup and lists no entries", async () => {
  const { rows, table } = setup();
  rows.rows.set("mail", "example.com:sel:/keys/k.pem");
  const keyed = KeyTable.keyed(table);
  assert.equal(keyed.keyed, true);
  assert.deepEqual(keyed.entries, []);
  assert.equal(keyed.get("mail"), undefined);
  assert.equal((await keyed.resolve("mail", "example.com")).key, ED);
});
