/**
 * One message through a fresh {@link MilterSession}, command by command as Postfix sends it
 * (milter protocol 6, SMFIP_HDR_LEADSPC negotiated: header values keep their leading space),
 * for filter tests that need no socket.
 *
 * @module
 */
import { fromLatin1 } from "../../lib/bytes.ts";
import type { Command } from "../../lib/milter/command.ts";
import type { Reply } from "../../lib/milter/reply.ts";
import {
  SMFI_CURR_ACTS,
  SMFI_CURR_PROT,
  SMFIC_CONNECT,
  SMFIC_MAIL,
} from "../../lib/milter/constants.ts";
import type { Filter } from "../../lib/milter/filter.ts";
import { MilterSession } from "../../lib/milter/session.ts";
import type { HeaderPair } from "./milter_apply.ts";
import { MemoryLogger } from "./milter_logger.ts";

/** What to send. */
export interface TransactionInput {
  /** The client's IP address (127.0.0.1 is internal by default, so its mail is signed). */
  readonly address: string;
  /** Header fields, values with their leading space; CRLF folds are sent as Postfix does, LF. */
  readonly headers: readonly HeaderPair[];
  /** The body in chunks; the last goes with end of message. */
  readonly bodyChunks: readonly string[];
  /** The envelope sender, default `<a@example.com>`. */
  readonly sender?: string;
  /**
   * Hands each command to the session and resolves to its replies; by default
   * `session.receive(command)`. A test can lend bytes here (see dkim_filter_borrowed_test.ts).
   */
  readonly deliver?: (session: MilterSession, command: Command) => Promise<Reply[]>;
}

/**
 * Runs one message through a new session of `filter` and resolves to the end-of-message
 * replies (modifications, then the final answer).
 */
export async function runTransaction(filter: Filter, input: TransactionInput): Promise<Reply[]> {
  const session = new MilterSession(filter, { logger: new MemoryLogger() });
  const chunks = input.bodyChunks.length > 0 ? input.bodyChunks : [""];
  const commands: Command[] = [
    { type: "optneg", version: 6, actions: SMFI_CURR_ACTS, protocol: SMFI_CURR_PROT },
    { type: "macro", forCommand: SMFIC_CONNECT, macros: [["j", "mx.example.net"]] },
    { type: "connect", hostname: "client", family: "inet", port: 25, address: input.address },
    { type: "macro", forCommand: SMFIC_MAIL, macros: [["i", "4AB12C"]] },
    { type: "mail", args: [input.sender ?? "<a@example.com>"] },
    { type: "rcpt", args: ["<bob@example.org>"] },
    { type: "data" },
    ...input.headers.map(([name, value]): Command => ({
      type: "header",
      name,
      value: fromLatin1(value.replaceAll("\r\n", "\n")),
    })),
    { type: "eoh" },
    ...chunks.slice(0, -1).map((c): Command => ({ type: "body", chunk: fromLatin1(c) })),
    { type: "bodyeob", chunk: fromLatin1(chunks.at(-1)!) },
  ];
  const deliver = input.deliver ?? ((s, c) => Promise.resolve(s.receive(c)));
  let replies: Reply[] = [];
  for (const command of commands) replies = await deliver(session, command);
  await session.close();
  return replies;
}
