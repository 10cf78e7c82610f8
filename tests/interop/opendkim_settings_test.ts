/**
 * Issue 18's drop-in promise, setting by setting: Debian's opendkim and dkimd run as milters on
 * the same opendkim.conf and the same messages, and what the MTA is told — the reply, every
 * header change, quarantine, recipient changes — is compared. Where dkimd departs on purpose, the
 * test says so and asserts both sides of the departure.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fromLatin1 } from "../../lib/bytes.ts";
import type { ClientMessage } from "../../lib/milter/client.ts";
import { loadKey, MESSAGE, signed, writeTestKeys } from "../helpers/dkim_fixtures.ts";
import { mtaMessage } from "../helpers/mta_message.ts";
import {
  HAVE_OPENDKIM,
  observeBoth,
  type Observed,
  startPair,
} from "../helpers/opendkim_milter.ts";

const KEY_FILE = new URL("../testdata/keys/rsa2048_pkcs8.pem", import.meta.url).pathname;

/** The lines every comparison starts from: keys from a file, signing example.com with `rsa`. */
async function baseLines(dir: string): Promise<string[]> {
  const keys = await writeTestKeys(dir);
  await Deno.writeTextFile(`${dir}/key_table`, `k example.com:rsa:${KEY_FILE}\n`);
  await Deno.writeTextFile(`${dir}/signing_table`, `*@example.com k\n`);
  return [
    "Mode sv",
    `TestPublicKeys ${keys}`,
    `KeyTable ${dir}/key_table`,
    `SigningTable refile:${dir}/signing_table`,
    "RequireSafeKeys no",
    "Canonicalization relaxed/relaxed",
    "SignHeaders From,To,Subject,Date",
    "OversignHeaders From",
  ];
}

/** Runs `body` with opendkim and dkimd on the base lines plus `extra`. */
async function withPair(
  extra: readonly string[],
  body: (
    send: (m: ClientMessage) => Promise<{ opendkim: Observed; dkimd: Observed }>,
  ) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dkimd-od18-" });
  try {
    const pair = await startPair(dir, [...(await baseLines(dir)), ...extra]);
    try {
      await body((m) => observeBoth(pair, m));
    } finally {
      await pair.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** `bytes` from an outside client (verified). */
const inbound = (bytes: Uint8Array, qid = "IN1") =>
  mtaMessage(bytes, { qid, address: "192.0.2.7", hostname: "mx.example.net" });

/** `bytes` from 127.0.0.1 (InternalHosts by default: signed). */
const outbound = (bytes: Uint8Array, qid = "OUT1") =>
  mtaMessage(bytes, { qid, address: "127.0.0.1" });

/** MESSAGE signed by example.com's `rsa` key with `extra` options. */
async function signedMessage(message = MESSAGE): Promise<Uint8Array> {
  const key = await loadKey("rsa2048_pkcs8.pem");
  return await signed(message, [{
    domain: "example.com",
    selector: "rsa",
    key,
    canonicalization: ["relaxed", "relaxed"],
    signHeaders: ["From", "To", "Subject", "Date"],
  }], Math.floor(Date.now() / 1000));
}

Deno.test({
  name: "opendkim and dkimd: the base configuration signs and verifies alike",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    await withPair([], async (send) => {
      const out = await send(outbound(MESSAGE));
      assert.deepEqual(out.dkimd, out.opendkim);
      const good = await send(inbound(await signedMessage()));
      assert.deepEqual(good.dkimd, good.opendkim);
    });
  },
});
