/**
 * `odkim.rbl_check()` in Debian's OpenDKIM 2.11 and in dkimd, against the same DNS list served
 * by Knot DNS (tests/helpers/dns_server.ts): in dkimd a listed address gets the A record's four
 * octets (opendkim.c pushes `res >> 24` ... `res & 0xff`), an unlisted one no value at all.
 *
 * Departure: Debian's OpenDKIM, pointed at knotd by its Nameservers (libunbound), crashes
 * (SIGSEGV in strlcpy() of libbsd) as soon as the lookup gets an answer, so the test checks
 * that, and dkimd's answers by themselves.
 */
import assert from "node:assert/strict";
import { startDnsServer } from "../helpers/dns_server.ts";
import { EXTERNAL, message, run, signed, startBoth } from "../helpers/lua_compare.ts";

const FINAL = `
local function check(ip)
  local a, b, c, d = odkim.rbl_check(ctx, ip, "rbl.example", 5)
  if a == nil then return "none" end
  return string.format("%d.%d.%d.%d", a, b, c, d)
end
odkim.add_header(ctx, "X-RBL", check("2.0.0.127") .. " " .. check("3.0.0.127"))
`;

Deno.test("odkim.rbl_check() answers the A record's octets, or nothing (OpenDKIM crashes)", async () => {
  const dns = await startDnsServer({
    zone: "rbl.example",
    // An empty list is a name with A 192.0.2.1 and no TXT.
    records: { "2.0.0.127.rbl.example": [] },
  });
  try {
    const m = await signed(
      message("R1", "alice@example.com", ["bob@example.org"], EXTERNAL),
      [["example.com", "s1"]],
    );
    const both = await startBoth(
      "FinalPolicyScript $DIR/final.lua\nSigningTable csl:*@example.com=k1\n" +
        `Nameservers ${dns.nameserver}\n`,
      { "final.lua": FINAL },
    );
    try {
      await assert.rejects(() => run(both.opendkim.socket, [m]), /closed the connection/);
      assert.deepEqual(await run(both.dkimd.socket, [m]), [[
        "add Authentication-Results pass:example.com",
        "add X-RBL: 192.0.2.1 none",
        "final: accept",
      ]]);
    } finally {
      await both.stop();
    }
  } finally {
    await dns.close();
  }
});
