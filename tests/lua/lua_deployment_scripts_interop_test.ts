/**
 * More Lua policy scripts in the style administrators publish for OpenDKIM (written here, not
 * copied), run unchanged in Debian's OpenDKIM 2.11 and in dkimd on the same opendkim.conf and
 * messages through the milter (tests/helpers/lua_compare.ts): the reply and every header change
 * must be the same. A setup script choosing the key by the SMTP AUTH login (`{auth_authen}`); a
 * list server's setup script signing by the envelope sender; a setup script with a domain table
 * that leaves auto-replies unsigned; a final script rejecting mail from a protected domain that
 * lacks a valid first-party signature, with its own reply. Written as deployed scripts must be
 * for Debian's 2.11, which runs each once at start with no message: values are checked before
 * use (an error there kills OpenDKIM).
 *
 * @module
 */
import { compare, EXTERNAL, INTERNAL, message, signed } from "../helpers/lua_compare.ts";
import type { ClientMessage } from "../../lib/milter/client.ts";

/** `m` sent by a client that authenticated as `login` (the macros Postfix sends at MAIL). */
function authenticated(m: ClientMessage, login: string): ClientMessage {
  const id = m.macros?.mail?.i ?? "";
  return {
    ...m,
    macros: { ...m.macros, mail: { i: id, "{auth_type}": "PLAIN", "{auth_authen}": login } },
  };
}

Deno.test("SetupPolicyScript picks the key by the SMTP AUTH login ({auth_authen}), as OpenDKIM does", async () => {
  const setup = `
-- Each submission login signs with its own key; other logins are not signed.
local keys = { alice = "k1", ["list-admin"] = "k2" }
local login = odkim.get_mtasymbol(ctx, "{auth_authen}")
if type(login) == "string" and keys[login] ~= nil then
  odkim.sign(ctx, keys[login])
end
`;
  await compare(`SetupPolicyScript $DIR/setup.lua\n`, { "setup.lua": setup }, [
    authenticated(message("U1", "alice@example.com", ["bob@example.net"], EXTERNAL), "alice"),
    authenticated(
      message("U2", "news@example.org", ["bob@example.net"], EXTERNAL),
      "list-admin",
    ),
    authenticated(message("U3", "mallory@example.com", ["bob@example.net"], EXTERNAL), "mallory"),
    message("U4", "alice@example.com", ["bob@example.net"], EXTERNAL),
  ], [
    ["add DKIM-Signature d=example.com s=s1", "final: accept"],
    ["add DKIM-Signature d=example.org s=s2", "final: accept"],
    // A login without a key, and no login: not signed (nor verified: no signature).
    ["final: accept"],
    ["final: accept"],
  ]);
});

Deno.test("SetupPolicyScript of a list server signs by the envelope sender, as OpenDKIM does", async () => {
  const setup = `
-- Mail the list manager sends out (envelope sender list-bounces@...) is signed as the list's
-- domain, whoever wrote it; our own users' mail as their domain.
local envfrom = odkim.get_envfrom(ctx)
if type(envfrom) == "string" and string.find(string.lower(envfrom), "-bounces@example.org", 1, true) then
  odkim.sign(ctx, "k2")
elseif odkim.internal_ip(ctx) == 1 and odkim.get_fromdomain(ctx) == "example.com" then
  odkim.sign(ctx, "k1")
end
`;
  const fromList = (id: string, author: string) => ({
    ...message(id, author, ["member@example.net"], INTERNAL),
    from: "<list-bounces@example.org>",
  });
  await compare(`SetupPolicyScript $DIR/setup.lua\n`, { "setup.lua": setup }, [
    fromList("L1", "carol@elsewhere.test"),
    fromList("L2", "alice@example.com"),
    message("L3", "alice@example.com", ["bob@example.net"], INTERNAL),
    message("L4", "carol@elsewhere.test", ["bob@example.net"], INTERNAL),
  ], [
    // The list signs whoever wrote the message.
    ["add DKIM-Signature d=example.org s=s2", "final: accept"],
    ["add DKIM-Signature d=example.org s=s2", "final: accept"],
    ["add DKIM-Signature d=example.com s=s1", "final: accept"],
    ["final: accept"],
  ]);
});

Deno.test("SetupPolicyScript with a domain table leaves auto-replies unsigned, as OpenDKIM does", async () => {
  const setup = `
local domains = { ["example.com"] = "k1", ["example.org"] = "k2" }
if odkim.internal_ip(ctx) == 1 then
  local auto = odkim.get_header(ctx, "Auto-Submitted", 0)
  if auto == nil or string.find(string.lower(auto), "^%s*no") then
    local key = domains[odkim.get_fromdomain(ctx)]
    if key ~= nil then odkim.sign(ctx, key) end
  end
end
`;
  await compare(`SetupPolicyScript $DIR/setup.lua\n`, { "setup.lua": setup }, [
    message("T1", "alice@example.com", ["bob@example.net"], INTERNAL),
    message("T2", "news@example.org", ["bob@example.net"], INTERNAL),
    message("T3", "alice@example.com", ["bob@example.net"], INTERNAL, [
      ["Auto-Submitted", "auto-replied"],
    ]),
    message("T4", "alice@example.com", ["bob@example.net"], INTERNAL, [["Auto-Submitted", "no"]]),
    message("T5", "joe@other.test", ["bob@example.net"], INTERNAL),
  ], [
    ["add DKIM-Signature d=example.com s=s1", "final: accept"],
    ["add DKIM-Signature d=example.org s=s2", "final: accept"],
    // Auto-Submitted: auto-replied is left unsigned; "no" is signed.
    ["final: accept"],
    ["add DKIM-Signature d=example.com s=s1", "final: accept"],
    ["final: accept"],
  ]);
});

Deno.test("FinalPolicyScript rejects a protected domain's mail without a valid first-party signature, with its own reply, as OpenDKIM does", async () => {
  const final = `
local from = odkim.get_fromdomain(ctx)
if type(from) == "string" and from == "example.com" then
  local ok = false
  local n = odkim.get_sigcount(ctx) or 0
  for i = 0, n - 1 do
    local sig = odkim.get_sighandle(ctx, i)
    local d = odkim.sig_getdomain(sig)
    if type(d) == "string" and d == from and odkim.sig_result(sig) == 0 then ok = true end
  end
  if not ok then
    odkim.set_reply(ctx, "550", "5.7.1", "example.com mail must carry a valid example.com signature")
    odkim.set_result(ctx, SMFIS_REJECT)
  end
end
`;
  const toUs = (id: string, from: string) => message(id, from, ["bob@example.net"], EXTERNAL);
  const tampered = async (id: string) => {
    const m = await signed(toUs(id, "alice@example.com"), [["example.com", "s1"]]);
    return {
      ...m,
      headers: m.headers.map(([n, v]) =>
        n === "Subject" ? ["Subject", " Dinner"] as const : [n, v] as const
      ),
    };
  };
  await compare(`FinalPolicyScript $DIR/final.lua\nSigningTable csl:*@example.com=k1\n`, {
    "final.lua": final,
  }, [
    await signed(toUs("F1", "alice@example.com"), [["example.com", "s1"]]),
    toUs("F2", "alice@example.com"),
    await signed(toUs("F3", "alice@example.com"), [["example.org", "s2"]]),
    await tampered("F4"),
    toUs("F5", "joe@other.test"),
    await signed(toUs("F6", "carol@example.org"), [["example.org", "s2"]]),
  ], [
    ["add Authentication-Results pass:example.com", "final: accept"],
    // Unsigned, signed by another domain, or a signature that fails: the script's own reply.
    ["final: 550 5.7.1 example.com mail must carry a valid example.com signature"],
    [
      "add Authentication-Results pass:example.org",
      "final: 550 5.7.1 example.com mail must carry a valid example.com signature",
    ],
    [
      "add Authentication-Results fail:example.com",
      "final: 550 5.7.1 example.com mail must carry a valid example.com signature",
    ],
    // Other domains are not the script's business.
    ["final: accept"],
    ["add Authentication-Results pass:example.org", "final: accept"],
  ]);
});
