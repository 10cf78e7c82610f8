/**
 * What the DKIM filter negotiates with a Postfix-like offer: the reply points that keep Nagle's
 * algorithm from holding Postfix's writes (DATA and end of headers answered), and no replies
 * where none are needed.
 */
import assert from "node:assert/strict";
import { dkimFilterNeeds } from "../../lib/filter/filter_needs.ts";
import {
  SMFI_CURR_ACTS,
  SMFI_CURR_PROT,
  SMFIP_HDR_LEADSPC,
  SMFIP_NOBODY,
  SMFIP_NODATA,
  SMFIP_NOEOH,
  SMFIP_NOHDRS,
  SMFIP_NOHELO,
  SMFIP_NR_BODY,
  SMFIP_NR_CONN,
  SMFIP_NR_DATA,
  SMFIP_NR_EOH,
  SMFIP_NR_HDR,
  SMFIP_NR_MAIL,
  SMFIP_NR_RCPT,
  SMFIP_SKIP,
} from "../../lib/milter/constants.ts";
import { negotiate } from "../../lib/milter/negotiate.ts";
import { MilterSession } from "../../lib/milter/session.ts";
import { MemoryLogger } from "../helpers/milter_logger.ts";

const POSTFIX_OFFER = { version: 6, actions: SMFI_CURR_ACTS, protocol: SMFI_CURR_PROT };

Deno.test("dkimFilterNeeds() answers DATA, CONNECT and end of headers, and nothing in between", () => {
  const { protocol } = negotiate(POSTFIX_OFFER, dkimFilterNeeds());
  const table: [string, number, boolean][] = [
    ["DATA sent", SMFIP_NODATA, false],
    ["DATA answered", SMFIP_NR_DATA, false],
    ["CONNECT answered", SMFIP_NR_CONN, false],
    ["end of headers sent", SMFIP_NOEOH, false],
    ["end of headers answered", SMFIP_NR_EOH, false],
    ["headers sent", SMFIP_NOHDRS, false],
    ["body sent", SMFIP_NOBODY, false],
    ["HELO skipped", SMFIP_NOHELO, true],
    ["MAIL unanswered", SMFIP_NR_MAIL, true],
    ["RCPT unanswered", SMFIP_NR_RCPT, true],
    ["headers unanswered", SMFIP_NR_HDR, true],
    ["body unanswered", SMFIP_NR_BODY, true],
    ["skip offered", SMFIP_SKIP, true],
    ["leading space kept", SMFIP_HDR_LEADSPC, true],
  ];
  for (const [what, flag, set] of table) assert.equal((protocol & flag) !== 0, set, what);
});

Deno.test("dkimFilterNeeds() gets a continue reply to DATA from the session", async () => {
  const session = new MilterSession({
    needs: dkimFilterNeeds(),
    connect: () => ({ endOfMessage: () => ({ modifications: [], action: "accept" }) }),
  }, { logger: new MemoryLogger() });
  await session.handle({ type: "optneg", ...POSTFIX_OFFER });
  await session.handle({
    type: "connect",
    hostname: "mx",
    family: "inet",
    port: 25,
    address: "192.0.2.1",
  });
  assert.deepEqual(await session.handle({ type: "mail", args: ["<a@example.com>"] }), []);
  assert.deepEqual(await session.handle({ type: "rcpt", args: ["<b@example.org>"] }), []);
  assert.deepEqual(await session.handle({ type: "data" }), [{ type: "continue" }]);
});
