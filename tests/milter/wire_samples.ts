/**
 * Sample milter commands and replies, one of each kind and then some (8-bit bytes, IPv6, a
 * 64 KiB body chunk), for the frame, command and reply tests, and {@link frameOf} to cut one
 * encoded frame back out of its bytes.
 *
 * @module
 */
import fc from "fast-check";
import assert from "node:assert/strict";
import { utf8 } from "../../lib/bytes.ts";
import { type Command, encodeCommand } from "../../lib/milter/command.ts";
import {
  SMFIC_CONNECT,
  SMFIC_MAIL,
  SMFIM_CONNECT,
  SMFIM_ENVFROM,
} from "../../lib/milter/constants.ts";
import { type Frame, FrameDecoder } from "../../lib/milter/frame.ts";
import { MilterProtocolError } from "../../lib/milter/protocol_error.ts";
import { encodeReply, type Reply } from "../../lib/milter/reply.ts";
import { fuzzParams } from "../helpers/fuzz.ts";

/** Header value bytes beyond ASCII (é, 0xff, 0x80) and a tab, which must pass untouched. */
export const EIGHT_BIT = Uint8Array.of(0x20, 0xe9, 0x74, 0xe9, 0xff, 0x09, 0x80); // " été\xff\t\x80"

/** One of every command, some in more than one shape. */
export const COMMANDS: readonly Command[] = [
  { type: "optneg", version: 6, actions: 0x1ff, protocol: 0x1fffff },
  { type: "connect", hostname: "mx.example.org", family: "inet", port: 25, address: "192.0.2.1" },
  {
    type: "connect",
    hostname: "[2001:db8::1]",
    family: "inet6",
    port: 587,
    address: "2001:db8::1",
  },
  { type: "connect", hostname: "localhost", family: "unix", port: 0, address: "/run/smtp.sock" },
  { type: "connect", hostname: "unknown", family: "unknown", port: 0, address: "" },
  { type: "helo", name: "client.example.org" },
  {
    type: "macro",
    forCommand: SMFIC_MAIL,
    macros: [["i", "4ABC123"], ["{auth_type}", "PLAIN"], ["{empty}", ""]],
  },
  { type: "macro", forCommand: SMFIC_CONNECT, macros: [] },
  { type: "mail", args: ["<user@example.org>", "SIZE=1000", "BODY=8BITMIME"] },
  { type: "rcpt", args: ["<rcpt@example.net>"] },
  { type: "data" },
  { type: "header", name: "Subject", value: EIGHT_BIT },
  { type: "header", name: "X-Empty", value: new Uint8Array(0) },
  { type: "eoh" },
  { type: "body", chunk: utf8("Hello\r\nWorld\r\n") },
  { type: "body", chunk: new Uint8Array(65535).fill(0x61) },
  { type: "bodyeob" },
  { type: "bodyeob", chunk: utf8("last\r\n") },
  { type: "abort" },
  { type: "quit" },
  { type: "quit_nc" },
  { type: "unknown", command: "XCLIENT NAME=x" },
  { type: "unrecognized", code: 0x7a, data: Uint8Array.of(1, 2, 3) },
];

/** One of every reply, some in more than one shape. */
export const REPLIES: readonly Reply[] = [
  { type: "accept" },
  { type: "continue" },
  { type: "tempfail" },
  { type: "reject" },
  { type: "discard" },
  { type: "skip" },
  { type: "progress" },
  { type: "replycode", code: 550, text: "5.7.1 Rejected by policy" },
  { type: "replycode", code: 451, text: "" },
  { type: "addheader", name: "X-Test", value: EIGHT_BIT },
  { type: "insheader", index: 0, name: "DKIM-Signature", value: utf8(" v=1; a=rsa-sha256") },
  { type: "chgheader", index: 2, name: "Authentication-Results", value: new Uint8Array(0) },
  { type: "quarantine", reason: "suspicious" },
  { type: "addrcpt", address: "<postmaster@example.org>" },
  { type: "addrcpt", address: "<postmaster@example.org>", args: "NOTIFY=NEVER" },
  { type: "delrcpt", address: "<b@example.org>" },
  { type: "setsymlist", stage: SMFIM_ENVFROM, macros: ["i", "{auth_type}"] },
  { type: "optneg", version: 6, actions: 0x11, protocol: 0x1ff0ee },
  {
    type: "optneg",
    version: 6,
    actions: 0x111,
    protocol: 0x100000,
    symbols: [
      { stage: SMFIM_CONNECT, macros: ["j", "{daemon_name}"] },
      { stage: SMFIM_ENVFROM, macros: ["i", "{auth_type}"] },
    ],
  },
  // SMFIR_CHGFROM ('e'): a reply this side does not decode.
  { type: "unrecognized", code: 0x65, data: utf8("<x@example.org>\0") },
];

/** The command and reply bytes of all the samples. */
const SAMPLE_CODES: readonly number[] = [
  ...new Set([...COMMANDS.map(encodeCommand), ...REPLIES.map(encodeReply)].map((b) => b[4])),
];

/** The one whole frame in `bytes`, checked to be all of them. */
export function frameOf(bytes: Uint8Array): Frame {
  const decoder = new FrameDecoder();
  decoder.push(bytes);
  const frame = decoder.next();
  assert.ok(frame, "one whole frame");
  assert.equal(decoder.buffered, 0);
  return frame;
}

/**
 * Checks that `decode` throws nothing but MilterProtocolError for random data after any code the
 * samples use (commands' and replies' alike): a malformed frame must never crash the server.
 */
export function assertOnlyProtocolErrors(decode: (frame: Frame) => unknown): void {
  fc.assert(
    fc.property(
      fc.constantFrom(...SAMPLE_CODES),
      fc.uint8Array({ maxLength: 40 }),
      (code, data) => {
        try {
          decode({ code, data });
        } catch (error) {
          if (!(error instanceof MilterProtocolError)) throw error;
        }
      },
    ),
    fuzzParams(3000),
  );
}
