import fc from "fast-check";
import assert from "node:assert/strict";
import {
  SMFI_CURR_ACTS,
  SMFI_CURR_PROT,
  SMFI_V2_PROT,
  SMFIF_ADDHDRS,
  SMFIF_CHGHDRS,
  SMFIF_QUARANTINE,
  SMFIF_SETSYMLIST,
  SMFIM_CONNECT,
  SMFIM_ENVFROM,
  SMFIP_HDR_LEADSPC,
  SMFIP_MDS_1M,
  SMFIP_MDS_256K,
  SMFIP_NOBODY,
  SMFIP_NOCONNECT,
  SMFIP_NODATA,
  SMFIP_NOEOH,
  SMFIP_NOHDRS,
  SMFIP_NOHELO,
  SMFIP_NOMAIL,
  SMFIP_NORCPT,
  SMFIP_NOREPLY_MASK,
  SMFIP_NOUNKNOWN,
  SMFIP_NR_BODY,
  SMFIP_NR_CONN,
  SMFIP_NR_EOH,
  SMFIP_NR_HDR,
  SMFIP_NR_MAIL,
  SMFIP_SKIP,
} from "../../lib/milter/constants.ts";
import type { FilterEvent, FilterNeeds } from "../../lib/milter/filter.ts";
import { negotiate, NegotiationError, type OptionOffer } from "../../lib/milter/negotiate.ts";
import { fuzzParams } from "../helpers/fuzz.ts";

// A DKIM-like filter: adds and changes headers, reads the envelope sender, headers and body,
// never rejects before the end of the message.
const DKIM_LIKE: FilterNeeds = {
  actions: SMFIF_ADDHDRS | SMFIF_CHGHDRS,
  optionalActions: SMFIF_QUARANTINE,
  events: ["envFrom", "header", "endOfHeaders", "body"],
  noReply: ["connect", "envFrom", "header", "endOfHeaders", "body"],
  macros: {
    connect: ["j", "{daemon_name}"],
    envFrom: ["i", "{auth_type}"],
    endOfMessage: ["i"],
  },
};

const POSTFIX_6: OptionOffer = { version: 6, actions: SMFI_CURR_ACTS, protocol: SMFI_CURR_PROT };
const SENDMAIL_814: OptionOffer = {
  version: 6,
  actions: SMFI_CURR_ACTS,
  protocol: SMFI_CURR_PROT | SMFIP_MDS_256K | SMFIP_MDS_1M,
};
// Version 6 without the no-reply flags.
const NO_NR: OptionOffer = {
  version: 6,
  actions: SMFI_CURR_ACTS,
  protocol: SMFI_CURR_PROT & ~SMFIP_NOREPLY_MASK,
};
const POSTFIX_2: OptionOffer = { version: 2, actions: SMFI_CURR_ACTS, protocol: SMFI_V2_PROT };

const cases: Array<{
  name: string;
  offer: OptionOffer;
  needs: FilterNeeds;
  version: number;
  actions: number;
  protocol: number;
  leadingSpace: boolean;
  symbols: boolean;
}> = [
  {
    name: "Postfix milter_protocol 6",
    offer: POSTFIX_6,
    needs: DKIM_LIKE,
    version: 6,
    actions: SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE | SMFIF_SETSYMLIST,
    protocol: SMFIP_NOHELO | SMFIP_NORCPT | SMFIP_NODATA | SMFIP_NOUNKNOWN | SMFIP_NR_CONN |
      SMFIP_NR_MAIL | SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY | SMFIP_HDR_LEADSPC | SMFIP_SKIP,
    leadingSpace: true,
    symbols: true,
  },
  {
    name: "Sendmail 8.14+ offering larger data sizes",
    offer: SENDMAIL_814,
    needs: DKIM_LIKE,
    version: 6,
    actions: SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE | SMFIF_SETSYMLIST,
    protocol: SMFIP_NOHELO | SMFIP_NORCPT | SMFIP_NODATA | SMFIP_NOUNKNOWN | SMFIP_NR_CONN |
      SMFIP_NR_MAIL | SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY | SMFIP_HDR_LEADSPC | SMFIP_SKIP,
    leadingSpace: true,
    symbols: true,
  },
  {
    name: "version 6 without no-reply flags",
    offer: NO_NR,
    needs: DKIM_LIKE,
    version: 6,
    actions: SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE | SMFIF_SETSYMLIST,
    protocol: SMFIP_NOHELO | SMFIP_NORCPT | SMFIP_NODATA | SMFIP_NOUNKNOWN | SMFIP_HDR_LEADSPC |
      SMFIP_SKIP,
    leadingSpace: true,
    symbols: true,
  },
  {
    name: "Postfix milter_protocol 2",
    offer: POSTFIX_2,
    needs: DKIM_LIKE,
    version: 2,
    actions: SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE,
    protocol: SMFIP_NOHELO | SMFIP_NORCPT,
    leadingSpace: false,
    symbols: false,
  },
  {
    name: "a version 4 MTA",
    offer: { version: 4, actions: 0x3f, protocol: 0x3ff },
    needs: DKIM_LIKE,
    version: 4,
    actions: SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE,
    protocol: SMFIP_NOHELO | SMFIP_NORCPT | SMFIP_NODATA | SMFIP_NOUNKNOWN | SMFIP_NR_HDR,
    leadingSpace: false,
    symbols: false,
  },
  {
    name: "a future version 7 MTA",
    offer: { version: 7, actions: 0xffff, protocol: 0xffffffff },
    needs: { actions: SMFIF_ADDHDRS, events: ["header"] },
    version: 6,
    actions: SMFIF_ADDHDRS,
    protocol: SMFIP_NOHELO | SMFIP_NOMAIL | SMFIP_NORCPT | SMFIP_NODATA | SMFIP_NOEOH |
      SMFIP_NOBODY | SMFIP_NOUNKNOWN | SMFIP_HDR_LEADSPC,
    leadingSpace: true,
    symbols: false,
  },
  {
    name: "a filter wanting every event and no leading space",
    offer: POSTFIX_6,
    needs: {
      actions: 0,
      events: ["helo", "envFrom", "envRcpt", "header", "endOfHeaders", "body"],
      headerLeadingSpace: false,
    },
    version: 6,
    actions: 0,
    protocol: SMFIP_NODATA | SMFIP_NOUNKNOWN | SMFIP_SKIP,
    leadingSpace: false,
    symbols: false,
  },
];

for (const c of cases) {
  Deno.test(`negotiate() answers ${c.name}`, () => {
    const result = negotiate(c.offer, c.needs);
    const hex = (n: number) => `0x${n.toString(16)}`;
    assert.equal(result.version, c.version);
    assert.equal(hex(result.actions), hex(c.actions));
    assert.equal(hex(result.protocol), hex(c.protocol));
    assert.equal(result.leadingSpace, c.leadingSpace);
    assert.equal(result.reply.version, c.version);
    assert.equal(result.reply.actions, result.actions);
    assert.equal(result.reply.protocol, result.protocol);
    assert.equal(result.symbols.length > 0, c.symbols);
    assert.equal("symbols" in result.reply, c.symbols);
    assert.equal(result.protocol & SMFIP_NOCONNECT, 0, "CONNECT is always wanted");
  });
}

Deno.test("negotiate() sends symbol lists per stage, without duplicates", () => {
  const result = negotiate(POSTFIX_6, {
    actions: 0,
    events: [],
    macros: { envFrom: ["i", "{auth_type}", "i"], connect: ["j"], helo: [] },
  });
  assert.deepEqual(result.symbols, [
    { stage: SMFIM_CONNECT, macros: ["j"] },
    { stage: SMFIM_ENVFROM, macros: ["i", "{auth_type}"] },
  ]);
  assert.ok(result.actions & SMFIF_SETSYMLIST);
});

Deno.test("negotiate() sends no symbol lists when the MTA does not allow them", () => {
  const result = negotiate(
    { version: 6, actions: SMFI_CURR_ACTS & ~SMFIF_SETSYMLIST, protocol: SMFI_CURR_PROT },
    DKIM_LIKE,
  );
  assert.deepEqual(result.symbols, []);
  assert.equal(result.actions & SMFIF_SETSYMLIST, 0);
});

Deno.test("negotiate() asks for no reply to unwanted events the MTA cannot skip", () => {
  // A version 6 MTA that cannot skip HELO but can leave it unanswered.
  const result = negotiate(
    { version: 6, actions: SMFI_CURR_ACTS, protocol: SMFI_CURR_PROT & ~SMFIP_NOHELO },
    { actions: 0, events: ["header"] },
  );
  assert.equal(result.protocol & SMFIP_NOHELO, 0);
  assert.ok(result.protocol & 0x2000, "SMFIP_NR_HELO");
});

Deno.test("negotiate() reads an offer of 0 as libmilter's version 1 defaults", () => {
  const result = negotiate({ version: 2, actions: 0, protocol: 0 }, {
    actions: SMFIF_ADDHDRS,
    events: ["header"],
  });
  assert.deepEqual(result.offer, { version: 2, actions: 0x0f, protocol: 0x3f });
  assert.equal(result.protocol, SMFIP_NOHELO | SMFIP_NOMAIL | SMFIP_NORCPT | SMFIP_NOBODY);
  assert.throws(
    () => negotiate({ version: 2, actions: 0, protocol: 0 }, DKIM_LIKE),
    /SMFIF_CHGHDRS/,
  );
});

Deno.test("negotiate() refuses versions below 2", () => {
  for (const version of [0, 1]) {
    assert.throws(
      () => negotiate({ version, actions: SMFI_CURR_ACTS, protocol: SMFI_CURR_PROT }, DKIM_LIKE),
      (error: unknown) => {
        assert.ok(error instanceof NegotiationError);
        assert.equal(error.name, "NegotiationError");
        assert.match(error.message, new RegExp(`protocol version ${version}:`));
        assert.equal(error.offer.version, version);
        return true;
      },
    );
  }
});

Deno.test("negotiate() refuses an MTA that does not allow a required action", () => {
  assert.throws(
    () => negotiate({ version: 6, actions: SMFIF_ADDHDRS, protocol: SMFI_CURR_PROT }, DKIM_LIKE),
    /does not allow required milter actions SMFIF_CHGHDRS \(offered actions 0x1\)/,
  );
  // Version 2 defines no SETSYMLIST, so requiring it fails even when the bit is offered.
  assert.throws(
    () => negotiate(POSTFIX_2, { actions: SMFIF_SETSYMLIST, events: [] }),
    /SMFIF_SETSYMLIST/,
  );
});

const EVENTS: FilterEvent[] = [
  "connect",
  "helo",
  "envFrom",
  "envRcpt",
  "header",
  "endOfHeaders",
  "body",
];

Deno.test("negotiate() never sets a flag the MTA did not offer or its version lacks", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 9 }),
      fc.nat(),
      fc.nat(),
      fc.subarray(EVENTS),
      fc.subarray(EVENTS),
      fc.boolean(),
      (version, actions, protocol, events, noReply, leadingSpace) => {
        const offer = { version, actions: actions & 0xffff, protocol };
        let result;
        try {
          result = negotiate(offer, {
            actions: SMFIF_ADDHDRS,
            events,
            noReply,
            headerLeadingSpace: leadingSpace,
            macros: { envFrom: ["i"] },
          });
        } catch (error) {
          assert.ok(error instanceof NegotiationError);
          return;
        }
        const offered = result.offer;
        assert.equal(result.protocol & ~offered.protocol, 0);
        assert.equal(result.actions & ~offered.actions, 0);
        assert.ok(result.version <= Math.min(version, 6));
        if (result.version < 6) {
          assert.equal(result.protocol & ~0x3ff, 0);
          assert.equal(result.actions & ~0x3f, 0);
          assert.deepEqual(result.symbols, []);
        }
        assert.equal(result.leadingSpace, (result.protocol & SMFIP_HDR_LEADSPC) !== 0);
      },
    ),
    fuzzParams(2000),
  );
});

Deno.test("negotiate() turns off events the filter does not handle", () => {
  const all: Array<[FilterEvent, number]> = [
    ["helo", SMFIP_NOHELO],
    ["envFrom", SMFIP_NOMAIL],
    ["envRcpt", SMFIP_NORCPT],
    ["header", SMFIP_NOHDRS],
    ["endOfHeaders", SMFIP_NOEOH],
    ["body", SMFIP_NOBODY],
  ];
  for (const [event, flag] of all) {
    const without = negotiate(POSTFIX_6, { actions: 0, events: EVENTS.filter((e) => e !== event) });
    assert.ok(without.protocol & flag, event);
    const withIt = negotiate(POSTFIX_6, { actions: 0, events: [event] });
    assert.equal(withIt.protocol & flag, 0, event);
  }
});
