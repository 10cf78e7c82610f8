/**
 * A message as Postfix hands it to a milter ({@link ClientMessage} of lib/milter/client.ts), from
 * the message's bytes: one HEADER per field with the value after the colon as the message has
 * it, the body as it is, and the macros Postfix sends (`j` at connect, `i` from MAIL on).
 *
 * @module
 */
import { latin1 } from "../../lib/bytes.ts";
import { splitMessage } from "../../lib/dkim/header.ts";
import type { ClientMessage } from "../../lib/milter/client.ts";

/** Where the message comes from and its queue id. */
export interface MtaMessageOptions {
  /** The queue id (`i` macro). */
  readonly qid: string;
  /** The client's address; 127.0.0.1 is internal (signed), others external (verified). */
  readonly address: string;
  /** The client's host name; default `client.test`. */
  readonly hostname?: string;
  /** The HELO name; default `client.test`, `null` for none. */
  readonly helo?: string | null;
  /** The envelope sender; default the From field's `<address>`. */
  readonly from?: string;
}

/** The milter transaction for `bytes` (a whole message, CRLF line ends). */
export function mtaMessage(bytes: Uint8Array, o: MtaMessageOptions): ClientMessage {
  const { fields, bodyOffset } = splitMessage(bytes);
  const helo = o.helo === undefined ? "client.test" : o.helo;
  return {
    connect: { hostname: o.hostname ?? "client.test", address: o.address, port: 40000 },
    ...(helo === null ? {} : { helo }),
    macros: {
      connect: { j: "mx.test" },
      mail: { i: o.qid },
      eoh: { i: o.qid },
      eom: { i: o.qid },
    },
    from: o.from ?? `<${latin1(bytes).match(/^From: <([^>]*)>/m)?.[1] ?? ""}>`,
    rcpts: ["<bob@example.org>"],
    headers: fields.map((f) => [f.name, f.raw.subarray(f.raw.indexOf(0x3a) + 1)] as const),
    body: bytes.subarray(bodyOffset),
  };
}
