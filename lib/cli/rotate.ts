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
import { dirname, isAbsolute, join, normalize } from "node:path";
import { toBase64 } from "../bytes.ts";
import { errorMessage } from "../error_message.ts";
import type { Config } from "../config/schema.ts";
import { keyFileSafety, readPrivateKeyFile } from "../config/private_key_file.ts";
import { UserDb } from "../config/user_db.ts";
import { generateSigningKey, importPrivateKey, type SigningKey } from "../crypto/private_key.ts";
import { formatNameserver, type Nameserver } from "../dns/nameserver.ts";
import { readResolvConf } from "../dns/resolv_conf.ts";
import { readTsigKeyFile, type TsigKey } from "../dns/tsig_key.ts";
import { sendUpdate, type UpdateChange } from "../dns/update.ts";
import { inspectPidFile } from "../ops/pid_file.ts";
import { acquireRunLock, type RunLock, RunLockHeldError } from "../ops/run_lock.ts";
import { parseKeyTableEntry } from "../policy/key_table.ts";
import { parseDsn } from "../tables/dsn.ts";
import type { DsnSpec } from "../tables/dsn_spec.ts";
import { type KeyTableWriter, openKeyTableWriter } from "../tables/key_table_writer.ts";
import { describeProof, type Expectation, prove } from "../rotate/proof.ts";
import {
  completeStep,
  decide,
  isDue,
  keySignedSince,
  type RotatedKey,
  type Rotation,
  type RotationStep,
  startRotation,
} from "../rotate/rotation.ts";
import { newSelector } from "../rotate/selector.ts";
import { editKeyTableLine } from "../rotate/key_table_edit.ts";
import {
  addOverlapKey,
  addOverlapSigners,
  overlapKeyName,
  removeOverlapKey,
  removeOverlapSigners,
} from "../rotate/overlap_edit.ts";
import {
  readRotationState,
  removeLeftoverTempFiles,
  type RotationState,
  writeFileAtomic,
  writeRotationState,
} from "../rotate/state_file.ts";
import {
  findAuthoritativeServers,
  findZoneApex,
  hostAddresses,
  proofServers,
} from "../rotate/zone_servers.ts";
import { parseCommandArgs } from "./args.ts";
import { ROTATION_RECORD_TTL, rotationTiming } from "./rotation_summary.ts";
import { loadRuntime } from "./runtime.ts";

/** `dkimd rotate`'s exit statuses. */
export const ROTATE_EXIT = {
  /** Every rotation is done, or waits for a time to pass. */
  ok: 0,
  /** An error: one line each on standard error. */
  error: 1,
  /** Some rotation waits for DNS (EX_TEMPFAIL): run again later. */
  waiting: 75,
  /**
   * Another run holds the lock (EX_TEMPFAIL too: run again later). Not an error: the timer
   * firing while an administrator runs rotate by hand is normal, and the unit counts 75 as
   * success.
   */
  locked: 75,
} as const;

/** The run lock's file: `RotationStateFile` with this appended, beside it. */
export const ROTATE_LOCK_SUFFIX = ".lock";

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

/** A KeyTable entry that rotates, with where its line is (a file) or its row (a database). */
interface Candidate extends RotatedKey {
  /** The KeyTable file, for a file KeyTable. */
  readonly file?: string;
  /** The entry's line there. */
  readonly line?: number;
}

/** The DNS side of a domain's rotation, found once per run. */
interface ZoneContext {
  readonly zone: string;
  readonly updateServer?: Nameserver;
  readonly proofServers: ReturnType<typeof proofServers>;
}

/** Thrown by a step that cannot go on until DNS catches up: exit 75, not an error. */
class WaitingForDns extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WaitingForDns";
  }
}

function keyPath(path: string, config: Config): string {
  if (isAbsolute(path)) return path;
  const base = config.baseDirectory ?? ".";
  return normalize(join(isAbsolute(base) ? base : join(Deno.cwd(), base), path));
}

function recordName(selector: string, domain: string): string {
  return `${selector}._domainkey.${domain}`;
}

/** The key record text for `key`, as genkey writes it. */
function keyRecord(key: SigningKey): string {
  return `v=DKIM1; k=${key.type}; p=${toBase64(key.publicKey)}`;
}

/** The record that revokes a key (RFC 6376 §3.6.1: an empty p=). */
function revokedRecord(type: string): string {
  return `v=DKIM1; k=${type}; p=`;
}

/** An nsupdate script doing `changes`, for admins without a TSIG key in dkimd. */
function nsupdateScript(ctx: ZoneContext, changes: readonly UpdateChange[]): string[] {
  const lines = [
    ...(ctx.updateServer ? [`server ${ctx.updateServer.address} ${ctx.updateServer.port}`] : []),
    `zone ${ctx.zone}`,
  ];
  for (const c of changes) {
    if (c.op !== "delete-txt-record") lines.push(`update delete ${c.name}. TXT`);
    if (c.op === "replace-txt") {
      for (const r of c.records) {
        const parts = r.match(/.{1,255}/g) ?? [""];
        lines.push(
          `update add ${c.name}. ${c.ttl} TXT ${parts.map((p) => `"${p}"`).join(" ")}`,
        );
      }
    }
  }
  lines.push("send");
  return lines;
}

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

/**
 * Takes the run lock beside the configuration's RotationStateFile into `opened`; resolves the
 * exit status when the run must stop instead (the lock held, or an error, said on stderr).
 */
async function takeRunLock(
  configPath: string,
  opened: Opened,
  deps: RotateDeps,
): Promise<number | undefined> {
  try {
    const { loaded } = await loadRuntime(configPath);
    await Promise.all(loaded.tables.map((t) => t.close().catch(() => {})));
    opened.lock = await acquireRunLock(`${loaded.config.rotationStateFile}${ROTATE_LOCK_SUFFIX}`);
    return undefined;
  } catch (error) {
    deps.err(`dkimd rotate: ${errorMessage(error)}`);
    return error instanceof RunLockHeldError ? ROTATE_EXIT.locked : ROTATE_EXIT.error;
  }
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
    const stop = await takeRunLock(values.config ?? ROTATE_DEFAULT_CONFIG, opened, deps);
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
      candidates = await databaseCandidates(opened.writer, config, domains, deps);
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

/**
 * How long `key` has signed, in seconds: since the activation the state file recorded for it
 * ({@link keySignedSince}), else since its file's mtime (a key rotate did not make).
 */
async function keyAge(
  key: Candidate,
  rotations: readonly Rotation[],
  now: number,
): Promise<number> {
  const since = keySignedSince(rotations, key.keyName, key.selector) ??
    Math.floor(((await Deno.stat(key.keyFile)).mtime?.getTime() ?? now * 1000) / 1000);
  return Math.max(0, now - since);
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

interface StepContext {
  readonly config: Config;
  /** The KeyTable's database, when it is in one. */
  readonly writer: KeyTableWriter | undefined;
  readonly tsig: TsigKey | undefined;
  /** The SigningTable file, when RotationOverlap makes both keys sign. */
  readonly signingTableFile: string | undefined;
  /** The clock, in seconds. */
  readonly now: () => number;
  readonly zone: () => Promise<ZoneContext>;
  readonly out: (line: string) => void;
  /** Writes a line as it is: the script lines, so they can be copied. */
  readonly print: (line: string) => void;
}

/** Publishes `changes`: by DNS UPDATE with the TSIG key, or printed for the admin. */
async function publish(ctx: StepContext, changes: UpdateChange[], what: string): Promise<void> {
  const zone = await ctx.zone();
  if (!ctx.tsig) {
    ctx.out(`no DNSUpdateKey: publish ${what} yourself, for example with nsupdate:`);
    for (const line of nsupdateScript(zone, changes)) ctx.print(`  ${line}`);
    return;
  }
  if (!zone.updateServer) {
    throw new Error(`no server to send the update for zone "${zone.zone}" to`);
  }
  await sendUpdate({
    server: zone.updateServer,
    zone: zone.zone,
    key: ctx.tsig,
    changes,
    timeoutMs: ctx.config.dnsTimeout * 1000 * 2,
  });
  ctx.out(`published ${what} by DNS UPDATE to ${formatNameserver(zone.updateServer)}`);
}

async function proveStep(ctx: StepContext, name: string, expect: Expectation): Promise<void> {
  const proof = await prove(name, expect, (await ctx.zone()).proofServers);
  if (proof.status === "wrong") throw new Error(`${name}: ${describeProof(proof)}`);
  if (proof.status === "waiting") throw new WaitingForDns(`${name}: ${describeProof(proof)}`);
  ctx.out(`${name}: ${describeProof(proof)}`);
}

async function readNewKey(rotation: Rotation): Promise<SigningKey> {
  return await importPrivateKey(await Deno.readFile(rotation.newKeyFile), rotation.newKeyFile);
}

/** Tells a running dkimd (PidFile) to re-read its configuration, as OpenDKIM's SIGUSR1. */
async function signalDkimd(ctx: StepContext): Promise<void> {
  const path = ctx.config.pidFile;
  if (path === undefined) {
    ctx.out("no PidFile: reload dkimd yourself (SIGUSR1) to sign with the new key");
    return;
  }
  const pid = await inspectPidFile(path);
  if (pid.state !== "live") {
    ctx.out(
      `PidFile ${path}: no running dkimd to signal; it reads the new KeyTable when it starts`,
    );
    return;
  }
  Deno.kill(pid.pid, "SIGUSR1");
  ctx.out(`sent SIGUSR1 to dkimd (pid ${pid.pid})`);
}

/** Replaces `file` atomically with `edit(its text)`, keeping its mode; nothing when unchanged. */
async function editFile(file: string, edit: (text: string) => string): Promise<void> {
  const text = await Deno.readTextFile(file);
  const edited = edit(text);
  if (edited === text) return;
  const mode = (await Deno.stat(file)).mode ?? 0o644;
  await writeFileAtomic(file, new TextEncoder().encode(edited), mode & 0o777);
}

/**
 * Runs `step`; resolves the rotation when the step is only half done (an activation that began
 * the overlap of both keys), else undefined.
 */
async function runStep(
  step: Exclude<RotationStep, "done">,
  rotation: Rotation,
  candidate: Candidate | undefined,
  ctx: StepContext,
): Promise<Rotation | undefined> {
  const newName = recordName(rotation.newSelector, rotation.domain);
  const oldName = recordName(rotation.oldSelector, rotation.domain);
  switch (step) {
    case "generate": {
      const key = await generateSigningKey(rotation.keyType);
      // Written 0600 from the start, then given the old key's owner and group, so the service
      // user reads it as it reads the old one.
      await writeFileAtomic(
        rotation.newKeyFile,
        new TextEncoder().encode(await key.toPem()),
        0o600,
      );
      const old = await Deno.stat(rotation.oldKeyFile);
      if (old.uid !== null && old.gid !== null) {
        await Deno.chown(rotation.newKeyFile, old.uid, old.gid);
      }
      if (old.mode !== null) await Deno.chmod(rotation.newKeyFile, old.mode & 0o640);
      ctx.out(`generated ${rotation.keyType} key ${rotation.newKeyFile}`);
      return;
    }
    case "publish": {
      const key = await readNewKey(rotation);
      await publish(ctx, [{
        op: "replace-txt",
        name: newName,
        ttl: ROTATION_RECORD_TTL,
        records: [keyRecord(key)],
      }], `the record ${newName}`);
      return;
    }
    case "prove":
      await proveStep(ctx, newName, { kind: "key", privateKey: await readNewKey(rotation) });
      return undefined;
    case "activate": {
      if (ctx.writer) return await activateRow(rotation, ctx, ctx.writer);
      if (!candidate || candidate.file === undefined || candidate.line === undefined) {
        throw new Error(
          `the KeyTable has no entry "${rotation.keyName}" any more: cannot activate`,
        );
      }
      const { file, line } = candidate;
      const overlapName = overlapKeyName(rotation.keyName, rotation.newSelector);
      if (
        ctx.config.rotationOverlap > 0 && rotation.overlapStartedAt === undefined &&
        ctx.signingTableFile !== undefined
      ) {
        // Both keys sign first: the new key's entry, then the SigningTable lines naming it.
        await editFile(
          file,
          (text) =>
            addOverlapKey(text, file, line, {
              name: overlapName,
              domain: rotation.domain,
              selector: rotation.newSelector,
              keyFile: rotation.newKeyFile,
            }),
        );
        const signing = ctx.signingTableFile;
        await editFile(
          signing,
          (text) => addOverlapSigners(text, signing, rotation.keyName, overlapName),
        );
        ctx.out(
          `both "${rotation.oldSelector}" and "${rotation.newSelector}" sign now (${file}, ${signing}), for RotationOverlap ${ctx.config.rotationOverlap} s`,
        );
        await signalDkimd(ctx);
        return { ...rotation, overlapStartedAt: ctx.now(), updatedAt: ctx.now() };
      }
      // The overlap's SigningTable lines go first, then one KeyTable write switches the entry
      // and drops the overlap entry (both no-ops without an overlap).
      // (Even with RotationOverlap 0 now: a run killed mid-overlap may have left them.)
      const signing = signingTablePath(ctx.config);
      if (signing !== undefined) {
        await editFile(signing, (text) => removeOverlapSigners(text, overlapName));
      }
      await editFile(file, (text) =>
        removeOverlapKey(
          editKeyTableLine(text, file, line, {
            keyName: rotation.keyName,
            domain: rotation.domain,
            fromSelector: rotation.oldSelector,
            toSelector: rotation.newSelector,
            toKeyFile: rotation.newKeyFile,
          }),
          overlapName,
        ));
      ctx.out(
        `activated: ${file}:${line} now signs with "${rotation.newSelector}"`,
      );
      await signalDkimd(ctx);
      return undefined;
    }
    case "retire":
      await publish(ctx, [{
        op: "replace-txt",
        name: oldName,
        ttl: ROTATION_RECORD_TTL,
        records: [revokedRecord(rotation.keyType)],
      }], `the revoked record ${oldName}`);
      return undefined;
    case "prove-revoked":
      await proveStep(ctx, oldName, { kind: "revoked" });
      return undefined;
    case "delete": {
      await publish(ctx, [{ op: "delete-txt", name: oldName }], `the deletion of ${oldName}`);
      await Deno.remove(rotation.oldKeyFile).catch((error) => {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      });
      ctx.out(`deleted the old key file ${rotation.oldKeyFile}`);
      return;
    }
  }
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
async function activateRow(
  rotation: Rotation,
  ctx: StepContext,
  writer: KeyTableWriter,
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
  await signalDkimd(ctx);
  return { ...rotation, switchedAt: ctx.now(), updatedAt: ctx.now() };
}

/** How long a dkimd may still use a KeyTable row it cached: DataSetCacheTTL + DataSetStaleLimit. */
function cacheDelay(config: Config): number {
  return config.dataSetCacheTtl + config.dataSetStaleLimit;
}

/**
 * The DSN rotate writes the KeyTable with: the data set's, as RotationDataSetUser when set
 * (the mail path's user may only read).
 */
function rotationSpec(spec: DsnSpec, config: Config): DsnSpec {
  return config.rotationDataSetUser === undefined
    ? spec
    : { ...spec, user: config.rotationDataSetUser };
}

/**
 * RotationDataSetPasswordFile's first line, as `{ password }` (an absolute path, or a name in
 * `$CREDENTIALS_DIRECTORY`), else nothing: DataSetPasswordFile's or the DSN's password stays.
 */
async function rotationPassword(config: Config): Promise<{ password?: string }> {
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

function baseDirectory(config: Config): string {
  const base = config.baseDirectory ?? ".";
  return isAbsolute(base) ? base : join(Deno.cwd(), base);
}

/**
 * The rows of a KeyTable in a database that rotate: a key file of a type RotationKeyTypes
 * names, for a domain asked (all without --domain). A row holding the key itself is left
 * alone with a warning: rotation writes a new key file, and the row then names it.
 */
async function databaseCandidates(
  writer: KeyTableWriter,
  config: Config,
  domains: ReadonlySet<string>,
  deps: RotateDeps,
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
      deps.err(
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

/** The SigningTable's file, when it is one. */
function signingTablePath(config: Config): string | undefined {
  const t = config.signingTable;
  return t && (t.kind === "file" || t.kind === "refile") ? t.path : undefined;
}

async function printStatus(
  candidates: readonly Candidate[],
  rotations: readonly Rotation[],
  config: Config,
  deps: RotateDeps,
  json: boolean,
): Promise<number> {
  const now = Math.floor(deps.now() / 1000);
  const rows = [];
  for (const c of candidates) {
    let age: number | undefined;
    try {
      age = await keyAge(c, rotations, now);
    } catch {
      // Reported as an unknown age.
    }
    const r = rotations.find((x) => x.keyName === c.keyName && x.step !== "done");
    const decision = r ? decide(r, now, rotationTiming(config)) : undefined;
    rows.push({
      keyName: c.keyName,
      domain: c.domain,
      selector: c.selector,
      keyType: c.keyType,
      keyAgeDays: age === undefined ? null : Math.floor(age / 86400),
      step: r?.step ?? null,
      newSelector: r?.newSelector ?? null,
      waitsFor: decision?.kind === "wait"
        ? `${decision.reason} (until ${new Date(decision.until * 1000).toISOString()})`
        : decision?.kind === "do" &&
            (decision.step === "prove" || decision.step === "prove-revoked")
        ? "DNS to serve the record"
        : null,
      lastError: r?.lastError ?? null,
    });
  }
  if (json) {
    deps.out(JSON.stringify(rows, null, 2));
    return ROTATE_EXIT.ok;
  }
  for (const row of rows) {
    deps.out(
      `${row.keyName} (${row.domain}): selector "${row.selector}" (${row.keyType}, ${
        row.keyAgeDays ?? "?"
      } days old)${
        row.step ? `; rotating to "${row.newSelector}", next step: ${row.step}` : "; no rotation"
      }${row.waitsFor ? `; waits for ${row.waitsFor}` : ""}${
        row.lastError ? `; last error: ${row.lastError}` : ""
      }`,
    );
  }
  return ROTATE_EXIT.ok;
}
