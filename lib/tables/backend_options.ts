/**
 * What every database back end is told besides its DSN or URI: its limits and where its secret
 * comes from. The settings that fill it live in the settings table.
 *
 * @module
 */

/**
 * Options shared by every database back end (a `TableBackend`).
 *
 * @example
 * ```ts
 * import type { BackendOptions } from "./backend_options.ts";
 * const options: BackendOptions = { queryTimeoutMs: 2000, connectTimeoutMs: 5000 };
 * ```
 */
export interface BackendOptions {
  /** Longest a query may take before it is abandoned and the lookup fails. */
  readonly queryTimeoutMs: number;
  /** Longest a connection attempt may take. */
  readonly connectTimeoutMs: number;
  /**
   * The password read from a file or `$CREDENTIALS_DIRECTORY`, which overrides one written in
   * the DSN or URI, so it need not sit in opendkim.conf.
   */
  readonly password?: string;
  /**
   * TLS to the server: `true` to try it, `"require"` to refuse a connection without it (the
   * certificate not checked, libpq's sslmode=require), `"verify"` to require it and check the
   * certificate's chain (against {@link BackendOptions.ca}, else the default trusted CAs) and
   * that it names the host the DSN names (libpq's sslmode=verify-full).
   */
  readonly tls?: boolean | "require" | "verify";
  /** Certificates (PEM) `"verify"` trusts instead of the default CAs: a private CA. */
  readonly ca?: string;
}
