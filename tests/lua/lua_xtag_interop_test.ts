/**
 * `odkim.xtag()` in the final script of a message being signed, in Debian's OpenDKIM 2.11 and in
 * dkimd: the tag goes into every signature made, and the call answers how many; a tag that is
 * one of DKIM's own is refused (-1).
 *
 * Departure: in the setup script OpenDKIM crashes on `odkim.xtag()` once a signature is
 * requested (its signing handles do not exist yet); dkimd answers 0 and adds nothing there.
 */
import assert from "node:assert/strict";
import { INTERNAL, message, send, startBoth, summary, text } from "../helpers/lua_compare.ts";

Deno.test("odkim.xtag() in the final script adds the tag to every signature, as OpenDKIM does", async () => {
  const final = `
odkim.add_header(ctx, "X-Xtag", tostring(odkim.xtag(ctx, "xb", "2") == 2) .. " " .. tostring(odkim.xtag(ctx, "d", "x") == -1))
`;
  const both = await startBoth(
    "FinalPolicyScript $DIR/final.lua\nSigningTable refile:$DIR/st\n" +
      "SetupPolicyScript $DIR/setup.lua\n",
    { "final.lua": final, "setup.lua": 'odkim.sign(ctx, "k2")\n', "st": "*@example.com k1\n" },
  );
  try {
    const m = [message("X1", "alice@example.com", ["bob@example.org"], INTERNAL)];
    for (
      const [who, socket] of [["OpenDKIM", both.opendkim.socket], ["dkimd", both.dkimd.socket]]
    ) {
      const [r] = await send(socket, m);
      assert.deepEqual(summary(r), [
        "add DKIM-Signature d=example.com s=s1",
        "add DKIM-Signature d=example.org s=s2",
        "add X-Xtag: true true",
        "final: accept",
      ], who);
      const sigs = r.modifications.flatMap((x) =>
        "name" in x && x.name === "DKIM-Signature" ? [text(x.value)] : []
      );
      assert.equal(sigs.length, 2, who);
      for (const s of sigs) assert.match(s.replace(/\s+/g, ""), /;xb=2;/, `${who}: ${s}`);
    }
  } finally {
    await both.stop();
  }
});
