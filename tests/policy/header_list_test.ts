import assert from "node:assert/strict";
import {
  DEFAULT_OVERSIGNED_HEADERS,
  DEFAULT_SIGNED_HEADERS,
} from "../../lib/dkim/signed_headers.ts";
import {
  DEFAULT_OMIT_HEADERS,
  enforceRequiredHeaders,
  resolveHeaderList,
} from "../../lib/policy/header_list.ts";
import { SourceError } from "../../lib/policy/origin.ts";
import { entries } from "../helpers/data_set_entries.ts";

// The SignHeaders default is dkim's list (the one `dkimd sign` uses), lower-cased here.
const DEFAULT_SIGN_HEADERS = DEFAULT_SIGNED_HEADERS.map((n) => n.toLowerCase());

Deno.test("resolveHeaderList() replaces the default or changes it after *", () => {
  const cases: { items: string[]; base?: readonly string[]; want: string[] }[] = [
    {
      items: ["From", "Subject", "subject"],
      base: DEFAULT_SIGN_HEADERS,
      want: ["from", "subject"],
    },
    {
      items: ["*", "+X-Mailer"],
      base: DEFAULT_SIGN_HEADERS,
      want: [...DEFAULT_SIGN_HEADERS, "x-mailer"],
    },
    {
      items: ["*", "-Bcc", "-Received"],
      base: DEFAULT_OMIT_HEADERS,
      want: DEFAULT_OMIT_HEADERS.filter((n) => n !== "bcc" && n !== "received"),
    },
    { items: ["."], base: DEFAULT_OMIT_HEADERS, want: ["."] },
    { items: ["From", "Sender"], want: ["from", "sender"] },
  ];
  for (const c of cases) {
    assert.deepEqual(
      resolveHeaderList(entries(...c.items), "SignHeaders", c.base).names,
      c.want,
      c.items.join(","),
    );
  }
});

Deno.test("resolveHeaderList() refuses +/- without *, * without a default and bad names", () => {
  const bad: [string[], readonly string[] | undefined, RegExp][] = [
    [["+X-Foo"], DEFAULT_SIGN_HEADERS, /only after "\*"/],
    [["*", "From"], undefined, /not supported for SenderHeaders/],
    [["Bad:Name"], undefined, /not a header field name/],
    [["Bäd"], undefined, /not a header field name/],
  ];
  for (const [items, base, re] of bad) {
    assert.throws(
      () => resolveHeaderList(entries(...items), "SenderHeaders", base),
      (e: unknown) => {
        assert.ok(e instanceof SourceError);
        assert.match(e.message, /\/etc\/opendkim\.conf:2\d/);
        assert.match(e.message, re);
        return true;
      },
    );
  }
  const warned = resolveHeaderList(entries("*", "-X-Absent"), "OmitHeaders", DEFAULT_OMIT_HEADERS);
  assert.equal(warned.warnings.length, 1);
});

Deno.test("enforceRequiredHeaders() always signs From and never omits it", () => {
  assert.deepEqual(enforceRequiredHeaders(["subject"], ["received"]).sign, ["from", "subject"]);
  assert.deepEqual(enforceRequiredHeaders(DEFAULT_SIGN_HEADERS, ["from"]).omit, []);
});

Deno.test("resolveHeaderList() starts a * list from the base lower-cased, as dkim's lists are not", () => {
  assert.deepEqual(
    resolveHeaderList(entries("*", "+X-Mailer", "-Sender"), "SignHeaders", DEFAULT_SIGNED_HEADERS)
      .names,
    [...DEFAULT_SIGN_HEADERS.filter((n) => n !== "sender"), "x-mailer"],
  );
});

Deno.test("resolveHeaderList() changes the OversignHeaders default (From) after *, a dkimd addition", () => {
  const oversign = (...items: string[]) =>
    resolveHeaderList(entries(...items), "OversignHeaders", DEFAULT_OVERSIGNED_HEADERS).names;
  assert.deepEqual(oversign("*", "+Subject"), ["from", "subject"]);
  assert.deepEqual(oversign("*", "-From"), []);
  // Without *, a list replaces the default, as in OpenDKIM.
  assert.deepEqual(oversign("Subject"), ["subject"]);
});
