/**
 * Whether a milter socket can be reached from beyond this host. The milter protocol has no
 * authentication: whoever connects plays the MTA and says which client a message came from, so
 * any peer that reaches the socket can claim an InternalHosts address and have its mail signed.
 * `dkimd check-config` and the start log warn about such a socket and name the fix. The easy
 * way to get one is to leave the host out: opendkim.conf(5), Socket: "If the host is not given
 * ..., the socket will be listening on all interfaces." OpenDKIM says nothing about it.
 *
 * @module
 */
import { parseIp } from "../policy/ip_address.ts";
import { formatSocketSpec, type SocketSpec } from "./socket_spec.ts";

// Names that always mean this host (RFC 6761 §6.3: "localhost." and names below it).
const LOOPBACK_NAME = /^(?:[a-z0-9-]+\.)*localhost\.?$|^localhost\.localdomain\.?$/i;

/**
 * What a socket listens on, when that is more than this host: `every IPv4 interface`, `every
 * interface`, `the address 192.0.2.1` or `the host name "mx.example.com"` (resolved when
 * listening, so possibly not loopback). Undefined for a unix socket and a loopback address
 * (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104, `localhost`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { socketExposure } from "./socket_exposure.ts";
 * import { parseSocketSpec } from "./socket_spec.ts";
 * assert.equal(socketExposure(parseSocketSpec("inet:8891")), "every IPv4 interface");
 * assert.equal(socketExposure(parseSocketSpec("inet:8891@127.0.0.2")), undefined);
 * assert.equal(socketExposure(parseSocketSpec("local:/run/dkimd/dkimd.sock")), undefined);
 * ```
 */
export function socketExposure(spec: SocketSpec): string | undefined {
  if (spec.kind === "unix") return undefined;
  const host = spec.host;
  const ip = parseIp(host.replace(/%.*$/, ""));
  if (!ip) return LOOPBACK_NAME.test(host) ? undefined : `the host name "${host}"`;
  const b = ip.bytes;
  if (ip.family === 4) {
    if (b[12] === 127) return undefined;
    return b[12] === 0 && b[13] === 0 && b[14] === 0 && b[15] === 0
      ? "every IPv4 interface"
      : `the address ${host}`;
  }
  const zeroUpTo15 = b.subarray(0, 15).every((x) => x === 0);
  if (zeroUpTo15 && b[15] === 1) return undefined;
  // "::" takes IPv4 connections too where the system maps them (Linux's default).
  if (zeroUpTo15 && b[15] === 0) return "every interface";
  return `the address ${host}`;
}

/**
 * The warning for a socket reachable beyond this host, naming the setting (`Socket at
 * /etc/opendkim.conf:9`, `-p`), what it listens on and the fixes; undefined when it is not.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { socketExposureWarning } from "./socket_exposure.ts";
 * import { parseSocketSpec } from "./socket_spec.ts";
 * const w = socketExposureWarning(parseSocketSpec("inet6:8891"), '"Socket"');
 * assert.match(w ?? "", /^"Socket" inet6:8891@\[::\] listens on every interface: /);
 * assert.match(w ?? "", /bind 127\.0\.0\.1 \(inet:8891@127\.0\.0\.1\) or a unix socket/);
 * ```
 */
export function socketExposureWarning(spec: SocketSpec, setting: string): string | undefined {
  const exposure = socketExposure(spec);
  if (exposure === undefined || spec.kind === "unix") return undefined;
  return `${setting} ${formatSocketSpec(spec)} listens on ${exposure}: the milter protocol ` +
    `has no authentication, so any host that reaches the socket can have mail signed by ` +
    `claiming an internal client address; bind 127.0.0.1 (inet:${spec.port}@127.0.0.1) or a ` +
    `unix socket (local:/run/dkimd/dkimd.sock), or firewall the port so only the MTA reaches it`;
}
