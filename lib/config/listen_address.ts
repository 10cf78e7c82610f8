/**
 * The value of dkimd's own `MetricsListen` setting (not an OpenDKIM one): `HOST:PORT`, where
 * HOST is an IPv4 address, a bracketed IPv6 address or `localhost`, as Prometheus scrape
 * targets are written. Only addresses: the metrics port should not depend on DNS.
 *
 * @module
 */

import { isIPv4, isIPv6 } from "node:net";
import { ValueError } from "./values.ts";

/** Where an HTTP listener binds. */
export interface ListenAddress {
  /** An IP address (IPv6 without brackets). */
  readonly host: string;
  /** The TCP port; 0 asks the system for one (tests). */
  readonly port: number;
}

/**
 * Reads `HOST:PORT` (`127.0.0.1:9891`, `[::1]:9891`, `localhost:9891`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseListenAddress } from "./listen_address.ts";
 * assert.deepEqual(parseListenAddress("127.0.0.1:9891"), { host: "127.0.0.1", port: 9891 });
 * assert.deepEqual(parseListenAddress("[::1]:9891"), { host: "::1", port: 9891 });
 * assert.deepEqual(parseListenAddress("localhost:9891"), { host: "127.0.0.1", port: 9891 });
 * assert.throws(() => parseListenAddress("9891"), /expected "HOST:PORT"/);
 * ```
 */
export function parseListenAddress(text: string): ListenAddress {
  const t = text.trim();
  const m = /^(?:\[([^\]]{1,64})\]|([^:\[\]]{1,255})):([0-9]{1,5})$/.exec(t);
  if (!m) {
    throw new ValueError(
      `expected "HOST:PORT" such as "127.0.0.1:9891" or "[::1]:9891", not "${text}"`,
    );
  }
  const port = Number(m[3]);
  if (port > 65535) throw new ValueError(`port "${m[3]}" is not a number from 0 to 65535`);
  if (m[1] !== undefined) {
    if (!isIPv6(m[1])) throw new ValueError(`"${m[1]}" is not an IPv6 address`);
    return { host: m[1], port };
  }
  const host = m[2];
  if (host.toLowerCase() === "localhost") return { host: "127.0.0.1", port };
  if (!isIPv4(host)) {
    throw new ValueError(`"${host}" is not an IPv4 address, a bracketed IPv6 address or localhost`);
  }
  return { host, port };
}

/**
 * Writes an address back as `HOST:PORT`, bracketing IPv6.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatListenAddress } from "./listen_address.ts";
 * assert.equal(formatListenAddress({ host: "::1", port: 9891 }), "[::1]:9891");
 * assert.equal(formatListenAddress({ host: "127.0.0.1", port: 9891 }), "127.0.0.1:9891");
 * ```
 */
export function formatListenAddress(address: ListenAddress): string {
  return address.host.includes(":")
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}
