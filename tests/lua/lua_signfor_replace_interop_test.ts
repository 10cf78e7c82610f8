/**
 * `odkim.signfor()` and `odkim.replace_header()` in the setup script, in Debian's OpenDKIM 2.11
 * and in dkimd.
 *
 * `odkim.replace_header()` changes the copy of the header OpenDKIM signs and verifies, not the
 * message delivered: a signed message whose Subject the script replaces fails verification in
 * both, and no change to the message is sent.
 *
 * Departure: `odkim.signfor()` does nothing in OpenDKIM 2.11 (it reads its arguments after
 * popping them off the Lua stack, so it answers nil); dkimd does what opendkim-lua(3) says: the
 * SigningTable is applied to the address given (every match with `multi`, else the first) and
 * those signatures are made; the call answers how many.
 */
import { compare, EXTERNAL, INTERNAL, message, signed } from "../helpers/lua_compare.ts";

Deno.test("odkim.signfor() signs as the SigningTable does for the address given (OpenDKIM 2.11: nothing)", async () => {
  const setup = `
local n = odkim.signfor(ctx, "Lists <x@example.org>", odkim.rcpt_count(ctx) > 1)
if n == 2 then odkim.sign(ctx, "k1", "two@example.com") end
`;
  await compare(
    "SetupPolicyScript $DIR/setup.lua\nSigningTable refile:$DIR/st\n",
    { "setup.lua": setup, st: "*@example.org k2\n*@example.org k1\n" },
    [
      message("F1", "joe@other.test", ["bob@example.net"], INTERNAL),
      message("F2", "joe@other.test", ["bob@example.net", "carol@example.net"], INTERNAL),
    ],
    [
      ["add DKIM-Signature d=example.org s=s2", "final: accept"],
      [
        "add DKIM-Signature d=example.com s=s1",
        "add DKIM-Signature d=example.com s=s1",
        "add DKIM-Signature d=example.org s=s2",
        "final: accept",
      ],
    ],
    [["final: accept"], ["final: accept"]],
  );
});

Deno.test("odkim.replace_header() changes what is verified, not the message, as in OpenDKIM", async () => {
  const setup = `
if odkim.replace_header(ctx, "X-None", 0, "x") == nil then
  odkim.replace_header(ctx, "Subject", -1, "Changed")
end
`;
  await compare(
    "SetupPolicyScript $DIR/setup.lua\n",
    { "setup.lua": setup },
    [
      await signed(message("H1", "alice@example.com", ["bob@example.net"], EXTERNAL), [[
        "example.com",
        "s1",
      ]]),
    ],
    [["add Authentication-Results fail:example.com", "final: accept"]],
  );
});
