/**
 * DNS UPDATE (RFC 2136) signed with TSIG (RFC 8945), as much of it as publishing a DKIM key
 * record needs: replace or delete the TXT RRset at one name, or remove one TXT record, in one
 * zone, with no prerequisites. The request is signed with HMAC (RFC 8945 §4.3.3: the message,
 * then the TSIG variables), the server's answer must carry a MAC over the request's MAC and the
 * answer (§4.3.2, §5.3), and every refusal becomes a {@link DnsUpdateError} that says what to fix.
 *
 * The wire format is our own, like the stub resolver's (`dns_message.ts` says why: no npm module
 * in the service's process); names are written uncompressed, which every server reads.
 *
 * @module
 */

import dgram from "node:dgram";
import { Buffer } from "node:buffer";
import { createHmac, timingSafeEqual } from "node:crypto";
import { asciiLower, concat, fromLatin1 } from "../bytes.ts";
import { CLASS_IN, DNS_HEADER_BYTES, RR_TYPE } from "./dns_message.ts";
import { formatNameserver, type Nameserver } from "./nameserver.ts";
import { TSIG_ALGORITHMS, type TsigKey } from "./tsig_key.ts";

/** Time for the whole exchange, connection included: updates are rare, so generous. */
export const UPDATE_TIMEOUT_MS_DEFAULT = 10_000;

/** RFC 8945 §5.2.3's recommended fudge: the clock skew allowed between us and the server. */
export const TSIG_FUDGE_SECONDS = 300;

/**
 * Largest message sent over UDP: the RFC 1035 §4.2.1 limit, which needs no EDNS0. Larger
 * updates (a 2048-bit RSA key record is about 500 bytes with its TSIG) go over TCP.
 */
export const UPDATE_UDP_MAX_BYTES = 512;

/** Most bytes of one TXT character-string (RFC 1035 §3.3.14). */
export const TXT_STRING_MAX_BYTES = 255;

/** The UPDATE opcode (RFC 2136 §1.3). */
const OPCODE_UPDATE = 5;
/** The TSIG record type (RFC 8945 §4.2). */
const TYPE_TSIG = 250;
/** Class ANY: "delete an RRset" in an update (RFC 2136 §2.5.2), and the TSIG record's class. */
const CLASS_ANY = 255;
/** Class NONE: "delete one RR" (RFC 2136 §2.5.4). */
const CLASS_NONE = 254;

/** RCODEs (RFC 1035 §4.1.1, RFC 2136 §2.2) and TSIG errors (RFC 8945 §3) by value. */
const RCODE_NAMES: Readonly<Record<number, string>> = {
  0: "NOERROR",
  1: "FORMERR",
  2: "SERVFAIL",
  3: "NXDOMAIN",
  4: "NOTIMP",
  5: "REFUSED",
  6: "YXDOMAIN",
  7: "YXRRSET",
  8: "NXRRSET",
  9: "NOTAUTH",
  10: "NOTZONE",
  16: "BADSIG",
  17: "BADKEY",
  18: "BADTIME",
  22: "BADTRUNC",
};

/** One change to the zone. Names are absolute, without the trailing dot. */
export type UpdateChange =
  /** Replace the TXT RRset at `name` with these records (a delete of the RRset, then adds). */
  | {
    readonly op: "replace-txt";
    readonly name: string;
    readonly ttl: number;
    readonly records: readonly string[];
  }
  /** Delete every TXT record at `name` (RFC 2136 §2.5.2). */
  | { readonly op: "delete-txt"; readonly name: string }
  /** Delete the one TXT record `record` at `name` (RFC 2136 §2.5.4). */
  | { readonly op: "delete-txt-record"; readonly name: string; readonly record: string };

/** Why an update failed. */
export type DnsUpdateErrorCode =
  | "refused"
  | "notauth"
  | "notzone"
  | "badsig"
  | "badkey"
  | "badtime"
  | "unsigned"
  | "badmac"
  | "servfail"
  | "rcode"
  | "timeout"
  | "network"
  | "malformed";

/** An update the server did not apply, or whose outcome cannot be trusted. */
export class DnsUpdateError extends Error {
  /** What went wrong, for callers that act on it. */
  readonly code: DnsUpdateErrorCode;

  /** Makes the error; `message` is the whole sentence. */
  constructor(code: DnsUpdateErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DnsUpdateError";
    this.code = code;
  }
}

/**
 * Splits a TXT record's text into character-strings of at most 255 bytes (RFC 1035 §3.3.14),
 * as a DKIM key record longer than one string must be published (RFC 6376 §3.6.2.2: verifiers
 * join them). The text must be ASCII: key records are.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { txtStrings } from "./update.ts";
 * const parts = txtStrings("v=DKIM1; p=" + "A".repeat(400));
 * assert.deepEqual(parts.map((p) => p.length), [255, 156]);
 * assert.deepEqual(txtStrings(""), [new Uint8Array(0)]);
 * ```
 */
export function txtStrings(text: string): Uint8Array[] {
  if (!/^[\x20-\x7e]*$/.test(text)) {
    throw new RangeError("Cannot publish a TXT record with non-ASCII or control characters");
  }
  const bytes = fromLatin1(text);
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += TXT_STRING_MAX_BYTES) {
    out.push(bytes.subarray(i, i + TXT_STRING_MAX_BYTES));
  }
  return out.length > 0 ? out : [new Uint8Array(0)];
}

/** Appends wire-format pieces. */
class Writer {
  readonly parts: Uint8Array[] = [];
  u8(v: number): void {
    this.parts.push(Uint8Array.of(v));
  }
  u16(v: number): void {
    this.parts.push(Uint8Array.of(v >> 8, v & 0xff));
  }
  u32(v: number): void {
    this.parts.push(Uint8Array.of(v >>> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff));
  }
  /** A 48-bit unsigned integer (TSIG's Time Signed). */
  u48(v: number): void {
    const high = Math.floor(v / 2 ** 32);
    this.u16(high);
    this.u32(v - high * 2 ** 32);
  }
  bytes(b: Uint8Array): void {
    this.parts.push(b);
  }
  /** A name, uncompressed (RFC 1035 §3.1); `canonical` lowers it (RFC 8945 §4.3.3). */
  name(name: string, canonical = false): void {
    const bare = name.endsWith(".") ? name.slice(0, -1) : name;
    const text = canonical ? asciiLower(bare) : bare;
    let length = 1;
    for (const label of text === "" ? [] : text.split(".")) {
      if (label.length === 0 || label.length > 63 || !/^[\x21-\x7e]+$/.test(label)) {
        throw new RangeError(`Cannot write the DNS name "${name}": bad label "${label}"`);
      }
      length += 1 + label.length;
      this.u8(label.length);
      this.bytes(fromLatin1(label));
    }
    if (length > 255) throw new RangeError(`Cannot write the DNS name "${name}": too long`);
    this.u8(0);
  }
  /** A resource record whose RDATA is `rdata`. */
  record(name: string, type: number, cls: number, ttl: number, rdata: Uint8Array): void {
    this.name(name);
    this.u16(type);
    this.u16(cls);
    this.u32(ttl);
    this.u16(rdata.length);
    this.bytes(rdata);
  }
  done(): Uint8Array {
    return concat(this.parts);
  }
}

function txtRdata(text: string): Uint8Array {
  const w = new Writer();
  for (const s of txtStrings(text)) {
    w.u8(s.length);
    w.bytes(s);
  }
  return w.done();
}

function inZone(name: string, zone: string): boolean {
  const n = asciiLower(name.replace(/\.$/, ""));
  const z = asciiLower(zone.replace(/\.$/, ""));
  return n === z || n.endsWith(`.${z}`);
}

/**
 * The UPDATE message (RFC 2136 §2) for `changes` in `zone`, unsigned: one zone record (SOA, IN),
 * no prerequisites, the changes in order in the update section, no additional records.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeUpdate } from "./update.ts";
 * const m = encodeUpdate("example.com", [
 *   { op: "replace-txt", name: "s1._domainkey.example.com", ttl: 300, records: ["v=DKIM1; p="] },
 * ], 0x1234);
 * assert.equal(m[2] >> 3, 5); // opcode UPDATE
 * assert.deepEqual([...m.subarray(4, 12)], [0, 1, 0, 0, 0, 2, 0, 0]); // 1 zone, 2 updates
 * assert.throws(() => encodeUpdate("example.com", [{ op: "delete-txt", name: "x.example.org" }], 1), RangeError);
 * ```
 */
export function encodeUpdate(
  zone: string,
  changes: readonly UpdateChange[],
  id: number,
): Uint8Array {
  const updates = new Writer();
  let count = 0;
  for (const change of changes) {
    if (!inZone(change.name, zone)) {
      throw new RangeError(`Cannot update "${change.name}": it is not inside the zone "${zone}"`);
    }
    switch (change.op) {
      case "replace-txt":
        updates.record(change.name, RR_TYPE.TXT, CLASS_ANY, 0, new Uint8Array(0));
        count++;
        for (const text of change.records) {
          updates.record(change.name, RR_TYPE.TXT, CLASS_IN, change.ttl, txtRdata(text));
          count++;
        }
        break;
      case "delete-txt":
        updates.record(change.name, RR_TYPE.TXT, CLASS_ANY, 0, new Uint8Array(0));
        count++;
        break;
      case "delete-txt-record":
        updates.record(change.name, RR_TYPE.TXT, CLASS_NONE, 0, txtRdata(change.record));
        count++;
        break;
    }
  }
  const w = new Writer();
  w.u16(id);
  w.u16(OPCODE_UPDATE << 11);
  w.u16(1); // ZOCOUNT
  w.u16(0); // PRCOUNT
  w.u16(count); // UPCOUNT
  w.u16(0); // ADCOUNT
  w.name(zone);
  w.u16(RR_TYPE.SOA);
  w.u16(CLASS_IN);
  w.bytes(updates.done());
  return w.done();
}

/** The TSIG variables of RFC 8945 §4.3.3, which the MAC covers after the message. */
function tsigVariables(
  key: TsigKey,
  timeSigned: number,
  fudge: number,
  error: number,
  other: Uint8Array,
): Uint8Array {
  const w = new Writer();
  w.name(key.name, true);
  w.u16(CLASS_ANY);
  w.u32(0); // TTL
  w.name(key.algorithm, true);
  w.u48(timeSigned);
  w.u16(fudge);
  w.u16(error);
  w.u16(other.length);
  w.bytes(other);
  return w.done();
}

function hmac(key: TsigKey, parts: readonly Uint8Array[]): Uint8Array {
  const h = createHmac(TSIG_ALGORITHMS[key.algorithm], key.secret);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/** A message with its TSIG record, and the MAC the response's MAC must cover. */
export interface SignedMessage {
  /** The message with the TSIG record appended and ARCOUNT raised by one. */
  readonly bytes: Uint8Array;
  /** The request's MAC. */
  readonly mac: Uint8Array;
}

/**
 * Signs a request with TSIG (RFC 8945 §4.3.3): the MAC covers the message as it is, then the
 * TSIG variables; the TSIG record goes last in the additional section.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeUpdate, signRequest } from "./update.ts";
 * const key = { name: "k", algorithm: "hmac-sha256" as const, secret: new Uint8Array(32) };
 * const m = encodeUpdate("example.com", [{ op: "delete-txt", name: "s._domainkey.example.com" }], 9);
 * const signed = signRequest(m, key, 1_700_000_000);
 * assert.equal(signed.mac.length, 32);
 * assert.equal(signed.bytes[11], 1); // ARCOUNT
 * ```
 */
export function signRequest(
  message: Uint8Array,
  key: TsigKey,
  timeSigned: number,
  fudge: number = TSIG_FUDGE_SECONDS,
): SignedMessage {
  const none = new Uint8Array(0);
  const mac = hmac(key, [message, tsigVariables(key, timeSigned, fudge, 0, none)]);
  const rdata = new Writer();
  rdata.name(key.algorithm);
  rdata.u48(timeSigned);
  rdata.u16(fudge);
  rdata.u16(mac.length);
  rdata.bytes(mac);
  rdata.bytes(message.subarray(0, 2)); // Original ID
  rdata.u16(0); // Error
  rdata.u16(0); // Other Len
  const tsig = new Writer();
  tsig.record(key.name, TYPE_TSIG, CLASS_ANY, 0, rdata.done());
  const bytes = concat([message, tsig.done()]);
  const arcount = ((bytes[10] << 8) | bytes[11]) + 1;
  bytes[10] = arcount >> 8;
  bytes[11] = arcount & 0xff;
  return { bytes, mac };
}

/** What a TSIG record in a response says. */
interface ResponseTsig {
  readonly start: number;
  readonly name: string;
  readonly algorithm: string;
  readonly timeSigned: number;
  readonly fudge: number;
  readonly mac: Uint8Array;
  readonly originalId: number;
  readonly error: number;
  readonly other: Uint8Array;
}

/** Walks a response far enough to find its last record and read it if it is a TSIG. */
class Walker {
  at = 0;
  constructor(readonly b: Uint8Array) {}
  need(n: number): void {
    if (this.at + n > this.b.length) {
      throw new DnsUpdateError("malformed", "the server's answer is cut short");
    }
  }
  u16(): number {
    this.need(2);
    const v = (this.b[this.at] << 8) | this.b[this.at + 1];
    this.at += 2;
    return v;
  }
  /** A name, with compression pointers followed for its text (RFC 1035 §4.1.4). */
  name(): string {
    const labels: string[] = [];
    let at = this.at;
    let jumped = false;
    for (let hops = 0; hops < 64; hops++) {
      if (at >= this.b.length) break;
      const len = this.b[at];
      if (len === 0) {
        if (!jumped) this.at = at + 1;
        return labels.join(".");
      }
      if ((len & 0xc0) === 0xc0) {
        if (at + 1 >= this.b.length) break;
        if (!jumped) this.at = at + 2;
        jumped = true;
        at = ((len & 0x3f) << 8) | this.b[at + 1];
        continue;
      }
      if ((len & 0xc0) !== 0 || at + 1 + len > this.b.length) break;
      labels.push(String.fromCharCode(...this.b.subarray(at + 1, at + 1 + len)));
      at += 1 + len;
    }
    throw new DnsUpdateError("malformed", "the server's answer has a malformed name");
  }
}

/** Reads the response's header counts and its TSIG record, if the last record is one. */
function findTsig(response: Uint8Array): ResponseTsig | undefined {
  if (response.length < DNS_HEADER_BYTES) {
    throw new DnsUpdateError("malformed", "the server's answer is shorter than a DNS header");
  }
  const r = new Walker(response);
  r.at = 4;
  const zo = r.u16();
  const records = r.u16() + r.u16() + r.u16();
  for (let i = 0; i < zo; i++) {
    r.name();
    r.need(4);
    r.at += 4;
  }
  let last = -1;
  let lastType = 0;
  for (let i = 0; i < records; i++) {
    last = r.at;
    r.name();
    lastType = r.u16();
    r.need(8);
    r.at += 6;
    const rdlength = r.u16();
    r.need(rdlength);
    if (i < records - 1) r.at += rdlength;
  }
  if (last < 0 || lastType !== TYPE_TSIG) return undefined;
  const t = new Walker(response);
  t.at = last;
  const name = t.name();
  t.at += 10; // type, class, TTL, RDLENGTH
  const algorithm = t.name();
  t.need(6);
  const timeSigned = t.u16() * 2 ** 32 + ((t.u16() << 16) >>> 0) + t.u16();
  const fudge = t.u16();
  const macSize = t.u16();
  t.need(macSize);
  const mac = response.subarray(t.at, t.at + macSize);
  t.at += macSize;
  const originalId = t.u16();
  const error = t.u16();
  const otherLen = t.u16();
  t.need(otherLen);
  const other = response.subarray(t.at, t.at + otherLen);
  return { start: last, name, algorithm, timeSigned, fudge, mac, originalId, error, other };
}

/** The outcome of checking a signed response. */
export interface VerifiedResponse {
  /** The RCODE (RFC 1035 §4.1.1; an UPDATE response has no OPT, so 4 bits). */
  readonly rcode: number;
}

/**
 * Checks the TSIG of a response to a request signed with `key` whose MAC was `requestMac`
 * (RFC 8945 §5.3): the TSIG error first (BADSIG, BADKEY, BADTIME as the server judged the
 * request), then the MAC over the request MAC, the response without its TSIG (ARCOUNT lowered,
 * the original ID), and the TSIG variables, then the time. Throws {@link DnsUpdateError};
 * returns the RCODE of a response that verifies. `describe` names the server and zone.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DnsUpdateError, verifyResponse } from "./update.ts";
 * const key = { name: "k", algorithm: "hmac-sha256" as const, secret: new Uint8Array(32) };
 * const unsigned = Uint8Array.of(0, 1, 0xa8, 5, 0, 0, 0, 0, 0, 0, 0, 0);
 * assert.throws(() => verifyResponse(unsigned, new Uint8Array(32), key, 0), DnsUpdateError);
 * ```
 */
export function verifyResponse(
  response: Uint8Array,
  requestMac: Uint8Array,
  key: TsigKey,
  nowSeconds: number,
  describe = "the DNS server",
): VerifiedResponse {
  const rcode = response.length >= 4 ? response[3] & 0x0f : -1;
  const tsig = findTsig(response);
  const rcodeName = RCODE_NAMES[rcode] ?? `RCODE ${rcode}`;
  if (!tsig) {
    throw new DnsUpdateError(
      rcode === 5 ? "refused" : rcode === 9 ? "notauth" : "unsigned",
      `${describe} answered ${rcodeName} without a TSIG signature${
        rcode === 9
          ? `: it does not know key "${key.name}" or is not authoritative for the zone`
          : rcode === 5
          ? `: it does not accept updates signed with key "${key.name}" (check its ACL)`
          : ", so its answer cannot be trusted"
      }`,
    );
  }
  if (tsig.error !== 0) {
    const name = RCODE_NAMES[tsig.error] ?? `TSIG error ${tsig.error}`;
    const what: Record<number, [DnsUpdateErrorCode, string]> = {
      16: [
        "badsig",
        `the signature did not verify: the secret of key "${key.name}" differs from the server's`,
      ],
      // Knot also answers BADKEY when it knows the key but no ACL lets it update the zone.
      17: [
        "badkey",
        `the server does not know key "${key.name}" (${key.algorithm}), or no ACL lets that key update this zone`,
      ],
      18: [
        "badtime",
        `the clocks differ by more than ${TSIG_FUDGE_SECONDS} s: check NTP on both hosts`,
      ],
    };
    const [code, why] = what[tsig.error] ?? ["rcode", "the server refused the signature"];
    throw new DnsUpdateError(code, `${describe} answered ${rcodeName}/${name}: ${why}`);
  }
  if (asciiLower(tsig.name) !== key.name || asciiLower(tsig.algorithm) !== key.algorithm) {
    throw new DnsUpdateError(
      "badmac",
      `${describe} signed its answer with key "${tsig.name}" (${tsig.algorithm}), not "${key.name}"`,
    );
  }
  const stripped = response.slice(0, tsig.start);
  const arcount = ((stripped[10] << 8) | stripped[11]) - 1;
  stripped[10] = arcount >> 8;
  stripped[11] = arcount & 0xff;
  stripped[0] = tsig.originalId >> 8;
  stripped[1] = tsig.originalId & 0xff;
  const macLength = Uint8Array.of(requestMac.length >> 8, requestMac.length & 0xff);
  const expected = hmac(key, [
    macLength,
    requestMac,
    stripped,
    tsigVariables(key, tsig.timeSigned, tsig.fudge, tsig.error, tsig.other),
  ]);
  if (
    expected.length !== tsig.mac.length ||
    !timingSafeEqual(Buffer.from(expected), Buffer.from(tsig.mac))
  ) {
    throw new DnsUpdateError(
      "badmac",
      `${describe} answered ${rcodeName} with a TSIG MAC that does not verify: the answer cannot be trusted`,
    );
  }
  if (Math.abs(nowSeconds - tsig.timeSigned) > tsig.fudge) {
    throw new DnsUpdateError(
      "badtime",
      `${describe} signed its answer at ${tsig.timeSigned}, ${
        Math.abs(nowSeconds - tsig.timeSigned)
      } s from our clock: check NTP on both hosts`,
    );
  }
  return { rcode };
}

/** What {@link sendUpdate} sends, where, and how. */
export interface UpdateRequest {
  /** The primary server to send to (`DNSUpdateServer`). */
  readonly server: Nameserver;
  /** The zone apex, without the trailing dot. */
  readonly zone: string;
  /** The changes, applied by the server in order, all or none (RFC 2136 §3.4). */
  readonly changes: readonly UpdateChange[];
  /** The TSIG key to sign with. */
  readonly key: TsigKey;
  /** Time for the whole exchange (default {@link UPDATE_TIMEOUT_MS_DEFAULT}). */
  readonly timeoutMs?: number;
  /** The clock, in milliseconds since the epoch (default `Date.now`). */
  readonly now?: () => number;
  /** "tcp" always, or "auto" (default): UDP for a message of at most 512 bytes, else TCP. */
  readonly transport?: "auto" | "tcp";
}

async function exchangeTcp(server: Nameserver, query: Uint8Array, signal: AbortSignal) {
  const conn = await Deno.connect({ hostname: server.address, port: server.port });
  const abort = () => conn.close();
  signal.addEventListener("abort", abort, { once: true });
  try {
    const framed = concat([Uint8Array.of(query.length >> 8, query.length & 0xff), query]);
    for (let written = 0; written < framed.length;) {
      written += await conn.write(framed.subarray(written));
    }
    const readExactly = async (n: number) => {
      const out = new Uint8Array(n);
      for (let got = 0; got < n;) {
        const k = await conn.read(out.subarray(got));
        if (k === null) throw new DnsUpdateError("network", "the server closed the connection");
        got += k;
      }
      return out;
    };
    const len = await readExactly(2);
    return await readExactly((len[0] << 8) | len[1]);
  } finally {
    signal.removeEventListener("abort", abort);
    try {
      conn.close();
    } catch {
      // Closed by the abort already.
    }
  }
}

function exchangeUdp(
  server: Nameserver,
  query: Uint8Array,
  signal: AbortSignal,
): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(server.family === 6 ? "udp6" : "udp4");
    const finish = (fn: () => void) => {
      signal.removeEventListener("abort", onAbort);
      socket.close();
      fn();
    };
    const onAbort = () => finish(() => reject(signal.reason));
    signal.addEventListener("abort", onAbort, { once: true });
    socket.on("error", (error) => finish(() => reject(error)));
    socket.on("message", (msg, rinfo) => {
      // Only the server's own answer to our ID (RFC 5452 §9.1); others are ignored.
      if (rinfo.port !== server.port || msg.length < 2) return;
      if (msg[0] !== query[0] || msg[1] !== query[1]) return;
      finish(() => resolve(new Uint8Array(msg)));
    });
    socket.send(query, server.port, server.address);
  });
}

/**
 * Sends an UPDATE for `request.changes` to `request.server`, signed with `request.key`, and
 * waits for the server's signed answer. Resolves when the server applied the changes (NOERROR
 * with a valid MAC); otherwise rejects with a {@link DnsUpdateError} whose message names the
 * server, the zone and what to fix: REFUSED (the ACL or update-policy does not allow the key),
 * NOTAUTH (not the zone's primary, or the key unknown), BADSIG (wrong secret), BADKEY, BADTIME
 * (clock skew), a timeout, or an answer that does not verify.
 */
export async function sendUpdate(request: UpdateRequest): Promise<void> {
  const now = request.now ?? Date.now;
  const id = crypto.getRandomValues(new Uint16Array(1))[0];
  const signed = signRequest(
    encodeUpdate(request.zone, request.changes, id),
    request.key,
    Math.floor(now() / 1000),
  );
  const where = `the DNS server ${formatNameserver(request.server)}`;
  const describe = `${where} (zone "${request.zone}")`;
  const timeoutMs = request.timeoutMs ?? UPDATE_TIMEOUT_MS_DEFAULT;
  const signal = AbortSignal.timeout(timeoutMs);
  let response: Uint8Array;
  try {
    const useUdp = (request.transport ?? "auto") === "auto" &&
      signed.bytes.length <= UPDATE_UDP_MAX_BYTES;
    response = useUdp
      ? await exchangeUdp(request.server, signed.bytes, signal)
      : await exchangeTcp(request.server, signed.bytes, signal);
    if (useUdp && response.length >= 3 && (response[2] & 0x02) !== 0) {
      response = await exchangeTcp(request.server, signed.bytes, signal);
    }
  } catch (error) {
    if (error instanceof DnsUpdateError) throw error;
    if (signal.aborted) {
      throw new DnsUpdateError(
        "timeout",
        `${describe} did not answer the update within ${timeoutMs} ms`,
        { cause: error },
      );
    }
    throw new DnsUpdateError(
      "network",
      `Cannot send the update to ${where}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  if (
    response.length < DNS_HEADER_BYTES || response[0] !== signed.bytes[0] ||
    response[1] !== signed.bytes[1] || (response[2] & 0x80) === 0 ||
    ((response[2] >> 3) & 0x0f) !== OPCODE_UPDATE
  ) {
    throw new DnsUpdateError("malformed", `${describe} sent an answer that is not to our update`);
  }
  const { rcode } = verifyResponse(
    response,
    signed.mac,
    request.key,
    Math.floor(now() / 1000),
    describe,
  );
  if (rcode === 0) return;
  const name = RCODE_NAMES[rcode] ?? `RCODE ${rcode}`;
  const why: Record<number, [DnsUpdateErrorCode, string]> = {
    5: [
      "refused",
      `its ACL or update-policy does not let key "${request.key.name}" update this zone`,
    ],
    9: ["notauth", "it is not the primary of this zone (point DNSUpdateServer at the primary)"],
    10: ["notzone", "a name is outside the zone"],
    2: ["servfail", "the server failed to apply it (see its log)"],
  };
  const [code, detail] = why[rcode] ?? ["rcode", "the update was not applied"];
  throw new DnsUpdateError(code, `${describe} answered ${name}: ${detail}`);
}
