/**
 * A small filter for end-to-end milter tests (server, client, miltertest): it inserts an
 * `X-Milter-Test` header at the top naming the queue id and the message's number on its
 * connection, appends `X-Body-Bytes`, deletes `X-Remove-Me`, changes `X-Change-Me`, quarantines
 * on `X-Quarantine: yes`, and refuses a message carrying `X-Reject: yes` (with a 550 reply code,
 * decided at the header and given at the next reply point). It never looks at DKIM.
 *
 * @module
 */

import assert from "node:assert/strict";
import { asciiLower, latin1 } from "../../lib/bytes.ts";
import type { MessageResult } from "../../lib/milter/client.ts";
import { SMFIF_ADDHDRS, SMFIF_CHGHDRS, SMFIF_QUARANTINE } from "../../lib/milter/constants.ts";
import type {
  Filter,
  FilterConnection,
  FilterNeeds,
  Modification,
} from "../../lib/milter/filter.ts";
import type { Reply } from "../../lib/milter/reply.ts";

/** What the tag filter asks of the MTA: headers and body without replies, macros by list. */
export const TAG_FILTER_NEEDS: FilterNeeds = {
  actions: SMFIF_ADDHDRS | SMFIF_CHGHDRS,
  optionalActions: SMFIF_QUARANTINE,
  events: ["envFrom", "envRcpt", "header", "endOfHeaders", "body"],
  noReply: ["header", "body"],
  macros: { connect: ["j"], envFrom: ["i", "{auth_type}"], endOfMessage: ["i"] },
};

/** Counts of what the filter saw, across all connections, for tests to check. */
export interface TagFilterStats {
  connections: number;
  closed: number;
  aborted: number;
  messages: number;
}

/** Makes a tag filter; `stats` is updated as connections come and go. */
export function tagFilter(
  stats: TagFilterStats = { connections: 0, closed: 0, aborted: 0, messages: 0 },
  needs: FilterNeeds = TAG_FILTER_NEEDS,
): Filter {
  return {
    needs,
    connect(info): FilterConnection {
      stats.connections++;
      const space = info.session.leadingSpace ? " " : "";
      let count = 0;
      let rcpts = 0;
      let bodyBytes = 0;
      let seen = new Map<string, string>();
      const reset = () => {
        rcpts = 0;
        bodyBytes = 0;
        seen = new Map();
      };
      return {
        envFrom() {
          reset();
        },
        envRcpt() {
          rcpts++;
        },
        header(name, value) {
          // Kept as text: the value's bytes are only lent for this call.
          const text = latin1(value).trim();
          seen.set(asciiLower(name), text);
          if (asciiLower(name) === "x-reject" && text === "yes") {
            return { replycode: 550, xcode: "5.7.1", text: "Rejected by test filter" };
          }
          return "continue";
        },
        body(chunk) {
          bodyBytes += chunk.length;
        },
        endOfMessage(macros) {
          count++;
          stats.messages++;
          const mods: Modification[] = [
            {
              type: "insheader",
              index: 0,
              name: "X-Milter-Test",
              value: `${space}${macros.get("i") ?? "none"} msg=${count} rcpts=${rcpts}`,
            },
            { type: "addheader", name: "X-Body-Bytes", value: `${space}${bodyBytes}` },
          ];
          if (seen.has("x-remove-me")) {
            mods.push({ type: "chgheader", index: 1, name: "X-Remove-Me", value: "" });
          }
          if (seen.has("x-change-me")) {
            mods.push({
              type: "chgheader",
              index: 1,
              name: "X-Change-Me",
              value: `${space}changed`,
            });
          }
          if (seen.get("x-quarantine") === "yes") {
            mods.push({ type: "quarantine", reason: "test quarantine" });
          }
          reset();
          return { modifications: mods, action: "accept" };
        },
        abort() {
          stats.aborted++;
          reset();
        },
        close() {
          stats.closed++;
        },
      };
    },
  };
}

/** A reply as one line of text: its type, and a header change's name and value. */
export function replyText(reply: Reply): string {
  if (reply.type === "addheader" || reply.type === "insheader" || reply.type === "chgheader") {
    const value = typeof reply.value === "string" ? reply.value : latin1(reply.value);
    return `${reply.type} ${reply.name}:${value}`;
  }
  return reply.type;
}

/**
 * Message `n` of a connection from client.example.org, to two recipients, with `extra` header
 * fields: what the tag filter tags `Q<n>`.
 */
export function tagTestMessage(n: number, extra: Array<[string, string]> = []) {
  return {
    connect: { hostname: "client.example.org", address: "192.0.2.9", port: 40000 },
    helo: "client.example.org",
    macros: { connect: { j: "mx.example.org" }, mail: { i: `Q${n}`, "{auth_type}": "PLAIN" } },
    from: `<sender${n}@example.org>`,
    rcpts: ["<a@example.net>", "<b@example.net>"],
    headers: [["From", " sender@example.org"], ["Subject", ` Message ${n}`], ...extra] as Array<
      [string, string]
    >,
    body: `Line one of ${n}\r\nLine two\r\n`,
  };
}

/**
 * Asserts that the tag filter accepted message `n`, the `count`th of its connection, tagging it and
 * counting `bodyBytes` of body.
 */
export function assertTagged(
  result: MessageResult,
  n: number,
  count: number,
  bodyBytes: number,
): void {
  assert.equal(result.final.type, "accept");
  assert.deepEqual(result.modifications.map(replyText), [
    `insheader X-Milter-Test: Q${n} msg=${count} rcpts=2`,
    `addheader X-Body-Bytes: ${bodyBytes}`,
  ]);
}
