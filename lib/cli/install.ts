/**
 * `dkimd install`: writes the systemd unit, the sysusers.d and tmpfiles.d entries and an example
 * configuration that the executable carries (lib/ops/units.ts, generated from systemd/), then
 * prints the Postfix `main.cf` lines and the next steps, so one copied file and one command
 * give a supervised, unprivileged, logged service (issue 6). An existing file that differs is
 * never replaced silently: install names it and stops, unless `--force`; an existing
 * configuration is always kept.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { UNIT_FILES } from "../ops/units.ts";
import { isCompiledProgram } from "../ops/self_command.ts";
import { detectSystemdVersion, serviceTypeFor, serviceUnitFor } from "../ops/systemd_version.ts";
import { parseCommandArgs, UsageError } from "./args.ts";

/** The help text of `dkimd install`. */
export const INSTALL_USAGE = `Usage: dkimd install [--root DIR] [--dry-run] [--force] [--exec PATH]
                     [--systemd-version N]

Writes the systemd service, the sysusers.d and tmpfiles.d entries for the opendkim account
and the socket directory in Postfix's chroot, and an example configuration (only if there is
none), then prints the Postfix main.cf lines and the next steps.

Options:
  --root DIR     write under DIR instead of / (for images and packages)
  --dry-run      say what would be written, and write nothing
  --force        replace unit files that differ from these (never the configuration)
  --exec PATH    the dkimd executable the service runs (default: this one when
                 compiled, else ${"/usr/local/sbin/dkimd"})
  --systemd-version N  the target's systemd: 253 or newer gets Type=notify-reload,
                 older Type=notify with ExecReload (default: "systemctl --version",
                 without --root; else Type=notify, which every systemd runs)
  -h, --help     show this help
`;

/** Where the service expects the executable when none is named and this one is not compiled. */
export const DEFAULT_EXEC_PATH = "/usr/local/sbin/dkimd";

/** Exit status when a file exists and differs (and no `--force`), or cannot be written. */
export const INSTALL_EXIT_FAILURE = 1;

/** One file install writes. */
export interface InstallFile {
  /** The absolute path on the target system. */
  readonly path: string;
  /** The file's mode. */
  readonly mode: number;
  /** The contents. */
  readonly text: string;
  /** A configuration, which is written only when absent and never replaced. */
  readonly config: boolean;
}

const TARGETS: Readonly<Record<string, { path: string; mode: number; config: boolean }>> = {
  "dkimd.service": { path: "/etc/systemd/system/dkimd.service", mode: 0o644, config: false },
  "dkimd.sysusers": { path: "/etc/sysusers.d/dkimd.conf", mode: 0o644, config: false },
  "dkimd.tmpfiles": { path: "/etc/tmpfiles.d/dkimd.conf", mode: 0o644, config: false },
  "dkimd.conf": { path: "/etc/dkimd/dkimd.conf", mode: 0o644, config: true },
};

/**
 * The files to write, with the service's ExecStart naming `execPath`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { installFiles } from "./install.ts";
 * const files = installFiles("/opt/dkimd/bin/dkimd");
 * assert.deepEqual(files.map((f) => f.path), [
 *   "/etc/systemd/system/dkimd.service",
 *   "/etc/sysusers.d/dkimd.conf",
 *   "/etc/tmpfiles.d/dkimd.conf",
 *   "/etc/dkimd/dkimd.conf",
 * ]);
 * assert.match(files[0].text, /^ExecStart=\/opt\/dkimd\/bin\/dkimd serve -f /m);
 * ```
 */
export function installFiles(execPath: string, systemdVersion?: number): InstallFile[] {
  if (!execPath.startsWith("/") || /\s/.test(execPath)) {
    throw new UsageError(
      `install: --exec needs an absolute path without spaces, not "${execPath}"`,
    );
  }
  return UNIT_FILES.map((f) => {
    const target = TARGETS[f.name];
    const text = f.name === "dkimd.service"
      ? serviceUnitFor(f.text, systemdVersion).replace(/^ExecStart=\S+/m, `ExecStart=${execPath}`)
      : f.text;
    return { path: target.path, mode: target.mode, text, config: target.config };
  });
}

/** The Postfix main.cf lines for both socket kinds, as the seed sets them up. */
export const POSTFIX_LINES = `Postfix: add to /etc/postfix/main.cf, then run "postfix reload".

  # TCP (Socket inet:8891@localhost, the example configuration's):
  smtpd_milters         = inet:localhost:8891
  non_smtpd_milters     = $smtpd_milters
  milter_default_action = accept
  milter_protocol       = 6

  # Or a unix socket (Socket local:/var/spool/postfix/opendkim/opendkim.sock). Postfix's
  # daemons work in /var/spool/postfix, chrooted or not, so the path is relative to it:
  smtpd_milters         = unix:opendkim/opendkim.sock
  non_smtpd_milters     = $smtpd_milters
  milter_default_action = accept
  milter_protocol       = 6
  # The socket directory is opendkim:postfix, mode 2770 (tmpfiles.d); check with
  #   ls -l /var/spool/postfix/opendkim/opendkim.sock
`;

/** What to do after installing. */
export const NEXT_STEPS = `Next steps (example.com and selector dkim stand for yours):

  1. Create the account and directories:
       systemd-sysusers /etc/sysusers.d/dkimd.conf
       systemd-tmpfiles --create /etc/tmpfiles.d/dkimd.conf
  2. Make a key (the service reads it as opendkim):
       mkdir -p /etc/dkimd/keys/example.com
       dkimd genkey -D /etc/dkimd/keys/example.com -d example.com -s dkim
       chown root:opendkim /etc/dkimd/keys/example.com/dkim.private
       chmod 640 /etc/dkimd/keys/example.com/dkim.private
  3. Publish /etc/dkimd/keys/example.com/dkim.txt as the TXT record
     dkim._domainkey.example.com, then check it:
       dig -t txt dkim._domainkey.example.com
       dkimd testkey -d example.com -s dkim -k /etc/dkimd/keys/example.com/dkim.private
  4. Set KeyTable and SigningTable in /etc/dkimd/dkimd.conf and check it:
       dkimd check-config /etc/dkimd/dkimd.conf
  5. Start it and look:
       systemctl daemon-reload && systemctl enable --now dkimd
       ss -ltnp | grep 8891
       journalctl -u dkimd        (or: grep dkimd /var/log/mail.log)
`;

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

/** What install does with one file. */
export type InstallAction = "write" | "unchanged" | "replace" | "keep" | "conflict";

/**
 * Decides, for each file under `root`, whether to write it, leave it (same text, or a
 * configuration that exists), replace it (`force`), or stop (it differs).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { installFiles, planInstall } from "./install.ts";
 * const root = await Deno.makeTempDir();
 * const plan = await planInstall(installFiles("/usr/local/sbin/dkimd"), root, false);
 * assert.deepEqual(plan.map((p) => p.action), ["write", "write", "write", "write"]);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function planInstall(
  files: readonly InstallFile[],
  root: string,
  force: boolean,
): Promise<{ file: InstallFile; target: string; action: InstallAction }[]> {
  const out = [];
  for (const file of files) {
    const target = join(root, file.path);
    const existing = await readIfExists(target);
    let action: InstallAction;
    if (existing === undefined) action = "write";
    else if (file.config) action = "keep";
    else if (existing === file.text) action = "unchanged";
    else action = force ? "replace" : "conflict";
    out.push({ file, target, action });
  }
  return out;
}

/**
 * Makes `dir` and any missing parents, each mode 0755 whatever the umask (mkdir(2) applies it, so
 * under root's umask 077 the service's user could not enter /etc/dkimd); directories that exist
 * are left as they are.
 */
async function makeDirectories(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let d = dir; d !== dirname(d); d = dirname(d)) {
    if (await Deno.stat(d).then(() => true, () => false)) break;
    missing.unshift(d);
  }
  for (const d of missing) {
    await Deno.mkdir(d).catch((e) => {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    });
    await Deno.chmod(d, 0o755);
  }
}

async function writeAtomically(target: string, text: string, mode: number): Promise<void> {
  await makeDirectories(dirname(target));
  const temp = `${target}.dkimd-install.tmp`;
  try {
    await Deno.writeTextFile(temp, text, { mode });
    await Deno.chmod(temp, mode);
    await Deno.rename(temp, target);
  } catch (e) {
    await Deno.remove(temp).catch(() => {});
    throw e;
  }
}

/** Runs `dkimd install`; resolves to the exit status. */
export async function runInstall(args: readonly string[]): Promise<number> {
  const { values } = parseCommandArgs("install", args, {
    root: { type: "string" },
    "dry-run": { type: "boolean" },
    force: { type: "boolean" },
    exec: { type: "string" },
    "systemd-version": { type: "string" },
    help: { type: "boolean", short: "h" },
  }, 0);
  if (values.help) {
    console.log(INSTALL_USAGE);
    return 0;
  }
  const root = values.root ?? "/";
  if (!root.startsWith("/")) {
    throw new UsageError(`install: --root needs an absolute path, not "${root}"`);
  }
  const compiled = isCompiledProgram(Deno.mainModule);
  const execPath = values.exec ?? (compiled ? Deno.execPath() : DEFAULT_EXEC_PATH);
  const dryRun = values["dry-run"] ?? false;
  const given = values["systemd-version"];
  if (given !== undefined && !/^[0-9]{1,5}$/.test(given)) {
    throw new UsageError(`install: --systemd-version needs a number such as 252, not "${given}"`);
  }
  const systemdVersion = given !== undefined
    ? Number(given)
    : root === "/"
    ? await detectSystemdVersion()
    : undefined;
  const plan = await planInstall(
    installFiles(execPath, systemdVersion),
    root,
    values.force ?? false,
  );

  const conflicts = plan.filter((p) => p.action === "conflict");
  if (conflicts.length > 0) {
    for (const c of conflicts) {
      console.error(
        `dkimd install: "${c.target}" exists and differs from dkimd's; not replacing it ` +
          `(compare them, then run again with --force to replace it)`,
      );
    }
    return INSTALL_EXIT_FAILURE;
  }
  const say = (text: string) => console.log(text);
  for (const { file, target, action } of plan) {
    const mode = `mode ${file.mode.toString(8).padStart(4, "0")}`;
    if (action === "unchanged") say(`unchanged: ${target}`);
    else if (action === "keep") {
      say(`kept: ${target} (an existing configuration is never replaced)`);
    } else if (dryRun) {
      say(`would ${action === "replace" ? "replace" : "write"}: ${target} (${mode})`);
    } else {
      try {
        await writeAtomically(target, file.text, file.mode);
      } catch (e) {
        const detail = e instanceof Deno.errors.PermissionDenied
          ? "permission denied (run as root, or use --root)"
          : e instanceof Error
          ? e.message
          : String(e);
        console.error(`dkimd install: cannot write "${target}": ${detail}`);
        return INSTALL_EXIT_FAILURE;
      }
      say(`${action === "replace" ? "replaced" : "wrote"}: ${target} (${mode})`);
    }
  }
  say(
    `\nThe service is Type=${serviceTypeFor(systemdVersion)} (systemd ${
      systemdVersion ?? "version unknown"
    }).`,
  );
  if (!compiled && values.exec === undefined) {
    say(
      `\nThe service runs ${DEFAULT_EXEC_PATH}: build it with "deno task compile" and copy ` +
        `dist/dkimd there (or run install again with --exec PATH).`,
    );
  }
  say(`\n${POSTFIX_LINES}\n${NEXT_STEPS}`);
  return 0;
}
