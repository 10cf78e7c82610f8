/**
 * The service logger: where dkimd's log lines go, chosen as OpenDKIM's `Syslog` settings and the
 * environment say.
 *
 * - Under systemd (`JOURNAL_STREAM` names our standard error, systemd.exec(5)), each line goes to
 *   standard error with a `<N>` priority prefix (sd-daemon(3)), so journald keeps its level; the
 *   unit's `SyslogIdentifier=` and `SyslogFacility=` name and file it.
 * - Otherwise, with `Syslog yes`, each line is a datagram to `/dev/log` in the form glibc's
 *   syslog(3) sends (RFC 3164 §4.1: `<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG`), with `SyslogFacility`
 *   and `SyslogName`, so `grep dkimd /var/log/mail.log` finds them as `grep opendkim` found
 *   OpenDKIM's. Unix datagram sockets need Deno's `--unstable-net`; without it, or without
 *   `/dev/log`, lines go to standard error and one line says why.
 * - Otherwise (in the foreground), plain `dkimd[PID]: message` lines on standard error.
 *
 * Every message is made safe first ({@link sanitizeLogMessage}): private key material is
 * redacted, control characters escaped, the length bounded.
 *
 * @module
 */

import { errorMessage } from "../error_message.ts";
import type { MilterLogger } from "../milter/logger.ts";
import type { SyslogFacility } from "../config/values.ts";
import { fromBase64, utf8 } from "../bytes.ts";

/** How important a line is; `notice` is syslog's level between info and warning. */
export type LogLevel = "debug" | "info" | "notice" | "warn" | "error";

/** Syslog severities (RFC 5424 §6.2.1, sd-daemon(3)'s `SD_ERR`...`SD_DEBUG`). */
export const SYSLOG_SEVERITY: { readonly [L in LogLevel]: number } = {
  error: 3,
  warn: 4,
  notice: 5,
  info: 6,
  debug: 7,
};

/** Syslog facility codes (RFC 5424 §6.2.1; the numbering of glibc's `<syslog.h>`). */
export const SYSLOG_FACILITY_CODE: { readonly [F in SyslogFacility]: number } = {
  kern: 0,
  user: 1,
  mail: 2,
  daemon: 3,
  auth: 4,
  syslog: 5,
  lpr: 6,
  news: 7,
  uucp: 8,
  cron: 9,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
};

/** The local syslog socket, as syslog(3) uses it (`_PATH_LOG`). */
export const DEV_LOG = "/dev/log";

/**
 * Longest message text logged, in UTF-16 units: rsyslog's default `maxMessageSize` is 8 KiB, and
 * a longer line says nothing a shorter one would not (header values come from hostile mail).
 */
export const MAX_LOG_MESSAGE_LENGTH = 4096;

/**
 * Most lines waiting for the syslog socket: a stalled syslog daemon must not make dkimd hold
 * lines without bound; past this, lines are dropped and counted.
 */
export const MAX_PENDING_SYSLOG_LINES = 1000;

/** The settings that choose where lines go: OpenDKIM's `Syslog`, `SyslogFacility`, `SyslogName`. */
export interface LogSettings {
  /** Syslog: send lines to syslog (when not under systemd). */
  readonly syslog: boolean;
  /** SyslogFacility. */
  readonly syslogFacility: SyslogFacility;
  /** SyslogName: the tag in front of each line. */
  readonly syslogName: string;
}

/** Where a logger's lines go. */
export type LogDestination = "journal" | "syslog" | "stderr";

/** A {@link MilterLogger} with syslog's `notice` level and a place, which the service uses. */
export interface Logger extends MilterLogger {
  /** A normal but significant event: start, stop, reload, restart. */
  notice(message: string): void;
  /** Where lines go now. */
  readonly destination: LogDestination;
  /** Sends the lines still waiting and closes the syslog socket. */
  close(): Promise<void>;
}

/** The capabilities a logger uses; tests pass their own. */
export interface LoggerOptions {
  /** Log `debug` lines too (default false). */
  readonly debug?: boolean;
  /** Reads an environment variable; default `Deno.env.get`, undefined when not allowed. */
  readonly env?: (name: string) => string | undefined;
  /** The syslog socket; default {@link DEV_LOG}. */
  readonly devLog?: string;
  /** Writes bytes to standard error; default `Deno.stderr.writeSync` until all is written. */
  readonly stderr?: (bytes: Uint8Array) => void;
  /** Standard error's device and inode, to check `JOURNAL_STREAM`; default from /proc. */
  readonly stderrIdentity?: () => { dev: number; ino: number } | undefined;
  /** The process id in each syslog line; default `Deno.pid`. */
  readonly pid?: number;
  /** The clock for syslog timestamps; default `new Date()`. */
  readonly now?: () => Date;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]{1,64})-----[\s\S]*?(?:-----END [A-Z0-9 ]{1,64}-----|$)/g;
const BASE64_RUN = /[A-Za-z0-9+/]{40,}={0,2}/g;
/**
 * Makes a message safe to log (OpenDKIM writes what it is given; dkimd does not): PEM blocks
 * (RFC 7468) become `[PEM block redacted]`, bare base64 DER private keys become
 * `[private key redacted]`, control characters are written as rsyslog writes them (`#012` for
 * a line feed), so a header value cannot forge a second log line, and the text is cut at
 * {@link MAX_LOG_MESSAGE_LENGTH}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sanitizeLogMessage } from "./log.ts";
 * const pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----";
 * assert.equal(sanitizeLogMessage(`key ${pem} loaded`), "key [PEM block redacted] loaded");
 * assert.equal(sanitizeLogMessage("a\r\nb"), "a#015#012b");
 * ```
 */
export function sanitizeLogMessage(message: string): string {
  let text = message.replace(PEM_BLOCK, "[PEM block redacted]");
  text = text.replace(
    BASE64_RUN,
    (run) => looksLikePrivateKey(run) ? "[private key redacted]" : run,
  );
  text = text.replace(
    // deno-lint-ignore no-control-regex
    /[\x00-\x08\x0a-\x1f\x7f]/g,
    (c) => "#" + c.charCodeAt(0).toString(8).padStart(3, "0"),
  );
  if (text.length > MAX_LOG_MESSAGE_LENGTH) {
    text = text.slice(0, MAX_LOG_MESSAGE_LENGTH) + "...";
  }
  return text;
}

function looksLikePrivateKey(run: string): boolean {
  let head: Uint8Array;
  try {
    head = fromBase64(run.slice(0, 16));
  } catch {
    return false;
  }
  // A DER private key is a SEQUENCE whose first element is INTEGER version 0 or 1 (PKCS#1
  // RSAPrivateKey, PKCS#8 PrivateKeyInfo and OneAsymmetricKey, SEC 1 ECPrivateKey); a public
  // key's SEQUENCE starts with another SEQUENCE, a signature with random bytes.
  if (head[0] !== 0x30) return false;
  const lengthBytes = head[1] < 0x80 ? 0 : head[1] - 0x80;
  if (lengthBytes > 3) return false;
  const at = 2 + lengthBytes;
  return head[at] === 0x02 && head[at + 1] === 0x01 && (head[at + 2] === 0 || head[at + 2] === 1);
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/**
 * One syslog datagram as glibc's syslog(3) sends it to `/dev/log` (RFC 3164 §4.1, local time,
 * no host name: the daemon adds it): `<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG`, PRI being
 * facility × 8 + severity (RFC 5424 §6.2.1). `message` must already be sanitized.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatSyslogDatagram } from "./log.ts";
 * const line = formatSyslogDatagram(
 *   "mail", "info", "dkimd", 25507, new Date(2018, 11, 8, 9, 5, 3),
 *   "741FA53F63: DKIM-Signature field added (s=dkim, d=datahunter.org)",
 * );
 * assert.equal(
 *   line,
 *   "<22>Dec  8 09:05:03 dkimd[25507]: 741FA53F63: DKIM-Signature field added (s=dkim, d=datahunter.org)",
 * );
 * ```
 */
export function formatSyslogDatagram(
  facility: SyslogFacility,
  level: LogLevel,
  tag: string,
  pid: number,
  time: Date,
  message: string,
): string {
  const pri = SYSLOG_FACILITY_CODE[facility] * 8 + SYSLOG_SEVERITY[level];
  const two = (n: number) => String(n).padStart(2, "0");
  const stamp = `${MONTHS[time.getMonth()]} ${String(time.getDate()).padStart(2, " ")} ` +
    `${two(time.getHours())}:${two(time.getMinutes())}:${two(time.getSeconds())}`;
  return `<${pri}>${stamp} ${tag}[${pid}]: ${message}`;
}

/**
 * One line for journald's stream: the sd-daemon(3) priority prefix, then the message; journald
 * adds the identifier and PID itself.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatJournalLine } from "./log.ts";
 * assert.equal(formatJournalLine("warn", "slow DNS"), "<4>slow DNS\n");
 * ```
 */
export function formatJournalLine(level: LogLevel, message: string): string {
  return `<${SYSLOG_SEVERITY[level]}>${message}\n`;
}

const PLAIN_MARK: { readonly [L in LogLevel]: string } = {
  error: "error: ",
  warn: "warning: ",
  notice: "",
  info: "",
  debug: "debug: ",
};

/**
 * One plain line for standard error in the foreground: `TAG[PID]: ` as in syslog, then
 * Postfix's `warning: `/`error: ` marks, since a terminal has no priorities.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatPlainLine } from "./log.ts";
 * assert.equal(formatPlainLine("warn", "dkimd", 7, "slow DNS"), "dkimd[7]: warning: slow DNS\n");
 * ```
 */
export function formatPlainLine(
  level: LogLevel,
  tag: string,
  pid: number,
  message: string,
): string {
  return `${tag}[${pid}]: ${PLAIN_MARK[level]}${message}\n`;
}

/**
 * True when `JOURNAL_STREAM` (`DEV:INODE`, systemd.exec(5)) names standard error, the check
 * systemd.exec(5) asks for: an inherited variable with standard error redirected elsewhere
 * does not count. When standard error cannot be examined, the variable alone decides.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { journalStreamMatches } from "./log.ts";
 * assert.equal(journalStreamMatches("8:1234", { dev: 8, ino: 1234 }), true);
 * assert.equal(journalStreamMatches("8:1234", { dev: 8, ino: 99 }), false);
 * assert.equal(journalStreamMatches(undefined, { dev: 8, ino: 1234 }), false);
 * ```
 */
export function journalStreamMatches(
  value: string | undefined,
  stderr: { dev: number; ino: number } | undefined,
): boolean {
  const m = value === undefined ? null : /^([0-9]{1,20}):([0-9]{1,20})$/.exec(value);
  if (!m) return false;
  if (!stderr) return true;
  return Number(m[1]) === stderr.dev && Number(m[2]) === stderr.ino;
}

interface DatagramSocket {
  send(data: Uint8Array, addr: { transport: "unixpacket"; path: string }): Promise<number>;
  close(): void;
}

type ListenDatagram = (options: { transport: "unixpacket"; path: string }) => DatagramSocket;

function defaultEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

function defaultStderr(bytes: Uint8Array): void {
  try {
    let off = 0;
    while (off < bytes.length) off += Deno.stderr.writeSync(bytes.subarray(off));
  } catch {
    // A closed standard error (a detached daemon whose parent left) must not stop the service.
  }
}

function defaultStderrIdentity(): { dev: number; ino: number } | undefined {
  try {
    const info = Deno.statSync("/proc/self/fd/2");
    return { dev: info.dev, ino: info.ino ?? -1 };
  } catch {
    return undefined;
  }
}

async function isSocket(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isSocket === true;
  } catch {
    return false;
  }
}

/**
 * Creates the service logger for `settings` (OpenDKIM's Syslog, SyslogFacility, SyslogName) and
 * the environment, choosing the journal, syslog or plain standard error as the module doc says.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createLogger } from "./log.ts";
 * const out: string[] = [];
 * const log = await createLogger(
 *   { syslog: false, syslogFacility: "mail", syslogName: "dkimd" },
 *   { env: () => undefined, pid: 42, stderr: (b) => out.push(new TextDecoder().decode(b)) },
 * );
 * log.info("741FA53F63: DKIM verification successful");
 * assert.equal(log.destination, "stderr");
 * assert.deepEqual(out, ["dkimd[42]: 741FA53F63: DKIM verification successful\n"]);
 * await log.close();
 * ```
 */
export async function createLogger(
  settings: LogSettings,
  options: LoggerOptions = {},
): Promise<Logger> {
  const env = options.env ?? defaultEnv;
  const stderr = options.stderr ?? defaultStderr;
  const pid = options.pid ?? Deno.pid;
  const tag = settings.syslogName;
  const debug = options.debug ?? false;
  const plain = (level: LogLevel, message: string) =>
    stderr(utf8(formatPlainLine(level, tag, pid, message)));

  const identity = options.stderrIdentity ?? defaultStderrIdentity;
  if (journalStreamMatches(env("JOURNAL_STREAM"), identity())) {
    return new StreamLogger(
      "journal",
      debug,
      (level, message) => stderr(utf8(formatJournalLine(level, message))),
    );
  }
  if (!settings.syslog) return new StreamLogger("stderr", debug, plain);

  const devLog = options.devLog ?? DEV_LOG;
  const listen = (Deno as unknown as { listenDatagram?: ListenDatagram }).listenDatagram;
  let why: string | undefined;
  let socket: DatagramSocket | undefined;
  if (!listen) {
    why = "unix datagram sockets need Deno's --unstable-net flag";
  } else if (!(await isSocket(devLog))) {
    why = `"${devLog}" is not a socket (is a syslog daemon running?)`;
  } else {
    try {
      // The sender needs a name of its own. An empty path (Linux's autobind, as syslog(3) gets)
      // is refused by Deno's permission checks under anything short of --allow-all, so it is
      // an abstract name, as sd_notify's: --allow-net covers it, and it leaves no file.
      socket = listen({
        transport: "unixpacket",
        path: `\0dkimd-log-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`,
      });
    } catch (e) {
      why = `cannot open a unix datagram socket: ${errorMessage(e)}`;
    }
  }
  if (!socket) {
    const logger = new StreamLogger("stderr", debug, plain);
    logger.notice(`Syslog is set but ${why}; logging to standard error instead`);
    return logger;
  }
  return new SyslogLogger(
    socket,
    devLog,
    settings,
    pid,
    debug,
    options.now ?? (() => new Date()),
    plain,
  );
}

abstract class BaseLogger implements Logger {
  abstract readonly destination: LogDestination;

  constructor(readonly debugOn: boolean) {}

  protected abstract emit(level: LogLevel, message: string): void;

  #log(level: LogLevel, message: string): void {
    if (level === "debug" && !this.debugOn) return;
    this.emit(level, sanitizeLogMessage(message));
  }

  debug(message: string): void {
    this.#log("debug", message);
  }

  info(message: string): void {
    this.#log("info", message);
  }

  notice(message: string): void {
    this.#log("notice", message);
  }

  warn(message: string): void {
    this.#log("warn", message);
  }

  error(message: string): void {
    this.#log("error", message);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

class StreamLogger extends BaseLogger {
  constructor(
    readonly destination: LogDestination,
    debugOn: boolean,
    readonly write: (level: LogLevel, message: string) => void,
  ) {
    super(debugOn);
  }

  protected emit(level: LogLevel, message: string): void {
    this.write(level, message);
  }
}

class SyslogLogger extends BaseLogger {
  readonly destination = "syslog" as const;
  readonly #queue: { level: LogLevel; message: string; datagram: Uint8Array }[] = [];
  readonly #address: { transport: "unixpacket"; path: string };
  #pump?: Promise<void>;
  #dropped = 0;
  #failed = false;
  #closed = false;

  constructor(
    readonly socket: DatagramSocket,
    readonly devLog: string,
    readonly settings: LogSettings,
    readonly pid: number,
    debugOn: boolean,
    readonly now: () => Date,
    readonly fallback: (level: LogLevel, message: string) => void,
  ) {
    super(debugOn);
    this.#address = { transport: "unixpacket", path: devLog };
  }

  protected emit(level: LogLevel, message: string): void {
    if (this.#closed) {
      this.fallback(level, message);
      return;
    }
    if (this.#queue.length >= MAX_PENDING_SYSLOG_LINES) {
      this.#dropped++;
      return;
    }
    const { syslogFacility, syslogName } = this.settings;
    const datagram = utf8(
      formatSyslogDatagram(syslogFacility, level, syslogName, this.pid, this.now(), message),
    );
    this.#queue.push({ level, message, datagram });
    this.#pump ??= this.#drain().finally(() => this.#pump = undefined);
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const { level, message, datagram } = this.#queue[0];
      try {
        await this.socket.send(datagram, this.#address);
        if (this.#failed) {
          this.#failed = false;
          this.fallback("notice", `Sending to syslog at "${this.devLog}" works again`);
        }
      } catch (e) {
        // Each line that syslog refuses goes to standard error, so none is lost; the reason once.
        if (!this.#failed) {
          this.#failed = true;
          this.fallback(
            "warn",
            `Cannot send to syslog at "${this.devLog}" (${
              errorMessage(e)
            }); writing log lines to standard error until it works again`,
          );
        }
        this.fallback(level, message);
      }
      this.#queue.shift();
      if (this.#dropped > 0 && this.#queue.length === 0) {
        const n = this.#dropped;
        this.#dropped = 0;
        this.emit("warn", `${n} log lines were dropped: syslog did not keep up`);
      }
    }
  }

  override async close(): Promise<void> {
    while (this.#pump) await this.#pump;
    this.#closed = true;
    try {
      this.socket.close();
    } catch {
      // Already closed.
    }
  }
}
