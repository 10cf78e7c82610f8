/**
 * The LDAP back end: OpenDKIM's `ldap:`, `ldaps:` and `ldapi:` data sets (opendkim(8), DATA
 * SETS, e) through npm `ldapts` (pure TypeScript, no native add-on). It does what
 * `dkimf_db_open_ldap()` and `dkimf_db_get()` in opendkim/opendkim-db.c do: connect to the
 * first server of the list that answers, StartTLS when LDAPUseTLS asks (never on ldaps),
 * a simple bind as LDAPBindUser, then one search per key with `$d`/`$D` substituted, the
 * first value of each listed attribute of the first entry as the data columns, and a base DN
 * that does not exist (LDAP result 32 to 36, `LDAP_NAME_ERROR`) as "not found". A connection that
 * broke is dropped and made again by the next lookup, with its StartTLS and bind; OpenDKIM
 * retries once at once, and so does this.
 *
 * @module
 */

import net from "node:net";
import tls from "node:tls";
import { Client, FilterParser, ResultCodeError } from "ldapts";
import type { BackendOptions } from "./backend_options.ts";
import type { TableBackend } from "./table_backend.ts";
import { expandBaseDn, expandFilter, type LdapServer, type LdapSpec } from "./ldap_uri.ts";

/** LDAPTimeout's default: 5 seconds (`DKIMF_LDAP_DEFTIMEOUT` in opendkim-db.c). */
export const DEFAULT_LDAP_TIMEOUT_MS = 5000;

/** The LDAPAuthMechanism values that mean a simple bind, as OpenDKIM reads them. */
const SIMPLE_MECHANISMS = new Set(["", "none", "simple"]);

/**
 * What OpenDKIM's LDAP* settings tell an LDAP back end (opendkim.conf(5)).
 *
 * @example
 * ```ts
 * import type { LdapOptions } from "./ldap_backend.ts";
 * const options: LdapOptions = {
 *   bindDn: "cn=dkim,dc=example,dc=com",
 *   bindPassword: "secret",
 *   useTls: true,
 *   timeoutMs: 5000,
 * };
 * ```
 */
export interface LdapOptions {
  /** LDAPBindUser: the DN to bind as; absent with no password: anonymous. */
  readonly bindDn?: string;
  /** LDAPBindPassword (`BackendOptions.password`, from a file or credential, overrides it). */
  readonly bindPassword?: string;
  /** LDAPUseTLS: StartTLS on `ldap://` and `ldapi://` servers, required (ldaps is TLS already). */
  readonly useTls?: boolean;
  /** LDAPTimeout in milliseconds: the longest one LDAP operation may take (default 5 s). */
  readonly timeoutMs?: number;
  /**
   * LDAPAuthMechanism: empty, `none` or `simple` (a simple bind, OpenDKIM's default); SASL
   * mechanisms are refused when the back end is opened.
   */
  readonly authMechanism?: string;
  /** Certificates (PEM) to trust for TLS besides the system's: a private CA. */
  readonly tlsCa?: string;
}

/** Result codes 32 to 36 (noSuchObject ... aliasDereferencingProblem): OpenLDAP's LDAP_NAME_ERROR. */
function isNameError(e: unknown): boolean {
  return e instanceof ResultCodeError && e.code >= 32 && e.code <= 36;
}

/** A why for people, from an ldapts or socket error. */
function why(e: unknown): string {
  if (e instanceof ResultCodeError) return `${e.message} (LDAP result ${e.code})`;
  return e instanceof Error ? e.message : String(e);
}

/** The first value of an attribute of an entry, matched case-insensitively as LDAP names are. */
function firstValue(entry: Record<string, unknown>, attribute: string): string {
  const name = Object.keys(entry).find((k) => k.toLowerCase() === attribute.toLowerCase());
  const value = name === undefined ? undefined : entry[name];
  const first = Array.isArray(value) ? value[0] : value;
  if (first === undefined || first === null) return "";
  return typeof first === "string" ? first : new TextDecoder().decode(first as Uint8Array);
}

/** The value of the first RDN of a DN: the key OpenDKIM's walk of an LDAP data set reports. */
function firstRdnValue(dn: string): string {
  const m = /^[^=]*=((?:\\.|[^,+\\])*)/.exec(dn);
  return m
    ? m[1].replace(
      /\\([0-9a-fA-F]{2}|.)/g,
      (_, c: string) => c.length === 2 ? String.fromCharCode(parseInt(c, 16)) : c,
    )
    : "";
}

/** The RDNs of a DN, split at unescaped commas. */
function rdns(dn: string): string[] {
  return dn === "" ? [] : dn.match(/(?:\\.|[^,\\])+/g) ?? [];
}

/**
 * Opens an LDAP data set. Nothing connects until the first query, so dkimd starts while the
 * directory is down (OpenDKIM's SoftStart, always on); an LDAPAuthMechanism other than a simple
 * bind is refused here.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openLdap } from "./ldap_backend.ts";
 * import { parseLdapUri } from "./ldap_uri.ts";
 * const spec = parseLdapUri("ldap://127.0.0.1:1/dc=example,dc=com?cn");
 * const options = { queryTimeoutMs: 1000, connectTimeoutMs: 1000 };
 * assert.throws(() => openLdap(spec, { ...options, authMechanism: "GSSAPI" }), /LDAPAuthMechanism/);
 * const ldap = openLdap(spec, options);
 * assert.equal(ldap.describe, "ldap://127.0.0.1:1/dc=example,dc=com?cn");
 * await assert.rejects(ldap.query(["example.com"], AbortSignal.timeout(1000)), /cannot connect/);
 * await ldap.close();
 * ```
 */
export function openLdap(spec: LdapSpec, options: BackendOptions & LdapOptions): TableBackend {
  const mechanism = (options.authMechanism ?? "").trim();
  if (!SIMPLE_MECHANISMS.has(mechanism.toLowerCase())) {
    throw new Error(
      `Unsupported "LDAPAuthMechanism" "${mechanism}": dkimd binds with simple authentication ` +
        "only (LDAPBindUser and LDAPBindPassword); SASL is not supported",
    );
  }
  try {
    // The client parses the filter again at each query; checked here, where the back end is
    // opened at load, a bad filter stops the load naming the setting's file and line.
    FilterParser.parseString(expandFilter(spec.filter, "x"));
  } catch (e) {
    throw new Error(`Invalid LDAP URL "${spec.text}": bad filter "${spec.filter}": ${why(e)}`);
  }
  const describe = spec.text;
  const password = options.password ?? options.bindPassword;
  const bindDn = options.bindDn;
  const startTls = options.useTls === true || options.tls === true || options.tls === "require";
  const timeoutMs = options.timeoutMs ?? DEFAULT_LDAP_TIMEOUT_MS;
  const ca = options.tlsCa ? [options.tlsCa] : undefined;
  let current: Promise<Client> | undefined;
  let closed = false;

  const fail = (what: string, e?: unknown) =>
    new Error(`LDAP data set "${describe}": ${what}${e === undefined ? "" : `: ${why(e)}`}`, {
      cause: e,
    });

  /**
   * A client bound to one server. Its socket factories refuse a second connection: ldapts would
   * otherwise reconnect by itself after a drop, without StartTLS or the bind.
   */
  async function connectTo(server: LdapServer): Promise<Client> {
    let used = false;
    let reached = false;
    const once = <S extends net.Socket>(make: () => S): S => {
      if (used) {
        const dead = new net.Socket();
        queueMicrotask(() => dead.destroy(new Error("connection lost")));
        return dead as S;
      }
      used = true;
      const socket = make();
      socket.once("connect", () => reached = true);
      return socket;
    };
    const host = server.scheme === "ldapi" ? "localhost" : server.host;
    const client = new Client({
      url: `${server.scheme === "ldaps" ? "ldaps" : "ldap"}://${
        host.includes(":") ? `[${host}]` : host
      }:${server.port ?? 389}`,
      timeout: timeoutMs,
      connectTimeout: Math.min(options.connectTimeoutMs, timeoutMs),
      createConnection: (() =>
        once(() =>
          server.scheme === "ldapi"
            ? net.connect({ path: server.host })
            : net.connect({ host: server.host, port: server.port! })
        )) as unknown as typeof net.connect,
      ...(server.scheme === "ldaps"
        ? {
          tlsOptions: { ca, host: server.host },
          createSecureConnection: (() =>
            once(() =>
              tls.connect({
                host: server.host,
                port: server.port!,
                ca,
                servername: sni(server.host),
              })
            )) as unknown as typeof tls.connect,
        }
        : {}),
    });
    try {
      if (startTls && server.scheme !== "ldaps") {
        try {
          await client.startTLS({ ca, host: server.host, servername: sni(server.host) });
        } catch (e) {
          throw fail("StartTLS (LDAPUseTLS) failed", e);
        }
      }
      // OpenDKIM always binds (ldap_sasl_bind_s), anonymously when no LDAPBindUser is given;
      // the bind is also what opens the connection.
      try {
        await client.bind(bindDn ?? "", password ?? "");
      } catch (e) {
        if (!reached) throw e;
        throw fail(`bind as "${bindDn ?? ""}" refused`, e);
      }
      return client;
    } catch (e) {
      await client.unbind().catch(() => {});
      // Not even connected: the next server of the list is tried.
      throw reached ? e : new Unreachable(e);
    }
  }

  /** The first server of the list that connects (libldap's URI list); bind errors do not fall over. */
  async function connect(): Promise<Client> {
    let last: unknown;
    for (const server of spec.servers) {
      try {
        return await connectTo(server);
      } catch (e) {
        if (!(e instanceof Unreachable)) throw e;
        last = e.cause;
      }
    }
    throw fail("cannot connect", last);
  }

  function client(): { fresh: boolean; client: Promise<Client> } {
    if (closed) throw fail("closed");
    if (current) return { fresh: false, client: current };
    current = connect();
    current.catch(() => {
      current = undefined;
    });
    return { fresh: true, client: current };
  }

  function drop(c: Promise<Client>): void {
    if (current === c) current = undefined;
    c.then((cl) => cl.unbind().catch(() => {}), () => {});
  }

  /** Runs `op` on a connection; a broken reused connection is replaced and `op` tried once more. */
  async function withClient<T>(op: (c: Client) => Promise<T>): Promise<T> {
    for (let attempt = 0;; attempt++) {
      const { fresh, client: pending } = client();
      const c = await pending;
      if (!c.isConnected) {
        drop(pending);
        if (fresh || attempt > 0) throw fail("connection lost");
        continue;
      }
      try {
        return await op(c);
      } catch (e) {
        if (e instanceof ResultCodeError) throw e;
        drop(pending);
        if (fresh || attempt > 0) throw e;
      }
    }
  }

  function withSignal<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const abort = () => reject(fail("query abandoned", signal.reason));
      if (signal.aborted) return abort();
      signal.addEventListener("abort", abort, { once: true });
      work.then(resolve, (e) => {
        reject(
          e instanceof Error && e.message.startsWith(`LDAP data set "`)
            ? e
            : fail("query failed", e),
        );
      }).finally(() => signal.removeEventListener("abort", abort));
    });
  }

  const timeLimit = Math.max(1, Math.ceil(timeoutMs / 1000));
  const attributes = spec.attributes.length > 0 ? [...spec.attributes] : ["1.1"];

  async function lookup(c: Client, key: string): Promise<readonly string[] | undefined> {
    try {
      const { searchEntries } = await c.search(expandBaseDn(spec.baseDn, key), {
        scope: spec.scope,
        filter: expandFilter(spec.filter, key),
        attributes,
        sizeLimit: 1,
        timeLimit,
      });
      const entry = searchEntries[0];
      if (!entry) return undefined;
      return spec.attributes.map((a) => firstValue(entry, a));
    } catch (e) {
      if (isNameError(e)) return undefined;
      throw e;
    }
  }

  // scan(): the base DN without its substituted RDNs (searched to any depth), `$d` as `*`; the
  // key is the attribute the filter compares with `$d`, else the first RDN's value (OpenDKIM).
  const base = rdns(spec.baseDn);
  const kept = base.slice(base.findLastIndex((r) => /\$[dD]/.test(r)) + 1);
  const scanBase = kept.join(",");
  const scanScope = kept.length < base.length ? "sub" : spec.scope;
  const scanFilter = spec.filter.replace(/\$[dD]/g, "*");
  const keyAttribute = /\(([A-Za-z0-9.;-]+)=\$d\)/.exec(spec.filter)?.[1];
  const scanAttributes = [...spec.attributes, ...(keyAttribute ? [keyAttribute] : [])];

  return {
    describe,
    query(keys, signal) {
      if (keys.length === 0) return Promise.resolve([]);
      return withSignal(withClient((c) => Promise.all(keys.map((k) => lookup(c, k)))), signal);
    },
    scan(limit, signal) {
      return withSignal(
        withClient(async (c) => {
          const { searchEntries } = await c.search(scanBase, {
            scope: scanScope,
            filter: scanFilter,
            attributes: scanAttributes.length > 0 ? scanAttributes : ["1.1"],
            sizeLimit: limit,
            timeLimit,
          }).catch((e) => {
            if (isNameError(e)) return { searchEntries: [] };
            throw e;
          });
          return searchEntries.slice(0, limit).map((entry) => ({
            key: keyAttribute ? firstValue(entry, keyAttribute) : firstRdnValue(entry.dn),
            columns: spec.attributes.map((a) => firstValue(entry, a)),
          }));
        }),
        signal,
      );
    },
    async close() {
      closed = true;
      const c = current;
      current = undefined;
      if (c) await c.then((cl) => cl.unbind(), () => {}).catch(() => {});
    },
  };
}

/** A connection attempt that did not reach the server: the next server of the list is tried. */
class Unreachable extends Error {
  constructor(cause: unknown) {
    super(why(cause), { cause });
    this.name = "Unreachable";
  }
}

/** TLS SNI takes names only (RFC 6066 §3): none for an address. */
function sni(host: string): string | undefined {
  return net.isIP(host) ? undefined : host;
}
