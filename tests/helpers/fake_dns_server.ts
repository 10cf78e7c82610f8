/**
 * A real UDP and TCP DNS server on loopback whose every answer a test chooses: TXT records,
 * any RCODE, NODATA, silence, delay, truncation, garbage, spoofed answers, oversized TCP
 * answers. It records the queries it received so tests can assert on transport and retries.
 *
 * @module
 */

import dgram from "node:dgram";
import { Buffer } from "node:buffer";
// @ts-types="@types/dns-packet"
import * as dnsPacket from "dns-packet";
import { asciiLower, fromLatin1 } from "../../lib/bytes.ts";

/** RCODEs the fake server can answer with. */
export type FakeRcode = "NOERROR" | "FORMERR" | "SERVFAIL" | "NXDOMAIN" | "NOTIMP" | "REFUSED";

/** How the server answers queries for one name. Options combine. */
export interface FakeAnswer {
  /**
   * TXT records. A string is one record, sent as latin1 bytes split into 255-byte
   * character-strings; an array gives the character-strings explicitly. An empty list (or no
   * `txt` and no `cname`) answers NODATA.
   */
  txt?: readonly (string | readonly string[])[];
  /**
   * TXT records made for the name asked, in place of `txt`: with a wildcard owner (`*.example`),
   * a different record for every name below it.
   */
  txtFor?: (name: string) => readonly (string | readonly string[])[];
  /** TTL of the records (default 300). */
  ttl?: number;
  /** Answer with a CNAME to this name, followed by the target's records when it is in the zone. */
  cname?: string;
  /** The RCODE (default NOERROR). NXDOMAIN and NOERROR without records carry an SOA. */
  rcode?: FakeRcode;
  /** The SOA in negative answers (default TTL 300, MINIMUM 60); `false` leaves it out. */
  soa?: { ttl: number; minimum: number } | false;
  /** Never answer, over UDP or TCP. */
  drop?: boolean;
  /** Answer after this many milliseconds. */
  delayMs?: number;
  /** Over UDP, answer with only the TC bit set, so the client must ask again over TCP. */
  truncateUdp?: boolean;
  /**
   * Send garbage: `random` bytes that are no DNS message at all, or `records`: the right
   * header and question followed by a record that runs past the end of the message.
   */
  garbage?: "random" | "records";
  /**
   * Over UDP, first send a wrong answer with the TXT record "spoofed": with another `id`,
   * another `question` name, or from another source `port`; then the right answer.
   */
  spoof?: "id" | "question" | "port";
  /** Over TCP, announce a 65535-byte answer and send that many zero bytes. */
  oversizedTcp?: boolean;
  /** Answer as a non-recursive server that does not hold the name: NS records, no answer. */
  referral?: boolean;
  /** Send whatever bytes this returns for the query's bytes, over UDP and TCP. */
  raw?: (query: Uint8Array) => Uint8Array;
  /**
   * Hold the answer to the first query for this name until this many queries for it came,
   * then answer only that first one: a late answer to an earlier try, without timing.
   */
  answerFirstAfter?: number;
}

/**
 * Names (case-insensitive, no trailing dot) and how to answer them; unknown names are NXDOMAIN.
 * An owner `*.suffix` answers for every name below `suffix` not in the zone itself (RFC 4592).
 */
export type FakeZone = Record<string, FakeAnswer>;

/** One query the server received. */
export interface FakeQuery {
  /** The question name as sent, or "" when the query could not be parsed. */
  readonly name: string;
  /** The question type, such as "TXT". */
  readonly type: string;
  /** How it came. */
  readonly transport: "udp" | "tcp";
}

/** Options for {@link startFakeDnsServer}. */
export interface FakeDnsServerOptions {
  /** The loopback address to listen on: "127.0.0.1" (default) or "::1". */
  address?: string;
}

/** A running fake server. */
export interface FakeDnsServer {
  /** The port, the same for UDP and TCP. */
  readonly port: number;
  /** The address listened on. */
  readonly address: string;
  /** The zone; tests may change it while the server runs. */
  readonly zone: FakeZone;
  /** Queries received, in order. */
  readonly queries: FakeQuery[];
  /** Stops listening and closes every socket, connection and timer. */
  close(): Promise<void>;
}

const RCODES: Record<FakeRcode, number> = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
};
/** Largest TCP query read: a query is one question; this bounds a confused client. */
const MAX_TCP_QUERY_BYTES = 4096;
/** UDP payload without EDNS (RFC 1035 §4.2.1). */
const CLASSIC_UDP_PAYLOAD = 512;

function splitCharacterStrings(record: string | readonly string[]): Buffer[] {
  if (typeof record !== "string") return record.map((s) => Buffer.from(fromLatin1(s)));
  const bytes = fromLatin1(record);
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 255) parts.push(Buffer.from(bytes.subarray(i, i + 255)));
  return parts.length > 0 ? parts : [Buffer.alloc(0)];
}

function key(name: string): string {
  return asciiLower(name.endsWith(".") ? name.slice(0, -1) : name);
}

/** The answer for `name`: its own, else the closest wildcard above it (RFC 4592). */
function lookup(zone: FakeZone, name: string): FakeAnswer | undefined {
  const k = key(name);
  if (zone[k]) return zone[k];
  for (let dot = k.indexOf("."); dot !== -1; dot = k.indexOf(".", dot + 1)) {
    const wildcard = zone[`*${k.slice(dot)}`];
    if (wildcard) return wildcard;
  }
  return undefined;
}

function buildResponse(
  zone: FakeZone,
  query: dnsPacket.DecodedPacket,
  spec: FakeAnswer | undefined,
): dnsPacket.Packet {
  const question = query.questions![0];
  const answers: dnsPacket.Answer[] = [];
  let rcode = spec ? RCODES[spec.rcode ?? "NOERROR"] : RCODES.NXDOMAIN;
  let current = spec;
  let owner = question.name;
  let finalHasTxt = false;
  for (let hops = 0; current && hops < 20; hops++) {
    const records = current.txtFor?.(owner) ?? current.txt ?? [];
    finalHasTxt = records.length > 0;
    for (const record of records) {
      answers.push({
        type: "TXT",
        name: owner,
        class: "IN",
        ttl: current.ttl ?? 300,
        data: splitCharacterStrings(record),
      });
    }
    if (!current.cname) break;
    answers.push({
      type: "CNAME",
      name: owner,
      class: "IN",
      ttl: current.ttl ?? 300,
      data: current.cname,
    });
    owner = current.cname;
    current = lookup(zone, current.cname);
    // A target outside the zone is NXDOMAIN, unless the spec pinned the RCODE.
    finalHasTxt = false;
    if (!current && !spec?.rcode) rcode = RCODES.NXDOMAIN;
  }
  const soaSpec = spec?.soa ?? { ttl: 300, minimum: 60 };
  // RFC 2308 §2: NXDOMAIN, and NODATA at the end of any CNAME chain, carry the SOA.
  const negative = rcode === RCODES.NXDOMAIN || (rcode === RCODES.NOERROR && !finalHasTxt);
  if (spec?.referral) {
    return {
      type: "response",
      id: query.id,
      flags: query.flags! & dnsPacket.RECURSION_DESIRED,
      questions: [question],
      authorities: [{ type: "NS", name: "example", class: "IN", ttl: 300, data: "ns.example" }],
    };
  }
  const authorities: dnsPacket.Answer[] = negative && soaSpec
    ? [{
      type: "SOA",
      name: "example",
      class: "IN",
      ttl: soaSpec.ttl,
      data: {
        mname: "ns.example",
        rname: "hostmaster.example",
        serial: 1,
        refresh: 3600,
        retry: 600,
        expire: 86400,
        minimum: soaSpec.minimum,
      },
    }]
    : [];
  return {
    type: "response",
    id: query.id,
    flags: dnsPacket.AUTHORITATIVE_ANSWER | (query.flags! & dnsPacket.RECURSION_DESIRED) | rcode,
    questions: [question],
    answers: rcode === RCODES.NOERROR || rcode === RCODES.NXDOMAIN ? answers : [],
    authorities,
  };
}

function toBytes(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/**
 * Starts a fake server for `zone` on 127.0.0.1 (or `options.address`), UDP and TCP on one
 * OS-chosen port.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { startFakeDnsServer } from "./fake_dns_server.ts";
 * const server = await startFakeDnsServer({ "a.example": { txt: ["hello"] } });
 * assert.ok(server.port > 0);
 * await server.close();
 * ```
 */
export async function startFakeDnsServer(
  zone: FakeZone = {},
  options: FakeDnsServerOptions = {},
): Promise<FakeDnsServer> {
  const address = options.address ?? "127.0.0.1";
  const type = address.includes(":") ? "udp6" : "udp4";
  const queries: FakeQuery[] = [];
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const conns = new Set<Deno.Conn>();
  const handlers = new Set<Promise<void>>();
  const held = new Map<FakeAnswer, { seen: number; act: () => void }>();
  let closed = false;

  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      if (!closed) fn();
    }, ms);
    timers.add(t);
  };

  /** Decides what to send for one query; undefined sends nothing. */
  const respond = (
    bytes: Uint8Array,
    transport: "udp" | "tcp",
    send: (reply: Uint8Array, spoofPort?: boolean) => void,
  ) => {
    let query: dnsPacket.DecodedPacket;
    try {
      query = dnsPacket.decode(Buffer.from(bytes));
    } catch {
      queries.push({ name: "", type: "", transport });
      return;
    }
    const question = query.questions?.[0];
    queries.push({ name: question?.name ?? "", type: question?.type ?? "", transport });
    if (!question) return;
    const spec = lookup(zone, question.name);
    if (spec?.drop) return;
    const act = () => {
      if (spec?.raw) {
        send(spec.raw(bytes));
        return;
      }
      if (spec?.garbage === "random") {
        send(crypto.getRandomValues(new Uint8Array(64)));
        return;
      }
      if (spec?.garbage === "records") {
        const head = toBytes(dnsPacket.encode({
          type: "response",
          id: query.id,
          flags: query.flags! & dnsPacket.RECURSION_DESIRED,
          questions: [question],
        }));
        const reply = new Uint8Array(head.length + 6);
        reply.set(head);
        reply[7] = 1; // ANCOUNT 1, and the record is cut off after its name and type.
        reply.set([0xc0, 0x0c, 0x00, 0x10, 0x00, 0x01], head.length);
        send(reply);
        return;
      }
      if (transport === "tcp" && spec?.oversizedTcp) {
        send(new Uint8Array(65535));
        return;
      }
      const response = buildResponse(zone, query, spec);
      let reply = toBytes(dnsPacket.encode(response));
      if (transport === "udp") {
        const opt = query.additionals?.find((a) => a.type === "OPT") as
          | dnsPacket.OptAnswer
          | undefined;
        const limit = Math.max(CLASSIC_UDP_PAYLOAD, opt?.udpPayloadSize ?? 0);
        if (spec?.truncateUdp || reply.length > limit) {
          reply = toBytes(dnsPacket.encode({
            ...response,
            flags: response.flags! | dnsPacket.TRUNCATED_RESPONSE,
            answers: [],
            authorities: [],
          }));
        }
        if (spec?.spoof) {
          const fake = toBytes(dnsPacket.encode({
            ...buildResponse({}, query, { txt: ["spoofed"] }),
            id: spec.spoof === "id" ? query.id! ^ 0x5555 : query.id,
            questions: spec.spoof === "question"
              ? [{ ...question, name: `x${question.name}` }]
              : [question],
            answers: [{
              type: "TXT",
              name: spec.spoof === "question" ? `x${question.name}` : question.name,
              class: "IN",
              ttl: 300,
              data: [Buffer.from("spoofed")],
            }],
          }));
          send(fake, spec.spoof === "port");
        }
      }
      send(reply);
    };
    if (spec?.answerFirstAfter) {
      const seen = (held.get(spec)?.seen ?? 0) + 1;
      if (seen === 1) held.set(spec, { seen, act });
      else held.set(spec, { seen, act: held.get(spec)!.act });
      if (seen === spec.answerFirstAfter) held.get(spec)!.act();
      return;
    }
    if (spec?.delayMs) later(spec.delayMs, act);
    else act();
  };

  const spoofSocket = dgram.createSocket(type);
  await new Promise<void>((resolve) => spoofSocket.bind(0, address, () => resolve()));
  const { udpSocket, listener } = await bindUdpAndTcp(address);
  const port = listener.addr.port;

  udpSocket.on("message", (message: Buffer, rinfo: dgram.RemoteInfo) => {
    respond(toBytes(message), "udp", (reply, spoofPort) => {
      if (closed) return;
      (spoofPort ? spoofSocket : udpSocket).send(reply, rinfo.port, rinfo.address);
    });
  });

  const serveConn = async (conn: Deno.Conn) => {
    try {
      while (!closed) {
        const prefix = await readExactly(conn, 2);
        if (!prefix) return;
        const length = (prefix[0] << 8) | prefix[1];
        if (length > MAX_TCP_QUERY_BYTES) return;
        const message = await readExactly(conn, length);
        if (!message) return;
        respond(message, "tcp", (reply) => {
          if (closed) return;
          const framed = new Uint8Array(2 + reply.length);
          framed[0] = reply.length >> 8;
          framed[1] = reply.length & 0xff;
          framed.set(reply, 2);
          writeAll(conn, framed).catch(() => {});
        });
      }
    } catch {
      // The client closed the connection, or close() did.
    }
  };

  const acceptLoop = (async () => {
    try {
      for await (const conn of listener) {
        conns.add(conn);
        const handler = serveConn(conn).finally(() => {
          handlers.delete(handler);
          conns.delete(conn);
          try {
            conn.close();
          } catch {
            // Already closed by close().
          }
        });
        handlers.add(handler);
      }
    } catch {
      // The listener was closed.
    }
  })();

  return {
    port,
    address,
    zone,
    queries,
    async close() {
      if (closed) return;
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
      await acceptLoop;
      await Promise.all([...handlers]);
      await new Promise<void>((resolve) => udpSocket.close(() => resolve()));
      await new Promise<void>((resolve) => spoofSocket.close(() => resolve()));
    },
  };
}

/** Binds UDP to an OS-chosen port on `address` and TCP to the same port, retrying on clashes. */
async function bindUdpAndTcp(
  address: string,
): Promise<{ udpSocket: dgram.Socket; listener: Deno.TcpListener }> {
  for (let i = 0; i < 20; i++) {
    const udpSocket = dgram.createSocket(address.includes(":") ? "udp6" : "udp4");
    await new Promise<void>((resolve, reject) => {
      udpSocket.once("error", reject);
      udpSocket.bind(0, address, () => resolve());
    });
    try {
      const port = udpSocket.address().port;
      return { udpSocket, listener: Deno.listen({ hostname: address, port }) };
    } catch (error) {
      await new Promise<void>((resolve) => udpSocket.close(() => resolve()));
      if (!(error instanceof Deno.errors.AddrInUse)) throw error;
    }
  }
  throw new Error(`Cannot find a port free for both UDP and TCP on ${address}`);
}

async function readExactly(conn: Deno.Conn, length: number): Promise<Uint8Array | undefined> {
  const out = new Uint8Array(length);
  let filled = 0;
  while (filled < length) {
    const n = await conn.read(out.subarray(filled));
    if (n === null) return undefined;
    filled += n;
  }
  return out;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}
