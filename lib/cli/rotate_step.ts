/**
 * One step of a key rotation with its effects (lib/rotate/rotation.ts decides which): the new
 * key file, the record published (DNS UPDATE, or an nsupdate script printed), the proof that DNS
 * serves it, the KeyTable and SigningTable edits and SIGUSR1 to dkimd, the revocation and the
 * deletion. Apart from the command, which parses options and walks the rotations.
 *
 * @module
 */
import { toBase64 } from "../bytes.ts";
import type { Config } from "../config/schema.ts";
import { generateSigningKey, importPrivateKey, type SigningKey } from "../crypto/private_key.ts";
import { formatNameserver, type Nameserver } from "../dns/nameserver.ts";
import type { TsigKey } from "../dns/tsig_key.ts";
import { sendUpdate, type UpdateChange } from "../dns/update.ts";
import { inspectPidFile } from "../ops/pid_file.ts";
import type { KeyTableWriter } from "../tables/key_table_writer.ts";
import { describeProof, type Expectation, prove } from "../rotate/proof.ts";
import type { Rotation, RotationStep } from "../rotate/rotation.ts";
import { editKeyTableLine } from "../rotate/key_table_edit.ts";
import {
  addOverlapKey,
  addOverlapSigners,
  overlapKeyName,
  removeOverlapKey,
  removeOverlapSigners,
} from "../rotate/overlap_edit.ts";
import { writeFileAtomic } from "../rotate/state_file.ts";
import type { proofServers } from "../rotate/zone_servers.ts";
import type { Candidate } from "./rotate_candidates.ts";
import { activateRow } from "./rotate_database.ts";
import { ROTATION_RECORD_TTL } from "./rotation_summary.ts";

/** The DNS side of a domain's rotation, found once per run. */
export interface ZoneContext {
  readonly zone: string;
  readonly updateServer?: Nameserver;
  readonly proofServers: ReturnType<typeof proofServers>;
}

/** Thrown by a step that cannot go on until DNS catches up: exit 75, not an error. */
export class WaitingForDns extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WaitingForDns";
  }
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

/** What a step needs from its run: the configuration, the DNS side, the clock and the output. */
export interface StepContext {
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
async function publish(
  ctx: StepContext,
  changes: UpdateChange[],
  what: string,
): Promise<void> {
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

/** Proves that DNS serves `name` as `expect` says; a proof still waiting throws {@link WaitingForDns}. */
async function proveStep(
  ctx: StepContext,
  name: string,
  expect: Expectation,
): Promise<void> {
  const proof = await prove(name, expect, (await ctx.zone()).proofServers);
  if (proof.status === "wrong") throw new Error(`${name}: ${describeProof(proof)}`);
  if (proof.status === "waiting") throw new WaitingForDns(`${name}: ${describeProof(proof)}`);
  ctx.out(`${name}: ${describeProof(proof)}`);
}

/** The rotation's new key, read back from its file (written by the generate step). */
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
export async function runStep(
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
      if (ctx.writer) return await activateRow(rotation, ctx, ctx.writer, () => signalDkimd(ctx));
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

/** The SigningTable's file, when it is one. */
export function signingTablePath(config: Config): string | undefined {
  const t = config.signingTable;
  return t && (t.kind === "file" || t.kind === "refile") ? t.path : undefined;
}
