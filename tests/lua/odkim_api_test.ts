/**
 * The odkim.* functions of opendkim-lua(3) per hook, with OpenDKIM 2.11's quirks (opendkim.c
 * `dkimf_xs_*`), and the VM's errors: a syntax error at load naming file and line, a run-time
 * error naming the script's line, the time and memory budgets.
 */
import assert from "node:assert/strict";
import {
  compileLuaScript,
  LuaRunError,
  LuaScriptError,
  runLuaScript,
} from "../../lib/lua/lua_vm.ts";
import { type OdkimMessage, runHook } from "../../lib/lua/odkim_api.ts";
import { DKIM_SIGERROR } from "../../lib/lua/sig_codes.ts";
import { memoryRuntime } from "../helpers/memory_runtime.ts";

function message(over: Partial<OdkimMessage> = {}): OdkimMessage & { logged: string[] } {
  const logged: string[] = [];
  return {
    headers: [
      { name: "Received", value: "from a" },
      { name: "From", value: "Alice <alice@example.com>" },
      { name: "Received", value: "from b" },
    ],
    macro: (name) => ({ i: "Q1", auth_type: "PLAIN" } as Record<string, string>)[name],
    client: { hostname: "mx.example.net", address: "192.0.2.7" },
    envelopeFrom: "<alice@example.com>",
    recipients: ["bob@example.org", "carol@example.net"],
    fromDomain: "example.com",
    internal: false,
    hasKeyTable: true,
    canChangeRecipients: false,
    signatures: [],
    exported: new Map(),
    log: (line) => logged.push(line),
    logged,
    ...over,
  };
}

async function hook(kind: Parameters<typeof runHook>[0], source: string, m = message()) {
  return await runHook(kind, await compileLuaScript(`${kind}.lua`, source), m);
}

Deno.test("odkim.get_header() counts from 0, and from the end when negative", async () => {
  const m = message();
  await hook(
    "setup",
    `odkim.log(ctx, odkim.get_header(ctx, "received", 0) .. "|" ..
      odkim.get_header(ctx, "Received", -1) .. "|" .. tostring(odkim.get_header(ctx, "X", 0)))`,
    m,
  );
  assert.deepEqual(m.logged, ["from a|from b|nil"]);
});

Deno.test("odkim.get_rcpt() ignores n and returns the first recipient, as OpenDKIM 2.11 does", async () => {
  const m = message();
  await hook(
    "setup",
    `odkim.log(ctx, odkim.get_rcpt(ctx, 1) .. " " .. odkim.rcpt_count(ctx) .. " " ..
      table.concat(odkim.get_rcptarray(ctx), ","))`,
    m,
  );
  assert.deepEqual(m.logged, ["bob@example.org 2 bob@example.org,carol@example.net"]);
});

Deno.test("setup functions: macros, client, internal_ip, export to a later hook", async () => {
  const m = message();
  const effects = await hook(
    "setup",
    `odkim.log(ctx, odkim.get_mtasymbol(ctx, "{auth_type}") .. " " .. odkim.get_clienthost(ctx) ..
      " " .. odkim.get_clientip(ctx) .. " " .. odkim.internal_ip(ctx) .. " " .. odkim.get_envfrom(ctx))
     odkim.export(ctx, "tier", "gold", "n", 2)`,
    m,
  );
  assert.deepEqual(m.logged, ["PLAIN mx.example.net 192.0.2.7 0 <alice@example.com>"]);
  const later = message({ exported: effects.exports });
  await hook("final", `odkim.log(ctx, tier .. n)`, later);
  assert.deepEqual(later.logged, ["gold2"]);
});

Deno.test("odkim.sign() takes the signer and the length in either order; a key name needs a KeyTable", async () => {
  const effects = await hook(
    "setup",
    `odkim.sign(ctx, "k1", 100, "@example.com") odkim.sign(ctx) odkim.use_ltag(ctx)`,
  );
  assert.deepEqual(effects.sign, [
    { keyName: "k1", identity: "@example.com", bodyLength: 100 },
    {},
  ]);
  assert.equal(effects.useLtag, true);
  await assert.rejects(
    () => hook("setup", `odkim.sign(ctx, "k1")`, message({ hasKeyTable: false })),
    /setup\.lua:1: odkim\.sign\(\): request requires KeyTable/,
  );
  await assert.rejects(
    () => hook("setup", `odkim.sign(ctx, "k1", 1, 2)`),
    /odkim\.sign\(\): incorrect argument type/,
  );
});

Deno.test("odkim.set_result() takes the SMFIS_* numbers only", async () => {
  assert.equal((await hook("setup", `odkim.set_result(ctx, SMFIS_DISCARD)`)).result, "discard");
  const m = message();
  const e = await hook("setup", `odkim.log(ctx, tostring(odkim.set_result(ctx, 99)))`, m);
  assert.equal(e.result, undefined);
  assert.deepEqual(m.logged, ["nil"]);
});

Deno.test("each hook has only OpenDKIM's functions", async () => {
  await assert.rejects(() => hook("screen", `odkim.sign(ctx)`), /attempt to call a nil value/);
  await assert.rejects(() => hook("final", `odkim.verify(ctx)`), /attempt to call a nil value/);
  await assert.rejects(() => hook("setup", `odkim.add_header(ctx, "a", "b")`), /nil value/);
});

Deno.test("screen: the signature handles and sig_ignore()", async () => {
  const m = message({
    signatures: [{ domain: "example.com", identity: "@example.com" }, { domain: "bad.example" }],
  });
  const effects = await hook(
    "screen",
    `for i, sig in ipairs(odkim.get_sigarray(ctx)) do
       if odkim.sig_getdomain(sig) == "bad.example" then odkim.sig_ignore(sig) end
     end
     odkim.log(ctx, odkim.get_sigcount(ctx) .. " " .. odkim.sig_getidentity(odkim.get_sighandle(ctx, 0)))
     odkim.log(ctx, tostring(odkim.get_sighandle(ctx, 2)))`,
    m,
  );
  assert.deepEqual([...effects.ignored], [1]);
  assert.deepEqual(m.logged, ["2 @example.com", "nil"]);
});

Deno.test("final: results as dkim.h numbers, header and reply requests, parse_field()", async () => {
  const m = message({
    signatures: [
      { domain: "example.com", verdict: { result: "pass" }, bodyLength: 40, canonLength: 20 },
      { domain: "example.org", verdict: { result: "fail", reason: "body hash did not verify" } },
    ],
  });
  const effects = await hook(
    "final",
    `local a = odkim.get_sighandle(ctx, 0) local b = odkim.get_sighandle(ctx, 1)
     odkim.log(ctx, odkim.sig_result(a) .. " " .. odkim.sig_result(b) .. " " .. odkim.sig_bhresult(b) ..
       " " .. odkim.sig_bodylength(a) .. " " .. odkim.sig_canonlength(a))
     local user, domain = odkim.parse_field("Alice (home) <alice@Example.com>")
     odkim.log(ctx, user .. " " .. domain)
     odkim.add_header(ctx, "X-Checked", "yes")
     odkim.del_header(ctx, "Received", 1)
     odkim.log(ctx, tostring(odkim.set_reply(ctx, "550", "4.7.1", "mismatched class")))
     odkim.set_reply(ctx, "451", "4.7.1", "later")
     odkim.set_result(ctx, SMFIS_TEMPFAIL)
     odkim.log(ctx, tostring(odkim.add_rcpt(ctx, "x@example.com")) .. " " ..
       tostring(odkim.del_rcpt(ctx, "nobody@example.com")) .. " " .. tostring(odkim.del_rcpt(ctx, "BOB@example.org")))`,
    m,
  );
  assert.deepEqual(m.logged.slice(0, 3), [
    `${DKIM_SIGERROR.OK} ${DKIM_SIGERROR.BADSIG} 1 40 20`,
    "alice Example.com",
    "nil",
  ]);
  // Without RedirectFailuresTo, OpenDKIM's recipient changes fail: nil, and 1 with nothing done.
  assert.equal(m.logged.at(-1), "nil nil 1");
  assert.deepEqual(effects.addHeaders, [{ name: "X-Checked", value: "yes" }]);
  assert.deepEqual(effects.delHeaders, ["Received"]);
  assert.deepEqual(effects.reply, { rcode: "451", xcode: "4.7.1", text: "later" });
  assert.equal(effects.result, "tempfail");
  assert.deepEqual(effects.delRcpts, []);
});

Deno.test("odkim.db_open() and db_check() ask a data set, waiting for the answer", async () => {
  let closed = 0;
  const m = message({
    openDataSet: (name, icase) =>
      Promise.resolve({
        lookup: {
          lookup: (keys: readonly string[]) =>
            Promise.resolve(keys.map((k) =>
              name === "csl:vip.example" && icase && k === "vip.example"
                ? { origin: { file: "x", line: 1 }, key: k }
                : undefined
            )),
        },
        close: () =>
          Promise.resolve(void closed++),
      }),
  });
  await hook(
    "setup",
    `local db = odkim.db_open("csl:vip.example", true)
     odkim.log(ctx, odkim.db_check(db, "VIP.example") .. odkim.db_check(db, "other.example"))`,
    m,
  );
  assert.deepEqual(m.logged, ["10"]);
  // Closed when the call ends, as OpenDKIM's garbage collection closes it.
  assert.equal(closed, 1);
});

Deno.test("compileLuaScript() names the file and line of a syntax error", async () => {
  await assert.rejects(
    () => compileLuaScript("/etc/opendkim/setup.lua", "odkim.sign(ctx)\nif x then\n"),
    (e: unknown) => {
      assert.ok(e instanceof LuaScriptError);
      assert.equal(e.file, "/etc/opendkim/setup.lua");
      assert.equal(e.line, 3);
      assert.match(e.message, /^Cannot compile Lua script at \/etc\/opendkim\/setup\.lua:3: /);
      return true;
    },
  );
});

Deno.test("runLuaScript() names the script's line of an error, and stops a script over its budget", async () => {
  const bad = await compileLuaScript("s.lua", "local x\n\nx.y = 1");
  await assert.rejects(
    () => runLuaScript(bad, {}),
    /^LuaRunError: Lua script s\.lua:3: attempt to index/,
  );
  const loop = await compileLuaScript("loop.lua", "while true do end");
  const started = performance.now();
  await assert.rejects(
    () => runLuaScript(loop, {}, "", { timeMs: 100, memoryBytes: 1 << 20 }),
    (e: unknown) => e instanceof LuaRunError && e.failure === "time",
  );
  assert.ok(performance.now() - started < 2_000);
  const hog = await compileLuaScript("hog.lua", "local t = {} for i = 1, 1e9 do t[i] = i end");
  await assert.rejects(
    () => runLuaScript(hog, {}, "", { timeMs: 10_000, memoryBytes: 1 << 20 }),
    (e: unknown) => e instanceof LuaRunError && e.failure === "memory",
  );
  // No file access: io, os, dofile and require are not there.
  const io = await compileLuaScript(
    "io.lua",
    "seen(type(io), type(os), type(dofile), type(require))",
  );
  let got: string[] = [];
  await runLuaScript(io, { seen: (...a: string[]) => got = a });
  assert.deepEqual(got, ["nil", "nil", "nil", "nil"]);
});

Deno.test("loadConfig() reports a Lua syntax error at the script's file and line", async () => {
  await assert.rejects(
    () =>
      memoryRuntime("Mode v\nFinalPolicyScript /etc/dkimd/final.lua\n", {
        files: { "/etc/dkimd/final.lua": "odkim.log(ctx, 'x')\nodkim.log(ctx,\n" },
      }),
    /Cannot compile Lua script at \/etc\/dkimd\/final\.lua:3: /,
  );
  const ok = await memoryRuntime("Mode v\nFinalPolicyScript /etc/dkimd/final.lua\n", {
    files: { "/etc/dkimd/final.lua": "odkim.log(ctx, 'x')\n" },
  });
  assert.equal(ok.loaded.luaScripts?.final?.file, "/etc/dkimd/final.lua");
});
