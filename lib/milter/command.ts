/**
 * A milter command: what the MTA sends, one variant per `SMFIC_*` code, and its wire layout both
 * ways. {@link decodeCommand} reads what an MTA sends; {@link encodeCommand}, its inverse, is the
 * MTA side that the test client and the bench use. Layouts follow Sendmail's libmilter
 * (`engine.c`) and Postfix's `milter8.c`, the two ends every real deployment pairs with.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeCommand, encodeCommand } from "./command.ts";
 * import { FrameDecoder } from "./frame.ts";
 * const decoder = new FrameDecoder();
 * decoder.push(encodeCommand({ type: "helo", name: "mx.example.org" }));
 * const frame = decoder.next();
 * assert.ok(frame);
 * assert.deepEqual(decodeCommand(frame), { type: "helo", name: "mx.example.org" });
 * ```
 *
 * @module
 */

import { latin1 } from "../bytes.ts";
import {
  MILTER_OPTLEN,
  SMFIA_INET,
  SMFIA_INET6,
  SMFIA_UNIX,
  SMFIA_UNKNOWN,
  SMFIC_ABORT,
  SMFIC_BODY,
  SMFIC_BODYEOB,
  SMFIC_CONNECT,
  SMFIC_DATA,
  SMFIC_EOH,
  SMFIC_HEADER,
  SMFIC_HELO,
  SMFIC_MACRO,
  SMFIC_MAIL,
  SMFIC_OPTNEG,
  SMFIC_QUIT,
  SMFIC_QUIT_NC,
  SMFIC_RCPT,
  SMFIC_UNKNOWN,
} from "./constants.ts";
import { encodeFrame, type Frame } from "./frame.ts";
import {
  cstringField,
  decodeText,
  decodeTextAt,
  FieldReader,
  headerNameField,
  NUL,
  PROTOCOL_TEXT,
  uint32Field,
} from "./frame_fields.ts";
import { MilterProtocolError } from "./protocol_error.ts";
import { INTERN_MAX_BYTES } from "./text_intern.ts";

/** The address family of the SMTP client in a CONNECT command (`SMFIA_*`). */
export type AddressFamily = "inet" | "inet6" | "unix" | "unknown";

/** A name and value pair from a MACRO command, the name as the MTA spelled it (`{auth_type}`). */
export type MacroPair = readonly [name: string, value: string];

/**
 * A command from the MTA, one variant per `SMFIC_*` code. Text fields are decoded as UTF-8
 * (invalid bytes become U+FFFD); a header name is decoded one byte per character (latin1) so its
 * bytes survive, and header values and body chunks stay bytes. Codes this module does not know
 * decode as `unrecognized`, so the session can answer them instead of failing.
 */
export type Command =
  | {
    readonly type: "optneg";
    readonly version: number;
    readonly actions: number;
    readonly protocol: number;
  }
  | {
    readonly type: "connect";
    readonly hostname: string;
    readonly family: AddressFamily;
    /** The client's port; 0 for unix and unknown families. */
    readonly port: number;
    /** The client's IP address, or the socket path for unix; "" for unknown. */
    readonly address: string;
  }
  | { readonly type: "helo"; readonly name: string }
  | {
    readonly type: "macro";
    /** The command byte these macros belong to (`SMFIC_CONNECT`, `SMFIC_MAIL`, ...). */
    readonly forCommand: number;
    readonly macros: readonly MacroPair[];
  }
  | { readonly type: "mail"; readonly args: readonly string[] }
  | { readonly type: "rcpt"; readonly args: readonly string[] }
  | { readonly type: "data" }
  | { readonly type: "header"; readonly name: string; readonly value: Uint8Array }
  | { readonly type: "eoh" }
  | { readonly type: "body"; readonly chunk: Uint8Array }
  | { readonly type: "bodyeob"; readonly chunk?: Uint8Array }
  | { readonly type: "abort" }
  | { readonly type: "quit" }
  | { readonly type: "quit_nc" }
  | { readonly type: "unknown"; readonly command: string }
  | { readonly type: "unrecognized"; readonly code: number; readonly data: Uint8Array };

const FAMILIES: Record<number, AddressFamily> = {
  [SMFIA_INET]: "inet",
  [SMFIA_INET6]: "inet6",
  [SMFIA_UNIX]: "unix",
  [SMFIA_UNKNOWN]: "unknown",
};

const FAMILY_BYTES: Record<AddressFamily, number> = {
  inet: SMFIA_INET,
  inet6: SMFIA_INET6,
  unix: SMFIA_UNIX,
  unknown: SMFIA_UNKNOWN,
};

function codeName(code: number): string {
  return code >= 0x20 && code < 0x7f ? `"${String.fromCharCode(code)}"` : `0x${code.toString(16)}`;
}

/**
 * Decodes one command frame from the MTA. Throws {@link MilterProtocolError} when the data is
 * truncated or malformed (a missing NUL, a short integer, an unknown address family, an odd
 * number of macro strings); data after the fixed fields of OPTNEG and after the family byte of
 * an unknown-family CONNECT is ignored, as libmilter ignores it. The returned byte arrays share
 * memory with `frame.data`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeCommand } from "./command.ts";
 * const data = new TextEncoder().encode("Subject\0 Hi\0");
 * const command = decodeCommand({ code: 0x4c, data });
 * assert.equal(command.type, "header");
 * if (command.type === "header") {
 *   assert.equal(command.name, "Subject");
 *   assert.deepEqual(command.value, new TextEncoder().encode(" Hi"));
 * }
 * ```
 */
export function decodeCommand(frame: Frame): Command {
  return decodeCommandAt(frame.code, frame.data, 0, frame.data.length);
}

/**
 * Decodes a command whose data is `bytes[start, end)`, as {@link decodeCommand} does, without
 * a {@link Frame} or views of its fields for the commands of every message (MACRO, MAIL, RCPT,
 * HEADER, BODY and the ones without data): the milter server's read loop calls this for every
 * frame (FrameDecoder.advance), and the views and arrays were most of the garbage the milter
 * layer made per message. A command out of the common shape goes the careful way, which says
 * what is wrong. Byte fields of the result are views of `bytes`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeCommandAt, encodeCommand } from "./command.ts";
 * const bytes = encodeCommand({ type: "mail", args: ["<a@example.org>", "SIZE=10"] });
 * assert.deepEqual(decodeCommandAt(bytes[4], bytes, 5, bytes.length), {
 *   type: "mail",
 *   args: ["<a@example.org>", "SIZE=10"],
 * });
 * ```
 */
export function decodeCommandAt(
  code: number,
  bytes: Uint8Array,
  start: number,
  end: number,
): Command {
  const last = end - 1;
  switch (code) {
    case SMFIC_HEADER: {
      // name NUL value NUL, nothing after, a name of at least one byte.
      const nul = bytes.indexOf(NUL, start);
      if (nul > start && nul - start <= INTERN_MAX_BYTES && last > nul && bytes[last] === NUL) {
        if (bytes.indexOf(NUL, nul + 1) === last) {
          return {
            type: "header",
            name: PROTOCOL_TEXT.latin1(bytes, start, nul),
            value: bytes.subarray(nul + 1, last),
          };
        }
      }
      break;
    }
    case SMFIC_MACRO: {
      // The command byte, then name NUL value NUL pairs.
      if (end === start + 1 || (end > start + 1 && bytes[last] === NUL)) {
        const macros: MacroPair[] = [];
        let pos = start + 1;
        while (pos < end) {
          const nameEnd = bytes.indexOf(NUL, pos);
          if (nameEnd === last) break; // a name without a value: said below
          const valueEnd = bytes.indexOf(NUL, nameEnd + 1);
          macros.push([
            decodeTextAt(bytes, pos, nameEnd),
            decodeTextAt(bytes, nameEnd + 1, valueEnd),
          ]);
          pos = valueEnd + 1;
        }
        if (pos >= end) return { type: "macro", forCommand: bytes[start], macros };
      }
      break;
    }
    case SMFIC_MAIL:
    case SMFIC_RCPT: {
      // Arguments, each NUL-terminated, at least one.
      if (end > start && bytes[last] === NUL) {
        const args: string[] = [];
        for (let pos = start; pos < end;) {
          const argEnd = bytes.indexOf(NUL, pos);
          args.push(decodeTextAt(bytes, pos, argEnd));
          pos = argEnd + 1;
        }
        return { type: code === SMFIC_MAIL ? "mail" : "rcpt", args };
      }
      break;
    }
    case SMFIC_BODY:
      return { type: "body", chunk: bytes.subarray(start, end) };
    case SMFIC_BODYEOB:
      return end > start
        ? { type: "bodyeob", chunk: bytes.subarray(start, end) }
        : { type: "bodyeob" };
    case SMFIC_DATA:
      return { type: "data" };
    case SMFIC_EOH:
      return { type: "eoh" };
    case SMFIC_ABORT:
      return { type: "abort" };
  }
  return decodeCarefully({ code, data: bytes.subarray(start, end) });
}

// Every command, field by field, each malformation named.
function decodeCarefully(frame: Frame): Command {
  switch (frame.code) {
    case SMFIC_OPTNEG: {
      const r = new FieldReader(frame, "OPTNEG command");
      if (r.remaining < MILTER_OPTLEN) r.fail(`${r.remaining} bytes, expected ${MILTER_OPTLEN}`);
      return {
        type: "optneg",
        version: r.uint32("version"),
        actions: r.uint32("actions"),
        protocol: r.uint32("protocol"),
      };
    }
    case SMFIC_CONNECT: {
      const r = new FieldReader(frame, "CONNECT command");
      const hostname = decodeText(r.cstring("host name"));
      const familyByte = r.byte("address family");
      const family = FAMILIES[familyByte];
      if (!family) r.fail(`unknown address family ${codeName(familyByte)}`);
      if (family === "unknown") return { type: "connect", hostname, family, port: 0, address: "" };
      const port = r.uint16("port");
      const address = decodeText(r.cstring("address"));
      r.end();
      return { type: "connect", hostname, family, port, address };
    }
    case SMFIC_HELO: {
      const r = new FieldReader(frame, "HELO command");
      const name = decodeText(r.cstring("HELO name"));
      r.end();
      return { type: "helo", name };
    }
    case SMFIC_MACRO: {
      const r = new FieldReader(frame, "MACRO command");
      const forCommand = r.byte("command byte");
      const strings = r.cstrings("macro");
      if (strings.length % 2 !== 0) r.fail(`macro "${decodeText(strings.at(-1)!)}" has no value`);
      const macros: MacroPair[] = [];
      for (let i = 0; i < strings.length; i += 2) {
        macros.push([decodeText(strings[i]), decodeText(strings[i + 1])]);
      }
      return { type: "macro", forCommand, macros };
    }
    case SMFIC_MAIL:
    case SMFIC_RCPT: {
      const what = frame.code === SMFIC_MAIL ? "MAIL" : "RCPT";
      const r = new FieldReader(frame, `${what} command`);
      const args = r.cstrings("argument").map(decodeText);
      if (args.length === 0) r.fail("no address");
      return { type: frame.code === SMFIC_MAIL ? "mail" : "rcpt", args };
    }
    case SMFIC_HEADER: {
      const r = new FieldReader(frame, "HEADER command");
      const name = latin1(r.cstring("header name"));
      const value = r.cstring("header value");
      r.end();
      if (name.length === 0) r.fail("empty header name");
      return { type: "header", name, value };
    }
    case SMFIC_BODY:
      return { type: "body", chunk: frame.data };
    case SMFIC_BODYEOB:
      return frame.data.length > 0 ? { type: "bodyeob", chunk: frame.data } : { type: "bodyeob" };
    case SMFIC_UNKNOWN: {
      const r = new FieldReader(frame, "UNKNOWN command");
      const command = decodeText(r.cstring("command"));
      r.end();
      return { type: "unknown", command };
    }
    case SMFIC_DATA:
      return { type: "data" };
    case SMFIC_EOH:
      return { type: "eoh" };
    case SMFIC_ABORT:
      return { type: "abort" };
    case SMFIC_QUIT:
      return { type: "quit" };
    case SMFIC_QUIT_NC:
      return { type: "quit_nc" };
    default:
      return { type: "unrecognized", code: frame.code, data: frame.data };
  }
}

/**
 * Encodes a command as the MTA sends it, length prefix included: the inverse of
 * {@link decodeCommand}. Throws {@link MilterProtocolError} for a value the wire cannot carry (a
 * NUL inside a string, an integer out of range).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeCommand } from "./command.ts";
 * assert.deepEqual(encodeCommand({ type: "eoh" }), Uint8Array.of(0, 0, 0, 1, 0x4e));
 * ```
 */
export function encodeCommand(command: Command): Uint8Array {
  switch (command.type) {
    case "optneg":
      return encodeFrame(SMFIC_OPTNEG, [
        uint32Field(command.version, "version", SMFIC_OPTNEG),
        uint32Field(command.actions, "actions", SMFIC_OPTNEG),
        uint32Field(command.protocol, "protocol", SMFIC_OPTNEG),
      ]);
    case "connect": {
      const parts: Uint8Array[] = [
        cstringField(command.hostname, "host name", SMFIC_CONNECT),
        Uint8Array.of(FAMILY_BYTES[command.family]),
      ];
      if (command.family !== "unknown") {
        if (!Number.isInteger(command.port) || command.port < 0 || command.port > 0xffff) {
          throw new MilterProtocolError(`Cannot encode port ${command.port}`, SMFIC_CONNECT);
        }
        parts.push(Uint8Array.of(command.port >> 8, command.port & 0xff));
        parts.push(cstringField(command.address, "address", SMFIC_CONNECT));
      }
      return encodeFrame(SMFIC_CONNECT, parts);
    }
    case "helo":
      return encodeFrame(SMFIC_HELO, [cstringField(command.name, "HELO name", SMFIC_HELO)]);
    case "macro": {
      const parts: Uint8Array[] = [Uint8Array.of(command.forCommand & 0xff)];
      for (const [name, value] of command.macros) {
        parts.push(cstringField(name, `macro name "${name}"`, SMFIC_MACRO));
        parts.push(cstringField(value, `macro "${name}"`, SMFIC_MACRO));
      }
      return encodeFrame(SMFIC_MACRO, parts);
    }
    case "mail":
    case "rcpt": {
      const code = command.type === "mail" ? SMFIC_MAIL : SMFIC_RCPT;
      return encodeFrame(code, command.args.map((a) => cstringField(a, "argument", code)));
    }
    case "header":
      return encodeFrame(SMFIC_HEADER, [
        headerNameField(command.name, SMFIC_HEADER),
        cstringField(command.value, `header "${command.name}"`, SMFIC_HEADER),
      ]);
    case "body":
      return encodeFrame(SMFIC_BODY, [command.chunk]);
    case "bodyeob":
      return encodeFrame(SMFIC_BODYEOB, command.chunk ? [command.chunk] : []);
    case "unknown":
      return encodeFrame(SMFIC_UNKNOWN, [cstringField(command.command, "command", SMFIC_UNKNOWN)]);
    case "data":
      return encodeFrame(SMFIC_DATA, []);
    case "eoh":
      return encodeFrame(SMFIC_EOH, []);
    case "abort":
      return encodeFrame(SMFIC_ABORT, []);
    case "quit":
      return encodeFrame(SMFIC_QUIT, []);
    case "quit_nc":
      return encodeFrame(SMFIC_QUIT_NC, []);
    case "unrecognized":
      return encodeFrame(command.code, [command.data]);
  }
}
