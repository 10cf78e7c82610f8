/**
 * The private key a command signs with (`dkimd sign -k`, `dkimd arc seal -k`), read from a file
 * given on the command line: any form `importPrivateKey` takes (PKCS#8, PKCS#1, base64 DER, a
 * dknewkey Ed25519 seed).
 *
 * @module
 */
import { KeyError } from "../crypto/key_error.ts";
import { importPrivateKey, type SigningKey } from "../crypto/private_key.ts";
import { UsageError } from "./args.ts";

/**
 * The key in `path`, or a {@link UsageError} in one line naming `command` and the file: it
 * cannot be read (no such file, permission denied) or holds no key dkimd can use.
 */
export async function loadSigningKeyFile(command: string, path: string): Promise<SigningKey> {
  let data: Uint8Array;
  try {
    data = await Deno.readFile(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "no such file"
      : e instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : String(e);
    throw new UsageError(`${command}: cannot read key "${path}": ${why}`, { cause: e });
  }
  try {
    return await importPrivateKey(data, path);
  } catch (e) {
    if (e instanceof KeyError) throw new UsageError(`${command}: ${e.message}`, { cause: e });
    throw e;
  }
}
