/**
 * `dkimd sign`: signs a message from a file or standard input and writes it, with its new
 * DKIM-Signature fields on top, to standard output.
 *
 * @module
 */
import { concat, CRLF } from "../bytes.ts";
import type { SigningKey } from "../crypto/private_key.ts";
import { MessageSyntaxError } from "../dkim/header.ts";
import { SignError, signMessage, type SignOptions } from "../dkim/sign.ts";
import { type AlgorithmName, ALGORITHMS, parseCanonicalization } from "../dkim/signature.ts";
import { DkimError } from "../dkim/dkim_error.ts";
import { intFlag, parseCommandArgs, UsageError } from "./args.ts";
import { crlfToLf, notAMessage, readMessage, writeStdout } from "./input.ts";
import { loadSigningKeyFile } from "./signing_key_file.ts";

/** The help text of `dkimd sign`. */
export const SIGN_USAGE = `Usage: dkimd sign --domain D --selector S --key FILE [options] [FILE|-]

Signs the message in FILE (or standard input) and writes it to standard output with
DKIM-Signature fields added on top; nothing else in the message changes. Repeat
--domain/--selector/--key (and --algorithm) to add several signatures, for example RSA
and Ed25519; a --domain given once applies to every key.

Options:
  -d, --domain D            signing domain (d=)
  -s, --selector S          selector (s=)
  -k, --key FILE            private key: PEM (PKCS#8 or PKCS#1), base64 DER, or a
                            base64 Ed25519 seed as dkimpy's dknewkey writes
  -a, --algorithm A         rsa-sha256 or ed25519-sha256 (default: from the key)
  -c, --canonicalization C  header/body, each simple or relaxed (default relaxed/relaxed)
      --headers A:B:C       fields to sign when present (default: the milter's
                            SignHeaders list, in the README's "Signed header fields")
      --oversign A:B        fields to sign once more than present, so none can be
                            added (default: From, as the milter; --oversign "" for none)
  -i, --identity ID         signing identity (i=), in the domain or a subdomain
      --body-length         add l= with the signed body length
      --ttl SECONDS         add x= this many seconds after t=
      --no-timestamp        leave out t=
  -h, --help                show this help
`;

/** Runs `dkimd sign`; resolves to the exit status. */
export async function runSign(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs("sign", args, {
    domain: { type: "string", short: "d", multiple: true },
    selector: { type: "string", short: "s", multiple: true },
    key: { type: "string", short: "k", multiple: true },
    algorithm: { type: "string", short: "a", multiple: true },
    canonicalization: { type: "string", short: "c" },
    headers: { type: "string" },
    oversign: { type: "string" },
    identity: { type: "string", short: "i" },
    "body-length": { type: "boolean" },
    ttl: { type: "string" },
    "no-timestamp": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(SIGN_USAGE);
    return 0;
  }
  const keys = values.key ?? [];
  if (keys.length === 0) throw new UsageError("sign: --key is required (see dkimd sign --help)");
  const perKey = (
    flag: string,
    list: string[] | undefined,
    required: boolean,
  ): (string | undefined)[] => {
    if (!list || list.length === 0) {
      if (required) throw new UsageError(`sign: --${flag} is required (see dkimd sign --help)`);
      return keys.map(() => undefined);
    }
    if (list.length === 1) return keys.map(() => list[0]);
    if (list.length !== keys.length) {
      throw new UsageError(
        `sign: --${flag} is given ${list.length} times for ${keys.length} keys; give it once or once per --key`,
      );
    }
    return list;
  };
  const domains = perKey("domain", values.domain, true);
  const selectors = perKey("selector", values.selector, true);
  const algorithms = perKey("algorithm", values.algorithm, false);
  let canonicalization: SignOptions["canonicalization"];
  if (values.canonicalization !== undefined) {
    try {
      canonicalization = parseCanonicalization(values.canonicalization);
    } catch (e) {
      throw new UsageError(
        `sign: --canonicalization "${values.canonicalization}" is not header/body with simple or relaxed`,
        { cause: e },
      );
    }
  }
  const list = (v: string | undefined) =>
    v?.split(":").map((s) => s.trim()).filter((s) => s !== "");
  const ttl = intFlag("sign", "ttl", values.ttl, 1);

  const loaded = new Map<string, SigningKey>();
  const options: SignOptions[] = [];
  for (let i = 0; i < keys.length; i++) {
    const algorithm = algorithms[i];
    if (algorithm !== undefined && !(algorithm in ALGORITHMS)) {
      throw new UsageError(
        `sign: unknown --algorithm "${algorithm}" (rsa-sha256 or ed25519-sha256)`,
      );
    }
    let key = loaded.get(keys[i]);
    if (!key) {
      key = await loadSigningKeyFile("sign", keys[i]);
      loaded.set(keys[i], key);
    }
    options.push({
      domain: domains[i]!,
      selector: selectors[i]!,
      key,
      algorithm: algorithm as AlgorithmName | undefined,
      canonicalization,
      signHeaders: list(values.headers),
      oversignHeaders: list(values.oversign),
      identity: values.identity,
      bodyLength: values["body-length"],
      ttl,
      timestamp: !values["no-timestamp"],
    });
  }

  const input = await readMessage("sign", positionals[0]);
  let fields;
  try {
    fields = await signMessage(input.bytes, options);
  } catch (e) {
    if (e instanceof SignError || e instanceof DkimError) {
      throw new UsageError(`sign: ${e.message}`, { cause: e });
    }
    if (e instanceof MessageSyntaxError) throw notAMessage("sign", positionals[0], e);
    throw e;
  }
  const header = concat(fields.flatMap((f) => [f.raw, CRLF]));
  await writeStdout(concat([input.unixLineEnds ? crlfToLf(header) : header, input.original]));
  return 0;
}
