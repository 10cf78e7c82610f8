/**
 * IdentityHeader and IdentityHeaderRemove (opendkim.conf(5)), compiled out of Debian's OpenDKIM
 * 2.11, which refuses them as unrecognised: dkimd implements them from OpenDKIM's source
 * (mlfi_eoh(), mlfi_eom()). Through the milter: the field's address becomes i= of the
 * signatures, `@` and the sender's domain without it; with IdentityHeaderRemove the field is
 * not signed and its first instance is deleted. dkimpy verifies what would be delivered.
 */
import assert from "node:assert/strict";
import type { MessageResult } from "../../lib/milter/client.ts";
import type { HeaderValue } from "../../lib/milter/reply.ts";
import { startDkimd } from "../helpers/dkimd_process.ts";
import { conf, INTERNAL, message, PUB, send, setUp, text } from "../helpers/lua_compare.ts";
import { applyModifications, buildMessage } from "../helpers/milter_apply.ts";
import { verifyWithDkimpy } from "../helpers/peers.ts";
import type { ClientMessage } from "../../lib/milter/client.ts";

const SIGNING = "SigningTable refile:$DIR/st\nSignHeaders From,To,Subject,X-Identity\n";
const IDENTITY = "IdentityHeader X-Identity\n";

async function withDkimd(
  extra: string,
  body: (socket: string, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await setUp();
  await Deno.writeTextFile(`${dir}/st`, "*@example.com k1\n");
  const lines = extra.replaceAll("$DIR", dir);
  const dkimd = await startDkimd(dir, (socket) => conf(dir, socket, lines));
  try {
    await body(dkimd.socket, dir);
  } finally {
    await dkimd.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

/** The tags of the one DKIM-Signature added, and the message as the MTA would deliver it. */
function delivered(m: ClientMessage, r: MessageResult) {
  const sigs = r.modifications.flatMap((x) =>
    "name" in x && x.name === "DKIM-Signature" ? [text(x.value).replace(/\s+/g, "")] : []
  );
  assert.equal(sigs.length, 1, JSON.stringify(r.modifications));
  const tag = (t: string) => new RegExp(`(?:^|;)${t}=([^;]*)`).exec(sigs[0])?.[1];
  const headers = applyModifications(
    m.headers.map(([n, v]) => [n, typeof v === "string" ? v : text(v as HeaderValue)] as const),
    r.modifications,
  );
  return { tag, headers, bytes: buildMessage(headers, m.body as string) };
}

async function dkimpyResult(bytes: Uint8Array): Promise<string> {
  const p = btoa(String.fromCharCode(...await Deno.readFile(PUB)));
  const [verdict] = await verifyWithDkimpy(bytes, {
    records: { "s1._domainkey.example.com": `v=DKIM1; k=rsa; p=${p}` },
  });
  return verdict.result;
}

Deno.test("IdentityHeader: Debian's opendkim refuses it as unrecognised", async () => {
  const dir = await setUp();
  try {
    const lines = conf(dir, "inet:8891@127.0.0.1", `${IDENTITY}IdentityHeaderRemove yes\n`);
    await Deno.writeTextFile(`${dir}/od.conf`, lines);
    const out = await new Deno.Command("/usr/sbin/opendkim", {
      args: ["-n", "-x", `${dir}/od.conf`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.success, false);
    const said = new TextDecoder().decode(out.stderr);
    const line = /configuration error at line (\d+): unrecognized parameter/.exec(said);
    assert.ok(line, said);
    assert.match(lines.split("\n")[Number(line[1]) - 1], /^IdentityHeader /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("IdentityHeader: the field's address is i=, @ and the sender's domain without it; dkimpy verifies", async () => {
  await withDkimd(SIGNING + IDENTITY, async (socket) => {
    const named = message("IH1", "alice@example.com", ["bob@example.org"], INTERNAL, [
      ["X-Identity", "Alice Smith <alice.smith@Lists.Example.com>"],
    ]);
    const without = message("IH2", "alice@example.com", ["bob@example.org"], INTERNAL);
    const noAddress = message("IH3", "alice@example.com", ["bob@example.org"], INTERNAL, [
      ["X-Identity", "nobody in particular"],
    ]);
    const [r1, r2, r3] = await send(socket, [named, without, noAddress]);
    const d1 = delivered(named, r1);
    assert.equal(d1.tag("i"), "alice.smith@lists.example.com");
    // Kept, and signed as SignHeaders says.
    assert.match(d1.tag("h")!, /x-identity/i);
    assert.ok(d1.headers.some(([n]) => n === "X-Identity"));
    assert.equal(await dkimpyResult(d1.bytes), "pass");
    const d2 = delivered(without, r2);
    assert.equal(d2.tag("i"), "@example.com");
    assert.equal(await dkimpyResult(d2.bytes), "pass");
    assert.equal(delivered(noAddress, r3).tag("i"), "@example.com");
  });
  // Without the setting, no i= at all.
  await withDkimd(SIGNING, async (socket) => {
    const m = message("IH4", "alice@example.com", ["bob@example.org"], INTERNAL, [
      ["X-Identity", "alice@lists.example.com"],
    ]);
    const [r] = await send(socket, [m]);
    assert.equal(delivered(m, r).tag("i"), undefined);
  });
});

Deno.test("IdentityHeader: an address outside d= is not signed; On-SignatureError decides", async () => {
  await withDkimd(SIGNING + IDENTITY + "On-SignatureError reject\n", async (socket) => {
    const m = message("IH5", "alice@example.com", ["bob@example.org"], INTERNAL, [
      ["X-Identity", "alice@example.net"],
    ]);
    const [r] = await send(socket, [m]);
    assert.equal(r.modifications.length, 0);
    assert.equal(r.final.type, "replycode");
  });
});

Deno.test("IdentityHeaderRemove: the field is left out of the signature and its first instance deleted", async () => {
  await withDkimd(SIGNING + IDENTITY + "IdentityHeaderRemove yes\n", async (socket) => {
    const m = message("IH6", "alice@example.com", ["bob@example.org"], INTERNAL, [
      ["X-Identity", "alice@lists.example.com"],
      ["X-Identity", "second@example.com"],
    ]);
    const [r] = await send(socket, [m]);
    assert.deepEqual(
      r.modifications.filter((x) => x.type === "chgheader").map((x) =>
        x.type === "chgheader" ? [x.name, x.index, text(x.value)] : []
      ),
      [["X-Identity", 1, ""]],
    );
    const d = delivered(m, r);
    // The first instance gives i=; neither instance is signed.
    assert.equal(d.tag("i"), "alice@lists.example.com");
    assert.doesNotMatch(d.tag("h")!, /x-identity/i);
    assert.deepEqual(d.headers.filter(([n]) => n === "X-Identity"), [
      ["X-Identity", " second@example.com"],
    ]);
    assert.equal(await dkimpyResult(d.bytes), "pass");
    // The field removed, the rest of the message still verifies as signed.
    const stripped = buildMessage(d.headers.filter(([n]) => n !== "X-Identity"), m.body as string);
    assert.equal(await dkimpyResult(stripped), "pass");
  });
  // Mail that is verified, not signed, keeps the field (OpenDKIM removes it only with signing
  // handles).
  await withDkimd(SIGNING + IDENTITY + "IdentityHeaderRemove yes\n", async (socket) => {
    const m = message("IH7", "carol@example.org", ["alice@example.com"], {
      hostname: "mail.example.net",
      address: "192.0.2.25",
    }, [["X-Identity", "carol@example.org"]]);
    const [r] = await send(socket, [m]);
    assert.ok(!r.modifications.some((x) => x.type === "chgheader"));
  });
});
