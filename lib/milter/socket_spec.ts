/**
 * The milter socket specification: libmilter's connection syntax (`smfi_setconn`), as OpenDKIM's
 * `Socket` setting and `-p` take it (opendkim.conf(5)). It lives in the milter layer because the
 * server listens on one and the client connects to one; the configuration reads `Socket` with it.
 * Forms: `inet:PORT@HOST`, `inet:PORT` (every interface), `inet:PORT@[ADDR]`, `inet6:PORT@[ADDR]`,
 * `inet6:PORT@ADDR`, `inet6:PORT`, `local:/path`, `unix:/path`, or a bare `/path`. Parsing is
 * pure; the name `localhost` is mapped to the loopback address here (127.0.0.1, or ::1 for
 * inet6), as libmilter resolves it to one IPv4 address, so the listener never binds to a
 * surprise address. Any other host name is kept and resolved when listening.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatSocketSpec, parseSocketSpec } from "./socket_spec.ts";
 * assert.deepEqual(parseSocketSpec("inet:8891@localhost"), {
 *   kind: "inet",
 *   host: "127.0.0.1",
 *   port: 8891,
 * });
 * assert.equal(formatSocketSpec({ kind: "inet", host: "::1", port: 8891 }), "inet6:8891@[::1]");
 * ```
 *
 * @module
 */

/**
 * Where the milter listens (or a client connects): a TCP host and port, IPv4 or IPv6 alike, or a
 * unix socket path. Port 0 asks the system for a free port (tests).
 */
export type SocketSpec =
  | { readonly kind: "inet"; readonly host: string; readonly port: number }
  | { readonly kind: "unix"; readonly path: string };

/**
 * A `Socket` value that cannot be parsed. The message quotes the value and says what is wrong.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSocketSpec, SocketSpecError } from "./socket_spec.ts";
 * assert.throws(() => parseSocketSpec("inet:99999@localhost"), SocketSpecError);
 * ```
 */
export class SocketSpecError extends SyntaxError {
  /** The value that was given. */
  readonly value: string;

  /** Makes an error about `value`, explaining `detail`. */
  constructor(value: string, detail: string, options?: ErrorOptions) {
    super(`Cannot parse socket "${value}": ${detail}`, options);
    this.name = "SocketSpecError";
    this.value = value;
  }
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
// RFC 1123 host names: letters, digits, hyphens, dot-separated labels.
const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** True when `text` is an IPv6 address in RFC 4291 §2.2 text form (a zone suffix allowed). */
function isIPv6(text: string): boolean {
  const [addr, zone, extra] = text.split("%");
  if (extra !== undefined || zone === "" || addr === undefined) return false;
  let groups = addr.split(":");
  // An embedded IPv4 tail counts as two groups.
  const last = groups[groups.length - 1];
  if (last.includes(".")) {
    if (!IPV4.test(last)) return false;
    groups = [...groups.slice(0, -1), "0", "0"];
  }
  const joined = groups.join(":");
  const doubles = joined.split("::").length - 1;
  if (doubles > 1) return false;
  if (doubles === 0) {
    return groups.length === 8 && groups.every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g));
  }
  const [head, tail] = joined.split("::");
  const parts = [...(head ? head.split(":") : []), ...(tail ? tail.split(":") : [])];
  return parts.length <= 7 && parts.every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g));
}

function parsePort(value: string, text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) {
    throw new SocketSpecError(value, `port "${text}" is not a number from 0 to 65535`);
  }
  return Number(text);
}

/**
 * Parses an OpenDKIM `Socket` value. Throws {@link SocketSpecError} naming the value when it
 * does not fit one of the forms. `inet:PORT` listens on every IPv4 interface (0.0.0.0),
 * `inet6:PORT` on every IPv6 one (::); `localhost` becomes 127.0.0.1 (::1 for inet6).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSocketSpec } from "./socket_spec.ts";
 * assert.deepEqual(parseSocketSpec("inet6:8891@[::1]"), { kind: "inet", host: "::1", port: 8891 });
 * assert.deepEqual(parseSocketSpec("local:/run/dkimd.sock"), {
 *   kind: "unix",
 *   path: "/run/dkimd.sock",
 * });
 * ```
 */
export function parseSocketSpec(text: string): SocketSpec {
  const value = text.trim();
  if (value.startsWith("/")) return unixSpec(text, value);
  const colon = value.indexOf(":");
  if (colon === -1) {
    throw new SocketSpecError(
      text,
      'expected "inet:PORT@HOST", "inet6:PORT@ADDRESS", "local:/PATH" or "/PATH"',
    );
  }
  const scheme = value.slice(0, colon).toLowerCase();
  const rest = value.slice(colon + 1);
  switch (scheme) {
    case "local":
    case "unix":
      return unixSpec(text, rest);
    case "inet":
    case "inet6":
      return inetSpec(text, scheme, rest);
    default:
      throw new SocketSpecError(
        text,
        `unknown socket type "${
          value.slice(0, colon)
        }": expected "inet", "inet6", "local" or "unix"`,
      );
  }
}

function unixSpec(text: string, path: string): SocketSpec {
  if (path === "") throw new SocketSpecError(text, "the socket path is empty");
  if (path.includes("\0")) throw new SocketSpecError(text, "the socket path contains a NUL");
  return { kind: "unix", path };
}

function inetSpec(text: string, scheme: "inet" | "inet6", rest: string): SocketSpec {
  const at = rest.indexOf("@");
  const port = parsePort(text, at === -1 ? rest : rest.slice(0, at));
  if (at === -1) return { kind: "inet", host: scheme === "inet" ? "0.0.0.0" : "::", port };
  let host = rest.slice(at + 1);
  const bracketed = host.startsWith("[") && host.endsWith("]");
  if (bracketed) host = host.slice(1, -1);
  if (host === "") throw new SocketSpecError(text, "the host is empty");
  if (host.toLowerCase() === "localhost") {
    return { kind: "inet", host: scheme === "inet" ? "127.0.0.1" : "::1", port };
  }
  if (IPV4.test(host) || isIPv6(host)) return { kind: "inet", host, port };
  if (/^[\d.]+$/.test(host)) {
    throw new SocketSpecError(text, `"${host}" is not a valid IPv4 address`);
  }
  if (bracketed || host.includes(":") || !HOST_NAME.test(host)) {
    throw new SocketSpecError(text, `"${host}" is not an IP address or host name`);
  }
  return { kind: "inet", host, port };
}

/**
 * Formats a spec in the syntax {@link parseSocketSpec} reads back: `inet:PORT@HOST`,
 * `inet6:PORT@[ADDRESS]` for an IPv6 host, `local:/PATH`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatSocketSpec, parseSocketSpec } from "./socket_spec.ts";
 * const spec = { kind: "inet", host: "192.0.2.1", port: 8891 } as const;
 * assert.deepEqual(parseSocketSpec(formatSocketSpec(spec)), spec);
 * ```
 */
export function formatSocketSpec(spec: SocketSpec): string {
  if (spec.kind === "unix") return `local:${spec.path}`;
  return spec.host.includes(":")
    ? `inet6:${spec.port}@[${spec.host}]`
    : `inet:${spec.port}@${spec.host}`;
}
