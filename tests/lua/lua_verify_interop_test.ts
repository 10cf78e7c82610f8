/**
 * `odkim.verify()` and `odkim.resign()` in the setup script of a message that is signed, in
 * Debian's OpenDKIM 2.11 and in dkimd. `odkim.verify()` makes OpenDKIM's verifying handle beside
 * its signing ones: the message is signed and verified, and gets an Authentication-Results field
 * (`dkim=none` when it arrived unsigned, as OpenDKIM adds one to every message it signs then);
 * On-BadSignature applies as to verified mail.
 *
 * Departure: `odkim.resign()` does nothing in Debian's build (it lacks `_FFR_RESIGN`; the call
 * returns nil); dkimd does what opendkim-lua(3) says: the message is verified, and signed only
 * when it verifies (ResignAll aside), as with ResignMailTo.
 */
import { compare, EXTERNAL, INTERNAL, message, signed } from "../helpers/lua_compare.ts";

const tampered = async (id: string) => {
  const m = await signed(message(id, "alice@example.com", ["bob@example.net"], INTERNAL), [[
    "example.com",
    "s1",
  ]]);
  return {
    ...m,
    headers: m.headers.map(([n, v]) =>
      n === "Subject" ? ["Subject", " Dinner"] as const : [n, v] as const
    ),
  };
};

Deno.test("odkim.verify() on a message being signed: signed and verified, as OpenDKIM does", async () => {
  const setup = "if odkim.internal_ip(ctx) == 1 then odkim.verify(ctx) end\n";
  await compare(
    "SetupPolicyScript $DIR/setup.lua\nSigningTable refile:$DIR/st\n",
    { "setup.lua": setup, st: "*@example.com k1\n" },
    [
      await signed(message("V1", "alice@example.com", ["bob@example.net"], INTERNAL), [[
        "example.com",
        "s1",
      ]]),
      message("V2", "alice@example.com", ["bob@example.net"], INTERNAL),
      await signed(message("V3", "alice@example.com", ["bob@example.net"], EXTERNAL), [[
        "example.com",
        "s1",
      ]]),
      await tampered("V4"),
    ],
    [
      [
        "add Authentication-Results pass:example.com",
        "add DKIM-Signature d=example.com s=s1",
        "final: accept",
      ],
      [
        "add Authentication-Results (none)",
        "add DKIM-Signature d=example.com s=s1",
        "final: accept",
      ],
      ["add Authentication-Results pass:example.com", "final: accept"],
      [
        "add Authentication-Results fail:example.com",
        "add DKIM-Signature d=example.com s=s1",
        "final: accept",
      ],
    ],
  );
});

Deno.test("odkim.verify() with On-BadSignature reject: a message being signed that fails is rejected, as by OpenDKIM", async () => {
  const added = [
    "add Authentication-Results fail:example.com",
    "add DKIM-Signature d=example.com s=s1",
  ];
  await compare(
    "SetupPolicyScript $DIR/setup.lua\nSigningTable refile:$DIR/st\nOn-BadSignature reject\n",
    { "setup.lua": "odkim.verify(ctx)\n", st: "*@example.com k1\n" },
    [await tampered("V5")],
    [[...added, "final: 550 5.7.1 DKIM signature verification failed"]],
    // The reply's words are dkimd's, as for any mail it verifies and rejects.
    [[...added, "final: 550 5.7.0 bad DKIM signature data"]],
  );
});

Deno.test("odkim.resign(): verified, and signed only when it verifies (Debian's OpenDKIM: the call does nothing)", async () => {
  const setup = "odkim.resign(ctx)\n";
  await compare(
    "SetupPolicyScript $DIR/setup.lua\nSigningTable refile:$DIR/st\n",
    { "setup.lua": setup, st: "*@example.com k1\n" },
    [
      await signed(message("R1", "alice@example.com", ["bob@example.net"], INTERNAL), [[
        "example.com",
        "s1",
      ]]),
      await tampered("R2"),
      message("R3", "alice@example.com", ["bob@example.net"], INTERNAL),
    ],
    [
      [
        "add Authentication-Results pass:example.com",
        "add DKIM-Signature d=example.com s=s1",
        "final: accept",
      ],
      ["add Authentication-Results fail:example.com", "final: accept"],
      [
        "add Authentication-Results (none)",
        "add DKIM-Signature d=example.com s=s1",
        "final: accept",
      ],
    ],
    [
      ["add DKIM-Signature d=example.com s=s1", "final: accept"],
      ["add DKIM-Signature d=example.com s=s1", "final: accept"],
      ["add DKIM-Signature d=example.com s=s1", "final: accept"],
    ],
  );
});
