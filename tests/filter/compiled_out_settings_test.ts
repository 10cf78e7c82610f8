/**
 * Settings Debian's OpenDKIM 2.11 was built without (it refuses them as unrecognised), which
 * dkimd implements from OpenDKIM's documentation and source: DefaultSender, LuaOnlySigning,
 * ResignMailTo and ResignAll.
 * Debian's opendkim is run first to show it refuses them; dkimd alone then shows what they do,
 * through the milter, on the configuration of the Lua comparisons.
 */
import assert from "node:assert/strict";
import { startDkimd } from "../helpers/dkimd_process.ts";
import {
  conf,
  EXTERNAL,
  INTERNAL,
  message,
  run,
  send,
  setUp,
  signed,
  text,
} from "../helpers/lua_compare.ts";

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

Deno.test("ResignMailTo: mail to a list is verified and signed again with the entry's key, whoever sent it", async () => {
  const extra = "SigningTable refile:$DIR/st\nResignMailTo $DIR/resign\n";
  const files = { st: "*@example.com k1\n", resign: "lists.example.net k2\n" };
  const toList = (id: string) =>
    message(id, "alice@example.com", ["list@lists.example.net"], EXTERNAL);
  const arrivedSigned = (id: string) => signed(toList(id), [["example.com", "s1"]]);
  const tampered = async (id: string) => {
    const m = await arrivedSigned(id);
    return {
      ...m,
      headers: m.headers.map(([n, v]) =>
        n === "Subject" ? ["Subject", " Dinner"] as const : [n, v] as const
      ),
    };
  };
  const messages = [
    await arrivedSigned("RS1"),
    await tampered("RS2"),
    toList("RS3"),
    message("RS4", "alice@example.com", ["bob@example.org"], EXTERNAL),
  ];
  await withDkimd(extra, files, async (socket, dir) => {
    assert.match(await opendkimRefuses(dir, extra.replaceAll("$DIR", dir)), /^ResignMailTo /);
    assert.deepEqual(await run(socket, messages), [
      [
        "add Authentication-Results pass:example.com",
        "add DKIM-Signature d=example.org s=s2",
        "final: accept",
      ],
      // Arrived signed and does not verify: passed on with its results, not signed.
      ["add Authentication-Results fail:example.com", "final: accept"],
      // Arrived unsigned: signed (and verified: dkim=none).
      [
        "add Authentication-Results (none)",
        "add DKIM-Signature d=example.org s=s2",
        "final: accept",
      ],
      // Not to the list: an outside message, verified only.
      ["final: accept"],
    ]);
  });
  // ResignAll signs what does not verify too; the new signature covers the results added.
  const all = `${extra}ResignAll yes\nSignHeaders From,Subject,Authentication-Results\n`;
  await withDkimd(all, files, async (socket, dir) => {
    assert.match(await opendkimRefuses(dir, all.replaceAll("$DIR", dir)), /^ResignMailTo /);
    const [r] = await send(socket, [await tampered("RS5")]);
    const added = r.modifications.flatMap((m) =>
      "name" in m && m.name === "DKIM-Signature" ? [text(m.value).replace(/\s+/g, "")] : []
    );
    assert.equal(added.length, 1);
    assert.match(added[0], /;d=example\.org;/);
    assert.match(added[0], /;h=[^;]*authentication-results/i);
  });
});
