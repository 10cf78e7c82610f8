/**
 * The parts of /etc/resolv.conf (resolv.conf(5)) a stub resolver needs: the nameservers and the
 * `timeout` and `attempts` options, read the way glibc reads them.
 *
 * @module
 */

import { DNS_PORT, type Nameserver, parseIpAddress } from "./nameserver.ts";

/** The file glibc reads. */
export const RESOLV_CONF_PATH = "/etc/resolv.conf";

/** Most `nameserver` lines used: glibc's MAXNS; later ones are ignored, as glibc does. */
export const RESOLV_CONF_MAX_NAMESERVERS = 3;

/** Largest `timeout:` in seconds: glibc's RES_MAXRETRANS caps larger values to it. */
export const RESOLV_CONF_MAX_TIMEOUT_SECONDS = 30;

/** Largest `attempts:`: glibc's RES_MAXRETRY caps larger values to it. */
export const RESOLV_CONF_MAX_ATTEMPTS = 5;

/** Largest resolv.conf read: real files are a few hundred bytes; this bounds a hostile one. */
export const RESOLV_CONF_MAX_BYTES = 64 * 1024;

/** What resolv.conf says about where and how to send queries. */
export interface ResolvConf {
  /** The servers in file order; 127.0.0.1 when the file names none (as glibc does). */
  readonly nameservers: Nameserver[];
  /** `options timeout:N` in milliseconds: glibc's wait for one try, not for the whole lookup. */
  readonly timeoutMs?: number;
  /** `options attempts:N`: how many times glibc goes through the server list. */
  readonly attempts?: number;
}

const LOCALHOST: Nameserver = { address: "127.0.0.1", port: DNS_PORT, family: 4 };

function optionNumber(value: string, max: number): number | undefined {
  if (!/^[0-9]{1,9}$/.test(value)) return undefined;
  return Math.min(Number(value), max);
}

/**
 * Parses resolv.conf text. Like glibc it skips what it does not understand instead of failing:
 * unknown keywords, invalid addresses, and `nameserver` lines past
 * {@link RESOLV_CONF_MAX_NAMESERVERS}. Lines starting with `#` or `;` are comments; an IPv6
 * address loses its `%zone`, which a query socket does not need on a loopback or global address.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseResolvConf } from "./resolv_conf.ts";
 * const conf = parseResolvConf("nameserver 192.0.2.53\noptions timeout:2 attempts:3\n");
 * assert.equal(conf.nameservers[0].address, "192.0.2.53");
 * assert.equal(conf.timeoutMs, 2000);
 * assert.equal(conf.attempts, 3);
 * assert.equal(parseResolvConf("").nameservers[0].address, "127.0.0.1");
 * ```
 */
export function parseResolvConf(text: string): ResolvConf {
  const nameservers: Nameserver[] = [];
  let timeoutMs: number | undefined;
  let attempts: number | undefined;
  for (const rawLine of text.split("\n")) {
    const line = rawLine.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const [keyword, ...args] = line.split(/[ \t]+/);
    if (keyword === "nameserver" && args.length > 0) {
      if (nameservers.length >= RESOLV_CONF_MAX_NAMESERVERS) continue;
      const percent = args[0].indexOf("%");
      const text = percent >= 0 ? args[0].slice(0, percent) : args[0];
      const ip = parseIpAddress(text);
      // A scope only makes sense on IPv6; glibc refuses it on IPv4 too.
      if (ip && (percent < 0 || ip.family === 6)) {
        nameservers.push({ address: ip.address, port: DNS_PORT, family: ip.family });
      }
    } else if (keyword === "options") {
      for (const option of args) {
        if (option.startsWith("#") || option.startsWith(";")) break;
        if (option.startsWith("timeout:")) {
          const n = optionNumber(option.slice(8), RESOLV_CONF_MAX_TIMEOUT_SECONDS);
          if (n !== undefined) timeoutMs = Math.max(n, 1) * 1000;
        } else if (option.startsWith("attempts:")) {
          const n = optionNumber(option.slice(9), RESOLV_CONF_MAX_ATTEMPTS);
          if (n !== undefined) attempts = Math.max(n, 1);
        }
      }
    }
  }
  if (nameservers.length === 0) nameservers.push(LOCALHOST);
  return {
    nameservers,
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(attempts !== undefined ? { attempts } : {}),
  };
}

/**
 * Reads and parses resolv.conf. A missing file gives glibc's defaults (127.0.0.1); any other
 * read error, or a file larger than {@link RESOLV_CONF_MAX_BYTES}, is thrown.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readResolvConf } from "./resolv_conf.ts";
 * const conf = await readResolvConf("/nonexistent/resolv.conf");
 * assert.equal(conf.nameservers[0].address, "127.0.0.1");
 * ```
 */
export async function readResolvConf(path: string = RESOLV_CONF_PATH): Promise<ResolvConf> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return parseResolvConf("");
    throw error;
  }
  using _ = file;
  // Read one byte past the limit so an oversized file is detected, not silently cut.
  const buffer = new Uint8Array(RESOLV_CONF_MAX_BYTES + 1);
  let length = 0;
  while (length < buffer.length) {
    const n = await file.read(buffer.subarray(length));
    if (n === null) break;
    length += n;
  }
  if (length > RESOLV_CONF_MAX_BYTES) {
    throw new RangeError(
      `Cannot read "${path}": larger than the limit of ${RESOLV_CONF_MAX_BYTES} bytes`,
    );
  }
  return parseResolvConf(new TextDecoder().decode(buffer.subarray(0, length)));
}
