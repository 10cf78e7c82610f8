/**
 * A private, real Postfix for end-to-end tests (Debian package "postfix", Postfix ≥ 3.4 for
 * `maillog_file`): its own `config_directory`, `queue_directory` and `data_directory` under a
 * temporary directory, smtpd on 127.0.0.1 and [::1] with one free port, the milter settings a test gives
 * (the seed's by default: `non_smtpd_milters = $smtpd_milters`, `milter_default_action = accept`,
 * `milter_protocol = 6`, `milter_mail_macros` with `{auth_type}`), and every message relayed to
 * an {@link SmtpSink} this harness runs, so a test reads exactly what Postfix delivered. Nothing
 * is shared with a system Postfix, and several instances run side by side (`deno test
 * --parallel`). Postfix's master must start as root, as in CI.
 *
 * What Postfix 3.7 itself changes in a message on the way, so DKIM tests know what a signature
 * must survive (tests/e2e/postfix_harness_test.ts pins each point):
 * - it prepends its `Received:` field, which the milter never sees; a milter's header inserted
 *   at index 0 lands above it;
 * - for `sendmail` submissions and SMTP clients in `local_header_rewrite_clients` (default
 *   `permit_inet_interfaces`: 127.0.0.1 here, not ::1) it appends `Message-Id:` and
 *   `Date:` (and `From:` with the envelope sender) when missing, and qualifies a bare address
 *   (`From: alice` becomes `From: alice@mx.postfix.test`), all before the milter sees the header;
 * - a bare LF becomes CRLF, before the milter;
 * - its smtp client splits lines over 998 bytes with CRLF SPACE, after the milter;
 * - the rest arrives byte for byte: spacing, folding, 8-bit bytes (the sink offers 8BITMIME).
 *
 * @module
 */

import { makeSharedTempDir } from "./shared_temp_dir.ts";
import { UserDb } from "../../lib/config/user_db.ts";
import {
  type ReceivedMessage,
  sendSmtp,
  type SmtpSendOptions,
  type SmtpSendResult,
  type SmtpSink,
  startSmtpSink,
} from "./smtp.ts";

/**
 * Longest wait for `postfix start`: it checks the installation and starts the master in about
 * 0.3 s; 20 s covers a loaded CI machine, and a test never hangs longer.
 */
export const POSTFIX_START_TIMEOUT_MS = 20_000;

/** Longest wait for the instance's processes to exit after SIGTERM before they get SIGKILL. */
export const POSTFIX_STOP_GRACE_MS = 5_000;

/** Longest wait for one Postfix command (`sendmail`, `postqueue`, `postconf`). */
export const POSTFIX_COMMAND_TIMEOUT_MS = 20_000;

/** Most bytes of the Postfix log read at once: the end of the file is kept. */
export const MAX_POSTFIX_LOG_BYTES = 4 * 1024 * 1024;

/** How often {@link PostfixInstance.waitForLog} and stop() look again. */
const POLL_MS = 25;

/** Attempts to find a free smtpd port: another process may take the one picked meanwhile. */
const START_ATTEMPTS = 3;

/**
 * The seed's `milter_mail_macros` (Postfix's default): `i` for the queue id in logs, and
 * `{auth_type}`, by which OpenDKIM (and dkimd) tells an authenticated client.
 */
export const SEED_MILTER_MAIL_MACROS =
  "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}";

/** The directories of one instance; all are under `root`. */
export interface PostfixPaths {
  /** The temporary directory holding everything; removed by stop(). */
  readonly root: string;
  /** `config_directory`: main.cf and master.cf. */
  readonly configDirectory: string;
  /** `queue_directory`, owned by root, mode 0755, as Postfix wants it. */
  readonly queueDirectory: string;
  /** `data_directory`, owned by `postfix`. */
  readonly dataDirectory: string;
  /** `maillog_file`: the log of every Postfix process of this instance. */
  readonly logFile: string;
}

/**
 * A directory made under the queue directory before Postfix starts, for a milter's unix socket
 * in the seed's layout (`/var/spool/postfix/opendkim`: owned by the milter user, group
 * `postfix`, mode 0770), so that Postfix's smtpd and cleanup, running as user `postfix`, can
 * reach the socket inside.
 */
export interface SocketDirectory {
  /** The directory's name under the queue directory, such as "opendkim". */
  readonly name: string;
  /** Owner, a user name or uid; default the current user. */
  readonly owner?: string;
  /** Group, a name or gid; default "postfix". */
  readonly group?: string;
  /** Permission bits; default 0o770. */
  readonly mode?: number;
}

/** Options of {@link startPostfix}. */
export interface PostfixOptions {
  /**
   * `smtpd_milters`, such as `inet:127.0.0.1:8891` or `unix:/abs/path.sock`; a function gets the
   * instance's directories, for a socket under its queue directory. Default: none.
   */
  readonly smtpdMilters?: string | ((paths: PostfixPaths) => string);
  /** `non_smtpd_milters` (the `sendmail` path); default `$smtpd_milters`, as in the seed. */
  readonly nonSmtpdMilters?: string;
  /** `milter_default_action`; default "accept", as in the seed. */
  readonly milterDefaultAction?: "accept" | "reject" | "tempfail" | "quarantine";
  /** `milter_protocol`, 2 to 6; default 6, as in the seed. */
  readonly milterProtocol?: number;
  /** `milter_mail_macros`; default {@link SEED_MILTER_MAIL_MACROS}. */
  readonly milterMailMacros?: string;
  /** `milter_connect_timeout`; default "5s" (Postfix: 30s), so a test sees a dead milter soon. */
  readonly milterConnectTimeout?: string;
  /** `milter_command_timeout`; default "10s" (Postfix: 30s). */
  readonly milterCommandTimeout?: string;
  /** `milter_content_timeout`; default "20s" (Postfix: 300s). */
  readonly milterContentTimeout?: string;
  /** Directories to make under the queue directory before start, for unix milter sockets. */
  readonly socketDirectories?: readonly SocketDirectory[];
  /** `myhostname`; default "mx.postfix.test" (`mydomain` is the part after its first dot). */
  readonly hostname?: string;
  /** More main.cf parameters; they replace the harness's own of the same name. */
  readonly mainCf?: Readonly<Record<string, string>>;
  /** More master.cf lines, appended as given. */
  readonly masterCf?: readonly string[];
  /**
   * The time every Postfix process (and `sendmail`) starts its clock at, as libfaketime's
   * FAKETIME offset from now, so that a test sees the dates Postfix writes on a chosen day
   * (Debian package "faketime"). Default: the real time.
   */
  readonly clock?: Date;
}

/** Options of {@link PostfixInstance.sendmail}. */
export interface SendmailOptions {
  /** The envelope sender (`-f`); "" for the null sender. */
  readonly from: string;
  /** The recipients, given after `--`. */
  readonly to: string | readonly string[];
  /** The message as `sendmail` reads it on standard input (LF or CRLF line ends). */
  readonly data: Uint8Array;
}

/** A running private Postfix. */
export interface PostfixInstance extends PostfixPaths {
  /**
   * smtpd's port on 127.0.0.1 and on [::1]. A client on 127.0.0.1 is in `inet_interfaces`, so
   * Postfix treats it as local (`permit_inet_interfaces`); one on ::1 is not, and stands for a
   * host outside, as the tests may only use these two addresses. Both are in `mynetworks`.
   */
  readonly smtpPort: number;
  /** The master's process id, which is also the process group of every process of the instance. */
  readonly masterPid: number;
  /** The sink every message is delivered to (`default_transport = smtp:[127.0.0.1]:PORT`). */
  readonly sink: SmtpSink;
  /**
   * Submits a message to this instance's smtpd over SMTP; see {@link sendSmtp}. With
   * `sourceAddress` "::1" it connects to [::1], as a client outside; otherwise to 127.0.0.1.
   */
  sendSmtp(options: Omit<SmtpSendOptions, "host" | "port">): Promise<SmtpSendResult>;
  /**
   * Submits a message with Postfix's `sendmail -C DIR -i -f FROM -- TO...` (postdrop, pickup,
   * cleanup: the `non_smtpd_milters` path). Throws {@link PostfixError} when it fails.
   */
  sendmail(options: SendmailOptions): Promise<void>;
  /**
   * The messages the sink received, once there are at least `count`; after `timeoutMs` throws,
   * with `postqueue -p` and the Postfix log in the message.
   */
  waitForMessages(count: number, timeoutMs: number): Promise<ReceivedMessage[]>;
  /** The Postfix log so far (its last {@link MAX_POSTFIX_LOG_BYTES} bytes). */
  log(): Promise<string>;
  /** The log once a line matches `pattern`; throws {@link PostfixError} after `timeoutMs`. */
  waitForLog(pattern: RegExp, timeoutMs: number): Promise<string>;
  /** `postqueue -p`: what is still queued. */
  postqueue(): Promise<string>;
  /** `postqueue -f`: tries every deferred message now, as an administrator does after a fix. */
  flush(): Promise<void>;
  /** Stops every process of the instance and removes its directory; safe to call again. */
  stop(): Promise<void>;
}

/**
 * Postfix could not be started, stopped or run; the message holds what it said.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PostfixError } from "./postfix.ts";
 * const error = new PostfixError("Cannot start Postfix", "fatal: bind 127.0.0.1 port 25");
 * assert.equal(error.message, "Cannot start Postfix\nfatal: bind 127.0.0.1 port 25");
 * ```
 */
export class PostfixError extends Error {
  /** Makes an error about `what`, with `detail` (command output, log) after it. */
  constructor(what: string, detail = "", options?: ErrorOptions) {
    super(`${what}${detail ? `\n${detail}` : ""}`, options);
    this.name = "PostfixError";
  }
}

/** Where Debian installs Postfix's programs; /usr/sbin is often missing from a user's PATH. */
async function findProgram(name: string): Promise<string> {
  const dirs = ["/usr/sbin", "/usr/local/sbin", ...(Deno.env.get("PATH") ?? "").split(":")];
  for (const dir of dirs) {
    if (!dir) continue;
    try {
      if ((await Deno.stat(`${dir}/${name}`)).isFile) return `${dir}/${name}`;
    } catch {
      // Not in this directory.
    }
  }
  throw new PostfixError(`Cannot find "${name}": install the Debian package "postfix"`);
}

interface Programs {
  readonly postfix: string;
  readonly postconf: string;
  readonly postqueue: string;
  readonly sendmail: string;
}

interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function run(
  program: string,
  args: readonly string[],
  stdin?: Uint8Array,
  timeoutMs = POSTFIX_COMMAND_TIMEOUT_MS,
  env: Readonly<Record<string, string>> = {},
): Promise<CommandResult> {
  const child = new Deno.Command(program, {
    args: [...args],
    env,
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).spawn();
  if (stdin) {
    const writer = child.stdin.getWriter();
    try {
      await writer.write(stdin);
      await writer.close();
    } catch {
      // The program exited without reading everything; its status and stderr say why.
    }
  }
  const out = await child.output();
  const decoder = new TextDecoder();
  const result = {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
  if (out.signal === "SIGTERM" && out.code !== 0) {
    throw new PostfixError(
      `"${program} ${args.join(" ")}" did not finish within ${timeoutMs} ms`,
      result.stderr,
    );
  }
  return result;
}

/**
 * Sets a file's times a minute back. Postfix reads a table or configuration file modified within
 * the current second again and again, 300 ms apart, until it is older (it may be half-written):
 * two seconds per fresh instance otherwise.
 */
async function backdate(path: string): Promise<void> {
  const past = new Date(Date.now() - 60_000);
  await Deno.utime(path, past, past);
}

/** Where Debian's "faketime" package puts libfaketime, under a multiarch directory of /usr/lib. */
async function findFaketime(): Promise<string> {
  const candidates = ["/usr/lib/faketime/libfaketime.so.1"];
  for await (const entry of Deno.readDir("/usr/lib")) {
    if (entry.isDirectory) candidates.push(`/usr/lib/${entry.name}/faketime/libfaketime.so.1`);
  }
  for (const path of candidates) {
    if (await Deno.stat(path).then((i) => i.isFile, () => false)) return path;
  }
  throw new PostfixError('Cannot find libfaketime: install the Debian package "faketime"');
}

/**
 * The environment of every Postfix process of an instance: main.cf's `import_environment`, and
 * what the harness starts `postfix` and `sendmail` with. Postfix writes the dates of Received and
 * Date fields in local time with English names (mail_date(3)), so the zone and locale are fixed
 * here: the tests depend on the code, not on the machine's TZ or LANG. With a clock, libfaketime
 * moves every process's time by the same offset from now.
 */
async function postfixEnvironment(clock?: Date): Promise<Record<string, string>> {
  const env: Record<string, string> = { TZ: "UTC", LANG: "C", LC_ALL: "C" };
  if (clock) {
    const offset = Math.round((clock.getTime() - Date.now()) / 1000);
    env.LD_PRELOAD = await findFaketime();
    env.FAKETIME = offset >= 0 ? `+${offset}` : String(offset);
    // Timers and timeouts keep the real monotonic clock; only the calendar moves.
    env.FAKETIME_DONT_FAKE_MONOTONIC = "1";
  }
  return env;
}

// A port free now on 127.0.0.1 and on ::1 (smtpd listens on both); Postfix binds it a moment
// later, so start retries when it was taken meanwhile.
function freePort(): number {
  for (;;) {
    const listener = Deno.listen({ transport: "tcp", hostname: "127.0.0.1", port: 0 });
    const port = listener.addr.port;
    try {
      Deno.listen({ transport: "tcp", hostname: "::1", port }).close();
      return port;
    } catch (error) {
      if (!(error instanceof Deno.errors.AddrInUse)) throw error;
    } finally {
      listener.close();
    }
  }
}

function mainCf(
  paths: PostfixPaths,
  options: PostfixOptions,
  sinkPort: number,
  env: Readonly<Record<string, string>>,
): Map<string, string> {
  const hostname = options.hostname ?? "mx.postfix.test";
  const relay = `smtp:[127.0.0.1]:${sinkPort}`;
  const smtpdMilters = typeof options.smtpdMilters === "function"
    ? options.smtpdMilters(paths)
    : options.smtpdMilters ?? "";
  const cf = new Map<string, string>([
    ["compatibility_level", "3.6"],
    // Postfix's own variables (its default list), then the harness's fixed values.
    [
      "import_environment",
      [
        "MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG POSTLOG_SERVICE POSTLOG_HOSTNAME",
        ...Object.entries(env).map(([name, value]) => `${name}=${value}`),
      ].join(" "),
    ],
    ["config_directory", paths.configDirectory],
    ["queue_directory", paths.queueDirectory],
    ["data_directory", paths.dataDirectory],
    ["mail_owner", "postfix"],
    ["setgid_group", "postdrop"],
    ["maillog_file", paths.logFile],
    // Postfix refuses a maillog_file outside these prefixes (default "/var, /dev/stdout").
    ["maillog_file_prefixes", paths.root],
    ["inet_interfaces", "127.0.0.1"],
    // Both, so a milter on inet:[::1]:PORT is reachable (with "ipv4" Postfix cannot connect to
    // it) and smtpd's [::1] listener (master.cf) serves the outside client. inet_interfaces stays
    // 127.0.0.1 alone: ::1 must not be in permit_inet_interfaces.
    ["inet_protocols", "all"],
    ["myhostname", hostname],
    ["mydomain", hostname.includes(".") ? hostname.slice(hostname.indexOf(".") + 1) : hostname],
    ["mynetworks", "127.0.0.0/8 [::1]/128"],
    ["smtpd_relay_restrictions", "permit_mynetworks, reject_unauth_destination"],
    // No local delivery: every address goes to the sink.
    ["mydestination", ""],
    ["relay_domains", ""],
    ["local_recipient_maps", ""],
    ["alias_maps", ""],
    ["alias_database", ""],
    ["default_transport", relay],
    ["relay_transport", relay],
    ["relayhost", ""],
    // The network is closed: no DNS for delivery, nor for the client's name (the milter's
    // CONNECT then names the client "unknown"; set "yes" to look it up in /etc/hosts and DNS).
    ["smtp_dns_support_level", "disabled"],
    ["smtpd_peername_lookup", "no"],
    // Retries soon, so a test that brings a sink or milter back sees the mail delivered.
    ["queue_run_delay", "1s"],
    ["minimal_backoff_time", "1s"],
    ["maximal_backoff_time", "2s"],
    ["maximal_queue_lifetime", "10m"],
    ["bounce_queue_lifetime", "10m"],
    ["smtp_connect_timeout", "5s"],
    ["delay_warning_time", "0h"],
    // Postmaster notices would be extra messages at the sink.
    ["notify_classes", ""],
    ["biff", "no"],
    ["smtpd_banner", "$myhostname ESMTP"],
    ["smtpd_milters", smtpdMilters],
    ["non_smtpd_milters", options.nonSmtpdMilters ?? "$smtpd_milters"],
    ["milter_default_action", options.milterDefaultAction ?? "accept"],
    ["milter_protocol", String(options.milterProtocol ?? 6)],
    ["milter_mail_macros", options.milterMailMacros ?? SEED_MILTER_MAIL_MACROS],
    ["milter_connect_timeout", options.milterConnectTimeout ?? "5s"],
    ["milter_command_timeout", options.milterCommandTimeout ?? "10s"],
    ["milter_content_timeout", options.milterContentTimeout ?? "20s"],
  ]);
  for (const [name, value] of Object.entries(options.mainCf ?? {})) cf.set(name, value);
  for (const [name, value] of cf) {
    if (!/^[a-z0-9_]+$/.test(name) || /[\r\n]/.test(value)) {
      throw new RangeError(`Invalid main.cf parameter "${name}": bad name or a line break`);
    }
  }
  return cf;
}

function masterCf(smtpPort: number, extra: readonly string[]): string {
  // Debian's services, none chrooted (as the seed's master.cf), without local delivery.
  const services = [
    `127.0.0.1:${smtpPort} inet n - n - - smtpd`,
    // The outside client's way in (PostfixInstance.smtpPort).
    `[::1]:${smtpPort} inet n - n - - smtpd`,
    "pickup    unix  n - n 60 1 pickup",
    "cleanup   unix  n - n -  0 cleanup",
    "qmgr      unix  n - n 300 1 qmgr",
    "rewrite   unix  - - n -  - trivial-rewrite",
    "bounce    unix  - - n -  0 bounce",
    "defer     unix  - - n -  0 bounce",
    "trace     unix  - - n -  0 bounce",
    "verify    unix  - - n -  1 verify",
    "flush     unix  n - n 1000? 0 flush",
    "proxymap  unix  - - n -  - proxymap",
    "smtp      unix  - - n -  - smtp",
    "relay     unix  - - n -  - smtp",
    "showq     unix  n - n -  - showq",
    "error     unix  - - n -  - error",
    "retry     unix  - - n -  - error",
    "discard   unix  - - n -  - discard",
    "anvil     unix  - - n -  1 anvil",
    "scache    unix  - - n -  1 scache",
    "postlog   unix-dgram n - n - 1 postlogd",
  ];
  return [...services, ...extra].join("\n") + "\n";
}

/** The live processes whose process group is `pgid` (Linux /proc). */
async function processGroup(pgid: number): Promise<number[]> {
  const out: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^[0-9]+$/.test(entry.name)) continue;
    let stat: string;
    try {
      stat = await Deno.readTextFile(`/proc/${entry.name}/stat`);
    } catch {
      continue; // Gone meanwhile.
    }
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses. A zombie (Z) has
    // exited and only waits for its parent (init, after the master's own exit) to reap it.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(fields[2]) === pgid && fields[0] !== "Z" && fields[0] !== "X") {
      out.push(Number(entry.name));
    }
  }
  return out;
}

async function waitGroupGone(pgid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if ((await processGroup(pgid)).length === 0) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function killGroup(pgid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(-pgid, signal);
  } catch {
    // No such process group: all gone.
  }
}

async function readLog(path: string): Promise<string> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "";
    throw error;
  }
  try {
    const size = (await file.stat()).size;
    const start = Math.max(0, size - MAX_POSTFIX_LOG_BYTES);
    await file.seek(start, Deno.SeekMode.Start);
    const buffer = new Uint8Array(size - start);
    let offset = 0;
    while (offset < buffer.length) {
      const n = await file.read(buffer.subarray(offset));
      if (n === null) break;
      offset += n;
    }
    return new TextDecoder().decode(buffer.subarray(0, offset));
  } finally {
    file.close();
  }
}

async function makeSocketDirectory(
  queueDirectory: string,
  dir: SocketDirectory,
  users: UserDb,
): Promise<void> {
  if (!/^[A-Za-z0-9._-]+$/.test(dir.name) || dir.name.startsWith(".")) {
    throw new RangeError(`Invalid socket directory name "${dir.name}"`);
  }
  const uid = dir.owner === undefined ? Deno.uid() : users.user(dir.owner)?.uid;
  const gid = users.group(dir.group ?? "postfix")?.gid;
  if (uid === undefined || uid === null) throw new PostfixError(`No user "${dir.owner}"`);
  if (gid === undefined) throw new PostfixError(`No group "${dir.group ?? "postfix"}"`);
  const path = `${queueDirectory}/${dir.name}`;
  await Deno.mkdir(path);
  await Deno.chown(path, uid, gid);
  await Deno.chmod(path, dir.mode ?? 0o770);
}

/**
 * Starts a private Postfix on 127.0.0.1 and [::1] that hands every message to its own SMTP sink. Runs
 * `postfix -c DIR start`, which checks the installation (`postfix check`), creates the queue
 * directories and waits for the master to listen; a port taken meanwhile is retried with
 * another. Throws {@link PostfixError} with Postfix's log when it cannot start, and when not run
 * as root (Postfix's master must be).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { startPostfix } from "./postfix.ts";
 * const postfix = await startPostfix({});
 * try {
 *   assert.ok(postfix.smtpPort > 0);
 *   // postlogd writes the log a moment later than things happen: wait for a line, bounded.
 *   const log = await postfix.waitForLog(/daemon started -- version 3\./, 10_000);
 *   assert.match(log, /postfix\/master\[\d+\]: daemon started/);
 * } finally {
 *   await postfix.stop();
 * }
 * ```
 */
export async function startPostfix(options: PostfixOptions): Promise<PostfixInstance> {
  if (Deno.uid() !== 0) {
    throw new PostfixError("Cannot start Postfix: its master process must be started as root");
  }
  const programs: Programs = {
    postfix: await findProgram("postfix"),
    postconf: await findProgram("postconf"),
    postqueue: await findProgram("postqueue"),
    sendmail: await findProgram("sendmail"),
  };
  const users = UserDb.parse(
    await Deno.readTextFile("/etc/passwd"),
    await Deno.readTextFile("/etc/group"),
  );
  // Under /tmp, not a $TMPDIR that may be private to root (Postfix's daemons run as postfix).
  const root = await makeSharedTempDir(0o755);
  const paths: PostfixPaths = {
    root,
    configDirectory: `${root}/etc`,
    queueDirectory: `${root}/spool`,
    dataDirectory: `${root}/data`,
    logFile: `${root}/maillog`,
  };
  let sink: SmtpSink | undefined;
  try {
    // Postfix's daemons run as user postfix and must reach the queue and data directories.
    // Modes set outright, whatever the caller's umask: Postfix refuses a configuration or queue
    // that group or others can write, and its daemons must enter these directories.
    for (const dir of [paths.configDirectory, paths.queueDirectory]) {
      await Deno.mkdir(dir);
      await Deno.chmod(dir, 0o755);
    }
    for (const dir of options.socketDirectories ?? []) {
      await makeSocketDirectory(paths.queueDirectory, dir, users);
    }
    sink = await startSmtpSink();
    const env = await postfixEnvironment(options.clock);
    const cf = mainCf(paths, options, sink.port, env);
    await Deno.writeTextFile(
      `${paths.configDirectory}/main.cf`,
      [...cf].map(([name, value]) => `${name} = ${value}`).join("\n") + "\n",
    );
    await Deno.chmod(`${paths.configDirectory}/main.cf`, 0o644);
    await backdate(`${paths.configDirectory}/main.cf`);
    let lastFailure = "";
    for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
      const smtpPort = freePort();
      await Deno.writeTextFile(
        `${paths.configDirectory}/master.cf`,
        masterCf(smtpPort, options.masterCf ?? []),
      );
      await Deno.chmod(`${paths.configDirectory}/master.cf`, 0o644);
      await backdate(`${paths.configDirectory}/master.cf`);
      const started = await run(
        programs.postfix,
        ["-c", paths.configDirectory, "start"],
        undefined,
        POSTFIX_START_TIMEOUT_MS,
        env,
      );
      const log = await readLog(paths.logFile);
      if (started.code === 0) {
        const pidText = await Deno.readTextFile(`${paths.queueDirectory}/pid/master.pid`);
        const masterPid = Number(pidText.trim());
        if (!Number.isInteger(masterPid) || masterPid <= 1) {
          throw new PostfixError(`Cannot read the master's pid: "${pidText.trim()}"`, log);
        }
        return new Instance(paths, programs, smtpPort, masterPid, sink, env);
      }
      lastFailure = `${started.stdout}${started.stderr}${await explainFailure(paths, log)}`;
      await stopLeftovers(paths.queueDirectory);
      if (!/Address already in use/.test(log)) break;
    }
    throw new PostfixError(`Cannot start Postfix in "${paths.configDirectory}"`, lastFailure);
  } catch (error) {
    await stopLeftovers(paths.queueDirectory);
    await sink?.close();
    await Deno.remove(root, { recursive: true }).catch(() => undefined);
    throw error;
  }
}

/**
 * The log, and when it has no fatal line, what `postfix check` says on a terminal. A
 * configuration error found before the master runs is logged to syslog only (maillog_file is
 * not read yet), and /dev/log may be absent; Postfix commands also write to stderr, but only
 * when it is a terminal, which script(1) (Debian package "bsdutils") provides.
 */
async function explainFailure(paths: PostfixPaths, log: string): Promise<string> {
  if (/fatal:/.test(log)) return log;
  const script = "/usr/bin/script";
  try {
    await Deno.stat(script);
  } catch {
    return log;
  }
  const postfix = await findProgram("postfix");
  const quote = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;
  const command = `${quote(postfix)} -c ${quote(paths.configDirectory)} check`;
  const checked = await run(script, ["-qec", command, "/dev/null"]);
  return `${log}postfix check: ${checked.stdout.replaceAll("\r\n", "\n")}`;
}

// After a failed start, a master may still be up (e.g. `postfix start` timed out).
async function stopLeftovers(queueDirectory: string): Promise<void> {
  let pid: number;
  try {
    pid = Number((await Deno.readTextFile(`${queueDirectory}/pid/master.pid`)).trim());
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 1) return;
  await stopGroup(pid);
}

/**
 * Stops the process group of a master, as `postfix stop` does (SIGTERM to the master, which
 * passes it on to its group) but without its one-second polling sleeps; what is left after
 * {@link POSTFIX_STOP_GRACE_MS} gets SIGKILL. Only processes still in the group are signalled,
 * so a reused pid is never hit.
 */
async function stopGroup(pgid: number): Promise<void> {
  const members = await processGroup(pgid);
  if (members.length === 0) return;
  try {
    // The master leads its group; if it is gone, its children still carry the group id.
    if (members.includes(pgid)) Deno.kill(pgid, "SIGTERM");
    else Deno.kill(-pgid, "SIGTERM");
  } catch {
    // Exited meanwhile.
  }
  if (await waitGroupGone(pgid, POSTFIX_STOP_GRACE_MS)) return;
  killGroup(pgid, "SIGKILL");
  if (await waitGroupGone(pgid, POSTFIX_STOP_GRACE_MS)) return;
  throw new PostfixError(
    `Postfix processes of group ${pgid} survived SIGKILL`,
    (await processGroup(pgid)).join(" "),
  );
}

class Instance implements PostfixInstance {
  readonly root: string;
  readonly configDirectory: string;
  readonly queueDirectory: string;
  readonly dataDirectory: string;
  readonly logFile: string;
  readonly smtpPort: number;
  readonly masterPid: number;
  readonly sink: SmtpSink;
  readonly #programs: Programs;
  readonly #env: Readonly<Record<string, string>>;
  readonly #onUnload: () => void;
  #stopping?: Promise<void>;

  constructor(
    paths: PostfixPaths,
    programs: Programs,
    smtpPort: number,
    masterPid: number,
    sink: SmtpSink,
    env: Readonly<Record<string, string>>,
  ) {
    this.root = paths.root;
    this.configDirectory = paths.configDirectory;
    this.queueDirectory = paths.queueDirectory;
    this.dataDirectory = paths.dataDirectory;
    this.logFile = paths.logFile;
    this.smtpPort = smtpPort;
    this.masterPid = masterPid;
    this.sink = sink;
    this.#programs = programs;
    this.#env = env;
    // A test runner that exits without stop() must not leave a Postfix running.
    this.#onUnload = () => killGroup(masterPid, "SIGKILL");
    globalThis.addEventListener("unload", this.#onUnload);
  }

  sendSmtp(options: Omit<SmtpSendOptions, "host" | "port">): Promise<SmtpSendResult> {
    const host = options.sourceAddress === "::1" ? "::1" : "127.0.0.1";
    return sendSmtp({ ...options, host, port: this.smtpPort });
  }

  async sendmail(options: SendmailOptions): Promise<void> {
    const to = typeof options.to === "string" ? [options.to] : options.to;
    if (to.length === 0) throw new RangeError("Invalid sendmail recipients: none given");
    const args = ["-C", this.configDirectory, "-i", "-f", options.from, "--", ...to];
    const result = await run(
      this.#programs.sendmail,
      args,
      options.data,
      POSTFIX_COMMAND_TIMEOUT_MS,
      this.#env,
    );
    if (result.code !== 0) {
      throw new PostfixError(
        `"sendmail ${args.join(" ")}" failed with status ${result.code}`,
        `${result.stdout}${result.stderr}`,
      );
    }
  }

  waitForMessages(count: number, timeoutMs: number): Promise<ReceivedMessage[]> {
    return this.sink.waitForMessages(count, timeoutMs, () => this.#diagnostics());
  }

  async #diagnostics(): Promise<string> {
    const queue = await this.postqueue().catch((e) => `postqueue failed: ${e}`);
    return `postqueue -p:\n${queue}\nPostfix log (${this.logFile}):\n${await this.log()}`;
  }

  log(): Promise<string> {
    return readLog(this.logFile);
  }

  async waitForLog(pattern: RegExp, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const log = await this.log();
      if (pattern.test(log)) return log;
      if (Date.now() >= deadline) {
        throw new PostfixError(
          `No Postfix log line matched ${pattern} within ${timeoutMs} ms`,
          log,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  async postqueue(): Promise<string> {
    const result = await run(this.#programs.postqueue, ["-c", this.configDirectory, "-p"]);
    return `${result.stdout}${result.stderr}`;
  }

  async flush(): Promise<void> {
    await run(this.#programs.postqueue, ["-c", this.configDirectory, "-f"]);
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    try {
      await stopGroup(this.masterPid);
      globalThis.removeEventListener("unload", this.#onUnload);
    } finally {
      await this.sink.close();
      await Deno.remove(this.root, { recursive: true }).catch(() => undefined);
    }
  }
}
