/**
 * A private OpenLDAP server for tests (Debian's `slapd`), never the system's: a generated
 * slapd.conf in a temporary directory (`-f`, so /etc/ldap is never read for configuration), an
 * mdb database under `dc=example,dc=test` filled with `slapadd`, a bind user with a password,
 * a small schema of DKIM attributes, and optionally TLS (a self-signed certificate made with
 * openssl) for StartTLS and ldaps. It listens on 127.0.0.1 high ports and on an ldapi socket in
 * its directory, runs as `openldap` when started as root, and can be stopped, paused and started
 * again on the same ports and data for the outage tests.
 *
 * @module
 */

import { freePort } from "./dkimd_process.ts";
import { openssl } from "./openssl.ts";

/** The suffix every test entry lives under. */
export const SLAPD_SUFFIX = "dc=example,dc=test";
/** The DN dkimd binds as. */
export const SLAPD_BIND_DN = `cn=dkim,${SLAPD_SUFFIX}`;
/** The bind user's password. */
export const SLAPD_BIND_PASSWORD = "s3cret-dkim";
/** The administrator (rootdn), for ldapadd/ldapmodify while a test runs. */
const ROOT_DN = `cn=admin,${SLAPD_SUFFIX}`;
const ROOT_PASSWORD = "admin-secret";

/** Longest slapd may take to answer after a start. */
const START_TIMEOUT_MS = 15_000;
/** Longest one ldap-utils or slapadd run may take. */
const TOOL_TIMEOUT_MS = 30_000;

/**
 * Attributes and an object class for DKIM tables, under the example enterprise number of RFC
 * 5612 (32473), so no real OID is squatted: names for the KeyTable columns, the SigningTable
 * pattern and the key name an entry maps to.
 */
const DKIM_SCHEMA = `
attributetype ( 1.3.6.1.4.1.32473.1.1.1 NAME 'dkimKeyName'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributetype ( 1.3.6.1.4.1.32473.1.1.2 NAME 'dkimDomain'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributetype ( 1.3.6.1.4.1.32473.1.1.3 NAME 'dkimSelector'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributetype ( 1.3.6.1.4.1.32473.1.1.4 NAME 'dkimKey'
  EQUALITY caseExactMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributetype ( 1.3.6.1.4.1.32473.1.1.5 NAME 'dkimIdentity'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
objectclass ( 1.3.6.1.4.1.32473.1.2.1 NAME 'dkimEntry' SUP top AUXILIARY
  MAY ( dkimKeyName $ dkimDomain $ dkimSelector $ dkimKey $ dkimIdentity ) )
`;

/** What {@link startSlapd} takes. */
export interface SlapdOptions {
  /** LDIF added below the base entries (ou=keys, ou=signing, ou=zones and the bind user). */
  readonly ldif?: string;
  /** Serve StartTLS and ldaps with a self-signed certificate for 127.0.0.1. */
  readonly tls?: boolean;
}

/** A running private slapd. */
export interface Slapd {
  /** `ldap://127.0.0.1:PORT` (no trailing slash). */
  readonly url: string;
  /** `ldaps://127.0.0.1:PORT` when started with TLS. */
  readonly ldapsUrl?: string;
  /** `ldapi://%2F...` for the socket in the temporary directory. */
  readonly ldapiUrl: string;
  /** The self-signed certificate (PEM), to trust, when started with TLS. */
  readonly caPem?: string;
  /** Adds entries (LDIF) as the administrator, while running. */
  add(ldif: string): Promise<void>;
  /** Applies an ldapmodify LDIF as the administrator, while running. */
  modify(ldif: string): Promise<void>;
  /** Stops slapd (SIGTERM) and waits for it to exit; the data stays. */
  stop(): Promise<void>;
  /** Starts it again on the same ports and data. */
  start(): Promise<void>;
  /**
   * Freezes it (SIGSTOP): connections open, nothing answers. Resolves once every thread is
   * stopped: kill(2) returns before a thread running on another CPU has stopped, and a request
   * sent in that moment would still be answered.
   */
  pause(): Promise<void>;
  /** Lets a paused slapd run again (SIGCONT). */
  resume(): void;
  /** Stops it and removes its directory. */
  close(): Promise<void>;
}

const BASE_LDIF = `dn: ${SLAPD_SUFFIX}
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ${SLAPD_BIND_DN}
objectClass: person
cn: dkim
sn: dkim
userPassword: ${SLAPD_BIND_PASSWORD}

dn: ou=keys,${SLAPD_SUFFIX}
objectClass: organizationalUnit
ou: keys

dn: ou=signing,${SLAPD_SUFFIX}
objectClass: organizationalUnit
ou: signing

dn: ou=zones,${SLAPD_SUFFIX}
objectClass: organizationalUnit
ou: zones
`;

async function run(cmd: string, args: string[], stdin?: string): Promise<void> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(TOOL_TIMEOUT_MS),
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    throw new Error(`${cmd} ${args.join(" ")} failed (${out.code}): ${text}`);
  }
}

/** Starts a private slapd with the base entries, `options.ldif` and optionally TLS. */
export async function startSlapd(options: SlapdOptions = {}): Promise<Slapd> {
  const dir = await Deno.makeTempDir({ prefix: "dkimd-slapd-" });
  const asRoot = Deno.uid() === 0;
  const port = freePort();
  const tlsPort = options.tls ? freePort() : undefined;
  const socket = `${dir}/ldapi`;
  const ldapiUrl = `ldapi://${encodeURIComponent(socket)}`;
  let caPem: string | undefined;
  let tlsConf = "";
  if (options.tls) {
    const made = await openssl([
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "2",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "-keyout",
      `${dir}/key.pem`,
      "-out",
      `${dir}/cert.pem`,
    ]); // deno-fmt-ignore
    if (made.code !== 0) throw new Error(`openssl req failed: ${made.text}`);
    caPem = await Deno.readTextFile(`${dir}/cert.pem`);
    tlsConf = `TLSCertificateFile ${dir}/cert.pem\nTLSCertificateKeyFile ${dir}/key.pem\n`;
  }
  await Deno.writeTextFile(`${dir}/dkim.schema`, DKIM_SCHEMA);
  await Deno.mkdir(`${dir}/db`);
  await Deno.writeTextFile(
    `${dir}/slapd.conf`,
    `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include ${dir}/dkim.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile ${dir}/slapd.pid
${tlsConf}
database mdb
maxsize 67108864
suffix "${SLAPD_SUFFIX}"
rootdn "${ROOT_DN}"
rootpw ${ROOT_PASSWORD}
directory ${dir}/db
access to attrs=userPassword by anonymous auth by * none
access to * by dn.exact="${SLAPD_BIND_DN}" read by * none
`,
  );
  await run(
    "/usr/sbin/slapadd",
    ["-q", "-f", `${dir}/slapd.conf`],
    BASE_LDIF + "\n" + (options.ldif ?? ""),
  );
  if (asRoot) await run("/usr/bin/chown", ["-R", "openldap:openldap", dir]);

  const listen = [`ldap://127.0.0.1:${port}/`, ldapiUrl + "/"];
  if (tlsPort) listen.push(`ldaps://127.0.0.1:${tlsPort}/`);
  let child: Deno.ChildProcess | undefined;

  const adminArgs = ["-x", "-H", `ldap://127.0.0.1:${port}`, "-D", ROOT_DN, "-w", ROOT_PASSWORD];

  async function start(): Promise<void> {
    child = new Deno.Command("/usr/sbin/slapd", {
      args: [
        "-d",
        "0",
        "-f",
        `${dir}/slapd.conf`,
        "-h",
        listen.join(" "),
        ...(asRoot ? ["-u", "openldap", "-g", "openldap"] : []),
      ], // deno-fmt-ignore
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      try {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        conn.close();
        return;
      } catch {
        if (Date.now() > deadline) {
          child.kill("SIGKILL");
          const err = new TextDecoder().decode((await child.output()).stderr);
          throw new Error(`slapd did not start: ${err}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  async function stop(): Promise<void> {
    if (!child) return;
    const c = child;
    child = undefined;
    try {
      c.kill("SIGCONT");
      c.kill("SIGTERM");
    } catch { /* already gone */ }
    await c.output();
  }

  await start();
  return {
    url: `ldap://127.0.0.1:${port}`,
    ldapsUrl: tlsPort ? `ldaps://127.0.0.1:${tlsPort}` : undefined,
    ldapiUrl,
    caPem,
    add: (ldif) => run("/usr/bin/ldapadd", adminArgs, ldif),
    modify: (ldif) => run("/usr/bin/ldapmodify", adminArgs, ldif),
    stop,
    start,
    pause: async () => {
      if (!child) return;
      child.kill("SIGSTOP");
      await allThreadsStopped(child.pid);
    },
    resume: () => child?.kill("SIGCONT"),
    close: async () => {
      await stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Waits until every thread of `pid` is in state T (stopped), as /proc shows it. */
async function allThreadsStopped(pid: number): Promise<void> {
  const deadline = performance.now() + 5_000;
  while (performance.now() < deadline) {
    let stopped = true;
    for await (const task of Deno.readDir(`/proc/${pid}/task`)) {
      const stat = await Deno.readTextFile(`/proc/${pid}/task/${task.name}/stat`).catch(() => "");
      // The state is the field after the parenthesised command name.
      const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
      if (state !== "T" && state !== "t" && state !== "") stopped = false;
    }
    if (stopped) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`slapd (pid ${pid}) did not stop within 5 s of SIGSTOP`);
}
