/**
 * `dkimd rotate` with the KeyTable in an SQL database (dsn:): the DSN and password it writes
 * with, the rows that rotate, and the activation that switches a row and waits out every
 * running dkimd's cache. Apart from the command because a file KeyTable needs none of it.
 *
 * @module
 */
import { isAbsolute, join } from "node:path";
import { errorMessage } from "../error_message.ts";
import type { Config } from "../config/schema.ts";
import { importPrivateKey } from "../crypto/private_key.ts";
import { parseKeyTableEntry } from "../policy/key_table.ts";
import type { DsnSpec } from "../tables/dsn_spec.ts";
import type { KeyTableWriter } from "../tables/key_table_writer.ts";
import type { Rotation } from "../rotate/rotation.ts";
import { type Candidate, keyPath } from "./rotate_candidates.ts";

/**
 * The DSN rotate writes the KeyTable with: the data set's, as RotationDataSetUser when set
 * (the mail path's user may only read).
 */
export function rotationSpec(spec: DsnSpec, config: Config): DsnSpec {
  return config.rotationDataSetUser === undefined
    ? spec
    : { ...spec, user: config.rotationDataSetUser };
}

/**
 * RotationDataSetPasswordFile's first line, as `{ password }` (an absolute path, or a name in
 * `$CREDENTIALS_DIRECTORY`), else nothing: DataSetPasswordFile's or the DSN's password stays.
 */
export async function rotationPassword(config: Config): Promise<{ password?: string }> {
  const name = config.rotationDataSetPasswordFile;
  if (name === undefined) return {};
  let path = name;
  if (!isAbsolute(name)) {
    let dir: string | undefined;
    try {
      dir = Deno.env.get("CREDENTIALS_DIRECTORY");
    } catch {
      // Not allowed to read it: as if unset.
    }
    if (!dir) {
      throw new Error(
        `RotationDataSetPasswordFile "${name}" is relative, so it names a systemd credential, but $CREDENTIALS_DIRECTORY is not set`,
      );
    }
    path = join(dir, name);
  }
  try {
    return { password: (await Deno.readTextFile(path)).split(/\r?\n/)[0] };
  } catch (error) {
    throw new Error(`Cannot read RotationDataSetPasswordFile "${path}": ${errorMessage(error)}`);
  }
}

/**
 * The rows of a KeyTable in a database that rotate: a key file of a type RotationKeyTypes
 * names, for a domain asked (all without --domain). A row holding the key itself is left
 * alone with a warning: rotation writes a new key file, and the row then names it.
 */
export async function databaseCandidates(
  writer: KeyTableWriter,
  config: Config,
  domains: ReadonlySet<string>,
  err: (line: string) => void,
): Promise<Candidate[]> {
  const out: Candidate[] = [];
  for (const row of await writer.rows()) {
    const entry = parseKeyTableEntry({
      key: row.keyName,
      value: `${row.domain}:${row.selector}:${row.key}`,
      origin: { file: writer.describe, line: 0 },
    });
    if (entry.domain === "%") continue;
    if (domains.size > 0 && !domains.has(entry.domain)) continue;
    if (entry.source.kind !== "file") {
      err(
        `dkimd rotate: warning: the KeyTable row "${entry.name}" holds the key itself: not rotated (rotation needs a key file path in the row)`,
      );
      continue;
    }
    const keyFile = keyPath(entry.source.path, config);
    let keyType;
    try {
      keyType = (await importPrivateKey(await Deno.readFile(keyFile), keyFile)).type;
    } catch (error) {
      throw new Error(
        `Cannot read the key file "${keyFile}" of the KeyTable row "${entry.name}": ${
          errorMessage(error)
        }`,
      );
    }
    if (!config.rotationKeyTypes.includes(keyType)) continue;
    out.push({
      keyName: entry.name,
      domain: entry.domain,
      keyType,
      selector: entry.selector,
      keyFile,
    });
  }
  return out;
}

/** What {@link activateRow} uses of the step running it. */
export interface ActivationContext {
  readonly config: Config;
  /** The clock, in seconds. */
  readonly now: () => number;
  /** Writes one line of progress. */
  readonly out: (line: string) => void;
}

/**
 * Activation with the KeyTable in a database: the row switched in one transaction, then the
 * wait for every running dkimd's cache. A dkimd (this host's or any other sharing the
 * database) may sign with the old key from its cached row until DataSetCacheTTL has passed,
 * and up to DataSetStaleLimit longer while the database cannot answer it; the activation is
 * complete, and retirement counts, only from then. SIGUSR1 (PidFile) makes this host's dkimd
 * reload at once (a reload builds new caches), but others, and a reload that failed, still
 * wait for the TTL.
 */
export async function activateRow(
  rotation: Rotation,
  ctx: ActivationContext,
  writer: KeyTableWriter,
  signalDkimd: () => Promise<void>,
): Promise<Rotation | undefined> {
  const result = await writer.switchKey({
    keyName: rotation.keyName,
    domain: rotation.domain,
    fromSelector: rotation.oldSelector,
    toSelector: rotation.newSelector,
    toKey: rotation.newKeyFile,
  });
  if (rotation.switchedAt !== undefined) {
    ctx.out(
      `activated: every running dkimd's cached row of "${rotation.keyName}" has expired; "${rotation.newSelector}" alone signs`,
    );
    return undefined;
  }
  const delay = cacheDelay(ctx.config);
  ctx.out(
    `${
      "updated" in result ? "switched" : "found already switched"
    } the KeyTable row "${rotation.keyName}" of ${writer.describe} to "${rotation.newSelector}" (committed); running dkimds use it within ${delay} s (DataSetCacheTTL + DataSetStaleLimit)`,
  );
  await signalDkimd();
  return { ...rotation, switchedAt: ctx.now(), updatedAt: ctx.now() };
}

/** How long a dkimd may still use a KeyTable row it cached: DataSetCacheTTL + DataSetStaleLimit. */
function cacheDelay(config: Config): number {
  return config.dataSetCacheTtl + config.dataSetStaleLimit;
}
