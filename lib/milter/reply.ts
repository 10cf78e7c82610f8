/**
 * A milter reply: what a filter answers, one variant per `SMFIR_*` code, and its wire layout
 * both ways. {@link encodeReply} writes a filter's answer, after {@link replyProblem} has said
 * whether it can be sent at all; {@link decodeReply}, its inverse, is the MTA side that the test
 * client uses. The OPTNEG reply carries its symbol lists after the three integers, which is where
 * Sendmail and Postfix read them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeReply, encodeReply } from "./reply.ts";
 * const bytes = encodeReply({ type: "addheader", name: "X-Seen", value: " yes" });
 * const reply = decodeReply({ code: bytes[4], data: bytes.subarray(5) });
 * assert.deepEqual(reply, {
 *   type: "addheader",
 *   name: "X-Seen",
 *   value: new TextEncoder().encode(" yes"),
 * });
 * ```
 *
 * @module
 */

import { latin1 } from "../bytes.ts";
import {
  MILTER_OPTLEN,
  SMFIR_ACCEPT,
  SMFIR_ADDHEADER,
  SMFIR_ADDRCPT,
  SMFIR_ADDRCPT_PAR,
  SMFIR_CHGHEADER,
  SMFIR_CONTINUE,
  SMFIR_DELRCPT,
  SMFIR_DISCARD,
  SMFIR_INSHEADER,
  SMFIR_OPTNEG,
  SMFIR_PROGRESS,
  SMFIR_QUARANTINE,
  SMFIR_REJECT,
  SMFIR_REPLYCODE,
  SMFIR_SETSYMLIST,
  SMFIR_SKIP,
  SMFIR_TEMPFAIL,
} from "./constants.ts";
import { encodeFrame, type Frame, UINT32_MAX } from "./frame.ts";
import {
  cstringField,
  decodeText,
  FieldReader,
  headerNameField,
  NUL,
  uint32Field,
} from "./frame_fields.ts";
import { MilterProtocolError } from "./protocol_error.ts";

/** A header value: bytes go out untouched, a string is encoded as UTF-8. */
export type HeaderValue = Uint8Array | string;

/** The macro names wanted at one stage (`SMFIM_*`), as sent with the OPTNEG reply. */
export interface SymbolList {
  /** The stage, an `SMFIM_*` number. */
  readonly stage: number;
  /** Macro names as the MTA spells them, e.g. `i` or `{auth_type}`. */
  readonly macros: readonly string[];
}

/**
 * A reply from the filter, one variant per `SMFIR_*` code. Header indices follow Sendmail:
 * `insheader` counts from 0 at the top of the header block, `chgheader` picks the nth (from 1)
 * field with that name, and an empty `chgheader` value deletes the field.
 */
export type Reply =
  | { readonly type: "accept" }
  | { readonly type: "continue" }
  | { readonly type: "tempfail" }
  | { readonly type: "reject" }
  | { readonly type: "discard" }
  | { readonly type: "skip" }
  | { readonly type: "progress" }
  | {
    readonly type: "replycode";
    /** The SMTP reply code, 400 to 599. */
    readonly code: number;
    /** The text after the code, usually starting with an enhanced status code. */
    readonly text: string;
  }
  | { readonly type: "addheader"; readonly name: string; readonly value: HeaderValue }
  | {
    readonly type: "insheader";
    readonly index: number;
    readonly name: string;
    readonly value: HeaderValue;
  }
  | {
    readonly type: "chgheader";
    readonly index: number;
    readonly name: string;
    readonly value: HeaderValue;
  }
  | { readonly type: "quarantine"; readonly reason: string }
  | {
    readonly type: "addrcpt";
    /** The recipient, as the MTA takes it (Postfix accepts it with or without `<>`). */
    readonly address: string;
    /** ESMTP arguments (`NOTIFY=NEVER`): sent as `SMFIR_ADDRCPT_PAR`, which needs its flag. */
    readonly args?: string;
  }
  | {
    readonly type: "delrcpt";
    /** The recipient to remove, spelled as RCPT TO gave it. */
    readonly address: string;
  }
  | { readonly type: "setsymlist"; readonly stage: number; readonly macros: readonly string[] }
  | {
    readonly type: "optneg";
    readonly version: number;
    readonly actions: number;
    readonly protocol: number;
    readonly symbols?: readonly SymbolList[];
  }
  | { readonly type: "unrecognized"; readonly code: number; readonly data: Uint8Array };

const SIMPLE_REPLIES = {
  accept: SMFIR_ACCEPT,
  continue: SMFIR_CONTINUE,
  tempfail: SMFIR_TEMPFAIL,
  reject: SMFIR_REJECT,
  discard: SMFIR_DISCARD,
  skip: SMFIR_SKIP,
  progress: SMFIR_PROGRESS,
} as const;

const SIMPLE_CODES = new Map<number, keyof typeof SIMPLE_REPLIES>(
  Object.entries(SIMPLE_REPLIES).map(([k, v]) => [v, k as keyof typeof SIMPLE_REPLIES]),
);

/**
 * The code of a reply that carries no data (accept, continue, tempfail, reject, discard, skip,
 * progress), or undefined for any other: such a reply is its code behind a length of 1, which a
 * writer can put down without {@link encodeReply}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeReply, simpleReplyCode } from "./reply.ts";
 * assert.equal(simpleReplyCode({ type: "accept" }), encodeReply({ type: "accept" })[4]);
 * assert.equal(simpleReplyCode({ type: "quarantine", reason: "x" }), undefined);
 * ```
 */
export function simpleReplyCode(reply: Reply): number | undefined {
  switch (reply.type) {
    case "accept":
    case "continue":
    case "tempfail":
    case "reject":
    case "discard":
    case "skip":
    case "progress":
      return SIMPLE_REPLIES[reply.type];
    default:
      return undefined;
  }
}

// RFC 5322 §3.6.8 ftext: printable US-ASCII except colon.
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]+$/;

function valueHasNul(value: HeaderValue): boolean {
  return typeof value === "string" ? value.includes("\0") : value.includes(NUL);
}

/**
 * Why `reply` cannot be sent as it is, or undefined when it can: a header name that is not RFC
 * 5322 §3.6.8 field-name text, a NUL inside a value, an index out of range, a reply code outside
 * 400-599. {@link encodeReply} throws this text; the session checks a filter's modifications with
 * it first so a bad one counts as a filter error rather than breaking the connection.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { replyProblem } from "./reply.ts";
 * assert.equal(replyProblem({ type: "addheader", name: "X-Test", value: "ok" }), undefined);
 * assert.match(replyProblem({ type: "addheader", name: "X:Test", value: "ok" }) ?? "", /name/);
 * ```
 */
export function replyProblem(reply: Reply): string | undefined {
  switch (reply.type) {
    case "addheader":
    case "insheader":
    case "chgheader": {
      if (!FIELD_NAME.test(reply.name)) {
        return `header name "${reply.name}" is not printable ASCII without a colon`;
      }
      if (valueHasNul(reply.value)) return `header "${reply.name}" value contains a NUL byte`;
      if (reply.type !== "addheader") {
        const index = reply.index;
        if (!Number.isInteger(index) || index < 0 || index > UINT32_MAX) {
          return `header index ${index} is not a 32-bit unsigned integer`;
        }
      }
      return undefined;
    }
    case "replycode":
      if (!Number.isInteger(reply.code) || reply.code < 400 || reply.code > 599) {
        return `reply code ${reply.code} is not from 400 to 599`;
      }
      if (reply.text.includes("\0")) return "reply text contains a NUL byte";
      return undefined;
    case "quarantine":
      return reply.reason.includes("\0") ? "quarantine reason contains a NUL byte" : undefined;
    case "addrcpt":
    case "delrcpt":
      if (reply.address === "" || /[\0\r\n]/.test(reply.address)) {
        return `recipient "${reply.address}" is empty or has a NUL or line break`;
      }
      if (reply.type === "addrcpt" && reply.args !== undefined && /[\0\r\n]/.test(reply.args)) {
        return `recipient arguments "${reply.args}" have a NUL or line break`;
      }
      return undefined;
    case "setsymlist":
      return symbolListProblem({ stage: reply.stage, macros: reply.macros });
    case "optneg":
      for (const list of reply.symbols ?? []) {
        const problem = symbolListProblem(list);
        if (problem) return problem;
      }
      return undefined;
    default:
      return undefined;
  }
}

function symbolListProblem(list: SymbolList): string | undefined {
  if (!Number.isInteger(list.stage) || list.stage < 0 || list.stage > UINT32_MAX) {
    return `macro stage ${list.stage} is not a 32-bit unsigned integer`;
  }
  for (const m of list.macros) {
    if (m.length === 0 || /[\s\0]/.test(m)) return `macro name "${m}" is empty or has spaces`;
  }
  return undefined;
}

function symbolListBytes(list: SymbolList, code: number): Uint8Array[] {
  return [
    uint32Field(list.stage, "macro stage", code),
    cstringField(list.macros.join(" "), "macro list", code),
  ];
}

/**
 * Encodes a reply as the filter sends it, length prefix included. The OPTNEG reply carries its
 * symbol lists after the three integers, which is where Sendmail and Postfix read them. Throws
 * {@link MilterProtocolError} with the text of {@link replyProblem} for a reply that cannot be
 * sent.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeReply } from "./reply.ts";
 * assert.deepEqual(encodeReply({ type: "continue" }), Uint8Array.of(0, 0, 0, 1, 0x63));
 * const bytes = encodeReply({ type: "addheader", name: "X-A", value: "b" });
 * assert.equal(new TextDecoder().decode(bytes.subarray(5)), "X-A\0b\0");
 * ```
 */
export function encodeReply(reply: Reply): Uint8Array {
  const problem = replyProblem(reply);
  if (problem) {
    throw new MilterProtocolError(`Cannot encode milter ${reply.type} reply: ${problem}`);
  }
  switch (reply.type) {
    case "accept":
    case "continue":
    case "tempfail":
    case "reject":
    case "discard":
    case "skip":
    case "progress":
      return encodeFrame(SIMPLE_REPLIES[reply.type], []);
    case "replycode":
      return encodeFrame(SMFIR_REPLYCODE, [
        cstringField(`${reply.code} ${reply.text}`, "reply text", SMFIR_REPLYCODE),
      ]);
    case "addheader":
      return encodeFrame(SMFIR_ADDHEADER, [
        headerNameField(reply.name, SMFIR_ADDHEADER),
        cstringField(reply.value, "header value", SMFIR_ADDHEADER),
      ]);
    case "insheader":
    case "chgheader": {
      const code = reply.type === "insheader" ? SMFIR_INSHEADER : SMFIR_CHGHEADER;
      return encodeFrame(code, [
        uint32Field(reply.index, "header index", code),
        headerNameField(reply.name, code),
        cstringField(reply.value, "header value", code),
      ]);
    }
    case "quarantine":
      return encodeFrame(SMFIR_QUARANTINE, [
        cstringField(reply.reason, "reason", SMFIR_QUARANTINE),
      ]);
    case "addrcpt":
      // libmilter's smfi_addrcpt_par: the address, then the arguments, each NUL-terminated.
      return reply.args === undefined
        ? encodeFrame(SMFIR_ADDRCPT, [cstringField(reply.address, "recipient", SMFIR_ADDRCPT)])
        : encodeFrame(SMFIR_ADDRCPT_PAR, [
          cstringField(reply.address, "recipient", SMFIR_ADDRCPT_PAR),
          cstringField(reply.args, "recipient arguments", SMFIR_ADDRCPT_PAR),
        ]);
    case "delrcpt":
      return encodeFrame(SMFIR_DELRCPT, [cstringField(reply.address, "recipient", SMFIR_DELRCPT)]);
    case "setsymlist":
      return encodeFrame(SMFIR_SETSYMLIST, symbolListBytes(reply, SMFIR_SETSYMLIST));
    case "optneg":
      return encodeFrame(SMFIR_OPTNEG, [
        uint32Field(reply.version, "version", SMFIR_OPTNEG),
        uint32Field(reply.actions, "actions", SMFIR_OPTNEG),
        uint32Field(reply.protocol, "protocol", SMFIR_OPTNEG),
        ...(reply.symbols ?? []).flatMap((list) => symbolListBytes(list, SMFIR_OPTNEG)),
      ]);
    case "unrecognized":
      return encodeFrame(reply.code, [reply.data]);
  }
}

function splitList(bytes: Uint8Array): string[] {
  const list = decodeText(bytes).trim();
  return list === "" ? [] : list.split(/\s+/);
}

/**
 * Decodes one reply frame from a filter, for the MTA side. Header values come back as bytes.
 * Throws {@link MilterProtocolError} for truncated or malformed data, including data after a
 * reply that carries none (Postfix refuses those too).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeReply, encodeReply } from "./reply.ts";
 * const bytes = encodeReply({ type: "replycode", code: 550, text: "5.7.1 No" });
 * const reply = decodeReply({ code: bytes[4], data: bytes.subarray(5) });
 * assert.deepEqual(reply, { type: "replycode", code: 550, text: "5.7.1 No" });
 * ```
 */
export function decodeReply(frame: Frame): Reply {
  const simple = SIMPLE_CODES.get(frame.code);
  if (simple) {
    if (frame.data.length !== 0) {
      new FieldReader(frame, `${simple} reply`).fail(`${frame.data.length} unexpected data bytes`);
    }
    return { type: simple };
  }
  switch (frame.code) {
    case SMFIR_REPLYCODE: {
      const r = new FieldReader(frame, "REPLYCODE reply");
      const line = decodeText(r.cstring("reply text"));
      r.end();
      const match = /^([45]\d\d)(?:[ -]([^]*))?$/.exec(line);
      if (!match) return r.fail(`"${line}" does not start with a 4xx or 5xx code`);
      return { type: "replycode", code: Number(match[1]), text: match[2] ?? "" };
    }
    case SMFIR_ADDHEADER: {
      const r = new FieldReader(frame, "ADDHEADER reply");
      const name = latin1(r.cstring("header name"));
      const value = r.cstring("header value").slice();
      r.end();
      return { type: "addheader", name, value };
    }
    case SMFIR_INSHEADER:
    case SMFIR_CHGHEADER: {
      const type = frame.code === SMFIR_INSHEADER ? "insheader" : "chgheader";
      const r = new FieldReader(frame, `${type.toUpperCase()} reply`);
      const index = r.uint32("header index");
      const name = latin1(r.cstring("header name"));
      const value = r.cstring("header value").slice();
      r.end();
      return { type, index, name, value };
    }
    case SMFIR_QUARANTINE: {
      const r = new FieldReader(frame, "QUARANTINE reply");
      const reason = decodeText(r.cstring("reason"));
      r.end();
      return { type: "quarantine", reason };
    }
    case SMFIR_ADDRCPT:
    case SMFIR_DELRCPT: {
      const type = frame.code === SMFIR_ADDRCPT ? "addrcpt" : "delrcpt";
      const r = new FieldReader(frame, `${type.toUpperCase()} reply`);
      const address = decodeText(r.cstring("recipient"));
      r.end();
      return { type, address };
    }
    case SMFIR_ADDRCPT_PAR: {
      const r = new FieldReader(frame, "ADDRCPT_PAR reply");
      const address = decodeText(r.cstring("recipient"));
      // Sendmail's libmilter may leave the arguments out when there are none.
      const args = r.remaining > 0 ? decodeText(r.cstring("recipient arguments")) : "";
      r.end();
      return { type: "addrcpt", address, args };
    }
    case SMFIR_SETSYMLIST: {
      const r = new FieldReader(frame, "SETSYMLIST reply");
      const stage = r.uint32("macro stage");
      const macros = splitList(r.cstring("macro list"));
      r.end();
      return { type: "setsymlist", stage, macros };
    }
    case SMFIR_OPTNEG: {
      const r = new FieldReader(frame, "OPTNEG reply");
      if (r.remaining < MILTER_OPTLEN) r.fail(`${r.remaining} bytes, expected ${MILTER_OPTLEN}`);
      const version = r.uint32("version");
      const actions = r.uint32("actions");
      const protocol = r.uint32("protocol");
      const symbols: SymbolList[] = [];
      while (r.remaining > 0) {
        const stage = r.uint32("macro stage");
        symbols.push({ stage, macros: splitList(r.cstring("macro list")) });
      }
      return symbols.length > 0
        ? { type: "optneg", version, actions, protocol, symbols }
        : { type: "optneg", version, actions, protocol };
    }
    default:
      return { type: "unrecognized", code: frame.code, data: frame.data.slice() };
  }
}
