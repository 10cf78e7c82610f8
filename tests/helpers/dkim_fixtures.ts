/**
 * Keys, records and messages shared by the DKIM tests.
 *
 * @module
 */
import { concat, CRLF, fromLatin1, latin1, toBase64 } from "../../lib/bytes.ts";
import {
  generateSigningKey,
  importPrivateKey,
  type SigningKey,
} from "../../lib/crypto/private_key.ts";
import { signMessage, type SignOptions } from "../../lib/dkim/sign.ts";

/** The test-keys directory. */
export const KEYS_DIR = new URL("../testdata/keys/", import.meta.url);

let rsa: Promise<SigningKey> | undefined;
let ed: Promise<SigningKey> | undefined;

/** A 2048-bit RSA key, loaded once per test process. */
export function rsaKey(): Promise<SigningKey> {
  return rsa ??= Deno.readTextFile(new URL("rsa2048_pkcs8.pem", KEYS_DIR)).then((pem) =>
    importPrivateKey(pem, "rsa2048_pkcs8.pem")
  );
}

/** An Ed25519 key, generated once per test process. */
export function edKey(): Promise<SigningKey> {
  return ed ??= generateSigningKey("ed25519");
}

/** Loads a test key file by name. */
export async function loadKey(name: string): Promise<SigningKey> {
  return await importPrivateKey(await Deno.readTextFile(new URL(name, KEYS_DIR)), name);
}

/** The key record publishing `key`, with extra tags before `p=`. */
export function recordFor(key: SigningKey, extra = ""): string {
  return `v=DKIM1; k=${key.type}; ${extra}p=${toBase64(key.publicKey)}`;
}

/** A plain test message with CRLF line ends. */
export const MESSAGE = fromLatin1(
  "From: Alice <alice@example.com>\r\n" +
    "To: Bob <bob@example.org>\r\n" +
    "Subject: Lunch  tomorrow?\r\n" +
    "Date: Fri, 27 Nov 2026 12:00:00 +0000\r\n" +
    "Message-ID: <1@example.com>\r\n" +
    "\r\n" +
    "Hi Bob,\r\n\r\nNoon at the usual place?  \r\n\r\nAlice\r\n\r\n",
);

/** `message` with the signature fields from `signMessage` prepended. */
export async function signed(
  message: Uint8Array,
  options: readonly SignOptions[],
  now = 1_800_000_000,
): Promise<Uint8Array> {
  const fields = await signMessage(message, options, { now: () => now });
  return concat([...fields.flatMap((f) => [f.raw, CRLF]), message]);
}

/** Replaces the first occurrence of `from` with `to` in the message text. */
export function edit(message: Uint8Array, from: string, to: string): Uint8Array {
  const text = latin1(message);
  if (!text.includes(from)) throw new Error(`edit(): "${from}" not in message`);
  return fromLatin1(text.replace(from, to));
}

/**
 * Writes a key file (OpenDKIM's TestPublicKeys format) to `dir` publishing the test keys as
 * selectors `rsa` (rsa2048_pkcs8.pem), `ed` (ed25519.pem) and `seed` (dknewkey_ed25519.key) of
 * example.com; resolves to its path.
 */
export async function writeTestKeys(dir: string): Promise<string> {
  const lines = [];
  for (
    const [selector, name] of [
      ["rsa", "rsa2048_pkcs8.pem"],
      ["ed", "ed25519.pem"],
      ["seed", "dknewkey_ed25519.key"],
    ]
  ) {
    const key = await loadKey(name);
    lines.push(
      `${selector}._domainkey.example.com v=DKIM1; k=${key.type}; p=${toBase64(key.publicKey)}`,
    );
  }
  const path = `${dir}/keys.txt`;
  await Deno.writeTextFile(path, lines.join("\n") + "\n");
  return path;
}
