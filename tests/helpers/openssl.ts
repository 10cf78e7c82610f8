/**
 * The OpenSSL command-line tool, for cross-checking lib/crypto: what we sign, OpenSSL verifies;
 * what OpenSSL signs, we verify; and the key encodings we write are the ones OpenSSL writes.
 *
 * @module
 */
import { fromUtf8 } from "../../lib/bytes.ts";
import { encodePem } from "../../lib/crypto/pem.ts";
import type { SigningKey } from "../../lib/crypto/private_key.ts";

const OPENSSL = "/usr/bin/openssl";
/** Longest one openssl run may take: key checks and signatures finish in well under a second. */
const OPENSSL_TIMEOUT_MS = 30_000;

/** How an openssl run ended. */
export interface OpensslRun {
  /** The exit status. */
  code: number;
  /** Standard output. */
  stdout: Uint8Array;
  /** Standard output and standard error as text. */
  text: string;
}

/** Runs `openssl ARGS`. */
export async function openssl(args: string[]): Promise<OpensslRun> {
  const out = await new Deno.Command(OPENSSL, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(OPENSSL_TIMEOUT_MS),
  }).output();
  return {
    code: out.code,
    stdout: out.stdout,
    text: fromUtf8(out.stdout) + fromUtf8(out.stderr),
  };
}

/** Runs `fn` with a fresh temporary directory, removed afterwards. */
export async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dkimd_crypto_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Writes the key's public half as PEM, for openssl -verify. */
export async function writePublicPem(dir: string, key: SigningKey): Promise<string> {
  const path = `${dir}/pub.pem`;
  await Deno.writeTextFile(path, encodePem("PUBLIC KEY", key.spki));
  return path;
}
