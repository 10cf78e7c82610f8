/**
 * Readers for the value types of opendkim.conf settings, each as OpenDKIM reads it
 * (opendkim.conf(5) and its `config.c`): Booleans by their first character, integers as C's
 * `strtol(value, &end, 0)` with nothing left over, and the settings with their own syntax
 * (Mode, Canonicalization, On-*, AutoRestartRate, UserID, UMask, SyslogFacility, AuthservID).
 * Each throws {@link ValueError} with the reason; the configuration readers add the setting
 * name and `file:line`.
 *
 * @module
 */

import type { SigningAlgorithm } from "../policy/key_table.ts";
import { SIGNING_ALGORITHMS } from "../policy/key_table.ts";
import { PARTIAL_BODY_RESULTS, type PartialBodyResult } from "../dkim/acceptance.ts";
import { KEY_SECURITY_ACTIONS, type KeySecurityAction } from "../dkim/key_security.ts";
import { CRYPTO_BACKENDS, type CryptoBackendName } from "../crypto/crypto_backend.ts";

/**
 * A value that does not fit its setting's type. The message is the detail only ("expected
 * "simple" or "relaxed""); readers wrap it in a `ConfigError` naming the setting and line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseBoolean, ValueError } from "./values.ts";
 * assert.throws(() => parseBoolean("maybe"), ValueError);
 * ```
 */
export class ValueError extends SyntaxError {
  /** Makes an error whose message is `detail`. */
  constructor(detail: string, options?: ErrorOptions) {
    super(detail, options);
    this.name = "ValueError";
  }
}

/**
 * Reads an opendkim.conf Boolean: "only the first byte of the value is processed": `T`, `t`,
 * `Y`, `y`, `1` are true, `F`, `f`, `N`, `n`, `0` false (opendkim.conf(5)).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseBoolean } from "./values.ts";
 * assert.equal(parseBoolean("Yes"), true);
 * assert.equal(parseBoolean("0"), false);
 * assert.equal(parseBoolean("true"), true);
 * ```
 */
export function parseBoolean(text: string): boolean {
  const c = text.trim()[0];
  if (c !== undefined && "TtYy1".includes(c)) return true;
  if (c !== undefined && "FfNn0".includes(c)) return false;
  throw new ValueError(
    `expected a Boolean ("yes", "no", "true", "false", "1" or "0"), not "${text}"`,
  );
}

const INT_MIN = -2147483648;
const INT_MAX = 2147483647;

/**
 * Reads an opendkim.conf integer as C's `strtol(value, &end, 0)` with nothing left over, as
 * OpenDKIM's `config.c` does: decimal, `0x` hexadecimal, or octal with a leading `0` (so `010`
 * is 8), optionally signed, within C's `int`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseInteger } from "./values.ts";
 * assert.equal(parseInteger("65536"), 65536);
 * assert.equal(parseInteger("0x10"), 16);
 * assert.equal(parseInteger("010"), 8);
 * assert.throws(() => parseInteger("64k"));
 * ```
 */
export function parseInteger(text: string): number {
  const m = /^\s*([+-]?)(0[xX][0-9A-Fa-f]+|0[0-7]*|[1-9][0-9]*)$/.exec(text);
  if (!m) throw new ValueError(`expected a whole number, not "${text}"`);
  const digits = m[2];
  const n = /^0[xX]/.test(digits)
    ? parseInt(digits.slice(2), 16)
    : digits.length > 1 && digits[0] === "0"
    ? parseInt(digits.slice(1), 8)
    : Number(digits);
  const value = m[1] === "-" ? -n : n;
  if (value < INT_MIN || value > INT_MAX) {
    throw new ValueError(`"${text}" does not fit in a 32-bit integer`);
  }
  return value;
}

/**
 * Reads an integer and checks it is within `min`..`max` (inclusive).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseIntegerIn } from "./values.ts";
 * assert.equal(parseIntegerIn("300", 0, 86400), 300);
 * assert.throws(() => parseIntegerIn("-1", 0, 86400), /from 0 to 86400/);
 * ```
 */
export function parseIntegerIn(text: string, min: number, max: number): number {
  const n = parseInteger(text);
  if (n < min || n > max) throw new ValueError(`expected a number from ${min} to ${max}, not ${n}`);
  return n;
}

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/**
 * Reads a number of seconds for the YAML form: a whole number, or a number with a unit `s`,
 * `m`, `h` or `d` (the units of AutoRestartRate) such as `5s` or `1h`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSeconds } from "./values.ts";
 * assert.equal(parseSeconds("1h"), 3600);
 * assert.equal(parseSeconds("300"), 300);
 * ```
 */
export function parseSeconds(text: string): number {
  // trim() first: with \s* at both ends the pattern backtracks quadratically over a long run
  // of inner whitespace.
  const m = /^([0-9]+)\s*([smhdSMHD]?)$/.exec(text.trim());
  if (!m) throw new ValueError(`expected seconds, or a number with s, m, h or d, not "${text}"`);
  const n = Number(m[1]) * (m[2] ? DURATION_UNITS[m[2].toLowerCase()] : 1);
  if (n > INT_MAX) throw new ValueError(`"${text}" is too long`);
  return n;
}

/** Which of signing and verifying the filter does (opendkim.conf(5), Mode). */
export interface Mode {
  /** `s`: sign mail from internal or authenticated senders. */
  readonly sign: boolean;
  /** `v`: verify all other mail. */
  readonly verify: boolean;
}

/**
 * Reads Mode: a string of the letters `s` and `v` (OpenDKIM refuses any other letter, and so
 * do we, naming it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseMode } from "./values.ts";
 * assert.deepEqual(parseMode("sv"), { sign: true, verify: true });
 * assert.deepEqual(parseMode("v"), { sign: false, verify: true });
 * assert.throws(() => parseMode("sx"), /unknown mode "x"/);
 * ```
 */
export function parseMode(text: string): Mode {
  let sign = false;
  let verify = false;
  for (const c of text.trim()) {
    if (c === "s") sign = true;
    else if (c === "v") verify = true;
    else throw new ValueError(`unknown mode "${c}" (expected "s", "v" or "sv")`);
  }
  if (!sign && !verify) throw new ValueError('expected "s", "v" or "sv"');
  return { sign, verify };
}

/** Formats a mode as OpenDKIM writes it (`sv`, `s`, `v`). */
export function formatMode(mode: Mode): string {
  return (mode.sign ? "s" : "") + (mode.verify ? "v" : "");
}

/** A canonicalization algorithm (RFC 6376 §3.4). */
export type Canon = "simple" | "relaxed";

/** Header and body canonicalization for signing (RFC 6376 §3.4, the `c=` tag). */
export interface Canonicalization {
  /** The header canonicalization. */
  readonly header: Canon;
  /** The body canonicalization. */
  readonly body: Canon;
}

function parseCanon(text: string): Canon {
  const t = text.trim().toLowerCase();
  if (t === "simple" || t === "relaxed") return t;
  throw new ValueError(`unknown canonicalization "${text}" (expected "simple" or "relaxed")`);
}

/**
 * Reads Canonicalization, `header[/body]`; the body defaults to `simple` (RFC 6376 §3.5, `c=`
 * "relaxed" means "relaxed/simple"). Names compare case-insensitively as in OpenDKIM.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseCanonicalization } from "./values.ts";
 * assert.deepEqual(parseCanonicalization("relaxed/relaxed"), { header: "relaxed", body: "relaxed" });
 * assert.deepEqual(parseCanonicalization("relaxed"), { header: "relaxed", body: "simple" });
 * ```
 */
export function parseCanonicalization(text: string): Canonicalization {
  const slash = text.indexOf("/");
  if (slash < 0) return { header: parseCanon(text), body: "simple" };
  return { header: parseCanon(text.slice(0, slash)), body: parseCanon(text.slice(slash + 1)) };
}

/** Formats a canonicalization as opendkim.conf writes it (`relaxed/simple`). */
export function formatCanonicalization(c: Canonicalization): string {
  return `${c.header}/${c.body}`;
}

/**
 * Reads SignatureAlgorithm: `rsa-sha256`, `ed25519-sha256` or `rsa-sha1`, case-insensitively
 * (the algorithms `opendkim -V` lists for Debian's build).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSignatureAlgorithm } from "./values.ts";
 * assert.equal(parseSignatureAlgorithm("Ed25519-SHA256"), "ed25519-sha256");
 * assert.throws(() => parseSignatureAlgorithm("rsa-sha512"), /unknown signing algorithm/);
 * ```
 */
export function parseSignatureAlgorithm(text: string): SigningAlgorithm {
  const t = text.trim().toLowerCase();
  const found = SIGNING_ALGORITHMS.find((a) => a === t);
  if (!found) {
    throw new ValueError(
      `unknown signing algorithm "${text}" (expected ${SIGNING_ALGORITHMS.join(", ")})`,
    );
  }
  return found;
}

/**
 * Reads PartialBodyResult (dkimd's own): `policy` or `pass`, case-insensitively.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parsePartialBodyResult } from "./values.ts";
 * assert.equal(parsePartialBodyResult("Pass"), "pass");
 * assert.throws(() => parsePartialBodyResult("fail"), /expected "policy" or "pass"/);
 * ```
 */
export function parsePartialBodyResult(text: string): PartialBodyResult {
  const t = text.trim().toLowerCase();
  const found = PARTIAL_BODY_RESULTS.find((r) => r === t);
  if (!found) throw new ValueError(`unknown result "${text}" (expected "policy" or "pass")`);
  return found;
}

/**
 * A BogusKey or UnprotectedKey value, case-insensitively as OpenDKIM's `dkimf_lookup_strtoint`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseKeySecurityAction } from "./values.ts";
 * assert.equal(parseKeySecurityAction("Neutral"), "neutral");
 * assert.throws(() => parseKeySecurityAction("reject"), /unknown key action/);
 * ```
 */
export function parseKeySecurityAction(text: string): KeySecurityAction {
  const t = text.trim().toLowerCase();
  const found = KEY_SECURITY_ACTIONS.find((a) => a === t);
  if (!found) {
    throw new ValueError(`unknown key action "${text}" (expected "none", "neutral" or "fail")`);
  }
  return found;
}

/** What to tell the MTA (opendkim.conf(5), On-BadSignature). */
export type MilterAction = "accept" | "reject" | "tempfail" | "discard" | "quarantine";

/** Every {@link MilterAction}. */
export const MILTER_ACTIONS: readonly MilterAction[] = [
  "accept",
  "reject",
  "tempfail",
  "discard",
  "quarantine",
];

/**
 * Reads an On-* action: `accept`, `discard`, `quarantine`, `reject`, `tempfail`, or their first
 * letters `a`, `d`, `q`, `r`, `t` (opendkim.conf(5), On-BadSignature), case-insensitively.
 * OpenDKIM silently keeps the default for any other value (its `dkimf_parsehandler()` error
 * is never checked); dkimd refuses it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseAction } from "./values.ts";
 * assert.equal(parseAction("r"), "reject");
 * assert.equal(parseAction("TempFail"), "tempfail");
 * assert.throws(() => parseAction("bounce"));
 * ```
 */
export function parseAction(text: string): MilterAction {
  const t = text.trim().toLowerCase();
  const found = MILTER_ACTIONS.find((a) => a === t || a[0] === t);
  if (!found) {
    throw new ValueError(
      `unknown action "${text}" (expected accept, reject, tempfail, discard or quarantine, ` +
        "or their first letter)",
    );
  }
  return found;
}

/**
 * What On-UnauthorizedSigner (dkimd's own) does with an authenticated message whose From its
 * login may not have signed: the On-* actions but quarantine, since the message is answered at
 * end of headers, before a quarantine could be asked for.
 */
export type UnauthorizedSignerAction = Exclude<MilterAction, "quarantine">;

/** Every {@link UnauthorizedSignerAction}; `accept` (the default) passes the message unsigned. */
export const UNAUTHORIZED_SIGNER_ACTIONS: readonly UnauthorizedSignerAction[] = [
  "accept",
  "reject",
  "tempfail",
  "discard",
];

/**
 * Reads an On-UnauthorizedSigner action: `accept`, `reject`, `tempfail` or `discard`, or their
 * first letters, case-insensitively, as the On-* settings read theirs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseUnauthorizedSignerAction } from "./values.ts";
 * assert.equal(parseUnauthorizedSignerAction("R"), "reject");
 * assert.throws(() => parseUnauthorizedSignerAction("quarantine"), /expected accept, reject/);
 * ```
 */
export function parseUnauthorizedSignerAction(text: string): UnauthorizedSignerAction {
  const t = text.trim().toLowerCase();
  const found = UNAUTHORIZED_SIGNER_ACTIONS.find((a) => a === t || a[0] === t);
  if (!found) {
    throw new ValueError(
      `unknown action "${text}" (expected accept, reject, tempfail or discard, or their ` +
        "first letter)",
    );
  }
  return found;
}

/** Restart limit (opendkim.conf(5), AutoRestartRate `n/t[u]`). */
export interface RestartRate {
  /** At most this many restarts... */
  readonly count: number;
  /** ...within this many seconds. */
  readonly seconds: number;
}

/**
 * Reads AutoRestartRate, `n/t[u]`: `n` restarts within `t` units, the unit `s` (the default),
 * `m`, `h` or `d` in either case; as OpenDKIM, `n` may be 0 and `t` may not.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRestartRate } from "./values.ts";
 * assert.deepEqual(parseRestartRate("10/1h"), { count: 10, seconds: 3600 });
 * assert.deepEqual(parseRestartRate("3/90"), { count: 3, seconds: 90 });
 * assert.throws(() => parseRestartRate("10/0h"));
 * ```
 */
export function parseRestartRate(text: string): RestartRate {
  const m = /^\s*([0-9]{1,9})\/([0-9]{1,9})([sSmMhHdD]?)\s*$/.exec(text);
  if (!m) throw new ValueError(`expected "count/time[unit]" such as "10/1h", not "${text}"`);
  const seconds = Number(m[2]) * (m[3] ? DURATION_UNITS[m[3].toLowerCase()] : 1);
  if (seconds === 0) throw new ValueError("the time must be greater than 0");
  return { count: Number(m[1]), seconds };
}

/** Formats a restart rate back in `n/t[u]` form, with the largest exact unit. */
export function formatRestartRate(rate: RestartRate): string {
  for (const [u, s] of [["d", 86400], ["h", 3600], ["m", 60]] as const) {
    if (rate.seconds % s === 0) return `${rate.count}/${rate.seconds / s}${u}`;
  }
  return `${rate.count}/${rate.seconds}s`;
}

/** The account to run as (opendkim.conf(5), UserID `userid[:group]`). */
export interface UserId {
  /** The user name or numeric uid. */
  readonly user: string;
  /** The group name or numeric gid; absent for the user's own groups. */
  readonly group?: string;
}

const ACCOUNT = /^(?:[0-9]+|[A-Za-z_][A-Za-z0-9._-]{0,31}\$?)$/;

/**
 * Reads UserID, `user[:group]`, each a POSIX account name or a number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseUserId } from "./values.ts";
 * assert.deepEqual(parseUserId("opendkim:opendkim"), { user: "opendkim", group: "opendkim" });
 * assert.deepEqual(parseUserId("opendkim"), { user: "opendkim" });
 * ```
 */
export function parseUserId(text: string): UserId {
  const t = text.trim();
  const colon = t.indexOf(":");
  const user = colon < 0 ? t : t.slice(0, colon);
  const group = colon < 0 ? undefined : t.slice(colon + 1);
  if (!ACCOUNT.test(user)) throw new ValueError(`"${user}" is not a user name`);
  if (group === undefined) return { user };
  if (!ACCOUNT.test(group)) throw new ValueError(`"${group}" is not a group name`);
  return { user, group };
}

/** Formats an account as UserID writes it (`user` or `user:group`). */
export function formatUserId(id: UserId): string {
  return id.group === undefined ? id.user : `${id.user}:${id.group}`;
}

/**
 * Reads UMask. OpenDKIM reads it as any C integer (`0` prefix octal, `0x` hex, else decimal);
 * dkimd reads digits as octal always, as umask(1) does, since `UMask 22` means 022 to every
 * administrator. `note` says when OpenDKIM would have read the value differently.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseUmask } from "./values.ts";
 * assert.equal(parseUmask("007").value, 0o007);
 * assert.equal(parseUmask("022").value, 0o022);
 * assert.equal(parseUmask("22").value, 0o022);
 * assert.match(parseUmask("22").note ?? "", /decimal/);
 * ```
 */
export function parseUmask(text: string): { value: number; note?: string } {
  const t = text.trim();
  let value: number;
  if (/^0[xX][0-9A-Fa-f]{1,4}$/.test(t)) value = parseInt(t.slice(2), 16);
  else if (/^[0-7]{1,4}$/.test(t)) value = parseInt(t, 8);
  else throw new ValueError(`expected an octal mask such as 022 or 007, not "${text}"`);
  if (value > 0o777) throw new ValueError(`"${text}" is larger than 0777`);
  if (/^[1-9][0-9]+$/.test(t) && Number(t) !== value) {
    const as = Number(t).toString(8).padStart(3, "0");
    return {
      value,
      note: `read as octal 0${t}; OpenDKIM reads "${t}" as decimal ${t} (= 0${as})`,
    };
  }
  return { value };
}

/** Formats a mask as four octal digits (`0007`). */
export function formatUmask(mask: number): string {
  return mask.toString(8).padStart(4, "0");
}

/** The syslog facilities OpenDKIM accepts (its `log_facilities` table; `security` is `auth`). */
export type SyslogFacility =
  | "auth"
  | "cron"
  | "daemon"
  | "kern"
  | "lpr"
  | "mail"
  | "news"
  | "syslog"
  | "user"
  | "uucp"
  | "local0"
  | "local1"
  | "local2"
  | "local3"
  | "local4"
  | "local5"
  | "local6"
  | "local7";

/** Every {@link SyslogFacility}, in syslog.h order. */
export const SYSLOG_FACILITIES: readonly SyslogFacility[] = [
  "auth",
  "cron",
  "daemon",
  "kern",
  "lpr",
  "mail",
  "news",
  "syslog",
  "user",
  "uucp",
  "local0",
  "local1",
  "local2",
  "local3",
  "local4",
  "local5",
  "local6",
  "local7",
];

/**
 * Reads SyslogFacility, case-insensitively; the deprecated `security` is `auth`, as in
 * OpenDKIM's table.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSyslogFacility } from "./values.ts";
 * assert.equal(parseSyslogFacility("LOCAL3"), "local3");
 * assert.equal(parseSyslogFacility("security"), "auth");
 * ```
 */
export function parseSyslogFacility(text: string): SyslogFacility {
  const t = text.trim().toLowerCase();
  if (t === "security") return "auth";
  const found = SYSLOG_FACILITIES.find((f) => f === t);
  if (!found) {
    throw new ValueError(
      `unknown syslog facility "${text}" (expected ${SYSLOG_FACILITIES.join(", ")})`,
    );
  }
  return found;
}

/**
 * The authserv-id of Authentication-Results (RFC 8601 §2.5): the MTA's name (OpenDKIM's
 * default, from the `j` macro), the filter host's name (`HOSTNAME`), or a fixed name.
 */
export type AuthservId =
  | { readonly kind: "mta" }
  | { readonly kind: "hostname" }
  | { readonly kind: "name"; readonly name: string };

/** RFC 2045 §5.1 token characters: an authserv-id is a `value` (RFC 8601 §2.2). */
const TOKEN = /^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$/;

/**
 * Reads AuthservID: the literal `HOSTNAME` (case-sensitive, as in OpenDKIM) means the host's
 * name; anything else must be an RFC 2045 token (no spaces, semicolons or quotes), so the
 * Authentication-Results field stays parseable.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseAuthservId } from "./values.ts";
 * assert.deepEqual(parseAuthservId("HOSTNAME"), { kind: "hostname" });
 * assert.deepEqual(parseAuthservId("mx.example.com"), { kind: "name", name: "mx.example.com" });
 * assert.throws(() => parseAuthservId("mx; evil"));
 * ```
 */
export function parseAuthservId(text: string): AuthservId {
  const t = text.trim();
  if (t === "HOSTNAME") return { kind: "hostname" };
  if (!TOKEN.test(t)) {
    throw new ValueError(`"${text}" is not a valid authserv-id (RFC 8601 §2.2: a token)`);
  }
  return { kind: "name", name: t };
}

/** Formats an authserv-id as AuthservID writes it; the MTA's name has no spelling (`""`). */
export function formatAuthservId(id: AuthservId): string {
  return id.kind === "name" ? id.name : id.kind === "hostname" ? "HOSTNAME" : "";
}

/**
 * Reads a CryptoBackend value, case-insensitively.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseCryptoBackend } from "./values.ts";
 * assert.equal(parseCryptoBackend("OpenSSL"), "openssl");
 * assert.throws(() => parseCryptoBackend("nss"), /expected "webcrypto" or "openssl"/);
 * ```
 */
export function parseCryptoBackend(text: string): CryptoBackendName {
  const t = text.trim().toLowerCase();
  const found = CRYPTO_BACKENDS.find((b) => b === t);
  if (!found) throw new ValueError(`unknown backend "${text}" (expected "webcrypto" or "openssl")`);
  return found;
}
