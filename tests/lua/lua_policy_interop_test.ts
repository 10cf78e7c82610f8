/**
 * Lua policy scripts (opendkim-lua(3)) run unchanged in Debian's OpenDKIM 2.11 and in dkimd, on
 * the same opendkim.conf and the same messages through the milter protocol (the project's MTA
 * side, lib/milter/client.ts): the reply and every header change must be the same. Signatures
 * and Authentication-Results are compared by what they say (d=, s=, the dkim= results), not by
 * their timestamps and hashes.
 *
 * The scripts are those of typical deployments: a setup script that signs only some domains and
 * adds a signature per recipient domain; a final script that adds a header from the signature
 * results and rejects by a policy header with its own reply; a screen script that ignores the
 * signatures of one domain. Then dkimd alone: a script over its time or memory budget answers
 * that message with On-InternalError (tempfail) and the service carries on.
 */
import assert from "node:assert/strict";
import {
  compare,
  conf,
  EXTERNAL,
  INTERNAL,
  message,
  run,
  setUp,
  signed,
} from "../helpers/lua_compare.ts";
import { startDkimd } from "../helpers/dkimd_process.ts";

Deno.test("SetupPolicyScript signs only some domains, and per recipient, as OpenDKIM does", async () => {
  const setup = `
-- Sign example.com's mail with k1; mail to example.net also gets example.org's k2.
if odkim.internal_ip(ctx) == 1 then
  if odkim.get_fromdomain(ctx) == "example.com" then odkim.sign(ctx, "k1") end
  for _, r in ipairs(odkim.get_rcptarray(ctx)) do
    if string.find(r, "@example.net", 1, true) then odkim.sign(ctx, "k2") break end
  end
end
`;
  await compare(`SetupPolicyScript $DIR/setup.lua\n`, { "setup.lua": setup }, [
    message("A1", "alice@example.com", ["bob@example.org"], INTERNAL),
    message("A2", "alice@example.com", ["carol@example.net", "bob@example.org"], INTERNAL),
    message("A3", "joe@other.test", ["bob@example.org"], INTERNAL),
    message("A4", "joe@other.test", ["carol@example.net"], INTERNAL),
  ], [
    ["add DKIM-Signature d=example.com s=s1", "final: accept"],
    [
      "add DKIM-Signature d=example.com s=s1",
      "add DKIM-Signature d=example.org s=s2",
      "final: accept",
    ],
    ["final: accept"],
    ["add DKIM-Signature d=example.org s=s2", "final: accept"],
  ]);
});

Deno.test("FinalPolicyScript adds a header from the signature results and rejects by policy, as OpenDKIM does", async () => {
  // The guards are for OpenDKIM: it runs each script once at start with no message (ctx is
  // NULL), where get_sigcount() says 1 and sig_getdomain() gives a NULL handle, not a string;
  // a Lua error there kills it (SIGSEGV), so deployed scripts must be written this way.
  const final = `
local n = odkim.get_sigcount(ctx) or 0
for i = 0, n - 1 do
  local sig = odkim.get_sighandle(ctx, i)
  local d = odkim.sig_getdomain(sig)
  if odkim.sig_result(sig) == 0 and type(d) == "string" then odkim.add_header(ctx, "X-DKIM-Pass", d) end
end
if odkim.get_header(ctx, "X-Reject-Me", 0) ~= nil then
  odkim.set_reply(ctx, "550", "5.7.0", "rejected by local policy")
  odkim.set_result(ctx, SMFIS_REJECT)
end
`;
  const good = await signed(
    message("B1", "alice@example.com", ["bob@example.org"], EXTERNAL),
    [["example.com", "s1"]],
  );
  const rejected = await signed(
    message("B2", "alice@example.com", ["bob@example.org"], EXTERNAL, [["X-Reject-Me", "yes"]]),
    [["example.com", "s1"]],
  );
  await compare(
    `FinalPolicyScript $DIR/final.lua\nSigningTable csl:*@example.com=k1\n`,
    { "final.lua": final },
    [good, rejected],
    [
      [
        "add Authentication-Results pass:example.com",
        "add X-DKIM-Pass: example.com",
        "final: accept",
      ],
      [
        "add Authentication-Results pass:example.com",
        "add X-DKIM-Pass: example.com",
        "final: 550 5.7.0 rejected by local policy",
      ],
    ],
  );
});

Deno.test("ScreenPolicyScript ignores the signatures of a domain, as OpenDKIM does", async () => {
  const screen = `
for i = 0, (odkim.get_sigcount(ctx) or 0) - 1 do
  local sig = odkim.get_sighandle(ctx, i)
  if odkim.sig_getdomain(sig) == "example.org" then odkim.sig_ignore(sig) end
end
`;
  const two = await signed(
    message("C1", "alice@example.com", ["bob@example.org"], EXTERNAL),
    [["example.com", "s1"], ["example.org", "s2"]],
  );
  // Departure: opendkim-lua(3) says verification then "act[s] as if that signature was not
  // present", and dkimd does so; OpenDKIM 2.11 still lists the ignored signature in
  // Authentication-Results, as dkim=fail (libopendkim skips it, opendkim.c reports it).
  await compare(
    `ScreenPolicyScript $DIR/screen.lua\nSigningTable csl:*@example.com=k1\n`,
    { "screen.lua": screen },
    [two],
    [["add Authentication-Results pass:example.com", "final: accept"]],
    [["add Authentication-Results fail:example.org pass:example.com", "final: accept"]],
  );
});

Deno.test("a Lua script over its time or memory budget is answered with On-InternalError and the service carries on", async () => {
  const dir = await setUp();
  await Deno.writeTextFile(
    `${dir}/setup.lua`,
    `if odkim.get_header(ctx, "X-Loop", 0) then while true do end end
if odkim.get_header(ctx, "X-Hog", 0) then local t = {} for i = 1, 1e9 do t[i] = string.rep("x", 1048576) .. i end end
odkim.sign(ctx, "k1")
`,
  );
  const dkimd = await startDkimd(
    dir,
    (socket) => conf(dir, socket, `SetupPolicyScript ${dir}/setup.lua\n`),
  );
  try {
    const [loop, hog, after] = await run(dkimd.socket, [
      message("D1", "alice@example.com", ["bob@example.org"], INTERNAL, [["X-Loop", "1"]]),
      message("D2", "alice@example.com", ["bob@example.org"], INTERNAL, [["X-Hog", "1"]]),
      message("D3", "alice@example.com", ["bob@example.org"], INTERNAL),
    ]);
    assert.match(loop.at(-1)!, /^final: 451 /);
    assert.match(hog.at(-1)!, /^final: 451 /);
    assert.deepEqual(after, ["add DKIM-Signature d=example.com s=s1", "final: accept"]);
    assert.match(dkimd.log(), /setup\.lua: ran longer than its budget/);
    assert.match(dkimd.log(), /setup\.lua: used more than its budget/);
  } finally {
    await dkimd.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
