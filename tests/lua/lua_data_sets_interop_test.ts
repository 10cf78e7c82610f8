/**
 * `odkim.db_open()`, `odkim.db_check()`, `odkim.db_close()` and `odkim.get_dbhandle()` in Debian's
 * OpenDKIM 2.11 and in dkimd, on the same configuration and messages through the milter: the
 * setup script opens data sets of each kind a setting takes and exports what it found; the final
 * script writes that into header fields, so the comparison sees every answer.
 *
 * Then dkimd alone: `dsn:sqlite3` opened from a script through the configuration's own back ends.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { compare, INTERNAL, message } from "../helpers/lua_compare.ts";
import { loadConfig } from "../../lib/config/load.ts";
import { denoLoadIo } from "../../lib/config/load.ts";

// tostring() of a number differs (OpenDKIM pushes floats: "1.0"), so answers are compared as
// words, which is how a script tests them.
const SETUP = `
local function yn(v) if v == nil then return "nil" elseif v == 1 then return "yes" elseif v == 0 then return "no" else return type(v) end end
local csl = odkim.db_open("csl:alice@example.com,Foo.Example", true)
local file = odkim.db_open("$DIR/set.txt")
local re = odkim.db_open("refile:$DIR/patterns.txt")
local ok, err = pcall(odkim.db_open, "$DIR/missing.txt")
odkim.export(ctx,
  "CSL", yn(odkim.db_check(csl, "ALICE@example.com")) .. "," .. yn(odkim.db_check(csl, "bob@example.com")),
  "FILE", yn(odkim.db_check(file, "foo.example")) .. "," .. yn(odkim.db_check(file, "Foo.Example")),
  "RE", yn(odkim.db_check(re, "joe@example.com")) .. "," .. yn(odkim.db_check(re, "joe@example.org")),
  "MISSING", tostring(ok) .. " " .. string.gsub(tostring(err), "^.*/", ""),
  "CLOSE", yn(odkim.db_close(file)))
odkim.sign(ctx, "k1")
`;

const FINAL = `
for _, n in ipairs({"CSL", "FILE", "RE", "MISSING", "CLOSE"}) do
  odkim.add_header(ctx, "X-" .. n, tostring(_G[n]))
end
`;

Deno.test("odkim.db_open() of csl:, a file and refile:, db_check() and db_close(), as OpenDKIM does", async () => {
  const files = {
    "setup.lua": SETUP,
    "final.lua": FINAL,
    "set.txt": "alice@example.com\nFoo.Example\n",
    "patterns.txt": "*@example.com\n",
  };
  const want = [
    "add DKIM-Signature d=example.com s=s1",
    "add X-CLOSE: yes",
    "add X-CSL: yes,no",
    "add X-FILE: no,yes",
    "add X-MISSING: false missing.txt: odkim.db_open(): No such file or directory",
    "add X-RE: yes,no",
    "final: accept",
  ];
  await compare(
    "SetupPolicyScript $DIR/setup.lua\nFinalPolicyScript $DIR/final.lua\nMTA csl:msa\n",
    files,
    [message("DB1", "alice@example.com", ["bob@example.org"], INTERNAL)],
    [want],
  );
});

Deno.test("odkim.get_dbhandle() gives the configured sets (OpenDKIM 2.11 always answers nil)", async () => {
  const setup = `
local mta = odkim.get_dbhandle(ctx, DB_MTAS)
local nsto = odkim.get_dbhandle(ctx, DB_DONTSIGNTO)
local st = odkim.get_dbhandle(ctx, DB_SIGNINGTABLE)
local function yn(db, k) if db == nil then return "nil" end return tostring(odkim.db_check(db, k) == 1) end
odkim.export(ctx, "H", yn(mta, "msa") .. "," .. yn(mta, "MSA") .. "," .. yn(nsto, "list@example.net") ..
  "," .. yn(st, "*@example.com") .. "," .. yn(odkim.get_dbhandle(ctx, DB_DOMAINS), "x"))
`;
  // Departure: OpenDKIM's dkimf_xs_dbhandle() reads the set's code from argument 1, the
  // context, so every call answers nil; dkimd answers with the set the code names.
  await compare(
    "SetupPolicyScript $DIR/setup.lua\nFinalPolicyScript $DIR/final.lua\nMTA csl:msa\n" +
      "DontSignMailTo csl:list@example.net\nSigningTable $DIR/st\n",
    {
      "setup.lua": setup,
      "final.lua": `odkim.add_header(ctx, "X-H", tostring(H))`,
      "st": "*@example.com k1\n",
    },
    [message("DB2", "joe@example.org", ["bob@example.org"], INTERNAL)],
    [["add X-H: true,false,true,true,nil", "final: accept"]],
    [["add X-H: nil,nil,nil,nil,nil", "final: accept"]],
  );
});

Deno.test("odkim.db_open() of a dsn:sqlite3 set goes through the configuration's back ends", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dkimd-luadb-" });
  try {
    const db = new DatabaseSync(`${dir}/names.db`);
    db.exec(
      "CREATE TABLE names (k TEXT, v TEXT); INSERT INTO names VALUES ('alice@example.com', 'x');",
    );
    db.close();
    await Deno.writeTextFile(`${dir}/s.lua`, "odkim.sign(ctx)\n");
    await Deno.writeTextFile(
      `${dir}/opendkim.conf`,
      `Mode v\nBaseDirectory ${dir}\nSetupPolicyScript s.lua\n`,
    );
    const loaded = await loadConfig(`${dir}/opendkim.conf`, denoLoadIo(() => Promise.reject()));
    const open = loaded.openScriptDataSet!;
    const set = await open("dsn:sqlite3://%/names.db/table=names?keycol=k?datacol=v", true);
    try {
      const [hit, miss] = await set.lookup.lookup(["Alice@Example.com", "bob@example.com"]);
      assert.ok(hit);
      assert.equal(miss, undefined);
    } finally {
      await set.close();
    }
    await assert.rejects(
      () =>
        open("dsn:sqlite3://%/names.db/table=nosuch?keycol=k?datacol=v", false)
          .then((s) => s.lookup.lookup(["x"]).finally(() => s.close())),
    );
    await assert.rejects(() => open("mdb:/x", false), /^Error: mdb:\/x: odkim\.db_open\(\): /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
