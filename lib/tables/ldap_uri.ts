/**
 * An `ldap:`, `ldaps:` or `ldapi:` data set as OpenDKIM reads it (opendkim(8), DATA SETS, e;
 * `dkimf_db_open()` and `dkimf_db_mkldapquery()` in opendkim/opendkim-db.c):
 *
 * - the value is one or more RFC 4516 URLs separated by spaces or tabs; each names a server
 *   (`scheme://host:port`), tried in order, and only the FIRST one's base DN, attributes, scope
 *   and filter are used ("Take the descriptive values (e.g. attributes) from the first one");
 * - `scheme://[host[:port]]/[dn[?attrs[?scope[?filter[?exts]]]]]`, percent-decoded as
 *   `ldap_url_parse()` does; defaults as OpenLDAP's: port 389 (ldaps 636), scope `base`,
 *   filter `(objectClass=*)`; for `ldapi://` the host is the socket's path, percent-encoded;
 * - in the base DN and the filter, `$d` is the key queried and `$D` the key as DN components
 *   (`example.com` → `dc=example,dc=com`); OpenDKIM escapes the key's `*`, `(`, `)`, `\` and NUL
 *   as RFC 2254 (now RFC 4515) hex pairs in both places; dkimd escapes per RFC 4515 in the filter
 *   and per RFC 4514 in the base DN, where a filter escape would not stop a `,` or `+`;
 * - the attributes, in order, are the data columns: a KeyTable URL lists the attributes for the
 *   domain, the selector and the key, a SigningTable URL the one for the key name; the first value
 *   of each attribute of the first entry found is returned.
 *
 * @module
 */

/** The URL schemes OpenDKIM accepts for an LDAP data set (opendkim-db.c, `dbtypes`). */
export type LdapScheme = "ldap" | "ldaps" | "ldapi";

/** Search scopes (RFC 4511 §4.5.1.2; `children` is OpenLDAP's subordinate scope). */
export type LdapScope = "base" | "one" | "sub" | "children";

/** One server of the list: where to connect. */
export interface LdapServer {
  /** `ldaps` is TLS from the start; `ldapi` a Unix socket. */
  readonly scheme: LdapScheme;
  /** Host name or address (`ldap`, `ldaps`), or the socket's path (`ldapi`). */
  readonly host: string;
  /** TCP port (absent for `ldapi`). */
  readonly port?: number;
}

/**
 * A parsed LDAP data set: the servers in the order tried, and the search the first URL describes.
 *
 * @example
 * ```ts
 * import type { LdapSpec } from "./ldap_uri.ts";
 * const spec: LdapSpec = {
 *   text: "ldap://127.0.0.1/ou=keys,dc=example,dc=com?dkimKey?one?(dkimKeyName=$d)",
 *   servers: [{ scheme: "ldap", host: "127.0.0.1", port: 389 }],
 *   baseDn: "ou=keys,dc=example,dc=com",
 *   attributes: ["dkimKey"],
 *   scope: "one",
 *   filter: "(dkimKeyName=$d)",
 * };
 * ```
 */
export interface LdapSpec {
  /** The data set as written, for logs (an LDAP URL carries no password). */
  readonly text: string;
  /** Every server, in order; a connection uses the first that answers. */
  readonly servers: readonly LdapServer[];
  /** The base DN, decoded, with `$d` and `$D` still in it. */
  readonly baseDn: string;
  /** The attributes returned, in order: the data columns. */
  readonly attributes: readonly string[];
  /** The search scope. */
  readonly scope: LdapScope;
  /** The filter (RFC 4515), decoded, with `$d` and `$D` still in it. */
  readonly filter: string;
}

/** The LDAPI socket libldap uses when an `ldapi:///` URL names none (Debian's LDAPI_SOCK). */
export const DEFAULT_LDAPI_SOCKET = "/var/run/slapd/ldapi";

/** Default ports (RFC 4516 §2: 389; ldaps: 636, as OpenLDAP). */
const DEFAULT_PORTS = { ldap: 389, ldaps: 636 } as const;

/** Scope words `ldap_pvt_str2scope()` accepts, RFC 4516's three first. */
const SCOPES: Readonly<Record<string, LdapScope>> = {
  base: "base",
  one: "one",
  onelevel: "one",
  sub: "sub",
  subtree: "sub",
  children: "children",
  subord: "children",
  subordinate: "children",
};

/** An attribute description (RFC 4512 §2.5: descr or numericoid, with options). */
const ATTRIBUTE = /^(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*)(?:;[A-Za-z0-9-]+)*$/;

/**
 * Reads an LDAP data set: one or more RFC 4516 URLs separated by spaces or tabs, as OpenDKIM.
 * Throws an Error saying what is wrong (the caller adds the file and line).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseLdapUri } from "./ldap_uri.ts";
 * const spec = parseLdapUri(
 *   "ldap://ldap1.example.com/$D,ou=zones,dc=example,dc=com?dkimKeyName?base " +
 *     "ldaps://ldap2.example.com:1636/",
 * );
 * assert.deepEqual(spec.servers, [
 *   { scheme: "ldap", host: "ldap1.example.com", port: 389 },
 *   { scheme: "ldaps", host: "ldap2.example.com", port: 1636 },
 * ]);
 * assert.equal(spec.baseDn, "$D,ou=zones,dc=example,dc=com");
 * assert.deepEqual(spec.attributes, ["dkimKeyName"]);
 * assert.equal(spec.filter, "(objectClass=*)");
 * ```
 */
export function parseLdapUri(text: string): LdapSpec {
  const urls = text.trim().split(/[ \t]+/).filter((u) => u !== "");
  if (urls.length === 0) {
    throw new Error("Empty LDAP data set: expected an ldap://, ldaps:// or ldapi:// URL");
  }
  const parsed = urls.map(parseOne);
  const first = parsed[0];
  return {
    text: text.trim(),
    servers: parsed.map((p) => p.server),
    baseDn: first.baseDn,
    attributes: first.attributes,
    scope: first.scope,
    filter: first.filter,
  };
}

function parseOne(url: string): Omit<LdapSpec, "text" | "servers"> & { server: LdapServer } {
  const m = /^([A-Za-z]+):\/\/([^/?]*)(?:\/(.*))?$/s.exec(url);
  if (!m) {
    throw new Error(
      `Invalid LDAP URL "${url}": expected scheme://[host[:port]]/[dn[?attrs[?scope[?filter]]]]`,
    );
  }
  const scheme = m[1].toLowerCase();
  if (scheme !== "ldap" && scheme !== "ldaps" && scheme !== "ldapi") {
    throw new Error(`Invalid LDAP URL "${url}": the scheme must be ldap, ldaps or ldapi`);
  }
  const server = parseHostPort(url, scheme, m[2]);
  const parts = (m[3] ?? "").split("?");
  if (parts.length > 5) throw new Error(`Invalid LDAP URL "${url}": too many "?" parts`);
  const [dnPart = "", attrPart = "", scopePart = "", filterPart = "", extPart = ""] = parts;
  const baseDn = decode(url, dnPart, "base DN");
  checkSubstitutions(url, baseDn, "base DN");
  const attributes = attrPart === ""
    ? []
    : attrPart.split(",").map((a) => decode(url, a, "attribute"));
  for (const a of attributes) {
    if (!ATTRIBUTE.test(a)) {
      throw new Error(
        `Invalid LDAP URL "${url}": "${a}" is not an attribute name (each is a data column)`,
      );
    }
  }
  const scope = scopePart === "" ? "base" : SCOPES[scopePart.toLowerCase()];
  if (!scope) {
    throw new Error(`Invalid LDAP URL "${url}": scope "${scopePart}" is not base, one or sub`);
  }
  let filter = decode(url, filterPart, "filter").trim();
  if (filter === "") filter = "(objectClass=*)";
  // libldap accepts a filter written without its outer parentheses, as RFC 1960 filters were.
  if (!filter.startsWith("(")) filter = `(${filter})`;
  checkSubstitutions(url, filter, "filter");
  // The filter's RFC 4515 syntax is checked by the LDAP client when the back end opens (at
  // load, lib/tables/ldap_backend.ts), so a configuration without LDAP never loads the client.
  for (const ext of extPart === "" ? [] : extPart.split(",")) {
    // RFC 4516 §2: a client must not use a URL whose critical extension it does not know.
    if (ext.startsWith("!")) {
      throw new Error(
        `Invalid LDAP URL "${url}": critical extension "${
          decode(url, ext, "extension")
        }" is not supported`,
      );
    }
  }
  return { server, baseDn, attributes, scope, filter };
}

function parseHostPort(url: string, scheme: LdapScheme, hostport: string): LdapServer {
  if (scheme === "ldapi") {
    const path = decode(url, hostport, "socket path");
    if (path !== "" && !path.startsWith("/")) {
      throw new Error(
        `Invalid LDAP URL "${url}": an ldapi socket must be an absolute path, percent-encoded (%2F for /)`,
      );
    }
    return { scheme, host: path === "" ? DEFAULT_LDAPI_SOCKET : path };
  }
  const m = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]]*)(?::([0-9]*))?$/.exec(hostport);
  if (!m) throw new Error(`Invalid LDAP URL "${url}": bad host "${hostport}"`);
  const host = decode(url, m[1].replace(/^\[(.*)\]$/, "$1"), "host");
  let port: number = DEFAULT_PORTS[scheme];
  if (m[2] !== undefined && m[2] !== "") {
    port = Number(m[2]);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new Error(`Invalid LDAP URL "${url}": port "${m[2]}" is not 1 to 65535`);
    }
  }
  // libldap connects to the local host when the URL names none (ldap:///...).
  return { scheme, host: host === "" ? "localhost" : host, port };
}

function decode(url: string, text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new Error(`Invalid LDAP URL "${url}": bad percent-encoding in the ${what} "${text}"`);
  }
}

/** Only `$d` and `$D` are defined (opendkim(8)); OpenDKIM silently drops any other `$x`. */
function checkSubstitutions(url: string, template: string, what: string): void {
  const bad = /\$(?![dD])(.?)/.exec(template);
  if (bad) {
    throw new Error(
      `Invalid LDAP URL "${url}": "$${
        bad[1]
      }" in the ${what} is not a substitution (only $d and $D are)`,
    );
  }
}

/**
 * Escapes a value for an RFC 4515 filter: `*`, `(`, `)`, `\` and NUL as `\XX` (§3), which is
 * what stops an attacker's From domain from widening the search.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { escapeFilterValue } from "./ldap_uri.ts";
 * assert.equal(escapeFilterValue("*)(uid=*"), "\\2a\\29\\28uid=\\2a");
 * ```
 */
export function escapeFilterValue(value: string): string {
  return value.replace(/[*()\\\0]/g, (c) => "\\" + c.charCodeAt(0).toString(16).padStart(2, "0"));
}

/**
 * Escapes a value for an RFC 4514 DN attribute value: the specials `"+,;<>\`, `=`, NUL, a
 * leading `#` or space and a trailing space, as `\XX` hex pairs (§2.4 allows a hex pair for any
 * octet).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { escapeDnValue } from "./ldap_uri.ts";
 * assert.equal(escapeDnValue("a,b=c"), "a\\2cb\\3dc");
 * ```
 */
export function escapeDnValue(value: string): string {
  const hex = (c: string) => "\\" + c.charCodeAt(0).toString(16).padStart(2, "0");
  return value
    .replace(/["+,;<>\\=\0]/g, hex)
    .replace(/^[ #]/, hex)
    .replace(/ $/, hex);
}

/** `example.com` → `dc=example,dc=com` (opendkim(8)), each label escaped per RFC 4514. */
function domainComponents(key: string): string {
  return key.split(".").map((label) => `dc=${escapeDnValue(label)}`).join(",");
}

/**
 * The base DN for a key: `$d` is the key and `$D` its labels as `dc=` components, escaped per
 * RFC 4514.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { expandBaseDn } from "./ldap_uri.ts";
 * assert.equal(expandBaseDn("$D,ou=zones,dc=test", "example.org"), "dc=example,dc=org,ou=zones,dc=test");
 * ```
 */
export function expandBaseDn(template: string, key: string): string {
  return template.replace(
    /\$([dD])/g,
    (_, c) => c === "d" ? escapeDnValue(key) : domainComponents(key),
  );
}

/**
 * The filter for a key: `$d` is the key and `$D` its `dc=` components, escaped per RFC 4515.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { expandFilter } from "./ldap_uri.ts";
 * assert.equal(expandFilter("(mail=$d)", "a*b@example.com"), "(mail=a\\2ab@example.com)");
 * ```
 */
export function expandFilter(template: string, key: string): string {
  return template.replace(
    /\$([dD])/g,
    (_, c) => escapeFilterValue(c === "d" ? key : key.split(".").map((l) => `dc=${l}`).join(",")),
  );
}
