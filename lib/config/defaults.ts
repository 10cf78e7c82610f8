/**
 * OpenDKIM's defaults, setting by setting, with where each comes from: opendkim.conf(5) for
 * OpenDKIM 2.11.0 (Debian's package), and its source where the page is silent or wrong
 * ("Unless otherwise stated, Boolean values default to "false", integer values default to 0,
 * and string and dataset values default to being undefined").
 *
 * @module
 */

import { MIN_RSA_BITS } from "../crypto/key_type.ts";
import { MAX_RSA_BITS_DEFAULT } from "../crypto/public_key.ts";
import { MAX_HEADER_FIELDS } from "../dkim/header.ts";
import { STUB_MAX_ANSWER_BYTES_DEFAULT } from "../dns/stub.ts";
import { MAX_FRAME_BYTES_DEFAULT } from "../milter/frame.ts";
import {
  MAX_CONNECTIONS_DEFAULT,
  READ_TIMEOUT_MS_DEFAULT,
  SHUTDOWN_GRACE_MS_DEFAULT,
} from "../milter/server.ts";
import type { DataSetSource } from "../policy/dataset.ts";
import { DEFAULT_INTERNAL_HOSTS } from "../policy/host_list.ts";
import type { SigningAlgorithm } from "../policy/key_table.ts";
import type { Canonicalization, MilterAction, Mode, SyslogFacility } from "./values.ts";

/** Mode: "The default is sv except in test mode" (opendkim.conf(5), Mode). */
export const DEFAULT_MODE: Mode = { sign: true, verify: true };

/** Canonicalization: "The default is simple", for header and body (opendkim.conf(5)). */
export const DEFAULT_CANONICALIZATION: Canonicalization = { header: "simple", body: "simple" };

/** SignatureAlgorithm: "The default is rsa-sha256 if it is available" (opendkim.conf(5)). */
export const DEFAULT_SIGNATURE_ALGORITHM: SigningAlgorithm = "rsa-sha256";

/** ClockDrift: "The default is 300" seconds (opendkim.conf(5)). */
export const DEFAULT_CLOCK_DRIFT = 300;

/** DNSTimeout: "The default is 5" seconds (opendkim.conf(5); `DEFTIMEOUT` in opendkim.h). */
export const DEFAULT_DNS_TIMEOUT = 5;

/** MinimumKeyBits: "The default is 1024" (opendkim.conf(5)), RFC 8301 §3.2's floor. */
export const DEFAULT_MINIMUM_KEY_BITS = MIN_RSA_BITS;

/** MaximumHeaders: "The default is 65536" bytes; 0 removes the limit (opendkim.conf(5)). */
export const DEFAULT_MAXIMUM_HEADERS = 65536;

/**
 * MaximumSignaturesToVerify: "The default is three" (opendkim.conf(5)); 0, "no limit" in
 * OpenDKIM, is dkimd's hard ceiling (`MAX_SIGNATURES_CEILING`, 50).
 */
export const DEFAULT_MAXIMUM_SIGNATURES_TO_VERIFY = 3;

/**
 * MaximumHeaderFields (dkimd's own; OpenDKIM bounds only the bytes): 1000 fields, the limit
 * `dkimd verify` applies to a whole message (`MAX_HEADER_FIELDS`); 0 means no limit.
 */
export const DEFAULT_MAXIMUM_HEADER_FIELDS = MAX_HEADER_FIELDS;

/**
 * MaximumKeyBits (dkimd's own): 4096, the largest RSA key RFC 8301 §3.2 obliges verifiers to
 * handle; bigger keys cost CPU time their publisher chooses.
 */
export const DEFAULT_MAXIMUM_KEY_BITS = MAX_RSA_BITS_DEFAULT;

/**
 * DNSMaxAnswerBytes (dkimd's own): 8192 bytes of TXT record text per answer, libopendkim's answer
 * buffer (`MAXPACKET` in dkim-keys.c).
 */
export const DEFAULT_DNS_MAX_ANSWER_BYTES = STUB_MAX_ANSWER_BYTES_DEFAULT;

/** MilterMaxFrameBytes (dkimd's own): 1 MiB, Sendmail's largest milter frame. */
export const DEFAULT_MILTER_MAX_FRAME_BYTES = MAX_FRAME_BYTES_DEFAULT;

/** MilterMaxConnections (dkimd's own): 512 MTA connections at once. */
export const DEFAULT_MILTER_MAX_CONNECTIONS = MAX_CONNECTIONS_DEFAULT;

/** MilterIdleTimeout (dkimd's own): 7210 seconds, libmilter's default timeout, as OpenDKIM has it. */
export const DEFAULT_MILTER_IDLE_TIMEOUT = READ_TIMEOUT_MS_DEFAULT / 1000;

/**
 * MilterShutdownTimeout (dkimd's own): 15 seconds for transactions in progress to finish at
 * SIGTERM, well under systemd's default stop timeout (90 s) and the unit's TimeoutStopSec (30 s).
 */
export const DEFAULT_MILTER_SHUTDOWN_TIMEOUT = SHUTDOWN_GRACE_MS_DEFAULT / 1000;

/** SyslogFacility: "The default is "mail"" (opendkim.conf(5)). */
export const DEFAULT_SYSLOG_FACILITY: SyslogFacility = "mail";

/** SyslogName: "The default is the name of the executable" (opendkim.conf(5)): ours. */
export const DEFAULT_SYSLOG_NAME = "dkimd";

/** RequireSafeKeys: "The default is "true"" (opendkim.conf(5)). */
export const DEFAULT_REQUIRE_SAFE_KEYS = true;

/** Background: "The default is "true"" (opendkim.conf(5)). */
export const DEFAULT_BACKGROUND = true;

/**
 * InternalHosts when none is given: `127.0.0.1` and `::1`, OpenDKIM's `DEFINTERNAL`
 * ("csl:127.0.0.1,::1" in opendkim.h; the man page names only 127.0.0.1).
 */
export const DEFAULT_INTERNAL_HOSTS_SOURCE: DataSetSource = {
  kind: "inline",
  entries: DEFAULT_INTERNAL_HOSTS.map((key) => ({ key })),
  patterns: false,
};

/** The verification and signing outcomes that have an On-* setting (opendkim.conf(5)). */
export interface Actions {
  /** On-NoSignature: a message with no signature. */
  readonly noSignature: MilterAction;
  /** On-BadSignature: a signature that fails to verify. */
  readonly badSignature: MilterAction;
  /** On-KeyNotFound: the key a signature names is not in the DNS. */
  readonly keyNotFound: MilterAction;
  /** On-DNSError: a transient DNS error. */
  readonly dnsError: MilterAction;
  /** On-InternalError: an internal error of some kind. */
  readonly internalError: MilterAction;
  /** On-Security: a message with properties that may be a security concern. */
  readonly security: MilterAction;
  /** On-SignatureError: a message that cannot be signed (message or key problems). */
  readonly signatureError: MilterAction;
}

/**
 * The On-* defaults, OpenDKIM's (opendkim.conf(5) and its `defaults` table): accept for
 * NoSignature, BadSignature and KeyNotFound, tempfail for DNSError, InternalError and Security,
 * reject for SignatureError. On-InternalError stays OpenDKIM's `tempfail` so a drop-in
 * replacement behaves the same: mail is deferred, never lost; set `On-InternalError accept` to
 * let it through unfiltered instead, as Postfix's `milter_default_action = accept` does when
 * the filter is down.
 */
export const DEFAULT_ACTIONS: Actions = {
  noSignature: "accept",
  badSignature: "accept",
  keyNotFound: "accept",
  dnsError: "tempfail",
  internalError: "tempfail",
  security: "tempfail",
  signatureError: "reject",
};

/** MTACommand's default: sendmail where Debian's opendkim and Postfix put it (`SENDMAIL_PATH`). */
export const DEFAULT_MTA_COMMAND = "/usr/sbin/sendmail";
