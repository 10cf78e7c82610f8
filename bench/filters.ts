/**
 * The two filters the benchmark compares, started the same way for a fair fight: dkimd (`deno
 * run` with the service's own flags, `-x CONFIG -f`, one process: no AutoRestart, no UserID) and
 * Debian's OpenDKIM (`opendkim -x CONFIG -f`), each with the same private key, the same
 * relaxed/relaxed settings, the same internal hosts, the same local DNS server and its key
 * cache on (QueryCache), on a free TCP port of 127.0.0.1.
 *
 * OpenDKIM signs with one algorithm per instance (`SignatureAlgorithm` is global in 2.11), so
 * each filter is started per signing key.
 *
 * @module
 */
import { SERVICE_DENO_FLAGS } from "../lib/ops/self_command.ts";
import { freePort } from "../tests/helpers/dkimd_process.ts";
import { BENCH_DOMAIN } from "./corpus.ts";

/** Where Debian installs OpenDKIM. */
export const OPENDKIM_PATH = "/usr/sbin/opendkim";

/** Longest wait for a filter to listen. */
export const FILTER_START_TIMEOUT_MS = 30_000;

/** Where Debian installs rspamd. */
export const RSPAMD_PATH = "/usr/bin/rspamd";

/** rspamd's Lua plugins, of which the bench's configuration loads two. */
export const RSPAMD_PLUGINS = "/usr/share/rspamd/plugins";

/** The filters compared. */
export type FilterName = "dkimd" | "opendkim" | "rspamd";

/** A running filter. */
export interface FilterProcess {
  /** Which filter. */
  readonly name: FilterName;
  /** Its process id: the one process doing all the work. */
  readonly pid: number;
  /** Its TCP port on 127.0.0.1. */
  readonly port: number;
  /** Measure `pid` and every process below it (rspamd's main process and its workers). */
  readonly tree?: boolean;
  /** Stops it. */
  stop(): Promise<void>;
}

/** What both filters are configured with. */
export interface FilterSetup {
  /** A private directory for configuration files. */
  readonly dir: string;
  /** The signing key's PEM (PKCS#8). */
  readonly keyPem: string;
  /** Its selector. */
  readonly selector: string;
  /** `rsa-sha256` or `ed25519-sha256`. */
  readonly algorithm: "rsa-sha256" | "ed25519-sha256";
  /** The DNS server, `127.0.0.1@PORT`. */
  readonly nameserver: string;
  /** dkimd only: verify and seal ARC (ARCMode sv) with this key, d={@link BENCH_DOMAIN}. */
  readonly arc?: { readonly selector: string; readonly keyPem: string };
  /** dkimd only: its CryptoBackend (default webcrypto). */
  readonly cryptoBackend?: "webcrypto" | "openssl";
  /**
   * dkimd only: configuration lines that replace the KeyTable and SigningTable files (a
   * database's `dsn:` data sets and their DataSet* settings, bench/database_cell.ts).
   */
  readonly tables?: readonly string[];
}

/** dkimd's ARC settings for `setup.arc` (none without it); writes the sealing key under `dir`. */
async function arcConfig(setup: FilterSetup, dir: string): Promise<string[]> {
  if (!setup.arc) return [];
  await Deno.writeTextFile(`${dir}/arc.private`, setup.arc.keyPem, { mode: 0o600 });
  return [
    "ARCMode sv",
    `ARCDomain ${BENCH_DOMAIN}`,
    `ARCSelector ${setup.arc.selector}`,
    `ARCKeyFile ${dir}/arc.private`,
  ];
}

/** The settings both filters share, in opendkim.conf syntax (each key valid for both). */
async function commonConfig(setup: FilterSetup, socket: string): Promise<string[]> {
  const { dir } = setup;
  await Deno.writeTextFile(`${dir}/bench.private`, setup.keyPem, { mode: 0o600 });
  await Deno.writeTextFile(
    `${dir}/key.table`,
    `bench ${BENCH_DOMAIN}:${setup.selector}:${dir}/bench.private\n`,
  );
  await Deno.writeTextFile(`${dir}/signing.table`, `*@${BENCH_DOMAIN} bench\n`);
  await Deno.writeTextFile(`${dir}/internal.hosts`, "127.0.0.1\n::1\nlocalhost\n");
  return [
    "Mode sv",
    `Socket ${socket}`,
    ...(setup.tables ?? [`KeyTable ${dir}/key.table`, `SigningTable refile:${dir}/signing.table`]),
    `InternalHosts ${dir}/internal.hosts`,
    "Canonicalization relaxed/relaxed",
    "AuthservID mx.example.com",
    "QueryCache yes",
    "SyslogSuccess no",
    "LogWhy no",
    // The key sits under /tmp, a directory others may write to (sticky), which OpenDKIM's path
    // check refuses, and it would then answer every message with a tempfail.
    "RequireSafeKeys no",
  ];
}

/** Most log text kept from a filter, for the error message when it fails. */
const MAX_LOG_CHARS = 65536;

interface Spawned {
  readonly pid: number;
  log(): string;
  exited(): boolean;
  stop(): Promise<void>;
}

/** Spawns a filter and collects its output; `stop` ends it with SIGTERM (SIGKILL after 10 s). */
function spawn(
  program: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Spawned {
  const child = new Deno.Command(program, {
    args: [...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env,
  }).spawn();
  let log = "";
  const decoder = new TextDecoder();
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) log = (log + decoder.decode(chunk)).slice(-MAX_LOG_CHARS);
  };
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
  let done = false;
  const status = child.status.then((s) => {
    done = true;
    return s;
  });
  return {
    pid: child.pid,
    log: () => log,
    exited: () => done,
    async stop() {
      if (!done) child.kill("SIGTERM");
      const timer = setTimeout(() => {
        if (!done) child.kill("SIGKILL");
      }, 10_000);
      await status;
      clearTimeout(timer);
      await drained;
    },
  };
}

/** Resolves once something accepts TCP connections on `port`, or rejects after the timeout. */
async function waitForPort(port: number, proc: Spawned): Promise<void> {
  const deadline = Date.now() + FILTER_START_TIMEOUT_MS;
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      if (proc.exited()) throw new Error(`The filter exited before listening:\n${proc.log()}`);
      if (Date.now() > deadline) {
        throw new Error(`The filter did not listen on ${port}:\n${proc.log()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

async function started(
  name: FilterName,
  proc: Spawned,
  port: number,
  tree = false,
): Promise<FilterProcess> {
  try {
    await waitForPort(port, proc);
  } catch (e) {
    await proc.stop();
    throw e;
  }
  return { name, pid: proc.pid, port, tree, stop: proc.stop };
}

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const DENO_CONFIG = new URL("../deno.json", import.meta.url).pathname;

/**
 * Starts dkimd with `setup` as its service runs (`deno run` with the service's permission flags,
 * `-x CONFIG -f`); `denoFlags` go before the script (`--cpu-prof`, `--v8-flags=...`). Resolves
 * once it listens.
 */
export async function startDkimdFilter(
  setup: FilterSetup,
  denoFlags: readonly string[] = [],
): Promise<FilterProcess> {
  const dir = `${setup.dir}/dkimd`;
  await Deno.mkdir(dir, { recursive: true });
  const port = freePort();
  const text = [
    ...await commonConfig({ ...setup, dir }, `inet:${port}@127.0.0.1`),
    `Nameservers ${setup.nameserver}`,
    ...await arcConfig(setup, dir),
    ...(setup.cryptoBackend
      ? [`CryptoBackend ${setup.cryptoBackend}`, "CryptoBackendRequired yes"]
      : []),
    "",
  ].join("\n");
  await Deno.writeTextFile(`${dir}/dkimd.conf`, text);
  const proc = spawn(Deno.execPath(), [
    "run",
    ...SERVICE_DENO_FLAGS,
    ...denoFlags,
    `--config=${DENO_CONFIG}`,
    "--quiet",
    MAIN,
    "-x",
    `${dir}/dkimd.conf`,
    "-f",
  ], { NO_COLOR: "1" });
  return await started("dkimd", proc, port);
}

/** Starts OpenDKIM with `setup` in the foreground; resolves once it listens. */
export async function startOpenDkimFilter(setup: FilterSetup): Promise<FilterProcess> {
  if (setup.arc) throw new TypeError("OpenDKIM has no ARC");
  if (setup.tables) throw new TypeError("The benchmark runs database tables with dkimd only");
  const dir = `${setup.dir}/opendkim`;
  await Deno.mkdir(dir, { recursive: true });
  const port = freePort();
  const text = [
    ...await commonConfig({ ...setup, dir }, `inet:${port}@127.0.0.1`),
    `SignatureAlgorithm ${setup.algorithm}`,
    // libunbound's forwarder takes ADDRESS@PORT (ub_ctx_set_fwd). A ResolverConfiguration file
    // instead crashes OpenDKIM 2.11 under concurrent messages ("fatal flex scanner internal
    // error": Unbound's configuration parser is not reentrant).
    `Nameservers ${setup.nameserver}`,
    "Background no",
    "Syslog no",
    "",
  ].join("\n");
  await Deno.writeTextFile(`${dir}/opendkim.conf`, text);
  return await started(
    "opendkim",
    spawn(OPENDKIM_PATH, ["-x", `${dir}/opendkim.conf`, "-f"]),
    port,
  );
}

/** True when rspamd is installed where Debian puts it. */
export async function rspamdInstalled(): Promise<boolean> {
  try {
    return (await Deno.stat(RSPAMD_PATH)).isFile;
  } catch {
    return false;
  }
}

/**
 * rspamd's stand-alone configuration for `setup` (nothing from /etc/rspamd): the `dkim` C module
 * (verification), the `dkim_signing` Lua plugin (relaxed/relaxed, the same key and selector,
 * for mail from local addresses such as the load client's 127.0.0.1) and `milter_headers` with
 * only `authentication-results`; no Redis, no rules, no other plugin (the plugin directory is a
 * private one holding only those two). `rspamd_proxy` speaks milter and scans itself
 * (`self_scan`), in 2 processes, one per core like dkimd's event loop plus its signing threads.
 * rspamd signs the header fields of its own default list (From, To, Cc, Subject, Date,
 * Message-ID, Reply-To, In-Reply-To, References, the MIME and List-* fields, and more,
 * oversigning several), more than dkimd's default, so its header hash covers more bytes.
 */
export function rspamdConfig(setup: FilterSetup, dir: string, port: number): string {
  const [host, dnsPort] = setup.nameserver.split("@");
  return `options {
  pidfile = "${dir}/rspamd.pid";
  filters = "dkim";
  local_addrs = ["127.0.0.1", "::1"];
  hs_cache_dir = "${dir}";
  dns { nameserver = ["${host}:${dnsPort}"]; timeout = 2s; retransmits = 2; }
}
logging { type = "console"; level = "error"; }
modules { path = "${dir}/plugins"; }
worker "rspamd_proxy" {
  bind_socket = "127.0.0.1:${port}";
  milter = yes;
  timeout = 120s;
  count = 2;
  upstream "local" { default = yes; self_scan = yes; }
}
dkim { }
dkim_signing {
  sign_local = true;
  sign_authenticated = true;
  use_domain = "header";
  use_esld = false;
  allow_hdrfrom_mismatch = true;
  allow_username_mismatch = true;
  domain { ${BENCH_DOMAIN} { selector = "${setup.selector}"; path = "${dir}/bench.private"; } }
}
milter_headers { use = ["authentication-results"]; authenticated_headers = ["authentication-results"]; }
`;
}

/** Starts rspamd with `setup` in the foreground (as root: `-i`); resolves once it listens. */
export async function startRspamdFilter(setup: FilterSetup): Promise<FilterProcess> {
  if (setup.arc) throw new TypeError("The bench runs no ARC against rspamd");
  if (setup.algorithm !== "rsa-sha256") throw new TypeError("The bench runs RSA against rspamd");
  const dir = `${setup.dir}/rspamd`;
  await Deno.mkdir(`${dir}/plugins`, { recursive: true });
  for (const plugin of ["dkim_signing.lua", "milter_headers.lua"]) {
    await Deno.symlink(`${RSPAMD_PLUGINS}/${plugin}`, `${dir}/plugins/${plugin}`).catch(() => {});
  }
  await Deno.writeTextFile(`${dir}/bench.private`, setup.keyPem, { mode: 0o600 });
  const port = freePort();
  await Deno.writeTextFile(`${dir}/rspamd.conf`, rspamdConfig(setup, dir, port));
  return await started(
    "rspamd",
    spawn(RSPAMD_PATH, ["-c", `${dir}/rspamd.conf`, "-f", "-i"]),
    port,
    true,
  );
}

/** Starts the named filter; `denoFlags` apply to dkimd only. */
export function startFilter(
  name: FilterName,
  setup: FilterSetup,
  denoFlags: readonly string[] = [],
): Promise<FilterProcess> {
  return name === "dkimd"
    ? startDkimdFilter(setup, denoFlags)
    : name === "rspamd"
    ? startRspamdFilter(setup)
    : startOpenDkimFilter(setup);
}
