/**
 * `dkimd genkey`: makes a DKIM key pair, a drop-in for `opendkim-genkey` 2.11 (Debian): the
 * same options and defaults (2048-bit RSA, `h=sha256`, selector `default`, domain
 * `localhost`), `SELECTOR.private` as PEM PKCS#8 and `SELECTOR.txt` as the zone-file record in
 * the same layout. It also makes Ed25519 keys (RFC 8463), refuses RSA keys under 1024 bits
 * (RFC 8301 §3.2), never overwrites a file unless told to, and creates the private key file
 * with mode 0600 so it is never readable by others, not even for an instant.
 *
 * @module
 */
import { fileErrorMessage } from "../error_message.ts";
import { join } from "node:path";
import { utf8 } from "../bytes.ts";
import { HASH_ALGORITHMS, isHashAlgorithm } from "../crypto/hash.ts";
import {
  ED25519_KEY_BITS,
  type KeyType,
  MAX_RSA_BITS_REQUIRED,
  MIN_RSA_BITS,
  RECOMMENDED_RSA_BITS,
} from "../crypto/key_type.ts";
import { DEFAULT_RSA_BITS, generateSigningKey } from "../crypto/private_key.ts";
import {
  formatZoneFileRecord,
  KeyNoteError,
  type KeyRecordSpec,
  MAX_NOTE_BYTES,
} from "../dkim/key_text.ts";
import { isDomainName, isSelector } from "../dkim/signature.ts";
import { VERSION } from "../version.ts";
import { intFlag, parseCommandArgs, UsageError } from "./args.ts";

/** The selector opendkim-genkey uses without `-s`. */
export const GENKEY_DEFAULT_SELECTOR = "default";

/** The domain opendkim-genkey names without `-d` (only in the record's comment). */
export const GENKEY_DEFAULT_DOMAIN = "localhost";

/** Mode of `SELECTOR.private`, set when the file is created: the owner alone may read it. */
export const PRIVATE_KEY_FILE_MODE = 0o600;

/** Mode of `SELECTOR.txt`, less the umask: the record is public. */
export const RECORD_FILE_MODE = 0o644;

/** Exit status when the key files cannot be written (an existing file, a bad directory). */
export const GENKEY_EXIT_FAILURE = 1;

/** The help text of `dkimd genkey`. */
export const GENKEY_USAGE = `Usage: dkimd genkey [options]

Makes a DKIM key pair, as opendkim-genkey does: SELECTOR.private, the private key
(PEM PKCS#8, created with mode 0600), and SELECTOR.txt, the TXT record to publish
at SELECTOR._domainkey.DOMAIN, in zone-file syntax. Existing files are never
overwritten unless --force is given.
Exit status: 0 on success, 1 when the files cannot be written, 2 on a usage error.

Options:
  -s, --selector NAME         selector, and the file names (default "default")
  -d, --domain NAME           the signing domain, named in the record's comment
                              (default "localhost")
  -D, --directory DIR         write the files in DIR (default: the current one)
  -b, --bits N                RSA key size: ${MIN_RSA_BITS} to ${MAX_RSA_BITS_REQUIRED} (default ${DEFAULT_RSA_BITS})
      --type rsa|ed25519      key type (default rsa); Ed25519 is RFC 8463
  -h, --hash-algorithms LIST  h= tag, e.g. "sha256" (RSA default; "" for none)
  -a, --append-domain         write the owner name with the domain, absolute
  -n, --note TEXT             n= tag: a note for humans
  -r, --restrict              s=email: the key is for email only
  -S, --no-subdomains         t=s: no subdomains in i= (also --nosubdomains)
  -t, --testmode              t=y: the domain is testing DKIM
      --force                 replace existing SELECTOR.private and SELECTOR.txt
  -v, --verbose               say more
  -V, --version               print the version
      --help                  show this help (-h is --hash-algorithms, as in
                              opendkim-genkey)
Negated long forms as in opendkim-genkey: --noappend-domain, --norestrict,
--notestmode, --subdomains (each also with "no-").
`;

/** Everything `dkimd genkey` was asked for, validated. */
export interface GenkeyOptions {
  /** The selector; also the file names. */
  readonly selector: string;
  /** The signing domain, for the comment; "" for none. */
  readonly domain: string;
  /** The directory to write in. */
  readonly directory: string;
  /** The key type. */
  readonly type: KeyType;
  /** RSA modulus bits (256 for Ed25519). */
  readonly bits: number;
  /** The record's tags other than `p=`. */
  readonly record: Omit<KeyRecordSpec, "keyType" | "publicKey">;
  /** Write the owner name absolute. */
  readonly appendDomain: boolean;
  /** Replace existing files. */
  readonly force: boolean;
  /** How many `-v` were given. */
  readonly verbose: number;
}

const OPTIONS = {
  "append-domain": { type: "boolean", short: "a" },
  "noappend-domain": { type: "boolean" },
  "no-append-domain": { type: "boolean" },
  bits: { type: "string", short: "b" },
  domain: { type: "string", short: "d" },
  directory: { type: "string", short: "D" },
  "hash-algorithms": { type: "string", short: "h" },
  note: { type: "string", short: "n" },
  restrict: { type: "boolean", short: "r" },
  norestrict: { type: "boolean" },
  "no-restrict": { type: "boolean" },
  selector: { type: "string", short: "s" },
  "no-subdomains": { type: "boolean", short: "S" },
  nosubdomains: { type: "boolean" },
  subdomains: { type: "boolean" },
  testmode: { type: "boolean", short: "t" },
  notestmode: { type: "boolean" },
  "no-testmode": { type: "boolean" },
  verbose: { type: "boolean", short: "v", multiple: true },
  version: { type: "boolean", short: "V" },
  type: { type: "string" },
  force: { type: "boolean" },
  help: { type: "boolean" },
} as const;

/**
 * A yes/no option with opendkim-genkey's negated spellings (Getopt::Long `!`): true, false, or
 * `fallback` when neither is given; both at once is a usage error.
 */
function toggle(
  values: Record<string, unknown>,
  yes: string,
  no: readonly string[],
  fallback: boolean,
): boolean {
  const on = values[yes] === true;
  const off = no.find((name) => values[name] === true);
  if (on && off !== undefined) {
    throw new UsageError(`genkey: give --${yes} or --${off}, not both`);
  }
  return on ? true : off !== undefined ? false : fallback;
}

/**
 * Reads and checks `dkimd genkey`'s arguments; throws {@link UsageError} naming the problem.
 * Returns `"help"` or `"version"` when those were asked for.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseGenkeyArgs } from "./genkey.ts";
 * const o = parseGenkeyArgs(["-s", "dkim", "-d", "example.com", "-tS"]);
 * assert.ok(typeof o === "object");
 * assert.equal(o.bits, 2048);
 * assert.deepEqual(o.record, { hashes: ["sha256"], testing: true, noSubdomains: true, emailOnly: false });
 * assert.throws(() => parseGenkeyArgs(["-b", "512"]), /at least 1024/);
 * ```
 */
export function parseGenkeyArgs(args: readonly string[]): GenkeyOptions | "help" | "version" {
  const { values } = parseCommandArgs("genkey", args, OPTIONS, 0);
  if (values.help) return "help";
  if (values.version) return "version";

  const typeText = (values.type ?? "rsa").toLowerCase();
  if (typeText !== "rsa" && typeText !== "ed25519") {
    throw new UsageError(`genkey: --type "${values.type}" is not "rsa" or "ed25519"`);
  }
  const type: KeyType = typeText;

  const bitsGiven = intFlag("genkey", "bits", values.bits, 0);
  let bits: number;
  if (type === "ed25519") {
    if (bitsGiven !== undefined && bitsGiven !== ED25519_KEY_BITS) {
      throw new UsageError(
        `genkey: --bits ${bitsGiven} does not fit an Ed25519 key, which always has ${ED25519_KEY_BITS} bits`,
      );
    }
    bits = ED25519_KEY_BITS;
  } else {
    bits = bitsGiven ?? DEFAULT_RSA_BITS;
    if (bits < MIN_RSA_BITS) {
      throw new UsageError(
        `genkey: an RSA key of ${bits} bits is too small: RFC 8301 §3.2 requires at least ${MIN_RSA_BITS} (use ${RECOMMENDED_RSA_BITS})`,
      );
    }
    if (bits > MAX_RSA_BITS_REQUIRED) {
      throw new UsageError(
        `genkey: an RSA key of ${bits} bits is too large: verifiers need only handle ${MAX_RSA_BITS_REQUIRED} (RFC 8301 §3.2)`,
      );
    }
  }

  const selector = values.selector ?? GENKEY_DEFAULT_SELECTOR;
  if (!isSelector(selector)) {
    throw new UsageError(
      `genkey: selector "${selector}" is not a DNS label list (letters, digits, "-", "_", dots)`,
    );
  }
  const domain = (values.domain ?? GENKEY_DEFAULT_DOMAIN).replace(/\.$/, "");
  if (domain !== "" && !isDomainName(domain)) {
    throw new UsageError(`genkey: domain "${values.domain}" is not a domain name`);
  }
  const appendDomain = toggle(
    values,
    "append-domain",
    ["noappend-domain", "no-append-domain"],
    false,
  );
  if (appendDomain && domain === "") {
    throw new UsageError("genkey: --append-domain needs a domain (-d)");
  }

  const hashes = parseHashes(values["hash-algorithms"], type);
  const note = values.note;
  if (note !== undefined) {
    if (/[\p{Cc}]/u.test(note)) {
      throw new UsageError("genkey: --note must not hold control characters");
    }
    if (utf8(note).length > MAX_NOTE_BYTES) {
      throw new UsageError(
        `genkey: --note is ${utf8(note).length} bytes; at most ${MAX_NOTE_BYTES} are allowed`,
      );
    }
  }
  const subdomains = !values["no-subdomains"] &&
    toggle(values, "subdomains", ["nosubdomains"], true);
  if (values["no-subdomains"] && values.subdomains) {
    throw new UsageError("genkey: give --subdomains or -S (--no-subdomains), not both");
  }
  return {
    selector,
    domain,
    directory: values.directory ?? ".",
    type,
    bits,
    record: {
      ...(hashes !== undefined ? { hashes } : {}),
      ...(note !== undefined ? { note } : {}),
      testing: toggle(values, "testmode", ["notestmode", "no-testmode"], false),
      noSubdomains: !subdomains,
      emailOnly: toggle(values, "restrict", ["norestrict", "no-restrict"], false),
    },
    appendDomain,
    force: values.force === true,
    verbose: values.verbose?.length ?? 0,
  };
}

/**
 * The `h=` list from `-h`: Debian's opendkim-genkey writes `h=sha256` for RSA by default, and
 * an Ed25519 record needs no `h=` (RFC 8463 signs SHA-256 only). A list without sha256 would
 * leave only rsa-sha1, which RFC 8301 §3.1 verifiers refuse, so it is refused here.
 */
function parseHashes(text: string | undefined, type: KeyType): string[] | undefined {
  if (text === undefined) return type === "rsa" ? ["sha256"] : undefined;
  if (text.trim() === "") return undefined;
  const list = text.split(":").map((h) => h.trim().toLowerCase());
  for (const h of list) {
    if (!isHashAlgorithm(h)) {
      throw new UsageError(
        `genkey: --hash-algorithms "${text}" names "${h}"; DKIM hashes are ${
          HASH_ALGORITHMS.join(" and ")
        }`,
      );
    }
  }
  if (!list.includes("sha256")) {
    throw new UsageError(
      `genkey: --hash-algorithms "${text}" leaves out sha256: RFC 8301 §3.1 verifiers refuse sha1, so the key could verify nothing`,
    );
  }
  return [...new Set(list)];
}

/** Why a key file could not be written; the command prints it and exits with status 1. */
class KeyFileWriteError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "KeyFileWriteError";
  }
}

function alreadyExists(path: string): string {
  return `"${path}" already exists; choose another selector (-s) or directory (-D), or replace it with --force`;
}

function describe(e: unknown): string {
  if (e instanceof Deno.errors.AlreadyExists) return "it already exists";
  return fileErrorMessage(e);
}

/** Writes all of `data` to the open file. */
async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.length) offset += await file.write(data.subarray(offset));
}

/**
 * Creates `path` with `mode` (O_CREAT|O_EXCL, so never through an existing file or symlink)
 * and writes `data`; removes the file again if the write fails.
 */
async function createFile(path: string, data: Uint8Array, mode: number): Promise<void> {
  const file = await Deno.open(path, { write: true, createNew: true, mode });
  try {
    await writeAll(file, data);
    await file.sync();
  } catch (e) {
    file.close();
    await Deno.remove(path).catch(() => {});
    throw e;
  }
  file.close();
}

/** One file to write. */
interface Output {
  readonly path: string;
  readonly data: Uint8Array;
  readonly mode: number;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw new KeyFileWriteError(`cannot check "${path}": ${describe(e)}`, { cause: e });
  }
}

/**
 * Writes the files, all or none. Without `force`, each is created new, so an existing file
 * (or one that appears meanwhile) stops the write and the files already made are removed.
 * With `force`, each is written to a new temporary file beside its target and renamed over
 * it, so a replaced private key is never, even briefly, in a file with the old file's mode.
 * Returns which targets existed before.
 */
async function writeOutputs(outputs: readonly Output[], force: boolean): Promise<boolean[]> {
  if (!force) {
    const made: string[] = [];
    try {
      for (const o of outputs) {
        try {
          await createFile(o.path, o.data, o.mode);
        } catch (e) {
          throw new KeyFileWriteError(
            e instanceof Deno.errors.AlreadyExists
              ? alreadyExists(o.path)
              : `cannot create "${o.path}": ${describe(e)}`,
            { cause: e },
          );
        }
        made.push(o.path);
      }
    } catch (e) {
      for (const path of made) await Deno.remove(path).catch(() => {});
      throw e;
    }
    return outputs.map(() => false);
  }
  const existed = await Promise.all(outputs.map((o) => exists(o.path)));
  const temps: string[] = [];
  try {
    for (const o of outputs) {
      const temp = `${o.path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
      try {
        await createFile(temp, o.data, o.mode);
      } catch (e) {
        throw new KeyFileWriteError(`cannot create "${temp}": ${describe(e)}`, { cause: e });
      }
      temps.push(temp);
    }
    for (const [i, o] of outputs.entries()) {
      try {
        await Deno.rename(temps[i], o.path);
      } catch (e) {
        throw new KeyFileWriteError(`cannot replace "${o.path}": ${describe(e)}`, { cause: e });
      }
    }
  } finally {
    for (const temp of temps) await Deno.remove(temp).catch(() => {});
  }
  return existed;
}

/**
 * Runs `dkimd genkey` with `args` (the words after "genkey"), writing the files and saying
 * where on standard error, as opendkim-genkey -v does; resolves to the exit status: 0, or
 * {@link GENKEY_EXIT_FAILURE} when the files cannot be written. Throws `UsageError` for bad
 * arguments (the dispatcher prints it and exits with 2).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runGenkey } from "./genkey.ts";
 * const dir = await Deno.makeTempDir();
 * assert.equal(await runGenkey(["--type", "ed25519", "-s", "ed", "-D", dir]), 0);
 * assert.equal((await Deno.stat(`${dir}/ed.private`)).mode! & 0o777, 0o600);
 * assert.match(await Deno.readTextFile(`${dir}/ed.txt`), /^ed\._domainkey\tIN\tTXT\t\( "v=DKIM1; k=ed25519; "/);
 * assert.equal(await runGenkey(["--type", "ed25519", "-s", "ed", "-D", dir]), 1); // exists
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function runGenkey(args: readonly string[]): Promise<number> {
  const options = parseGenkeyArgs(args);
  if (options === "help") {
    console.log(GENKEY_USAGE);
    return 0;
  }
  if (options === "version") {
    console.log(`dkimd genkey v${VERSION}`);
    return 0;
  }
  const say = (text: string) => console.error(`dkimd genkey: ${text}`);
  const dir = options.directory;
  try {
    const info = await Deno.stat(dir);
    if (!info.isDirectory) {
      say(`"${dir}" is not a directory`);
      return GENKEY_EXIT_FAILURE;
    }
  } catch (e) {
    say(`cannot use directory "${dir}": ${describe(e)}`);
    return GENKEY_EXIT_FAILURE;
  }
  const at = (name: string) => (dir === "." ? name : join(dir, name));
  const privatePath = at(`${options.selector}.private`);
  const recordPath = at(`${options.selector}.txt`);
  if (!options.force) {
    // Checked before the slow key generation; createNew checks again when writing.
    for (const path of [privatePath, recordPath]) {
      if (await exists(path).catch(() => false)) {
        say(alreadyExists(path));
        return GENKEY_EXIT_FAILURE;
      }
    }
  }

  if (options.type === "rsa" && options.bits < RECOMMENDED_RSA_BITS) {
    say(
      `WARNING: a ${options.bits}-bit RSA key is weak; RFC 8301 §3.2 recommends ${RECOMMENDED_RSA_BITS} bits or more`,
    );
  }
  if (options.verbose >= 1) {
    say(
      options.type === "rsa"
        ? `generating a ${options.bits}-bit RSA private key`
        : "generating an Ed25519 private key",
    );
  }
  const key = await generateSigningKey(options.type, options.bits);
  let zoneText: string;
  try {
    zoneText = formatZoneFileRecord(
      { keyType: key.type, publicKey: key.publicKey, ...options.record },
      { selector: options.selector, domain: options.domain, appendDomain: options.appendDomain },
    );
  } catch (e) {
    if (e instanceof KeyNoteError) throw new UsageError(`genkey: ${e.message}`, { cause: e });
    throw e;
  }
  let existed: boolean[];
  try {
    existed = await writeOutputs([
      { path: privatePath, data: utf8(await key.toPem()), mode: PRIVATE_KEY_FILE_MODE },
      { path: recordPath, data: utf8(zoneText), mode: RECORD_FILE_MODE },
    ], options.force);
  } catch (e) {
    if (e instanceof KeyFileWriteError) {
      say(e.message);
      return GENKEY_EXIT_FAILURE;
    }
    throw e;
  }
  const replaced = (i: number) => (existed[i] ? " (replacing the old file)" : "");
  say(`private key written to ${privatePath}${replaced(0)}`);
  say(`DNS TXT record written to ${recordPath}${replaced(1)}`);
  if (options.verbose >= 1) {
    const name = `${options.selector}._domainkey.${options.domain || "DOMAIN"}`;
    say(`publish the record as the TXT record of ${name}`);
    if (existed[0]) {
      say(
        `the new ${privatePath} has mode 0600; set its owner and mode again if OpenDKIM's user reads it`,
      );
    }
  }
  return 0;
}
