/**
 * Settings Debian's OpenDKIM 2.11 was built without (it refuses them as unrecognised), which
 * dkimd implements from OpenDKIM's documentation and source: DefaultSender and LuaOnlySigning.
 * Debian's opendkim is run first to show it refuses them; dkimd alone then shows what they do,
 * through the milter, on the configuration of the Lua comparisons.
 */
import assert from "node:assert/strict";
import { startDkimd } from "../helpers/dkimd_process.ts";
import { conf, INTERNAL, message, run, setUp } from "../helpers/lua_compare.ts";

/** The line `opendkim -n` (check the configuration only) refuses as an unrecognized parameter. */
async function opendkimRefuses(dir: string, extra: string): Promise<string> {
  const text = conf(dir, "inet:8891@127.0.0.1", extra);
  await Deno.writeTextFile(`${dir}/od.conf`, text);
  const out = await new Deno.Command("/usr/sbin/opendkim", {
    args: ["-n", "-x", `${dir}/od.conf`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.success, false);
  const said = new TextDecoder().decode(out.stderr);
  const line = /configuration error at line (\d+): unrecognized parameter/.exec(said);
  assert.ok(line, said);
  return text.split("\n")[Number(line[1]) - 1];
}

async function withDkimd(
  extra: string,
  files: Record<string, string>,
  body: (socket: string, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await setUp();
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(`${dir}/${name}`, text.replaceAll("$DIR", dir));
  }
  const lines = extra.replaceAll("$DIR", dir);
  const dkimd = await startDkimd(dir, (socket) => conf(dir, socket, lines));
  try {
    await body(dkimd.socket, dir);
  } finally {
    await dkimd.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("DefaultSender: mail whose From names no address is signed as the default sender's", async () => {
  const extra = "SigningTable refile:$DIR/st\nDefaultSender postmaster@example.com\n";
  await withDkimd(extra, { st: "*@example.com k1\n" }, async (socket, dir) => {
    assert.match(
      await opendkimRefuses(dir, extra.replaceAll("$DIR", dir)),
      /^DefaultSender /,
    );
    const noAddress = message("DS1", "alice@example.com", ["bob@example.org"], INTERNAL);
    const unreadable = {
      ...noAddress,
      headers: noAddress.headers.map(([n, v]) =>
        n === "From" ? ["From", " undisclosed-recipients:;"] as const : [n, v] as const
      ),
    };
    const missing = { ...noAddress, headers: noAddress.headers.filter(([n]) => n !== "From") };
    const named = message("DS2", "joe@example.org", ["bob@example.org"], INTERNAL);
    assert.deepEqual(await run(socket, [unreadable, missing, named]), [
      ["add DKIM-Signature d=example.com s=s1", "final: accept"],
      ["add DKIM-Signature d=example.com s=s1", "final: accept"],
      // A sender the message names is used, even one the SigningTable does not sign for.
      ["final: accept"],
    ]);
  });
});

Deno.test("LuaOnlySigning: only what the setup script asks for is signed, not the SigningTable's", async () => {
  const extra = "SigningTable refile:$DIR/st\nSetupPolicyScript $DIR/setup.lua\n";
  const files = {
    st: "*@example.com k1\n",
    "setup.lua":
      'if odkim.get_rcpt(ctx, 0) == "carol@example.net" then odkim.sign(ctx, "k2") end\n',
  };
  const messages = [
    message("L1", "alice@example.com", ["carol@example.net"], INTERNAL),
    message("L2", "alice@example.com", ["bob@example.org"], INTERNAL),
  ];
  await withDkimd(extra + "LuaOnlySigning yes\n", files, async (socket, dir) => {
    assert.match(
      await opendkimRefuses(dir, `${extra.replaceAll("$DIR", dir)}LuaOnlySigning yes\n`),
      /^LuaOnlySigning /,
    );
    assert.deepEqual(await run(socket, messages), [
      ["add DKIM-Signature d=example.org s=s2", "final: accept"],
      // Not signed: verified, and with no signature nothing is added.
      ["final: accept"],
    ]);
  });
  // Without it, the SigningTable signs as well (OpenDKIM's order: table, then script).
  await withDkimd(extra, files, async (socket) => {
    assert.deepEqual(await run(socket, messages), [
      [
        "add DKIM-Signature d=example.com s=s1",
        "add DKIM-Signature d=example.org s=s2",
        "final: accept",
      ],
      ["add DKIM-Signature d=example.com s=s1", "final: accept"],
    ]);
  });
});
