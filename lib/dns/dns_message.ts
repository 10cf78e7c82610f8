/**
 * The DNS wire format (RFC 1035 §4.1, EDNS0 RFC 6891), as much of it as a TXT lookup needs: the
 * query (one TXT question and an OPT record), and a reader of a response's header and resource
 * records that decodes TXT, CNAME, NS, SOA and OPT and skips the rest. Our own, rather than the
 * npm `dns-packet` package: loading any npm package costs a Deno process about 10 MiB of
 * resident memory (the npm resolver and Node's module loader), a tenth of the service's budget.
 *
 * @module
 */

/** Resource record types the stub resolver reads (RFC 1035 §3.2.2, RFC 6891 §6.1.1). */
export const RR_TYPE = { NS: 2, CNAME: 5, SOA: 6, TXT: 16, OPT: 41 } as const;

/** The Internet class. */
export const CLASS_IN = 1;

/** The header's size in bytes. */
export const DNS_HEADER_BYTES = 12;

/** The RD bit: ask the server to recurse. */
const FLAG_RD = 0x0100;

/**
 * The AD bit of a response (RFC 4035 §3.2.3): the resolver validated every record of the answer
 * with DNSSEC. It says so only as far as the path from that resolver can be trusted.
 */
export const FLAG_AD = 0x0020;

/** The CD bit of a query (RFC 4035 §3.2.2): return the data even when it fails validation. */
export const FLAG_CD = 0x0010;

/** The DO bit in the OPT record's TTL field (RFC 3225 §3): the client wants DNSSEC. */
const OPT_DO = 0x8000;

/** EDNS option code of an Extended DNS Error (RFC 8914 §2). */
export const EDNS_OPTION_EDE = 15;

/** Most compression pointers followed in one name: more means a loop. */
const MAX_POINTERS = 64;

/** RFC 1035 §2.3.4: a name is at most 255 bytes on the wire. */
const MAX_NAME_BYTES = 255;

/** A response that cannot be read: cut short, or with a bad name. */
export class DnsMessageError extends SyntaxError {
  /** Says what is wrong. */
  constructor(message: string) {
    super(message);
    this.name = "DnsMessageError";
  }
}

/** What a record holds, for the types the resolver reads. */
export type RecordData =
  | { readonly type: "TXT"; readonly strings: readonly Uint8Array[] }
  | { readonly type: "CNAME" | "NS"; readonly target: string }
  | { readonly type: "SOA"; readonly minimum: number }
  | {
    readonly type: "OPT";
    readonly extendedRcode: number;
    /** The DO bit (RFC 3225): the sender understands DNSSEC. */
    readonly dnssecOk: boolean;
    /** The Extended DNS Errors it carries (RFC 8914), in order. */
    readonly extendedErrors: readonly ExtendedDnsError[];
  }
  | { readonly type: "other"; readonly code: number };

/** An Extended DNS Error (RFC 8914 §2): its INFO-CODE and the EXTRA-TEXT, if any. */
export interface ExtendedDnsError {
  /** The INFO-CODE (RFC 8914 §4: 6 "DNSSEC Bogus", 7 "Signature Expired", ...). */
  readonly code: number;
  /** The EXTRA-TEXT, UTF-8 decoded; empty when absent. */
  readonly text: string;
}

/** Header flags a query may set besides RD. */
export interface QueryFlags {
  /** Set DO in the OPT record (RFC 3225): ask for DNSSEC, and for the AD bit. */
  readonly dnssecOk?: boolean;
  /** Set CD (RFC 4035 §3.2.2): the data even if it fails validation. */
  readonly checkingDisabled?: boolean;
}

/** One resource record. */
export interface ResourceRecord {
  /** The owner name, labels joined by dots, bytes read as Latin-1, no trailing dot. */
  readonly name: string;
  /** The class (1 for IN; the UDP payload size for OPT). */
  readonly class: number;
  /** The TTL as sent, unsigned. */
  readonly ttl: number;
  readonly data: RecordData;
}

/** A response, read. */
export interface DnsMessage {
  readonly id: number;
  /** The 16 flag bits of the header, RCODE included. */
  readonly flags: number;
  readonly answers: readonly ResourceRecord[];
  readonly authorities: readonly ResourceRecord[];
  readonly additionals: readonly ResourceRecord[];
}

/**
 * The query for the TXT records at `name` (ASCII, without the trailing dot), with recursion
 * desired (unless `recursionDesired` is false, to ask an authoritative server for its own data)
 * and an OPT record offering `udpPayloadSize`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeMessage, encodeTxtQuery } from "./dns_message.ts";
 * const q = encodeTxtQuery("s._domainkey.example.com", 0x1234, 1232);
 * const m = decodeMessage(q);
 * assert.equal(m.id, 0x1234);
 * assert.equal(m.additionals[0].class, 1232);
 * assert.equal(encodeTxtQuery("example.com", 1, 512, false)[2] & 0x01, 0); // RD clear
 * const dnssec = decodeMessage(encodeTxtQuery("example.com", 1, 512, true, { dnssecOk: true }));
 * assert.equal(dnssec.additionals[0].data.type === "OPT" && dnssec.additionals[0].data.dnssecOk, true);
 * ```
 */
export function encodeTxtQuery(
  name: string,
  id: number,
  udpPayloadSize: number,
  recursionDesired = true,
  flags: QueryFlags = {},
): Uint8Array {
  const labels = name === "" ? [] : name.split(".");
  let nameBytes = 1;
  for (const l of labels) nameBytes += 1 + l.length;
  const out = new Uint8Array(DNS_HEADER_BYTES + nameBytes + 4 + 11);
  const view = new DataView(out.buffer);
  view.setUint16(0, id);
  view.setUint16(2, (recursionDesired ? FLAG_RD : 0) | (flags.checkingDisabled ? FLAG_CD : 0));
  view.setUint16(4, 1); // QDCOUNT
  view.setUint16(10, 1); // ARCOUNT: the OPT record
  let i = DNS_HEADER_BYTES;
  for (const l of labels) {
    out[i++] = l.length;
    for (let k = 0; k < l.length; k++) out[i++] = l.charCodeAt(k);
  }
  out[i++] = 0;
  view.setUint16(i, RR_TYPE.TXT);
  view.setUint16(i + 2, CLASS_IN);
  i += 4;
  // OPT (RFC 6891 §6.1.2): root name, type, UDP payload size as class, TTL 0 but for the DO
  // bit, no options.
  out[i] = 0;
  view.setUint16(i + 1, RR_TYPE.OPT);
  view.setUint16(i + 3, udpPayloadSize);
  if (flags.dnssecOk) view.setUint16(i + 7, OPT_DO);
  return out;
}

/**
 * Reads a DNS message: its header and every record. Throws {@link DnsMessageError} when it ends
 * inside a record, a record's data overruns its length, or a name is malformed (an unknown label
 * type, a pointer loop, over 255 bytes).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeMessage, DnsMessageError, encodeTxtQuery } from "./dns_message.ts";
 * const q = encodeTxtQuery("example.com", 7, 512);
 * assert.throws(() => decodeMessage(q.subarray(0, q.length - 3)), DnsMessageError);
 * ```
 */
export function decodeMessage(bytes: Uint8Array): DnsMessage {
  const r = new Reader(bytes);
  const id = r.u16();
  const flags = r.u16();
  const qd = r.u16();
  const an = r.u16();
  const ns = r.u16();
  const ar = r.u16();
  for (let i = 0; i < qd; i++) {
    r.name();
    r.skip(4);
  }
  const records = (n: number) => {
    const out: ResourceRecord[] = [];
    for (let i = 0; i < n; i++) out.push(r.record());
    return out;
  };
  const answers = records(an);
  const authorities = records(ns);
  const additionals = records(ar);
  return { id, flags, answers, authorities, additionals };
}

class Reader {
  #at = 0;
  constructor(readonly bytes: Uint8Array) {}

  #need(n: number, at = this.#at): void {
    if (at + n > this.bytes.length) throw new DnsMessageError("the message ends inside a record");
  }

  u8(): number {
    this.#need(1);
    return this.bytes[this.#at++];
  }

  u16(): number {
    this.#need(2);
    const b = this.bytes;
    const v = (b[this.#at] << 8) | b[this.#at + 1];
    this.#at += 2;
    return v;
  }

  u32(): number {
    return ((this.u16() << 16) >>> 0) + this.u16();
  }

  skip(n: number): void {
    this.#need(n);
    this.#at += n;
  }

  /** A name at the cursor, following compression pointers (RFC 1035 §4.1.4). */
  name(): string {
    const b = this.bytes;
    const labels: string[] = [];
    let at = this.#at;
    let jumped = false;
    let pointers = 0;
    let length = 1;
    for (;;) {
      this.#need(1, at);
      const len = b[at];
      if (len === 0) {
        at++;
        break;
      }
      const kind = len & 0xc0;
      if (kind === 0xc0) {
        this.#need(2, at);
        if (++pointers > MAX_POINTERS) throw new DnsMessageError("a name's pointers loop");
        const target = ((len & 0x3f) << 8) | b[at + 1];
        if (!jumped) this.#at = at + 2;
        jumped = true;
        at = target;
        continue;
      }
      if (kind !== 0) throw new DnsMessageError(`unknown label type 0x${kind.toString(16)}`);
      this.#need(1 + len, at);
      length += 1 + len;
      if (length > MAX_NAME_BYTES) throw new DnsMessageError("a name is over 255 bytes");
      labels.push(String.fromCharCode(...b.subarray(at + 1, at + 1 + len)));
      at += 1 + len;
    }
    if (!jumped) this.#at = at;
    return labels.join(".");
  }

  /** The Extended DNS Errors among the EDNS options up to `end` (RFC 6891 §6.1.2). */
  extendedErrors(end: number): ExtendedDnsError[] {
    const out: ExtendedDnsError[] = [];
    while (this.#at + 4 <= end) {
      const code = this.u16();
      const length = this.u16();
      if (this.#at + length > end) throw new DnsMessageError("an EDNS option overruns its record");
      if (code === EDNS_OPTION_EDE && length >= 2) {
        const info = (this.bytes[this.#at] << 8) | this.bytes[this.#at + 1];
        const text = new TextDecoder().decode(this.bytes.subarray(this.#at + 2, this.#at + length));
        out.push({ code: info, text });
      }
      this.#at += length;
    }
    return out;
  }

  record(): ResourceRecord {
    const name = this.name();
    const type = this.u16();
    const cls = this.u16();
    const ttl = this.u32();
    const rdlength = this.u16();
    this.#need(rdlength);
    const start = this.#at;
    const end = start + rdlength;
    let data: RecordData;
    switch (type) {
      case RR_TYPE.TXT: {
        const strings: Uint8Array[] = [];
        while (this.#at < end) {
          const len = this.u8();
          if (this.#at + len > end) throw new DnsMessageError("a TXT string overruns its record");
          strings.push(this.bytes.subarray(this.#at, this.#at + len));
          this.#at += len;
        }
        data = { type: "TXT", strings };
        break;
      }
      case RR_TYPE.CNAME:
      case RR_TYPE.NS:
        data = { type: type === RR_TYPE.CNAME ? "CNAME" : "NS", target: this.name() };
        break;
      case RR_TYPE.SOA: {
        this.name(); // MNAME
        this.name(); // RNAME
        this.skip(16); // SERIAL, REFRESH, RETRY, EXPIRE
        data = { type: "SOA", minimum: this.u32() };
        break;
      }
      case RR_TYPE.OPT:
        data = {
          type: "OPT",
          extendedRcode: ttl >>> 24,
          dnssecOk: (ttl & OPT_DO) !== 0,
          extendedErrors: this.extendedErrors(end),
        };
        break;
      default:
        data = { type: "other", code: type };
    }
    if (this.#at > end) throw new DnsMessageError("a record's data overruns its length");
    this.#at = end;
    return { name, class: cls, ttl, data };
  }
}
