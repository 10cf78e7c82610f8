/**
 * `dkimd rotate`: advances every key rotation as far as it safely can, then exits. It runs the
 * steps of `lib/rotate/rotation.ts` with their effects: a new key file (0600 from the start,
 * then the old key's owner and group), the record published by DNS UPDATE with TSIG (or printed
 * with an nsupdate script when there is no `DNSUpdateKey`), the proof that every authoritative
 * server and dkimd's resolvers serve it, the KeyTable line switched atomically and SIGUSR1 sent
 * to the running dkimd (PidFile), then the old record revoked (`p=`) and finally deleted with
 * the old key file. The state is written after every step, so a killed run resumes.
 *
 * One run at a time: a run that changes anything holds an exclusive lock on
 * `RotationStateFile` + `.lock` (lib/ops/run_lock.ts) from before it reads the KeyTable to its
 * exit; a second run finds it held and exits 75, as a run waiting for DNS does: the timer's unit
 * counts 75 as success, and either way the next run goes on from the state file. `--status` and
 * `--dry-run` change nothing and take no lock: every file they read is replaced atomically.
 *
 * Exit statuses: 0 all done or waiting for a time, 75 (EX_TEMPFAIL) waiting for DNS or for
 * another run, 1 an error.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { errorMessage } from "../error_message.ts";
import type { Config } from "../config/schema.ts";
import { keyFileSafety, readPrivateKeyFile } from "../config/private_key_file.ts";
import { UserDb } from "../config/user_db.ts";
import type { Nameserver } from "../dns/nameserver.ts";
import { readResolvConf } from "../dns/resolv_conf.ts";
import { readTsigKeyFile, type TsigKey } from "../dns/tsig_key.ts";
import type { RunLock } from "../ops/run_lock.ts";
import { parseDsn } from "../tables/dsn.ts";
import { type KeyTableWriter, openKeyTableWriter } from "../tables/key_table_writer.ts";
import { completeStep, decide, isDue, type Rotation, startRotation } from "../rotate/rotation.ts";
import { newSelector } from "../rotate/selector.ts";
import { overlapKeyName } from "../rotate/overlap_edit.ts";
import {
  readRotationState,
  removeLeftoverTempFiles,
  type RotationState,
  writeRotationState,
} from "../rotate/state_file.ts";
import {
  findAuthoritativeServers,
  findZoneApex,
  hostAddresses,
  proofServers,
} from "../rotate/zone_servers.ts";
import { parseCommandArgs } from "./args.ts";
import { baseDirectory, type Candidate, keyAge, keyPath } from "./rotate_candidates.ts";
import { databaseCandidates, rotationPassword, rotationSpec } from "./rotate_database.ts";
import { ROTATE_EXIT } from "./rotate_exit.ts";
import { takeRunLock } from "./rotate_lock.ts";
import { printStatus } from "./rotate_status.ts";
import { runStep, signingTablePath, WaitingForDns, type ZoneContext } from "./rotate_step.ts";
import { rotationTiming } from "./rotation_summary.ts";
import { loadRuntime } from "./runtime.ts";

export { ROTATE_EXIT } from "./rotate_exit.ts";
export { ROTATE_LOCK_SUFFIX } from "./rotate_lock.ts";

export { ROTATION_RECORD_TTL } from "./rotation_summary.ts";

/** The configuration file read when `-x` is not given, as opendkim's. */
export const ROTATE_DEFAULT_CONFIG = "/etc/opendkim.conf";

const USAGE =
  `Usage: dkimd rotate [-x CONF] [--domain DOMAIN]... [--now] [--status] [--json] [--dry-run]

Advances every DKIM key rotation of the KeyTable as far as it safely can, then exits:
generate a key, publish its record (DNS UPDATE with DNSUpdateKey, else print it), prove that
every authoritative server and dkimd's resolvers serve it, switch the KeyTable and signal
dkimd, then revoke (p=) and delete the old key after RotationRetireAfter/RotationDeleteAfter.

Options:
  -x, --config FILE  configuration file (default ${ROTATE_DEFAULT_CONFIG})
  --domain DOMAIN    only this signing domain (repeatable)
  --now              start a rotation whatever the key's age (RotationInterval)
  --status           print each key and rotation: selector, key age, step, what it waits for
  --json             with --status: print JSON
  --dry-run          say what would be done, change nothing

Exit status: 0 done or waiting for a time, 75 waiting for DNS or for another run (which
holds RotationStateFile.lock), 1 an error.
`;

/** What `runRotate` uses from the world besides the files and the network. */
export interface RotateDeps {
  /** The clock, in milliseconds since the epoch. */
  readonly now: () => number;
  /** Writes one line to standard output. */
  readonly out: (line: string) => void;
  /** Writes one line to standard error. */
  readonly err: (line: string) => void;
}

const DEFAULT_DEPS: RotateDeps = {
  now: Date.now,
  out: (line) => console.log(line),
  err: (line) => console.error(line),
};

/** Runs `dkimd rotate ARGS`; resolves to the exit status. */
export async function runRotate(
  args: readonly string[],
  deps: RotateDeps = DEFAULT_DEPS,
): Promise<number> {
  const opened: Opened = {};
  try {
    return await rotate(args, deps, opened);
  } finally {
    await opened.writer?.close().catch(() => {});
    opened.lock?.release();
  }
}

/** What a run opened and must close however it ends. */
interface Opened {
  writer?: KeyTableWriter;
  lock?: RunLock;
}

async function rotate(
  args: readonly string[],
  deps: RotateDeps,
  opened: Opened,
): Promise<number> {
  const { values } = parseCommandArgs("rotate", args, {
    config: { type: "string", short: "x" },
    domain: { type: "string", multiple: true },
    now: { type: "boolean" },
    status: { type: "boolean" },
    json: { type: "boolean" },
    "dry-run": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, 0);
  if (values.help) {
    deps.out(USAGE);
    return ROTATE_EXIT.ok;
  }
  const domains = new Set((values.domain ?? []).map((d) => d.toLowerCase().replace(/\.$/, "")));
  const dryRun = values["dry-run"] ?? false;
  const nowSeconds = () => Math.floor(deps.now() / 1000);
  const fail = (message: string) => {
    deps.err(`dkimd rotate: ${message}`);
    return ROTATE_EXIT.error;
  };
  if (!values.status && !dryRun) {
    // The configuration is read once for the lock's path, and everything again under the
    // lock: a KeyTable read before it could predate another run's activation.
    const stop = await takeRunLock(values.config ?? ROTATE_DEFAULT_CONFIG, opened, deps.err);
    if (stop !== undefined) return stop;
  }

  let config: Config;
  let candidates: Candidate[];
  try {
    const { loaded } = await loadRuntime(values.config ?? ROTATE_DEFAULT_CONFIG);
    config = loaded.config;
    // Nothing here reads or writes a database; its connections end now.
    await Promise.all(loaded.tables.map((t) => t.close().catch(() => {})));
    const kind = config.keyTable?.kind;
    if (kind === "ldap") {
      return fail(
        "rotation supports a KeyTable in a file or an SQL database (dsn:), not in LDAP (ldap:): switch its entry yourself",
      );
    }
    if (config.keyTable?.kind === "dsn") {
      opened.writer = openKeyTableWriter(
        rotationSpec(parseDsn(config.keyTable.text), config),
        {
          ...(loaded.dsnOptions ?? {
            queryTimeoutMs: config.dataSetQueryTimeout * 1000,
            connectTimeoutMs: config.dataSetConnectTimeout * 1000,
          }),
          ...await rotationPassword(config),
        },
        baseDirectory(config),
      );
      candidates = await databaseCandidates(opened.writer, config, domains, deps.err);
    } else if (
      config.keyTable === undefined || config.keyTable.kind === "inline" || !loaded.keyTable
    ) {
      return fail(
        "rotation needs a KeyTable file (KeyTable file:/PATH or refile:/PATH): its lines are what it switches",
      );
    } else {
      const { keyTable } = loaded;
      candidates = keyTable.entries.flatMap((e): Candidate[] => {
        if (e.source.kind !== "file" || e.domain === "%" || e.key === undefined) return [];
        if (domains.size > 0 && !domains.has(e.domain)) return [];
        if (!config.rotationKeyTypes.includes(e.key.type)) return [];
        return [{
          keyName: e.name,
          domain: e.domain,
          keyType: e.key.type,
          selector: e.selector,
          keyFile: keyPath(e.source.path, config),
          file: e.origin.file,
          line: e.origin.line,
        }];
      });
    }
  } catch (error) {
    return fail(errorMessage(error));
  }
  let signingTableFile: string | undefined;
  if (config.rotationOverlap > 0 && opened.writer) {
    // Both keys signing would need a second KeyTable row (an INSERT, and a DELETE after),
    // which the one UPDATE this tool makes does not do.
    return fail(
      "RotationOverlap needs a KeyTable file: with a KeyTable in a database (dsn:) set RotationOverlap 0 (the new key would need a second KeyTable row)",
    );
  }
  if (config.rotationOverlap > 0) {
    // Both keys sign through two SigningTable entries for the same sender.
    if (!config.multipleSignatures) {
      return fail(
        "RotationOverlap needs MultipleSignatures yes: both keys sign through two SigningTable entries",
      );
    }
    const table = config.signingTable;
    if (table === undefined || (table.kind !== "file" && table.kind !== "refile")) {
      return fail(
        "RotationOverlap needs a SigningTable file (file:/PATH or refile:/PATH): it adds the new key's lines there",
      );
    }
    signingTableFile = table.path;
  }

  let state: RotationState;
  try {
    state = await readRotationState(config.rotationStateFile);
  } catch (error) {
    return fail(errorMessage(error));
  }
  let rotations = [...state.rotations];
  const save = async (next: Rotation) => {
    rotations = rotations.map((r) =>
      r.keyName === next.keyName && r.newSelector === next.newSelector ? next : r
    );
    if (!rotations.includes(next)) rotations.push(next);
    state = { version: state.version, rotations };
    await writeRotationState(config.rotationStateFile, state);
  };
  const current = (keyName: string) =>
    rotations.find((r) => r.keyName === keyName && r.step !== "done");
  // The new key's own entry while both keys sign is part of its rotation, not a key to rotate.
  const overlapNames = new Set(rotations.map((r) => overlapKeyName(r.keyName, r.newSelector)));
  candidates = candidates.filter((c) => !overlapNames.has(c.keyName));

  if (values.status) {
    return await printStatus(candidates, rotations, config, deps, values.json ?? false);
  }
  if (!dryRun) {
    // A run killed between a write and its rename left the temporary file behind: the state
    // file's, a table's, or a new private key's.
    const written = [
      config.rotationStateFile,
      ...candidates.flatMap((c) => c.file === undefined ? [] : [c.file]),
      ...rotations.map((r) => r.newKeyFile),
    ];
    const signing = signingTablePath(config);
    if (signing !== undefined) written.push(signing);
    try {
      for (const path of await removeLeftoverTempFiles(written)) {
        deps.out(`removed ${path}, left by a run killed while writing`);
      }
    } catch (error) {
      return fail(errorMessage(error));
    }
  }

  // Start rotations that are due.
  for (const c of candidates) {
    if (current(c.keyName)) continue;
    let age: number;
    try {
      age = await keyAge(c, rotations, nowSeconds());
    } catch (error) {
      return fail(
        `Cannot read the key file "${c.keyFile}" of "${c.keyName}": ${errorMessage(error)}`,
      );
    }
    if (!isDue(age, config.rotationInterval, values.now ?? false)) continue;
    const taken = new Set([
      ...candidates.filter((o) => o.domain === c.domain).map((o) => o.selector),
      ...rotations.filter((r) => r.domain === c.domain).flatMap((
        r,
      ) => [r.oldSelector, r.newSelector]),
    ]);
    let selector: string;
    try {
      selector = newSelector(config.rotationSelectorFormat, new Date(deps.now()), c.keyType, taken);
    } catch (error) {
      return fail(errorMessage(error));
    }
    const rotation = startRotation(
      c,
      selector,
      join(dirname(c.keyFile), `${selector}.private`),
      nowSeconds(),
    );
    if (dryRun) {
      deps.out(
        `${c.keyName} (${c.domain}): would start a rotation from "${c.selector}" to "${selector}"`,
      );
      continue;
    }
    try {
      await save(rotation);
    } catch (error) {
      return fail(errorMessage(error));
    }
    deps.out(`${c.keyName} (${c.domain}): rotation from "${c.selector}" to "${selector}" started`);
  }

  // The resolvers dkimd uses, and the update key, for every domain.
  let resolvers: readonly Nameserver[];
  let tsig: TsigKey | undefined;
  try {
    resolvers = config.nameservers ?? (await readResolvConf()).nameservers;
    if (config.dnsUpdateKey !== undefined) {
      const accounts = await readAccounts();
      const safety = keyFileSafety(Deno.uid(), accounts, config.userId ? [config.userId.user] : []);
      const io = { realPath: Deno.realPath, stat: Deno.stat, readFile: Deno.readFile };
      tsig = await readTsigKeyFile(
        keyPath(config.dnsUpdateKey, config),
        (path) =>
          readPrivateKeyFile(io, path, {
            safety,
            requireSafe: true,
            warn: (_, text) => deps.err(`dkimd rotate: warning: ${text}`),
          }),
      );
    }
  } catch (error) {
    return fail(errorMessage(error));
  }
  const zones = new Map<string, Promise<ZoneContext>>();
  const zoneOf = (domain: string) => {
    let ctx = zones.get(domain);
    if (!ctx) {
      ctx = (async (): Promise<ZoneContext> => {
        const apex = await findZoneApex(domain, resolvers);
        const updateServer = config.dnsUpdateServer ??
          (tsig ? (await hostAddresses(apex.primary, resolvers))[0] : undefined);
        const authoritative = config.dnsProofServers
          ? config.dnsProofServers.map((server) => ({ server }))
          : await findAuthoritativeServers(apex.zone, resolvers);
        return {
          zone: apex.zone,
          ...(updateServer ? { updateServer } : {}),
          proofServers: proofServers(authoritative, resolvers, {
            timeoutMs: config.dnsTimeout * 1000,
          }),
        };
      })();
      zones.set(domain, ctx);
    }
    return ctx;
  };

  const timing = rotationTiming(config);
  let status: number = ROTATE_EXIT.ok;
  for (const start of rotations.filter((r) => r.step !== "done")) {
    if (domains.size > 0 && !domains.has(start.domain)) continue;
    const candidate = candidates.find((c) => c.keyName === start.keyName);
    let rotation = start;
    const label = `${rotation.keyName} (${rotation.domain})`;
    try {
      for (;;) {
        const decision = decide(rotation, nowSeconds(), timing);
        if (decision.kind === "done") {
          deps.out(`${label}: rotation to "${rotation.newSelector}" done`);
          break;
        }
        if (decision.kind === "wait") {
          deps.out(
            `${label}: waiting until ${
              new Date(decision.until * 1000).toISOString()
            } for ${decision.reason}`,
          );
          break;
        }
        if (dryRun) {
          deps.out(
            `${label}: would ${decision.step} ("${rotation.oldSelector}" → "${rotation.newSelector}")`,
          );
          break;
        }
        const partial = await runStep(decision.step, rotation, candidate, {
          config,
          tsig,
          signingTableFile,
          writer: opened.writer,
          now: nowSeconds,
          zone: () => zoneOf(rotation.domain),
          out: (line) => deps.out(`${label}: ${line}`),
          print: deps.out,
        });
        rotation = partial ?? completeStep(rotation, decision.step, nowSeconds());
        await save(rotation);
      }
    } catch (error) {
      if (error instanceof WaitingForDns) {
        deps.out(`${label}: ${error.message}`);
        if (status === ROTATE_EXIT.ok) status = ROTATE_EXIT.waiting;
        continue;
      }
      const message = errorMessage(error);
      deps.err(`dkimd rotate: ${label}: ${message}`);
      status = ROTATE_EXIT.error;
      try {
        await save({ ...rotation, lastError: message, updatedAt: nowSeconds() });
      } catch (saveError) {
        deps.err(`dkimd rotate: ${errorMessage(saveError)}`);
      }
    }
  }
  return status;
}

async function readAccounts(): Promise<UserDb | undefined> {
  try {
    return UserDb.parse(
      await Deno.readTextFile("/etc/passwd"),
      await Deno.readTextFile("/etc/group"),
    );
  } catch {
    return undefined;
  }
}
