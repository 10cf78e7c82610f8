import assert from "node:assert/strict";
import { fromLatin1 } from "../../lib/bytes.ts";
import type { HeaderField } from "../../lib/dkim/header.ts";
import { findSender, MAX_ADDRESS_FIELD_CHARS, parseAddress } from "../../lib/filter/sender.ts";

Deno.test("parseAddress() finds the first mailbox of an RFC 5322 address list", () => {
  const cases: [string, string | undefined][] = [
    ["joe@example.com", "joe@example.com"],
    ["Joe <joe@Example.COM>", "joe@example.com"],
    ['"Doe, Joe" (boss) <Joe@example.com>', "Joe@example.com"],
    ["joe@example.com (Joe)", "joe@example.com"],
    ["(a (nested) comment) joe@example.com", "joe@example.com"],
    ["(comment with <x@y.z> in it) joe@example.com", "joe@example.com"],
    ["a@example.org, b@example.net", "a@example.org"],
    ["Team: a@example.org, b@example.org;", "a@example.org"],
    ['"joe smith"@example.com', "joe smith@example.com"],
    ['"a\\"b"@example.com', 'a"b@example.com'],
    ["<@relay.example,@other.example:joe@example.com>", "joe@example.com"],
    ["joe@example.com.", "joe@example.com"],
    ["joe@[192.0.2.1]", "joe@[192.0.2.1]"],
    ["Joe <joe@example.com> <other@example.org>", "joe@example.com"],
    ["a@b@example.com", "a@b@example.com"],
    ["undisclosed-recipients:;", undefined],
    ["", undefined],
    ["Joe", undefined],
    ["@example.com", undefined],
    ["joe@", undefined],
    ["<joe@example.com", undefined],
    ["joe@exam!ple.com", undefined],
  ];
  for (const [value, want] of cases) {
    const address = parseAddress(value);
    assert.equal(address && `${address.user}@${address.domain}`, want, value);
  }
});

Deno.test("parseAddress() reads at most MAX_ADDRESS_FIELD_CHARS of a field", () => {
  const pad = " ".repeat(MAX_ADDRESS_FIELD_CHARS - "joe@example.com".length);
  assert.deepEqual(parseAddress(`${pad}joe@example.com`), { user: "joe", domain: "example.com" });
  // One character more, and the last one is past the bound.
  assert.deepEqual(parseAddress(`${pad} joe@example.com`), { user: "joe", domain: "example.co" });
  // Unbalanced comments and quotes end at the bound, not in a loop.
  assert.equal(parseAddress("(".repeat(100_000)), undefined);
  assert.equal(parseAddress('"'.repeat(100_001)), undefined);
});

const field = (name: string, value: string): HeaderField => ({
  name,
  raw: fromLatin1(`${name}:${value}`),
});

Deno.test("findSender() takes the first of SenderHeaders the message has, its first instance", () => {
  const fields = [
    field("Received", " from mx.example.net"),
    field("Sender", " list-owner@lists.example.org"),
    field("FROM", " Alice <alice@example.com>"),
    field("From", " second@example.com"),
  ];
  assert.deepEqual(findSender(fields, ["from"]), {
    user: "alice",
    domain: "example.com",
    field: "FROM",
  });
  assert.deepEqual(findSender(fields, ["Sender", "From"]), {
    user: "list-owner",
    domain: "lists.example.org",
    field: "Sender",
  });
  assert.deepEqual(findSender(fields, ["Resent-From", "From"])?.field, "FROM");
  assert.equal(findSender(fields, ["Resent-From"]), undefined);
  assert.equal(findSender([], ["From"]), undefined);
});

Deno.test("findSender() passes over a field without an address, and reads folded values", () => {
  const fields = [
    field("Sender", " undisclosed-recipients:;"),
    field("From", " Alice\r\n <alice@example.com>"),
  ];
  assert.deepEqual(findSender(fields, ["Sender", "From"]), {
    user: "alice",
    domain: "example.com",
    field: "From",
  });
  assert.equal(findSender([field("From", " nobody")], ["From"]), undefined);
});
