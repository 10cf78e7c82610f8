/**
 * Debian's opendkim and dkimd verifying side by side (Mode v, the test keys as TestPublicKeys,
 * authserv-id mx.example.net) on one opendkim.conf, for the comparison tests of how each treats
 * a signature it cannot or must not evaluate (tests/interop/unknown_algorithm_test.ts,
 * malformed_signature_test.ts).
 *
 * @module
 */
import type { ClientMessage } from "../../lib/milter/client.ts";
import { writeTestKeys } from "./dkim_fixtures.ts";
import { mtaMessage } from "./mta_message.ts";
import { observeBoth, type Observed, startPair } from "./opendkim_milter.ts";

/** Plays a message to both milters; what each did. */
export type SendBoth = (m: ClientMessage) => Promise<{ opendkim: Observed; dkimd: Observed }>;

/**
 * Runs `body` with opendkim and dkimd verifying with the test keys, plus `extra` lines of
 * opendkim.conf, in a temporary directory named with `prefix`; stops both and removes it after.
 */
export async function withVerifyingPair(
  prefix: string,
  extra: readonly string[],
  body: (send: SendBoth) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix });
  try {
    const keys = await writeTestKeys(dir);
    const pair = await startPair(dir, [
      "Mode v",
      `TestPublicKeys ${keys}`,
      "RequireSafeKeys no",
      "AuthservID mx.example.net",
      ...extra,
    ]);
    try {
      await body((m) => observeBoth(pair, m));
    } finally {
      await pair.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** `bytes` as an MTA passes mail from outside (192.0.2.7, mx.example.net) with queue id `qid`. */
export const inboundMessage = (bytes: Uint8Array, qid: string): ClientMessage =>
  mtaMessage(bytes, { qid, address: "192.0.2.7", hostname: "mx.example.net" });
