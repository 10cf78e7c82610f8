/**
 * `dkimd serve`: the milter service. Takes OpenDKIM's own flags too (`-x FILE`, `-f`, `-p SOCKET`,
 * `-P PIDFILE`, `-u USER`, `-n`), so existing init scripts keep working (opendkim(8)).
 *
 * @module
 */
import { errorMessage } from "../error_message.ts";
import process from "node:process";
import { formatListenAddress } from "../config/listen_address.ts";
import { socketExposureWarning } from "../milter/socket_exposure.ts";
import { formatSocketSpec, parseSocketSpec, type SocketSpec } from "../milter/socket_spec.ts";
import type { UserDb } from "../config/user_db.ts";
import { parseUserId, type UserId } from "../config/values.ts";
import { KeyCache } from "../dkim/key_cache.ts";
import { DkimFilter } from "../filter/dkim_filter.ts";
import { type MilterServer, serve } from "../milter/server.ts";
import { foreignListenPid, inheritedListenFd } from "../milter/inherited_listener.ts";
import type { MilterLogger } from "../milter/logger.ts";
import { detach, shouldDetach } from "../ops/background.ts";
import { HeldReload } from "../ops/held_reload.ts";
import { createLogger, type Logger, sanitizeLogMessage } from "../ops/log.ts";
import { Metrics, type MetricsServer, serveMetrics } from "../ops/metrics.ts";
import { scrapeRotation } from "../ops/rotation_scrape.ts";
import { type PidFile, PidFileError, writePidFile } from "../ops/pid_file.ts";
import { notifyReady } from "../ops/readiness.ts";
import { defaultReportAddress, FailureReportQueue } from "../ops/failure_report_queue.ts";
import { readUserDb, resolveRunAs, type RunAs, unreadableFiles } from "../ops/run_as.ts";
import { ServiceNotify } from "../ops/service_notify.ts";
import { ServiceStatus } from "../ops/service_status.ts";
import { currentProgram, selfCommand, underSystemd } from "../ops/self_command.ts";
import { isWorker, needsSupervisor, supervise } from "../ops/supervisor.ts";
import { unreadableProgram } from "../ops/worker_start.ts";
import { formatOrigin } from "../policy/origin.ts";
import { VERSION } from "../version.ts";
import { parseCommandArgs, UsageError } from "./args.ts";
import {
  BUILTIN_CONFIG,
  BUILTIN_CONFIG_TEXT,
  type LoadedRuntime,
  loadRuntime,
  RuntimeConfigError,
} from "./runtime.ts";

/** The help text of `dkimd serve`. */
export const SERVE_USAGE = `Usage: dkimd serve [options]
       dkimd [-x FILE] [-f] [-p SOCKET] [-P PIDFILE] [-u USER] [-n]   (OpenDKIM's flags)

Runs the DKIM milter: signs mail from internal or authenticated senders and verifies the
rest, as configured. Without a configuration file it verifies only, on inet:8891@127.0.0.1.

Options:
  -x, --config FILE     configuration: opendkim.conf format or YAML
  -p, --socket SPEC     listen here instead of the configuration's Socket
                        (inet:PORT@HOST, inet6:PORT@[ADDR], local:/path, unix:/path)
  -f, --foreground      stay in the foreground (always so under systemd)
  -P, --pid-file FILE   write the process id here (overrides PidFile)
  -u, --user USER[:GROUP]  run as this user (overrides UserID)
  -n, --check           load the configuration, report problems, and exit
  -v, --verbose         log protocol detail
  -h, --help            show this help

Signals: SIGUSR1 or SIGHUP re-reads the configuration (a bad one is logged and the old one
kept; one that arrives during the start is carried out once serving); SIGTERM or SIGINT stops
accepting and lets transactions in progress finish.
`;

/** sysexits(3) EX_CONFIG: the configuration is wrong, as OpenDKIM exits. */
export const EXIT_CONFIG = 78;
/** sysexits(3) EX_OSERR: the socket could not be opened and the like. */
export const EXIT_OSERR = 71;

/** Options of `dkimd serve`, as parsed. */
export interface ServeArgs {
  readonly config?: string;
  readonly socket?: string;
  readonly foreground: boolean;
  readonly pidFile?: string;
  readonly user?: string;
  readonly check: boolean;
  readonly verbose: boolean;
}

/** Parses `dkimd serve` flags (and OpenDKIM's, given without a command). */
export function parseServeArgs(args: readonly string[]): ServeArgs | "help" {
  const { values } = parseCommandArgs("serve", args, {
    config: { type: "string", short: "x" },
    socket: { type: "string", short: "p" },
    foreground: { type: "boolean", short: "f" },
    "pid-file": { type: "string", short: "P" },
    user: { type: "string", short: "u" },
    check: { type: "boolean", short: "n" },
    verbose: { type: "boolean", short: "v" },
    help: { type: "boolean", short: "h" },
  }, 0);
  if (values.help) return "help";
  return {
    config: values.config,
    socket: values.socket,
    foreground: values.foreground ?? false,
    pidFile: values["pid-file"],
    user: values.user,
    check: values.check ?? false,
    verbose: values.verbose ?? false,
  };
}

/** Settings the command line overrides (opendkim(8): command-line values win over the file). */
interface Overrides {
  readonly socket?: SocketSpec;
  readonly pidFile?: string;
  readonly userId?: UserId;
}

function overrides(parsed: ServeArgs): Overrides {
  const out: { socket?: SocketSpec; pidFile?: string; userId?: UserId } = {};
  if (parsed.socket !== undefined) out.socket = flagValue("-p", parseSocketSpec, parsed.socket);
  if (parsed.pidFile !== undefined) out.pidFile = parsed.pidFile;
  if (parsed.user !== undefined) out.userId = flagValue("-u", parseUserId, parsed.user);
  return out;
}

// `parse(text)`, its error made a usage error that names the flag.
function flagValue<T>(flag: string, parse: (text: string) => T, text: string): T {
  try {
    return parse(text);
  } catch (e) {
    throw new UsageError(`serve: ${flag}: ${errorMessage(e)}`, {
      cause: e,
    });
  }
}

/**
 * Runs `dkimd serve`; resolves to the exit status when the service stops. `held` catches reload
 * signals from the start (the executable makes it before this module loads; by default, from
 * this call on) until the service, serving or supervising, takes them over; a reload signalled
 * meanwhile is carried out once it is ready. A process that does not serve (help, `-n`, a
 * configuration error, Background's waiting parent) drops it.
 */
export async function runServe(
  args: readonly string[],
  held: HeldReload = new HeldReload(),
): Promise<number> {
  try {
    return await runServeHolding(args, held);
  } finally {
    held.release();
  }
}

async function runServeHolding(args: readonly string[], held: HeldReload): Promise<number> {
  const parsed = parseServeArgs(args);
  if (parsed === "help") {
    console.log(SERVE_USAGE);
    return 0;
  }
  const fixed = overrides(parsed);
  let runtime: LoadedRuntime;
  try {
    runtime = await loadRuntime(parsed.config);
  } catch (e) {
    if (e instanceof RuntimeConfigError) {
      // Printed before the logger exists; redacted as the logger redacts (a KeyTable may hold
      // key data).
      for (const p of e.problems) console.error(`dkimd: ${sanitizeLogMessage(p)}`);
      return EXIT_CONFIG;
    }
    throw e;
  }
  const { config, warnings } = runtime.loaded;
  const socket = fixed.socket ?? config.socket;
  const pidFile = fixed.pidFile ?? config.pidFile;
  const userId = fixed.userId ?? config.userId;
  if (parsed.check) {
    for (const w of warnings) console.error(`dkimd: warning: ${sanitizeLogMessage(w.message)}`);
    if (!socket) {
      console.error(`dkimd: no Socket: set "Socket" in the configuration or pass -p`);
      return EXIT_CONFIG;
    }
    const exposed = socketWarning(parsed, runtime, socket);
    if (exposed) console.error(`dkimd: warning: ${exposed}`);
    console.log(`dkimd: configuration ${parsed.config ?? BUILTIN_CONFIG} OK`);
    return 0;
  }
  if (!socket) {
    console.error(`dkimd: no Socket: set "Socket" in the configuration or pass -p`);
    return EXIT_CONFIG;
  }

  // Background (OpenDKIM's default): a detached copy serves; this process waits until it is
  // ready and exits 0, as opendkim does when it forks.
  if (shouldDetach({ background: config.background, foreground: parsed.foreground })) {
    return (await detach(selfCommand(Deno.args))).status;
  }

  const logger = await createLogger(config, { debug: parsed.verbose });
  try {
    // UserID and AutoRestart: a supervising parent starts this program again as the worker.
    let runAs: RunAs | undefined;
    let db: UserDb | undefined;
    if (userId && !isWorker()) {
      try {
        db = await readUserDb();
        runAs = resolveRunAs(userId, db);
      } catch (e) {
        logger.error(errorMessage(e));
        return EXIT_CONFIG;
      }
    }
    const supervised = needsSupervisor(
      { autoRestart: config.autoRestart, ...(runAs ? { runAsUid: runAs.uid } : {}) },
      { currentUid: Deno.uid() },
    );
    if (supervised) {
      if (runAs) {
        const program = await unreadableProgram(currentProgram(), runAs, { db });
        const problems = [
          ...(program ? [program] : []),
          ...(await unreadableFiles(runtime.loaded.files, runAs, { db })),
        ];
        if (problems.length > 0) {
          for (const p of problems) logger.error(p);
          return EXIT_CONFIG;
        }
      }
      logger.notice(
        `dkimd ${VERSION} starting${runAs ? ` (worker as ${runAs.user})` : ""}` +
          `${config.autoRestart ? ", AutoRestart on" : ""}`,
      );
      return await supervise({
        command: selfCommand(Deno.args),
        logger,
        autoRestart: config.autoRestart && !underSystemd(),
        autoRestartCount: config.autoRestartCount,
        autoRestartRate: config.autoRestartRate,
        runAs,
        pidFile,
        umask: config.umask,
        onReady: () => notifyReady(),
        heldReload: held,
      });
    }
    if (config.autoRestart && underSystemd() && !isWorker()) {
      logger.notice("AutoRestart is left to systemd (Restart= in the unit)");
    }
    return await serveInProcess(
      parsed,
      runtime,
      socket,
      isWorker() ? undefined : pidFile,
      logger,
      held,
    );
  } finally {
    await logger.close();
  }
}

// Listens and serves until SIGTERM or SIGINT; reloads on SIGUSR1 and SIGHUP.
async function serveInProcess(
  parsed: ServeArgs,
  runtime: LoadedRuntime,
  socket: SocketSpec,
  pidFile: string | undefined,
  logger: Logger,
  held: HeldReload,
): Promise<number> {
  const { config, warnings } = runtime.loaded;
  if (parsed.config === undefined) {
    logger.notice(
      `dkimd ${VERSION} starting with no configuration file: serving the built-in default (${
        BUILTIN_CONFIG_TEXT.trim().replaceAll("\n", ", ")
      })`,
    );
  } else {
    logger.notice(`dkimd ${VERSION} starting (configuration ${parsed.config})`);
  }
  for (const w of warnings) logger.warn(w.message);
  const exposed = socketWarning(parsed, runtime, socket);
  if (exposed) logger.warn(exposed);

  const metrics = new Metrics();
  const counts = new ServiceStatus(metrics);
  let current = runtime;
  // Data sets in databases log their outages and count their lookups here (the configuration
  // is loaded before the logger exists).
  const attachTables = (r: LoadedRuntime) => {
    for (const t of r.loaded.tables) {
      t.attach((level, m) => level === "warning" ? logger.warn(m) : logger.notice(m), metrics);
    }
  };
  attachTables(runtime);
  const hostname = Deno.hostname();
  // SendReports' queue: made whatever the setting, so a reload that turns it on finds it.
  const reports = new FailureReportQueue({
    log: logger,
    defaultFrom: await defaultReportAddress(hostname),
  });
  const filter = new DkimFilter({
    runtime: () => current,
    logger,
    hostname,
    reports,
    // Published keys are imported with the CryptoBackend in force when first seen.
    keyCache: new KeyCache(
      undefined,
      undefined,
      (type, p, options) => current.crypto.importPublicKey(type, p, options),
    ),
    observer: counts,
  });
  let server: MilterServer;
  try {
    // Socket activation (dkimd.socket): systemd holds the socket and passes it as fd 3.
    const inheritedFd = inheritedListenFd(envIfAllowed, Deno.pid);
    const foreign = foreignListenPid(envIfAllowed, Deno.pid);
    if (foreign !== undefined) {
      logger.warn(
        `systemd passed a listening socket (LISTEN_FDS) to process ${
          foreign || "(no LISTEN_PID)"
        }, ` +
          `not to this one (${Deno.pid}): opening ${formatSocketSpec(socket)} instead. Only ` +
          `the process systemd starts can serve that socket: make ExecStart run dkimd itself ` +
          `(not "deno task"), and set User= in the unit rather than UserID or AutoRestart`,
      );
    }
    server = await serve({
      ...(inheritedFd !== undefined ? { inheritedFd } : {}),
      socket,
      filter,
      logger,
      onError: config.actions.internalError === "accept" ? "accept" : "tempfail",
      umask: config.umask,
      maxFrameBytes: config.milterMaxFrameBytes,
      maxConnections: config.milterMaxConnections,
      readTimeoutMs: config.milterIdleTimeout * 1000,
      shutdownGraceMs: config.milterShutdownTimeout * 1000,
    });
  } catch (e) {
    logger.error(
      `cannot listen on ${formatSocketSpec(socket)}: ${errorMessage(e)}`,
    );
    return EXIT_OSERR;
  }
  // systemd (NOTIFY_SOCKET): set below, when it is told READY=1; the signal handlers, installed
  // before that, read it when they run.
  let systemd: ServiceNotify | undefined = undefined;
  // A reload signalled during the start waits until systemd has been told READY=1 (a
  // RELOADING=1 before it would be out of order, and the two sends would collide).
  const { promise: announced, resolve: markAnnounced } = Promise.withResolvers<void>();
  let reloading = announced;
  const reload = () => {
    reloading = reloading.then(async () => {
      await systemd?.reloading();
      try {
        const next = await loadRuntime(parsed.config);
        reportUnreloadable(logger, current, next, socket);
        for (const w of next.loaded.warnings) logger.warn(w.message);
        attachTables(next);
        retireTables(current);
        current = next;
        metrics.reload(true);
        logger.notice(`configuration reloaded from ${parsed.config ?? BUILTIN_CONFIG}`);
        await systemd?.reloaded();
      } catch (e) {
        metrics.reload(false);
        const problems = e instanceof RuntimeConfigError ? e.problems : [String(e)];
        for (const p of problems) logger.error(`reload failed: ${p}`);
        logger.error("reload failed: keeping the configuration in force");
        await systemd?.reloadFailed(sanitizeLogMessage(problems[0] ?? "unknown error"));
      }
    });
  };
  let stopping: Promise<void> | undefined;
  const { promise: stopped, resolve: markStopped } = Promise.withResolvers<void>();
  const stop = (signal: string) => {
    // A second signal (Ctrl-C reaches a worker from the terminal and from its supervisor) is
    // harmless: the first stop goes on.
    stopping ??= (async () => {
      logger.notice(`${signal} received: stopping`);
      await systemd?.stopping();
      await server.close();
      await Promise.all(current.loaded.tables.map((t) => t.close().catch(() => {})));
      markStopped();
    })();
  };
  const handlers: [Deno.Signal, () => void][] = [
    ["SIGUSR1", reload],
    ["SIGHUP", reload],
    ["SIGTERM", () => stop("SIGTERM")],
    ["SIGINT", () => stop("SIGINT")],
  ];
  // Handled before the PID file is written and before anyone is told that dkimd is ready:
  // whoever learns it so (`kill -HUP $(cat PidFile)`, systemd's ExecReload after READY=1) may
  // signal at once, and a signal without a listener kills the process.
  for (const [signal, handler] of handlers) Deno.addSignalListener(signal, handler);
  // A reload asked for while the configuration loaded: once, after READY=1 (`held_reload.ts`).
  const early = held.release();
  if (early) {
    logger.notice(`${early} received while starting: reloading the configuration once ready`);
    reload();
  }
  let pid: PidFile | undefined;
  let metricsServer: MetricsServer | undefined;
  try {
    if (pidFile !== undefined) pid = await writePidFile(pidFile, { umask: config.umask });
    if (config.metricsListen) {
      metricsServer = serveMetrics(metrics, config.metricsListen, {
        logger,
        more: () => scrapeRotation(current.loaded.config, current.loaded.keyTable, Date.now()),
      });
      logger.notice(`metrics on http://${formatListenAddress(metricsServer.address)}/metrics`);
    }
  } catch (e) {
    logger.error(errorMessage(e));
    for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
    await server.close();
    await metricsServer?.close();
    return e instanceof PidFileError ? EXIT_OSERR : EXIT_CONFIG;
  }
  notifyReady();
  // systemd (NOTIFY_SOCKET): ready now that the socket listens and the keys are loaded.
  systemd = ServiceNotify.fromEnv({
    logger,
    status: counts,
    loaded: () => current.loaded,
    worker: isWorker(),
  });
  await systemd?.ready();
  markAnnounced();
  // Serving starts no program but SendReports' MTACommand: without it, give the permission up
  // (least privilege). Deno cannot keep one command only, and cannot take a revoked permission
  // back, so SendReports turned on by a reload needs a restart (a failed report says so).
  if (!config.sendReports) await Deno.permissions.revoke({ name: "run" }).catch(() => {});

  // A worker outlives a supervisor killed with SIGKILL (Deno has no PR_SET_PDEATHSIG), and would
  // hold the socket a restarted supervisor needs: it stops when it is orphaned.
  const watch = isWorker() ? watchParent(() => stop("supervisor gone")) : undefined;
  await stopped;
  if (watch !== undefined) clearInterval(watch);
  for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
  systemd?.close();
  await metricsServer?.close();
  await pid?.remove();
  logger.notice(`dkimd ${VERSION} terminating with status 0`);
  return 0;
}

// An environment variable, or undefined when Deno's permissions do not cover it.
function envIfAllowed(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

// The warning for a socket reachable beyond this host, naming -p or the Socket line.
function socketWarning(
  parsed: ServeArgs,
  runtime: LoadedRuntime,
  socket: SocketSpec,
): string | undefined {
  const origin = runtime.loaded.origins.socket;
  const setting = parsed.socket !== undefined
    ? "-p"
    : `"Socket"${origin ? ` at ${formatOrigin(origin)}` : ""}`;
  return socketExposureWarning(socket, setting);
}

/** How often a worker checks that its supervisor is still there, in milliseconds. */
export const PARENT_CHECK_MS = 1000;

function watchParent(onGone: () => void): ReturnType<typeof setInterval> {
  const parent = process.ppid;
  return setInterval(() => {
    if (process.ppid !== parent) onGone();
  }, PARENT_CHECK_MS);
}

/**
 * How long the data sets of a replaced configuration stay open after a reload: messages begun
 * before it still finish their lookups with the old ones.
 */
export const RETIRED_TABLES_GRACE_MS = 60_000;

// Closes the database back ends of a configuration a reload replaced, after the grace period.
function retireTables(old: LoadedRuntime): void {
  if (old.loaded.tables.length === 0) return;
  const timer = setTimeout(() => {
    for (const t of old.loaded.tables) t.close().catch(() => {});
  }, RETIRED_TABLES_GRACE_MS);
  Deno.unrefTimer(timer);
}

// OpenDKIM does not reload these settings either (opendkim(8), SIGUSR1); say when they changed.
function reportUnreloadable(
  logger: MilterLogger,
  old: LoadedRuntime,
  next: LoadedRuntime,
  socket: SocketSpec,
): void {
  const a = old.loaded.config;
  const b = next.loaded.config;
  const fixed: [string, keyof typeof next.loaded.origins, unknown, unknown][] = [
    [
      "Socket",
      "socket",
      b.socket ? formatSocketSpec(b.socket) : undefined,
      formatSocketSpec(socket),
    ],
    ["UserID", "userId", JSON.stringify(b.userId), JSON.stringify(a.userId)],
    ["PidFile", "pidFile", b.pidFile, a.pidFile],
    ["UMask", "umask", b.umask, a.umask],
    ["AutoRestart", "autoRestart", b.autoRestart, a.autoRestart],
    ["AutoRestartCount", "autoRestartCount", b.autoRestartCount, a.autoRestartCount],
    [
      "AutoRestartRate",
      "autoRestartRate",
      JSON.stringify(b.autoRestartRate),
      JSON.stringify(a.autoRestartRate),
    ],
    ["Background", "background", b.background, a.background],
    ["MilterMaxFrameBytes", "milterMaxFrameBytes", b.milterMaxFrameBytes, a.milterMaxFrameBytes],
    [
      "MilterMaxConnections",
      "milterMaxConnections",
      b.milterMaxConnections,
      a.milterMaxConnections,
    ],
    ["MilterIdleTimeout", "milterIdleTimeout", b.milterIdleTimeout, a.milterIdleTimeout],
    [
      "MilterShutdownTimeout",
      "milterShutdownTimeout",
      b.milterShutdownTimeout,
      a.milterShutdownTimeout,
    ],
  ];
  for (const [name, field, now, before] of fixed) {
    if (now !== undefined && now !== before) {
      const origin = next.loaded.origins[field];
      logger.warn(
        `"${name}" changed${
          origin ? ` at ${formatOrigin(origin)}` : ""
        }; it takes effect at the next restart, not on reload`,
      );
    }
  }
}
