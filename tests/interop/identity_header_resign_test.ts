/**
 * IdentityHeaderRemove on mail dkimd verifies and signs in one pass (ResignMailTo, with and
 * without ResignAll). OpenDKIM 2.11's mlfi_eoh() skips the identity field, every instance of it,
 * before feeding its signing handles AND its verifying handle when it signs ("Skip headers we
 * know we're going to delete before signing"), then mlfi_eom() deletes the first instance. So
 * the verdict dkimd adds describes the message as it leaves: a signature that covered the
 * identity field fails in dkimd, as it fails for dkimpy on the delivered bytes. The setting is
 * compiled out of Debian's build (tests/filter/identity_header_test.ts shows opendkim refusing
 * it), so dkimpy on the delivered message is the comparison.
 *
 * @module
 */
import assert from "node:assert/strict";
import { latin1 } from "../../lib/bytes.ts";
import { importPrivateKey } from "../../lib/crypto/private_key.ts";
import { signMessage } from "../../lib/dkim/sign.ts";
import type { ClientMessage, MessageResult } from "../../lib/milter/client.ts";
import type { HeaderValue } from "../../lib/milter/reply.ts";
import { startDkimd } from "../helpers/dkimd_process.ts";
import {
  BODY,
  conf,
  EXTERNAL,
  KEY,
  message,
  PUB,
  send,
  setUp,
  text,
} from "../helpers/lua_compare.ts";
import { applyModifications, buildMessage } from "../helpers/milter_apply.ts";
import { verifyWithDkimpy } from "../helpers/peers.ts";

const EXTRA = "SigningTable refile:$DIR/st\nResignMailTo $DIR/resign\n" +
  "IdentityHeader X-Identity\nIdentityHeaderRemove yes\nSignHeaders From,To,Subject\n";

async function withDkimd(extra: string, body: (socket: string) => Promise<void>) {
  const dir = await setUp();
  await Deno.writeTextFile(`${dir}/st`, "*@example.com k1\n");
  await Deno.writeTextFile(`${dir}/resign`, "lists.example.net k2\n");
  const dkimd = await startDkimd(dir, (socket) => conf(dir, socket, extra.replaceAll("$DIR", dir)));
  try {
    await body(dkimd.socket);
  } finally {
    await dkimd.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

/** A message from alice@example.com to the list, with an identity field, signed by example.com. */
async function toList(id: string, signHeaders: string[]): Promise<ClientMessage> {
  const m = message(id, "alice@example.com", ["list@lists.example.net"], EXTERNAL, [
    ["X-Identity", "owner@example.org"],
  ]);
  const head = m.headers.map(([n, v]) => `${n}:${typeof v === "string" ? v : latin1(v)}\r\n`);
  const [field] = await signMessage(new TextEncoder().encode(head.join("") + "\r\n" + BODY), [{
    domain: "example.com",
    selector: "s1",
    key: await importPrivateKey(await Deno.readTextFile(KEY)),
    canonicalization: ["relaxed", "relaxed"],
    signHeaders,
  }]);
  const raw = latin1(field.raw);
  return { ...m, headers: [["DKIM-Signature", raw.slice(raw.indexOf(":") + 1)], ...m.headers] };
}

/** The message as the MTA delivers it after dkimd's changes. */
function delivered(m: ClientMessage, r: MessageResult): Uint8Array {
  const headers = applyModifications(
    m.headers.map(([n, v]) => [n, typeof v === "string" ? v : text(v as HeaderValue)] as const),
    r.modifications,
  );
  return buildMessage(headers, m.body as string);
}

/** dkimd's dkim= results, in its Authentication-Results. */
function dkimdResults(r: MessageResult): string[] {
  const ar = r.modifications.flatMap((x) =>
    "name" in x && x.name === "Authentication-Results" ? [text(x.value)] : []
  );
  return ar.flatMap((v) => [...v.matchAll(/dkim=(\w+) [^;]*header\.d=([\w.]+)/g)])
    .map((x) => `${x[2]}:${x[1]}`);
}

/** dkimpy's verdict on each signature of the delivered bytes, as `d=:result`. */
async function dkimpy(bytes: Uint8Array): Promise<string[]> {
  const p = btoa(String.fromCharCode(...await Deno.readFile(PUB)));
  const record = `v=DKIM1; k=rsa; p=${p}`;
  const verdicts = await verifyWithDkimpy(bytes, {
    records: { "s1._domainkey.example.com": record, "s2._domainkey.example.org": record },
  });
  return verdicts.map((v) => `${v.domain}:${v.result}`).sort();
}

const removed = (r: MessageResult) =>
  r.modifications.some((x) => x.type === "chgheader" && x.name === "X-Identity");
const signedBy = (r: MessageResult) =>
  r.modifications.flatMap((x) =>
    "name" in x && x.name === "DKIM-Signature"
      ? [/\bd=([\w.]+)/.exec(text(x.value))?.[1] ?? "?"]
      : []
  );

Deno.test("IdentityHeaderRemove with ResignMailTo: the verifier hashes the message without the identity field, as OpenDKIM does; dkimpy agrees on the delivered bytes", async () => {
  await withDkimd(EXTRA, async (socket) => {
    const covering = await toList("IR1", ["From", "To", "Subject", "X-Identity"]);
    const notCovering = await toList("IR2", ["From", "To", "Subject"]);
    const [r1, r2] = await send(socket, [covering, notCovering]);
    // The upstream signature covered the field that leaves the message: it fails in dkimd, and
    // (not verified) the message is not signed again; the field is still removed.
    assert.deepEqual(dkimdResults(r1), ["example.com:fail"]);
    assert.deepEqual(signedBy(r1), []);
    assert.ok(removed(r1));
    assert.deepEqual(await dkimpy(delivered(covering, r1)), ["example.com:fail"]);
    // A signature that did not cover it passes before and after, and the list signs.
    assert.deepEqual(dkimdResults(r2), ["example.com:pass"]);
    assert.deepEqual(signedBy(r2), ["example.org"]);
    assert.ok(removed(r2));
    assert.deepEqual(await dkimpy(delivered(notCovering, r2)), [
      "example.com:pass",
      "example.org:pass",
    ]);
  });
});

Deno.test("IdentityHeaderRemove with ResignAll: the failed upstream signature is reported as dkimpy sees it delivered, and the new one verifies", async () => {
  await withDkimd(`${EXTRA}ResignAll yes\n`, async (socket) => {
    const covering = await toList("IR3", ["From", "To", "Subject", "X-Identity"]);
    const [r] = await send(socket, [covering]);
    assert.deepEqual(dkimdResults(r), ["example.com:fail"]);
    assert.deepEqual(signedBy(r), ["example.org"]);
    const sig = r.modifications.flatMap((x) =>
      "name" in x && x.name === "DKIM-Signature" ? [text(x.value).replace(/\s+/g, "")] : []
    )[0];
    // i= from the identity field, which is neither signed nor delivered.
    assert.match(sig, /;i=owner@example\.org;/);
    assert.doesNotMatch(/;h=([^;]*)/.exec(sig)![1], /x-identity/i);
    assert.deepEqual(await dkimpy(delivered(covering, r)), [
      "example.com:fail",
      "example.org:pass",
    ]);
  });
});
