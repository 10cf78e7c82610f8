/**
 * `dkimd install`: writes the systemd unit, the sysusers.d and tmpfiles.d entries and an example
 * configuration that the executable carries (lib/ops/units.ts, generated from systemd/), then
 * prints the Postfix `main.cf` lines and the next steps, so one copied file and one command
 * give a supervised, unprivileged, logged service (issue 6). An existing file that differs is
 * never replaced silently: install names it and stops, unless `--force`; an existing
 * configuration is always kept.
 *
 * It writes for the system under `--root`: the family its os-release names (Debian or RHEL,
 * or `--family`) decides the environment file the unit reads (/etc/default/dkimd or
 * /etc/sysconfig/dkimd) and the log file named; the systemd version found there is reported
 * (and passed on with the target); when SELinux enforces there, the `semanage` commands for the
 * configured socket are printed (issue 16). With `--socket-activation` it writes dkimd.socket too,
 * listening where the configuration's `Socket` says (lib/ops/socket_unit.ts).
 *
 * @module
 */

import { dirname, join } from "node:path";
import { parseSocketSpec, type SocketSpec } from "../milter/socket_spec.ts";
import {
  FAMILY_LAYOUTS,
  type FamilyLayout,
  OS_FAMILIES,
  type OsFamily,
  readOsRelease,
} from "../ops/os_family.ts";
import { readSelinuxState, selinuxHints } from "../ops/selinux_hints.ts";
import { SocketUnitError, socketUnitFor } from "../ops/socket_unit.ts";
import { detectSystemdVersion, serviceTypeFor, serviceUnitFor } from "../ops/systemd_version.ts";
import { UNIT_FILES } from "../ops/units.ts";
import { isCompiledProgram } from "../ops/self_command.ts";
import { parseCommandArgs, UsageError } from "./args.ts";

/** The help text of `dkimd install`. */
export const INSTALL_USAGE =
  `Usage: dkimd install [--root DIR] [--family debian|rhel] [--dry-run] [--force]
                     [--exec PATH] [--systemd-version N] [--socket-activation]

Writes the systemd service, the sysusers.d and tmpfiles.d entries for the opendkim account
and the socket directory in Postfix's chroot, an example configuration and the service's
environment file (only if there are none), then prints the Postfix main.cf lines and the
next steps. The OS family comes from DIR/etc/os-release: Debian and Ubuntu use
/etc/default/dkimd, RHEL, CentOS, Fedora, Rocky and AlmaLinux /etc/sysconfig/dkimd. When
SELinux enforces there, the semanage commands for the configured socket are printed.
With --socket-activation, dkimd.socket is written too: systemd listens on the
configuration's Socket and passes the socket to dkimd.

Options:
  --root DIR     write under DIR instead of / (for images and packages)
  --family NAME  debian or rhel, whatever os-release says
  --dry-run      say what would be written, and write nothing
  --force        replace unit files that differ from these (never the configuration)
  --exec PATH    the dkimd executable the service runs (default: this one when
                 compiled, else ${"/usr/local/sbin/dkimd"})
  --systemd-version N  the target's systemd: 253 or newer gets Type=notify-reload,
                 older Type=notify with ExecReload (default: the version found under
                 DIR, else Type=notify, which every systemd runs)
  --socket-activation  write /etc/systemd/system/dkimd.socket as well, listening on the
                 Socket of /etc/dkimd/dkimd.conf (the example's, 127.0.0.1:8891, if new)
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

/** The system install writes for: its family's layout (none if unknown) and systemd version. */
export interface InstallTarget {
  /** The family's layout; without one the unit reads no environment file. */
  readonly layout?: FamilyLayout;
  /** systemd's version there, when found (253 brings Type=notify-reload). */
  readonly systemdVersion?: number;
}

const TARGETS: Readonly<Record<string, { path: string; mode: number; config: boolean }>> = {
  "dkimd.service": { path: "/etc/systemd/system/dkimd.service", mode: 0o644, config: false },
  "dkimd.socket": { path: "/etc/systemd/system/dkimd.socket", mode: 0o644, config: false },
  "dkimd.sysusers": { path: "/etc/sysusers.d/dkimd.conf", mode: 0o644, config: false },
  "dkimd.tmpfiles": { path: "/etc/tmpfiles.d/dkimd.conf", mode: 0o644, config: false },
  "dkimd.conf": { path: "/etc/dkimd/dkimd.conf", mode: 0o644, config: true },
  "dkimd-rotate.service": {
    path: "/etc/systemd/system/dkimd-rotate.service",
    mode: 0o644,
    config: false,
  },
  "dkimd-rotate.timer": {
    path: "/etc/systemd/system/dkimd-rotate.timer",
    mode: 0o644,
    config: false,
  },
};

/** The environment file's text: the options the unit passes to `dkimd serve`. */
export function environmentFileText(layout: FamilyLayout): string {
  return `# Options for dkimd.service, read by its EnvironmentFile=${layout.environmentFile}
# (the ${layout.label}'s place for them). Written by "dkimd install" when absent and never
# replaced. DKIMD_OPTS is added to "dkimd serve -f -x /etc/dkimd/dkimd.conf", e.g. "-v" for
# protocol detail in the log; "systemctl restart dkimd" applies a change.
DKIMD_OPTS=""
`;
}

// The unit for the target: ExecStart runs `execPath` with the environment file's options.
function serviceText(text: string, execPath: string, target: InstallTarget): string {
  const unit = serviceUnitFor(text, target.systemdVersion)
    .replace(/^ExecStart=\S+/m, `ExecStart=${execPath}`);
  const layout = target.layout;
  if (layout === undefined) return unit;
  // "-": the unit starts without the file; unquoted $DKIMD_OPTS splits into words, none if empty.
  return unit.replace(
    /^(ExecStart=.*)$/m,
    `EnvironmentFile=-${layout.environmentFile}\n$1 $DKIMD_OPTS`,
  );
}

/** Socket activation as install writes it: dkimd.socket, listening on `socket` when given. */
export interface SocketActivation {
  /** The configuration's `Socket`; without one the unit keeps its 127.0.0.1:8891. */
  readonly socket?: SocketSpec;
}

/**
 * The files to write, with the service's ExecStart naming `execPath`; for a known family
 * (`target.layout`) the unit reads the family's environment file, which is written too. With
 * `socketActivation`, dkimd.socket is among them (it throws a SocketUnitError for a `Socket`
 * that names a host rather than an address).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { installFiles } from "./install.ts";
 * import { FAMILY_LAYOUTS } from "../ops/os_family.ts";
 * const files = installFiles("/opt/dkimd/bin/dkimd");
 * assert.deepEqual(files.map((f) => f.path), [
 *   "/etc/systemd/system/dkimd.service",
 *   "/etc/sysusers.d/dkimd.conf",
 *   "/etc/tmpfiles.d/dkimd.conf",
 *   "/etc/dkimd/dkimd.conf",
 *   "/etc/systemd/system/dkimd-rotate.service",
 *   "/etc/systemd/system/dkimd-rotate.timer",
 * ]);
 * assert.match(files[0].text, /^ExecStart=\/opt\/dkimd\/bin\/dkimd serve -f /m);
 *
 * const rhel = installFiles("/usr/local/sbin/dkimd", { layout: FAMILY_LAYOUTS.rhel });
 * assert.equal(rhel[6].path, "/etc/sysconfig/dkimd");
 * assert.match(rhel[0].text, /^EnvironmentFile=-\/etc\/sysconfig\/dkimd$/m);
 * assert.match(rhel[0].text, /^ExecStart=.* \$DKIMD_OPTS$/m);
 *
 * const activated = installFiles("/usr/local/sbin/dkimd", {}, {
 *   socket: { kind: "inet", host: "::1", port: 8893 },
 * });
 * assert.equal(activated[4].path, "/etc/systemd/system/dkimd.socket");
 * assert.match(activated[4].text, /^ListenStream=\[::1\]:8893$/m);
 * ```
 */
export function installFiles(
  execPath: string,
  target: InstallTarget = {},
  socketActivation?: SocketActivation,
): InstallFile[] {
  if (!execPath.startsWith("/") || /\s/.test(execPath)) {
    throw new UsageError(
      `install: --exec needs an absolute path without spaces, not "${execPath}"`,
    );
  }
  const units = socketActivation ? UNIT_FILES : UNIT_FILES.filter((f) => f.name !== "dkimd.socket");
  const files: InstallFile[] = units.map((f) => {
    const to = TARGETS[f.name];
    let text = f.text;
    if (f.name === "dkimd.service") text = serviceText(f.text, execPath, target);
    else if (f.name === "dkimd-rotate.service") {
      text = f.text.replace(/^ExecStart=\S+/m, `ExecStart=${execPath}`);
    } else if (f.name === "dkimd.socket" && socketActivation?.socket) {
      text = socketUnitFor(f.text, socketActivation.socket);
    }
    return { path: to.path, mode: to.mode, text, config: to.config };
  });
  if (target.layout !== undefined) {
    files.push({
      path: target.layout.environmentFile,
      mode: 0o644,
      text: environmentFileText(target.layout),
      config: true,
    });
  }
  return files;
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

/**
 * What to do after installing, with the family's mail log (the Debian family's when none); with
 * `socketActivation`, dkimd.socket is what is enabled.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nextSteps } from "./install.ts";
 * import { FAMILY_LAYOUTS } from "../ops/os_family.ts";
 * assert.match(nextSteps(FAMILY_LAYOUTS.rhel), /grep dkimd \/var\/log\/maillog/);
 * assert.match(nextSteps(undefined, true), /systemctl enable --now dkimd\.socket/);
 * ```
 */
export function nextSteps(layout?: FamilyLayout, socketActivation = false): string {
  const start = socketActivation
    ? `       systemctl daemon-reload && systemctl enable --now dkimd.socket
     (systemd listens now and starts dkimd.service on the first connection; stop dkimd
     first if it runs, so that the socket unit can bind the address itself; "systemctl
     enable dkimd" also starts dkimd at boot, with the socket passed to it)
`
    : `       systemctl daemon-reload && systemctl enable --now dkimd
`;
  return `Next steps (example.com and selector dkim stand for yours):

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
${start}       ss -ltnp | grep 8891
       journalctl -u dkimd        (or: grep dkimd ${layout?.mailLog ?? "/var/log/mail.log"})
  6. Later, to rotate keys (README, "Key rotation"): set RotationInterval and DNSUpdateKey,
     try "dkimd rotate --dry-run", then turn on the daily run (installed, not enabled):
       systemctl enable --now dkimd-rotate.timer
`;
}

/** What to do after installing, as {@link nextSteps} says it for an unknown family. */
export const NEXT_STEPS: string = nextSteps();

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
 * assert.deepEqual(plan.map((p) => p.action), ["write", "write", "write", "write", "write", "write"]);
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

/**
 * The `Socket` an opendkim.conf or YAML configuration sets (its first `Socket` line or key), or
 * undefined when it sets none that parses: install's SELinux hint is for that socket.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { configuredSocket } from "./install.ts";
 * assert.deepEqual(configuredSocket("Mode sv\nSocket  inet:8893@localhost\n"), {
 *   kind: "inet",
 *   host: "127.0.0.1",
 *   port: 8893,
 * });
 * assert.deepEqual(configuredSocket('Socket: "local:/run/dkimd/dkimd.sock"\n'), {
 *   kind: "unix",
 *   path: "/run/dkimd/dkimd.sock",
 * });
 * assert.equal(configuredSocket("#Socket inet:1@localhost\n"), undefined);
 * ```
 */
export function configuredSocket(text: string): SocketSpec | undefined {
  const m = /^[ \t]*socket[ \t]*(?::[ \t]*|[ \t])["']?([^"'\s#]+)/im.exec(text);
  if (!m) return undefined;
  try {
    return parseSocketSpec(m[1]);
  } catch {
    return undefined;
  }
}

/** The system under a root as install sees it. */
export interface DetectedTarget extends InstallTarget {
  /** What os-release calls the system, if it says. */
  readonly name?: string;
  /** Whether SELinux enforces there, and the file that said so. */
  readonly selinux: { readonly enforcing: boolean; readonly source?: string };
}

/**
 * Looks at the system under `root`: its family from os-release (or `family`, which wins), its
 * systemd version and whether SELinux enforces.
 */
export async function detectTarget(root: string, family?: OsFamily): Promise<DetectedTarget> {
  const release = await readOsRelease(root);
  const chosen = family ?? release.family;
  const systemdVersion = await detectSystemdVersion(root);
  return {
    ...(release.name ? { name: release.name } : {}),
    ...(chosen ? { layout: FAMILY_LAYOUTS[chosen] } : {}),
    ...(systemdVersion !== undefined ? { systemdVersion } : {}),
    selinux: await readSelinuxState(root),
  };
}

// The line that says what install writes for.
function describeTarget(root: string, target: DetectedTarget, forced: boolean): string {
  const systemd = target.systemdVersion !== undefined
    ? `, systemd ${target.systemdVersion}`
    : ", systemd version unknown";
  const name = target.name ?? "no os-release";
  if (target.layout === undefined) {
    return `Target: ${name} under ${root}${systemd}: not a family dkimd install knows, ` +
      `so the unit reads no environment file (--family debian or --family rhel chooses one).`;
  }
  return `Target: ${name} under ${root} (${target.layout.label}${
    forced ? ", from --family" : ""
  })${systemd}; options in ${target.layout.environmentFile}.`;
}

// The SELinux commands for the socket the configuration names, when SELinux enforces.
function selinuxText(target: DetectedTarget, configText: string): string | undefined {
  if (!target.selinux.enforcing) return undefined;
  const socket = configuredSocket(configText);
  const sockets: SocketSpec[] = socket ? [socket] : [
    { kind: "inet", host: "127.0.0.1", port: 8891 },
    { kind: "unix", path: "/var/spool/postfix/opendkim/opendkim.sock" },
  ];
  const lines = [
    `SELinux enforces here (${target.selinux.source}). Let Postfix reach the milter ` +
    `(as root; policycoreutils-python-utils has semanage):`,
  ];
  for (const s of sockets) {
    lines.push(
      s.kind === "inet"
        ? `  # Socket inet:${s.port}@${s.host}: the port as a milter port ("already defined" ` +
          `means it is one):`
        : `  # Socket local:${s.path}: the socket's directory as a milter's data:`,
    );
    for (const command of selinuxHints(s)) lines.push(`    ${command}`);
  }
  return lines.join("\n") + "\n";
}

/** Runs `dkimd install`; resolves to the exit status. */
export async function runInstall(args: readonly string[]): Promise<number> {
  const { values } = parseCommandArgs("install", args, {
    root: { type: "string" },
    "dry-run": { type: "boolean" },
    force: { type: "boolean" },
    exec: { type: "string" },
    family: { type: "string" },
    "systemd-version": { type: "string" },
    "socket-activation": { type: "boolean" },
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
  const family = values.family;
  if (family !== undefined && !(OS_FAMILIES as readonly string[]).includes(family)) {
    throw new UsageError(
      `install: --family takes ${OS_FAMILIES.map((f) => `"${f}"`).join(" or ")}, not "${family}"`,
    );
  }
  const given = values["systemd-version"];
  if (given !== undefined && !/^[0-9]{1,5}$/.test(given)) {
    throw new UsageError(`install: --systemd-version needs a number such as 252, not "${given}"`);
  }
  const detected = await detectTarget(root, family as OsFamily | undefined);
  const target: DetectedTarget = given === undefined
    ? detected
    : { ...detected, systemdVersion: Number(given) };
  const compiled = isCompiledProgram(Deno.mainModule);
  const execPath = values.exec ?? (compiled ? Deno.execPath() : DEFAULT_EXEC_PATH);
  const dryRun = values["dry-run"] ?? false;
  // The configuration kept, or else the example written: its Socket is where dkimd.socket
  // listens and what the SELinux hint is for.
  const configPath = join(root, TARGETS["dkimd.conf"].path);
  const configText = await readIfExists(configPath) ??
    UNIT_FILES.find((f) => f.name === "dkimd.conf")!.text;
  const socketActivation = values["socket-activation"] ?? false;
  let files: InstallFile[];
  try {
    const socket = configuredSocket(configText);
    files = installFiles(
      execPath,
      target,
      socketActivation ? (socket ? { socket } : {}) : undefined,
    );
  } catch (e) {
    if (!(e instanceof SocketUnitError)) throw e;
    console.error(`dkimd install: ${configPath}: ${e.message}`);
    return INSTALL_EXIT_FAILURE;
  }
  const plan = await planInstall(files, root, values.force ?? false);

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
  say(describeTarget(root, target, family !== undefined));
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
  if (!compiled && values.exec === undefined) {
    say(
      `\nThe service runs ${DEFAULT_EXEC_PATH}: build it with "deno task compile" and copy ` +
        `dist/dkimd there (or run install again with --exec PATH).`,
    );
  }
  say(
    `\nThe service is Type=${serviceTypeFor(target.systemdVersion)} (systemd ${
      target.systemdVersion ?? "version unknown"
    }).`,
  );
  say(`\n${POSTFIX_LINES}\n${nextSteps(target.layout, socketActivation)}`);
  const selinux = selinuxText(target, configText);
  if (selinux !== undefined) say(selinux);
  return 0;
}
