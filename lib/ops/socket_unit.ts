/**
 * The dkimd.socket unit for a configuration's `Socket` (socket activation, issue 16): systemd
 * listens where dkimd would, so Postfix's main.cf stays the same whether systemd or dkimd opens
 * the socket. systemd/dkimd.socket listens on 127.0.0.1:8891 and carries the unix socket's lines
 * commented out; this writes the one the configuration names.
 *
 * @module
 */

import { formatSocketSpec, type SocketSpec } from "../milter/socket_spec.ts";

/** A `Socket` that systemd's `ListenStream=` cannot express (a host name, not an address). */
export class SocketUnitError extends RangeError {
  override readonly name = "SocketUnitError";
}

/**
 * The `ListenStream=` value for `socket`: `HOST:PORT`, `[ADDRESS]:PORT` for IPv6, or the unix
 * socket's path.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listenStreamFor } from "./socket_unit.ts";
 * assert.equal(listenStreamFor({ kind: "inet", host: "127.0.0.1", port: 8891 }), "127.0.0.1:8891");
 * assert.equal(listenStreamFor({ kind: "inet", host: "::1", port: 8893 }), "[::1]:8893");
 * assert.equal(listenStreamFor({ kind: "unix", path: "/run/dkimd/dkimd.sock" }), "/run/dkimd/dkimd.sock");
 * assert.throws(() => listenStreamFor({ kind: "inet", host: "mx.example.com", port: 8891 }));
 * ```
 */
export function listenStreamFor(socket: SocketSpec): string {
  if (socket.kind === "unix") return socket.path;
  if (socket.host.includes(":")) return `[${socket.host}]:${socket.port}`;
  if (/^[0-9.]+$/.test(socket.host)) return `${socket.host}:${socket.port}`;
  // systemd.socket(5) takes addresses only: it listens before name resolution works.
  throw new SocketUnitError(
    `Socket ${formatSocketSpec(socket)} names a host, and systemd's ListenStream= takes an ` +
      `address: set Socket to inet:${socket.port}@ADDRESS (or localhost) first`,
  );
}

/**
 * dkimd.socket's `text` listening on `socket`: the TCP address in place of the default one, or
 * the unix socket's path with the commented SocketUser=, SocketGroup= and SocketMode= lines made
 * active (systemd makes that socket, so it sets the owner and mode Postfix needs).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { socketUnitFor } from "./socket_unit.ts";
 * const unit = "[Socket]\nListenStream=127.0.0.1:8891\n#ListenStream=/x.sock\n#SocketUser=opendkim\n" +
 *   "#SocketGroup=postfix\n#SocketMode=0660\n";
 * assert.equal(
 *   socketUnitFor(unit, { kind: "inet", host: "::1", port: 8893 }),
 *   unit.replace("127.0.0.1:8891", "[::1]:8893"),
 * );
 * assert.equal(
 *   socketUnitFor(unit, { kind: "unix", path: "/var/spool/postfix/dkimd/dkimd.sock" }),
 *   "[Socket]\nListenStream=/var/spool/postfix/dkimd/dkimd.sock\nSocketUser=opendkim\n" +
 *     "SocketGroup=postfix\nSocketMode=0660\n",
 * );
 * ```
 */
export function socketUnitFor(text: string, socket: SocketSpec): string {
  const listen = listenStreamFor(socket);
  if (socket.kind === "inet") return text.replace(/^ListenStream=.*$/m, `ListenStream=${listen}`);
  return text
    .replace(/^ListenStream=.*\n/m, "")
    .replace(/^#ListenStream=.*$/m, `ListenStream=${listen}`)
    .replace(/^#(SocketUser|SocketGroup|SocketMode)=/gm, "$1=");
}
