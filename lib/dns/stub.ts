/**
 * A stub resolver for TXT records that reports what the server said: NXDOMAIN and NODATA apart
 * from SERVFAIL, REFUSED and silence. RFC 6376 §6.1.2 makes a missing key a permanent error and
 * a failed query a temporary one; `Deno.resolveDns` and `node:dns` report SERVFAIL and REFUSED
 * as "not found", so dkimd sends its own queries.
 *
 * Queries go over UDP with EDNS0 (RFC 6891), and over TCP when the answer is truncated
 * (RFC 7766 §5). Each query has a random ID and its own socket, so the OS picks a random source
 * port; an answer is accepted only when its ID, question and source match (RFC 5452 §9.1).
 *
 * With `dnssec` on, queries to a resolver on this host set DO and the answer's AD bit makes its
 * records `secure`; see `dnssec.ts` for the trust model.
 *
 * @module
 */

import dgram from "node:dgram";
import type { Buffer } from "node:buffer";
import { asciiLower, latin1 } from "../bytes.ts";
import {
  CLASS_IN,
  decodeMessage,
  type DnsMessage,
  DnsMessageError,
  encodeTxtQuery,
  FLAG_AD,
  type ResourceRecord,
} from "./dns_message.ts";
import { DNSSEC_FAILURE_CODES, type DnssecStatus, isLocalResolver } from "./dnssec.ts";
import { type Nameserver, parseIpAddress } from "./nameserver.ts";
import {
  type CheckedTxt,
  DnsError,
  type DnsErrorCode,
  type LookupOptions,
  type TxtResolver,
} from "./resolver.ts";

/** Time for a whole lookup, all retries included: OpenDKIM's `DNSTimeout` default, 5 s. */
export const STUB_TIMEOUT_MS_DEFAULT = 5000;

/** Times the server list is tried: glibc's RES_DFLRETRY, resolv.conf's `attempts` default. */
export const STUB_ATTEMPTS_DEFAULT = 2;

/** EDNS0 UDP payload size advertised: the DNS Flag Day 2020 value, safe from fragmentation. */
export const STUB_EDNS_PAYLOAD_DEFAULT = 1232;

/**
 * Largest DNS message accepted, UDP or TCP: the most a TCP length prefix can announce. A larger
 * one cannot be read whole, so it is `malformed` (a temporary error).
 */
export const STUB_MAX_RESPONSE_BYTES_DEFAULT = 65535;

/**
 * Most bytes of TXT record text one answer may carry, the records' character-strings joined as
 * the verifier sees them: 8 KiB, libopendkim's answer buffer (`MAXPACKET` in dkim-keys.c). A key
 * record of the largest RSA key RFC 8301 asks verifiers to take (4096 bits) is under 800 bytes.
 * More is `toolarge`, which the verifier makes a permerror. dkimd's `DNSMaxAnswerBytes` sets it.
 */
export const STUB_MAX_ANSWER_BYTES_DEFAULT = 8192;

/**
 * Most CNAME records followed inside one answer: real key delegations use one (to a signing
 * provider); the bound stops a looping chain.
 */
export const MAX_CNAME_CHAIN = 8;

/** Longest query name in text form (RFC 1035 §2.3.4: 255 octets on the wire). */
export const MAX_QUERY_NAME_LENGTH = 253;

/** Options for {@link StubResolver}. */
export interface StubResolverOptions {
  /** Servers to ask, in order; see `parseNameserverList` and `readResolvConf`. */
  readonly nameservers: readonly Nameserver[];
  /**
   * Time for one whole lookup in milliseconds, all servers and attempts included
   * (default {@link STUB_TIMEOUT_MS_DEFAULT}). Each try gets an equal slice before the next
   * server is asked; a late answer to an earlier try is still taken until the end.
   */
  readonly timeoutMs?: number;
  /** Times the server list is gone through (default {@link STUB_ATTEMPTS_DEFAULT}). */
  readonly attempts?: number;
  /** EDNS0 UDP payload size to advertise (default {@link STUB_EDNS_PAYLOAD_DEFAULT}). */
  readonly ednsPayload?: number;
  /** Largest DNS message accepted (default {@link STUB_MAX_RESPONSE_BYTES_DEFAULT}). */
  readonly maxResponseBytes?: number;
  /**
   * Most bytes of TXT record text in one answer, all records together, each joined from its
   * character-strings (default {@link STUB_MAX_ANSWER_BYTES_DEFAULT}); more rejects with a
   * `DnsError` of code `toolarge`, at once, without asking another server.
   */
  readonly maxAnswerBytes?: number;
  /**
   * Ask over TCP from the first try instead of UDP (OpenDKIM's DNSConnect): for networks that
   * drop or mangle UDP, or large key records (default false: UDP, TCP when truncated).
   */
  readonly tcp?: boolean;
  /**
   * Set RD in queries (default true). False asks a zone's authoritative server what it serves
   * itself, as the key rotation's proof does, rather than what it may have cached or recursed.
   */
  readonly recursionDesired?: boolean;
  /**
   * Ask for DNSSEC (default false): queries to a resolver on this host set DO, an answer with AD
   * is `secure`, without it `insecure`; a SERVFAIL carrying a DNSSEC Extended DNS Error is asked
   * again with CD and the record given as `bogus`. Answers from a resolver elsewhere are always
   * `insecure` (`dnssec.ts` says why).
   */
  readonly dnssec?: boolean;
  /**
   * Which resolvers' AD bit to believe when `dnssec` is on (default: `isLocalResolver`, one on
   * 127.0.0.0/8 or ::1); the others' answers are `insecure`. Tests pass their own to exercise the
   * untrusted path against a local server.
   */
  readonly trustsAd?: (ns: Nameserver) => boolean;
}

/**
 * The outcome of a TXT lookup with the time it may be cached, in seconds. Positive answers carry
 * the records and the smallest TTL of the TXT records and of any CNAME on the way; negative ones
 * carry the SOA-derived negative TTL of RFC 2308 §5 when the server sent an SOA.
 */
export type TxtAnswer =
  | {
    readonly type: "records";
    readonly records: string[];
    readonly ttl: number;
    /** What DNSSEC said of the records, when the resolver asked for it. */
    readonly dnssec?: DnssecStatus;
  }
  | { readonly type: "nxdomain" | "nodata"; readonly ttl: number | undefined };

/** A resolver that also tells how long each answer may be cached. */
export interface TtlTxtResolver extends TxtResolver {
  /**
   * The answer at `name` with its TTL. Rejects with {@link DnsError} only for failures that
   * are not answers (servfail, refused, timeout, malformed, network).
   */
  resolveTxtWithTtl(name: string, options?: LookupOptions): Promise<TxtAnswer>;
}

const RCODE_NOERROR = 0;
const RCODE_FORMERR = 1;
const RCODE_SERVFAIL = 2;
const RCODE_NXDOMAIN = 3;
const RCODE_REFUSED = 5;
const HEADER_BYTES = 12;
/** RFC 2181 §8: a TTL with the top bit set is treated as zero. */
const MAX_TTL = 0x7fffffff;

/** How telling a failure is, to pick the one to report when every try failed. */
const FAILURE_RANK: Record<DnsErrorCode, number> = {
  timeout: 0,
  network: 1,
  malformed: 2,
  toolarge: 2,
  refused: 3,
  servfail: 3,
  nxdomain: 4,
  nodata: 4,
};

function validQueryName(name: string): string | undefined {
  const bare = name.endsWith(".") ? name.slice(0, -1) : name;
  if (bare.length === 0 || bare.length > MAX_QUERY_NAME_LENGTH) return undefined;
  // Printable ASCII only: labels are written byte per character, and DKIM names are ASCII.
  if (!/^[\x21-\x7e]+$/.test(bare)) return undefined;
  for (const label of bare.split(".")) {
    if (label.length === 0 || label.length > 63) return undefined;
  }
  return bare;
}

function sameName(a: string, b: string): boolean {
  const trim = (n: string) => asciiLower(n.endsWith(".") ? n.slice(0, -1) : n);
  return trim(a) === trim(b);
}

function clampTtl(ttl: number | undefined): number {
  return typeof ttl === "number" && ttl >= 0 && ttl <= MAX_TTL ? ttl : 0;
}

function randomId(): number {
  return crypto.getRandomValues(new Uint16Array(1))[0];
}

/** The length of the question section of our own query (one question, no compression). */
function questionEnd(query: Uint8Array): number {
  let i = HEADER_BYTES;
  while (query[i] !== 0) i += query[i] + 1;
  return i + 1 + 4;
}

/**
 * True when `response` answers `query`: same ID, the QR bit, and the same question (names
 * compared ignoring ASCII case, since servers may echo the case differently). A FORMERR may
 * omit the question, as servers do when they cannot parse the query.
 */
function answersQuery(query: Uint8Array, response: Uint8Array): boolean {
  if (response.length < HEADER_BYTES) return false;
  if (response[0] !== query[0] || response[1] !== query[1]) return false;
  if ((response[2] & 0x80) === 0) return false;
  const qdcount = (response[4] << 8) | response[5];
  if (qdcount === 0) return (response[3] & 0x0f) === RCODE_FORMERR;
  if (qdcount !== 1) return false;
  const end = questionEnd(query);
  if (response.length < end) return false;
  for (let i = HEADER_BYTES; i < end; i++) {
    let a = query[i];
    let b = response[i];
    if (a >= 0x41 && a <= 0x5a) a |= 0x20;
    if (b >= 0x41 && b <= 0x5a) b |= 0x20;
    if (a !== b) return false;
  }
  return true;
}

type TryOutcome =
  | { readonly kind: "answer"; readonly answer: TxtAnswer }
  | { readonly kind: "truncated" }
  | { readonly kind: "bogus"; readonly detail: string }
  | { readonly kind: "failure"; readonly code: DnsErrorCode; readonly detail: string };

function failure(code: DnsErrorCode, detail: string): TryOutcome {
  return { kind: "failure", code, detail };
}

/** A failed TCP exchange; becomes a failure outcome of its try. */
class TryFailure extends Error {
  constructor(readonly code: DnsErrorCode, detail: string) {
    super(detail);
    this.name = "TryFailure";
  }
}

/**
 * How a try treats DNSSEC: `off` (not asked), `trusted` (a local resolver: its AD bit and its
 * Extended DNS Errors count), `untrusted` (a remote one: its records are insecure).
 */
type DnssecMode = "off" | "trusted" | "untrusted";

/**
 * Reads a response that {@link answersQuery} accepted and maps it to an outcome. Never throws:
 * it runs inside socket callbacks, where a throw would escape the lookup.
 */
function interpret(
  name: string,
  bytes: Uint8Array,
  transport: "udp" | "tcp",
  maxAnswerBytes: number,
  dnssec: DnssecMode,
): TryOutcome {
  try {
    return interpretPacket(name, bytes, transport, maxAnswerBytes, dnssec);
  } catch (error) {
    return failure("malformed", `unreadable answer: ${error}`);
  }
}

function interpretPacket(
  name: string,
  bytes: Uint8Array,
  transport: "udp" | "tcp",
  maxAnswerBytes: number,
  dnssec: DnssecMode,
): TryOutcome {
  let packet: DnsMessage;
  try {
    packet = decodeMessage(bytes);
  } catch (error) {
    if (!(error instanceof DnsMessageError)) throw error;
    return failure("malformed", `unparseable answer: ${error.message}`);
  }
  if ((bytes[2] & 0x02) !== 0) {
    return transport === "udp"
      ? { kind: "truncated" }
      : failure("malformed", "truncated TCP answer");
  }
  const opt = packet.additionals.find((a) => a.data.type === "OPT")?.data;
  const rcode = ((opt?.type === "OPT" ? opt.extendedRcode : 0) << 4) | (bytes[3] & 0x0f);
  switch (rcode) {
    case RCODE_NOERROR:
      break;
    case RCODE_NXDOMAIN:
      return { kind: "answer", answer: { type: "nxdomain", ttl: negativeTtl(packet) } };
    case RCODE_SERVFAIL: {
      const ede = opt?.type === "OPT"
        ? opt.extendedErrors.find((e) => DNSSEC_FAILURE_CODES.has(e.code))
        : undefined;
      if (!ede) return failure("servfail", "server failure");
      const detail = `DNSSEC validation failed: EDE ${ede.code}${ede.text ? ` ${ede.text}` : ""}`;
      return dnssec === "trusted" ? { kind: "bogus", detail } : failure("servfail", detail);
    }
    case RCODE_REFUSED:
      return failure("refused", "query refused");
    default:
      return failure("malformed", `unexpected RCODE ${rcode}`);
  }
  let target = name;
  let ttl = MAX_TTL;
  const answers = packet.answers;
  const at = (type: "TXT" | "CNAME") => (a: ResourceRecord) =>
    a.data.type === type && a.class === CLASS_IN && sameName(a.name, target);
  for (let hops = 0; hops <= MAX_CNAME_CHAIN; hops++) {
    const txt = answers.filter(at("TXT"));
    if (txt.length > 0) {
      // Measured before any text is made, so an oversized answer costs no string at all.
      let size = 0;
      for (const a of txt) {
        if (a.data.type === "TXT") { for (const p of a.data.strings) size += p.length; }
      }
      if (size > maxAnswerBytes) {
        return failure(
          "toolarge",
          `answer holds ${size} bytes of TXT record text, over the limit of ${maxAnswerBytes} ` +
            `(DNSMaxAnswerBytes)`,
        );
      }
      const records = txt.map((a) =>
        a.data.type === "TXT" ? a.data.strings.map((p) => latin1(p)).join("") : ""
      );
      for (const a of txt) ttl = Math.min(ttl, clampTtl(a.ttl));
      if (dnssec === "off") return { kind: "answer", answer: { type: "records", records, ttl } };
      const secure = dnssec === "trusted" && (packet.flags & FLAG_AD) !== 0;
      return {
        kind: "answer",
        answer: { type: "records", records, ttl, dnssec: secure ? "secure" : "insecure" },
      };
    }
    const cname = answers.find(at("CNAME"));
    if (!cname || cname.data.type !== "CNAME") return noData(packet, name, target);
    ttl = Math.min(ttl, clampTtl(cname.ttl));
    target = cname.data.target;
  }
  return failure("malformed", `CNAME chain longer than ${MAX_CNAME_CHAIN}`);
}

/**
 * A NOERROR answer without TXT at the end of the chain. RFC 2308 §2.2: NODATA carries the SOA
 * (servers that omit it are tolerated). Without an SOA, NS records mean a referral from a server
 * that does not recurse, and a CNAME whose target went unanswered means nobody resolved it
 * (OpenDKIM's "unresolved CNAME"): neither says the record does not exist.
 */
function noData(packet: DnsMessage, name: string, target: string): TryOutcome {
  const authorities = packet.authorities;
  if (!authorities.some((a) => a.data.type === "SOA")) {
    if (target !== name) return failure("malformed", `CNAME to "${target}" was not resolved`);
    if (authorities.some((a) => a.data.type === "NS")) {
      return failure("malformed", "referral from a server that does not recurse");
    }
  }
  return { kind: "answer", answer: { type: "nodata", ttl: negativeTtl(packet) } };
}

/** RFC 2308 §5: a negative answer may be cached for the smaller of the SOA's TTL and MINIMUM. */
function negativeTtl(packet: DnsMessage): number | undefined {
  const soa = packet.authorities.find((a) => a.data.type === "SOA" && a.class === CLASS_IN);
  if (!soa || soa.data.type !== "SOA") return undefined;
  return Math.min(clampTtl(soa.ttl), clampTtl(soa.data.minimum));
}

/**
 * A {@link TxtResolver} that sends its own queries to the given nameservers.
 *
 * Outcomes: TXT records at the name (after any CNAME chain inside the answer) are returned, each
 * record's character-strings joined and decoded byte per character, unless together they hold
 * more than `maxAnswerBytes` (`toolarge`, final); NOERROR without them is
 * `nodata`; RCODE 3 is `nxdomain`; SERVFAIL is `servfail`; REFUSED is `refused`; other RCODEs
 * and unparseable answers are `malformed`; socket errors are `network`; no answer in time is
 * `timeout`. Failures move on to the next server; when every try failed, the most telling
 * failure is reported. Every socket and timer is closed when the lookup ends.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { StubResolver } from "./stub.ts";
 * import { DnsError } from "./resolver.ts";
 * // Nothing listens on this port, so the lookup times out after 50 ms.
 * const resolver = new StubResolver({
 *   nameservers: [{ address: "127.0.0.1", port: 9, family: 4 }],
 *   timeoutMs: 50,
 * });
 * await assert.rejects(
 *   resolver.resolveTxt("s._domainkey.example.com"),
 *   (e) => e instanceof DnsError && e.code === "timeout",
 * );
 * ```
 */
export class StubResolver implements TtlTxtResolver {
  readonly #nameservers: readonly Nameserver[];
  readonly #timeoutMs: number;
  readonly #attempts: number;
  readonly #ednsPayload: number;
  readonly #maxResponseBytes: number;
  readonly #maxAnswerBytes: number;
  readonly #tcp: boolean;
  readonly #recursionDesired: boolean;
  readonly #dnssec: boolean;
  readonly #trustsAd: (ns: Nameserver) => boolean;

  /** Makes a resolver; throws `RangeError` for an empty server list or a bad option. */
  constructor(options: StubResolverOptions) {
    if (options.nameservers.length === 0) {
      throw new RangeError("Cannot make a stub resolver: the nameserver list is empty");
    }
    const positive = (key: string, value: number, max: number) => {
      if (!Number.isInteger(value) || value < 1 || value > max) {
        throw new RangeError(`Invalid "${key}" ${value}: expected an integer in 1..${max}`);
      }
      return value;
    };
    this.#nameservers = [...options.nameservers];
    this.#timeoutMs = positive(
      "timeoutMs",
      options.timeoutMs ?? STUB_TIMEOUT_MS_DEFAULT,
      2 ** 31 - 1,
    );
    this.#attempts = positive("attempts", options.attempts ?? STUB_ATTEMPTS_DEFAULT, 100);
    this.#ednsPayload = positive(
      "ednsPayload",
      options.ednsPayload ?? STUB_EDNS_PAYLOAD_DEFAULT,
      65535,
    );
    this.#maxResponseBytes = positive(
      "maxResponseBytes",
      options.maxResponseBytes ?? STUB_MAX_RESPONSE_BYTES_DEFAULT,
      65535,
    );
    this.#maxAnswerBytes = positive(
      "maxAnswerBytes",
      options.maxAnswerBytes ?? STUB_MAX_ANSWER_BYTES_DEFAULT,
      65535,
    );
    this.#tcp = options.tcp ?? false;
    this.#recursionDesired = options.recursionDesired ?? true;
    this.#dnssec = options.dnssec ?? false;
    this.#trustsAd = options.trustsAd ?? isLocalResolver;
  }

  /**
   * The TXT records at `name`; rejects with {@link DnsError} for every failure, and with a
   * `servfail` for records DNSSEC found bogus (only {@link resolveTxtChecked} gives those).
   */
  async resolveTxt(name: string, options?: LookupOptions): Promise<string[]> {
    return checkedOf(name, await this.resolveTxtWithTtl(name, options), false).records;
  }

  /** The TXT records at `name` with their DNSSEC status when `dnssec` is on, bogus ones too. */
  async resolveTxtChecked(name: string, options?: LookupOptions): Promise<CheckedTxt> {
    return checkedOf(name, await this.resolveTxtWithTtl(name, options), true);
  }

  /** The answer at `name` with its TTL, for caching; see {@link TtlTxtResolver}. */
  resolveTxtWithTtl(name: string, options?: LookupOptions): Promise<TxtAnswer> {
    const qname = validQueryName(name);
    if (qname === undefined) {
      return Promise.reject(new DnsError("malformed", name, "not a valid domain name"));
    }
    if (options?.signal?.aborted) {
      return Promise.reject(
        new DnsError("timeout", name, "aborted", { cause: options.signal.reason }),
      );
    }
    return new Lookup(name, qname, {
      nameservers: this.#nameservers,
      timeoutMs: this.#timeoutMs,
      attempts: this.#attempts,
      ednsPayload: this.#ednsPayload,
      maxResponseBytes: this.#maxResponseBytes,
      maxAnswerBytes: this.#maxAnswerBytes,
      tcp: this.#tcp,
      recursionDesired: this.#recursionDesired,
      dnssec: this.#dnssec,
      trustsAd: this.#trustsAd,
    }, options?.signal).promise;
  }
}

/**
 * The records of an answer with their DNSSEC status; negative answers reject. Bogus records are
 * given only when `bogus` is true (a key lookup, which reports them); otherwise they reject as
 * `servfail`, the answer a validating resolver gives everyone else.
 */
export function checkedOf(name: string, answer: TxtAnswer, bogus: boolean): CheckedTxt {
  if (answer.type !== "records") throw new DnsError(answer.type, name);
  if (answer.dnssec === "bogus" && !bogus) {
    throw new DnsError("servfail", name, "DNSSEC validation failed: the record is bogus");
  }
  return answer.dnssec === undefined
    ? { records: answer.records }
    : { records: answer.records, dnssec: answer.dnssec };
}

/** One lookup: the tries, their sockets and timers, and the one place that settles. */
class Lookup {
  readonly promise: Promise<TxtAnswer>;
  #resolve!: (answer: TxtAnswer) => void;
  #reject!: (error: DnsError) => void;
  #settled = false;
  readonly #cleanups = new Set<() => void>();
  readonly #tries: Nameserver[] = [];
  readonly #slice: number;
  #launched = 0;
  #inFlight = 0;
  #nextTimer: ReturnType<typeof setTimeout> | undefined;
  #worst: { code: DnsErrorCode; detail: string } | undefined;

  constructor(
    readonly name: string,
    readonly qname: string,
    readonly options: Required<StubResolverOptions>,
    signal: AbortSignal | undefined,
  ) {
    this.promise = new Promise<TxtAnswer>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    for (let a = 0; a < options.attempts; a++) this.#tries.push(...options.nameservers);
    this.#slice = Math.max(1, Math.floor(options.timeoutMs / this.#tries.length));
    const deadline = setTimeout(() => this.#finishWithFailure(), options.timeoutMs);
    this.#cleanups.add(() => clearTimeout(deadline));
    if (signal) {
      const onAbort = () =>
        this.#fail(new DnsError("timeout", name, "aborted", { cause: signal.reason }));
      signal.addEventListener("abort", onAbort, { once: true });
      this.#cleanups.add(() => signal.removeEventListener("abort", onAbort));
    }
    this.#launchNext();
  }

  #launchNext(): void {
    if (this.#settled) return;
    if (this.#nextTimer !== undefined) {
      clearTimeout(this.#nextTimer);
      this.#nextTimer = undefined;
    }
    if (this.#launched >= this.#tries.length) {
      // Every try was sent; with none left waiting, there is nothing more to wait for.
      if (this.#inFlight === 0) this.#finishWithFailure();
      return;
    }
    const ns = this.#tries[this.#launched++];
    this.#inFlight++;
    if (this.#launched < this.#tries.length) {
      const timer = setTimeout(() => {
        this.#nextTimer = undefined;
        this.#launchNext();
      }, this.#slice);
      this.#nextTimer = timer;
      this.#cleanups.add(() => clearTimeout(timer));
    }
    if (this.options.tcp) this.#tcpTry(ns, undefined);
    else this.#udpTry(ns, undefined);
  }

  #dnssecMode(ns: Nameserver): DnssecMode {
    if (!this.options.dnssec) return "off";
    return this.options.trustsAd(ns) ? "trusted" : "untrusted";
  }

  /**
   * One try's outcome. `bogus` is set on the second query of a try, asked with CD after the
   * resolver said the record failed validation: it holds what the resolver said.
   */
  #onOutcome(
    ns: Nameserver,
    outcome: TryOutcome,
    transport: "udp" | "tcp",
    bogus: string | undefined,
  ): void {
    if (this.#settled) return;
    if (outcome.kind === "bogus" && bogus === undefined) {
      // The record, unchecked, so the signature can still be verified and reported as bogus.
      if (this.options.tcp) this.#tcpTry(ns, outcome.detail);
      else this.#udpTry(ns, outcome.detail);
      return;
    }
    if (outcome.kind === "answer" && bogus !== undefined) {
      if (outcome.answer.type === "records") {
        this.#settle();
        // Never cached (TTL 0): the zone may be fixed, or the forgery gone, at the next message.
        this.#resolve({ ...outcome.answer, ttl: 0, dnssec: "bogus" });
        return;
      }
      outcome = failure("servfail", `${bogus}; no record without validation either`);
    } else if (outcome.kind === "answer") {
      this.#settle();
      this.#resolve(outcome.answer);
      return;
    }
    if (outcome.kind === "truncated" && transport === "udp") {
      this.#tcpTry(ns, bogus);
      return;
    }
    if (outcome.kind === "bogus") {
      outcome = failure("servfail", outcome.detail);
    } else if (bogus !== undefined && outcome.kind === "failure" && outcome.code !== "toolarge") {
      outcome = failure("servfail", `${bogus}; then ${outcome.detail}`);
    }
    if (outcome.kind === "failure" && outcome.code === "toolarge") {
      // An answer, not a failure to get one: another server would give the same record.
      this.#fail(new DnsError("toolarge", this.name, outcome.detail));
      return;
    }
    this.#inFlight--;
    const f = outcome.kind === "failure"
      ? outcome
      : { code: "malformed" as const, detail: "truncated answer" };
    if (!this.#worst || FAILURE_RANK[f.code] > FAILURE_RANK[this.#worst.code]) {
      this.#worst = { code: f.code, detail: `${f.detail} from ${ns.address}@${ns.port}` };
    }
    this.#launchNext();
  }

  #finishWithFailure(): void {
    const worst = this.#worst;
    this.#fail(
      worst
        ? new DnsError(worst.code, this.name, worst.detail)
        : new DnsError("timeout", this.name, `no answer within ${this.options.timeoutMs} ms`),
    );
  }

  #fail(error: DnsError): void {
    if (this.#settled) return;
    this.#settle();
    this.#reject(error);
  }

  #settle(): void {
    this.#settled = true;
    for (const cleanup of this.#cleanups) {
      try {
        cleanup();
      } catch {
        // Closing an already closed socket is not worth failing a finished lookup for.
      }
    }
    this.#cleanups.clear();
  }

  #query(ns: Nameserver, bogus: string | undefined): Uint8Array {
    return encodeTxtQuery(
      this.qname,
      randomId(),
      this.options.ednsPayload,
      this.options.recursionDesired,
      // DO only where AD is believed: RRSIGs only make other answers larger.
      { dnssecOk: this.#dnssecMode(ns) === "trusted", checkingDisabled: bogus !== undefined },
    );
  }

  #udpTry(ns: Nameserver, bogus: string | undefined): void {
    const query = this.#query(ns, bogus);
    let done = false;
    let socket: dgram.Socket;
    try {
      socket = dgram.createSocket(ns.family === 4 ? "udp4" : "udp6");
    } catch (error) {
      this.#onOutcome(ns, failure("network", `cannot open socket: ${error}`), "udp", bogus);
      return;
    }
    const close = () => {
      if (done) return;
      done = true;
      this.#cleanups.delete(close);
      socket.removeAllListeners("message");
      socket.close();
    };
    this.#cleanups.add(close);
    socket.on("error", (error: Error) => {
      if (done) return;
      close();
      this.#onOutcome(ns, failure("network", error.message), "udp", bogus);
    });
    socket.on("message", (message: Buffer, rinfo: dgram.RemoteInfo) => {
      if (done) return;
      // RFC 5452 §9.1: an answer from another address or port, or to another ID or question,
      // is a spoofing attempt or a stale answer; ignore it and keep waiting.
      if (rinfo.port !== ns.port || parseIpAddress(rinfo.address)?.address !== ns.address) {
        return;
      }
      const bytes = new Uint8Array(message.buffer, message.byteOffset, message.byteLength);
      if (!answersQuery(query, bytes)) return;
      close();
      const outcome = bytes.length > this.options.maxResponseBytes
        ? failure("malformed", tooLarge(bytes.length, this.options.maxResponseBytes))
        : interpret(this.qname, bytes, "udp", this.options.maxAnswerBytes, this.#dnssecMode(ns));
      this.#onOutcome(ns, outcome, "udp", bogus);
    });
    const sendFailed = (error: Error) => {
      if (done) return;
      close();
      this.#onOutcome(ns, failure("network", error.message), "udp", bogus);
    };
    try {
      socket.send(query, ns.port, ns.address, (error: Error | null) => {
        if (error) sendFailed(error);
      });
    } catch (error) {
      sendFailed(error as Error);
    }
  }

  #tcpTry(ns: Nameserver, bogus: string | undefined): void {
    const query = this.#query(ns, bogus);
    tcpExchange(ns, query, this.options.maxResponseBytes, (close) => {
      if (this.#settled) {
        close();
        return false;
      }
      this.#cleanups.add(close);
      return true;
    }).then(
      (bytes) => {
        if (this.#settled) return;
        const outcome = answersQuery(query, bytes)
          ? interpret(this.qname, bytes, "tcp", this.options.maxAnswerBytes, this.#dnssecMode(ns))
          : failure("malformed", "TCP answer does not match the query");
        this.#onOutcome(ns, outcome, "tcp", bogus);
      },
      (error) => {
        if (this.#settled) return;
        this.#onOutcome(
          ns,
          error instanceof TryFailure
            ? failure(error.code, error.message)
            : failure("network", `TCP: ${(error as Error).message}`),
          "tcp",
          bogus,
        );
      },
    );
  }
}

/**
 * Sends `query` over TCP with the 2-byte length prefix (RFC 1035 §4.2.2) and reads one answer
 * of at most `maxBytes`. `register` receives the close function once connected and returns false
 * when the lookup is already over.
 */
async function tcpExchange(
  ns: Nameserver,
  query: Uint8Array,
  maxBytes: number,
  register: (close: () => void) => boolean,
): Promise<Uint8Array> {
  const conn = await Deno.connect({ hostname: ns.address, port: ns.port, transport: "tcp" });
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    conn.close();
  };
  if (!register(close)) throw new TryFailure("timeout", "lookup already over");
  try {
    const framed = new Uint8Array(2 + query.length);
    framed[0] = query.length >> 8;
    framed[1] = query.length & 0xff;
    framed.set(query, 2);
    for (let written = 0; written < framed.length;) {
      written += await conn.write(framed.subarray(written));
    }
    const prefix = await readExactly(conn, 2);
    const length = (prefix[0] << 8) | prefix[1];
    if (length > maxBytes) {
      throw new TryFailure("malformed", `TCP ${tooLarge(length, maxBytes)}`);
    }
    return await readExactly(conn, length);
  } finally {
    close();
  }
}

function tooLarge(length: number, limit: number): string {
  return `answer of ${length} bytes exceeds the limit of ${limit}`;
}

async function readExactly(conn: Deno.Conn, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let filled = 0;
  while (filled < length) {
    const n = await conn.read(out.subarray(filled));
    if (n === null) {
      throw new TryFailure("network", "TCP connection closed before the whole answer");
    }
    filled += n;
  }
  return out;
}
