import assert from "node:assert/strict";
import type { DataSetEntry } from "../../lib/policy/dataset.ts";
import {
  DEFAULT_OMIT_HEADERS,
  DEFAULT_SIGN_HEADERS,
  enforceRequiredHeaders,
  resolveHeaderList,
} from "../../lib/policy/header_list.ts";
import { MacroList } from "../../lib/policy/macro_list.ts";
import { NameSet } from "../../lib/policy/name_set.ts";
import { SourceError } from "../../lib/policy/origin.ts";

const entries = (...items: (string | [string, string])[]): DataSetEntry[] =>
  items.map((item, i) => {
    const origin = { file: "/etc/opendkim.conf", line: 20 + i };
    return typeof item === "string"
      ? { key: item, origin }
      : { key: item[0], value: item[1], origin };
  });

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

Deno.test("MacroList.match() needs the macro set, and one of the values when given", async () => {
  const list = MacroList.fromEntries(
    entries(["daemon_name", "MSA|ORIG"], "auth_authen", "{j}"),
    "MacroList",
  );
  const cases: [Record<string, string>, boolean, string?][] = [
    [{ daemon_name: "MSA" }, true, "daemon_name"],
    [{ daemon_name: "ORIG" }, true, "daemon_name"],
    [{ daemon_name: "MTA" }, false],
    [{ daemon_name: "msa" }, false],
    [{ auth_authen: "" }, true, "auth_authen"],
    [{ j: "mx.example.com" }, true, "j"],
    [{}, false],
  ];
  for (const [macros, want, rule] of cases) {
    const m = await list.match((n) => macros[n]);
    assert.equal(m.matched, want, JSON.stringify(macros));
    if (rule) assert.equal(m.rule?.name, rule);
  }
  assert.throws(() => MacroList.fromEntries(entries("bad name"), "MacroList"), /not a macro name/);
});

Deno.test("NameSet.lookup() compares as OpenDKIM opens the set", async () => {
  const dont = new NameSet(entries("Boss@Example.com"), true);
  const [boss, other] = await dont.lookup(["boss@example.COM", "boss@example.org"]);
  assert.ok(boss);
  assert.ok(!other);
  const mta = new NameSet(entries("MSA"), false);
  const [exact, lower] = await mta.lookup(["MSA", "msa"]);
  assert.ok(exact);
  assert.ok(!lower);
});

Deno.test("NameSet.lookup() answers each key with its first entry, in the order asked", async () => {
  const set = new NameSet(entries(["a", "1"], ["b", "2"], ["A", "3"]), true);
  const hits = await set.lookup(["B", "c", "a", "b"]);
  assert.deepEqual(hits.map((e) => e?.value), ["2", undefined, "1", "2"]);
  assert.deepEqual(await set.lookup([]), []);
});
