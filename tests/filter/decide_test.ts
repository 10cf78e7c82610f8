/**
 * decide(): opendkim(8) OPERATION's sign-or-verify decision and its LogWhy lines, with the
 * configuration in memory, and the lookups it makes through the data set interface.
 */
import assert from "node:assert/strict";
import type { SigningKey } from "../../lib/crypto/private_key.ts";
import { decide, type DecisionInput } from "../../lib/filter/decide.ts";
import type { FilterPolicy } from "../../lib/filter/filter_policy.ts";
import type { DataSetLookup } from "../../lib/policy/data_set_lookup.ts";
import type { DataSetEntry } from "../../lib/policy/dataset.ts";
import { exampleSigning, MEMORY_CONF, memoryRuntime } from "../helpers/memory_runtime.ts";

const INTERNAL = { hostname: "mx1.example.com", address: "10.1.2.3" };
const EXTERNAL = { hostname: "mail.example.org", address: "192.0.2.25" };
const JOE = { user: "joe", domain: "example.com", field: "From" } as const;

/** The policy of `extra` configuration lines on top of example.com's signing setup. */
async function policyWith(extra: string): Promise<FilterPolicy<SigningKey>> {
  const signing = await exampleSigning();
  const { loaded } = await memoryRuntime(
    `Mode sv\n${signing.conf}InternalHosts csl:10.0.0.0/8\n${extra}`,
    { files: signing.files },
  );
  return loaded;
}

function input(
  policy: FilterPolicy<SigningKey>,
  more: Partial<DecisionInput<SigningKey>> = {},
): DecisionInput<SigningKey> {
  return {
    policy,
    client: INTERNAL,
    macros: () => undefined,
    sender: JOE,
    recipients: ["bob@example.org"],
    ...more,
  };
}

/** A data set back end that records each call, answering from `keys`. */
class RecordingSet implements DataSetLookup {
  readonly calls: (readonly string[])[] = [];
  readonly #keys: ReadonlySet<string>;

  constructor(keys: readonly string[]) {
    this.#keys = new Set(keys);
  }

  lookup(keys: readonly string[]): Promise<readonly (DataSetEntry | undefined)[]> {
    this.calls.push(keys);
    const origin = { file: "dsn:pgsql://db/dkim/table=t", line: 0 };
    return Promise.resolve(keys.map((key) => this.#keys.has(key) ? { key, origin } : undefined));
  }
}

Deno.test("decide() signs mail from an InternalHosts client, naming the entries that decided", async () => {
  const d = await decide(input(await policyWith("")));
  assert.equal(d.kind, "sign");
  assert.ok(d.kind === "sign" && d.signers.map((s) => s.selector).join() === "rsa");
  assert.deepEqual(d.why.slice(0, 2), [
    `mx1.example.com [10.1.2.3] is internal (InternalHosts "10.0.0.0/8" at ${MEMORY_CONF}:4)`,
    'SigningTable entry "*@example.com" at /etc/dkimd/signing.table:1 names key "rsa" ' +
    "(KeyTable /etc/dkimd/key.table:1: d=example.com s=rsa a=rsa-sha256)",
  ]);
});

Deno.test("decide() signs for an authenticated client, an MTA daemon or a MacroList macro", async () => {
  const policy = await policyWith("MTA MSA\nMacroList daemon_name=ORIG|SUBMIT\n");
  const macros = (values: Record<string, string>) => (name: string) => values[name];
  const cases: [Record<string, string>, string][] = [
    [{ auth_type: "PLAIN" }, "authenticated (auth_type PLAIN)"],
    [{ daemon_name: "MSA" }, "daemon 'MSA' is listed in MTA"],
    [{ daemon_name: "SUBMIT" }, "macro 'daemon_name' matches MacroList (SUBMIT)"],
  ];
  for (const [values, why] of cases) {
    const d = await decide(input(policy, { client: EXTERNAL, macros: macros(values) }));
    assert.equal(d.kind, "sign", why);
    assert.ok(d.why.includes(why), d.why.join("\n"));
  }
  const d = await decide(
    input(policy, { client: EXTERNAL, macros: macros({ daemon_name: "msa" }) }),
  );
  assert.equal(d.kind, "verify");
  assert.deepEqual(d.why, [
    "mail.example.org [192.0.2.25] not internal",
    "not authenticated",
    "external host mail.example.org [192.0.2.25] tried to send mail as example.com",
  ]);
});

Deno.test("decide() leaves ExemptDomains alone and does not sign to DontSignMailTo", async () => {
  const policy = await policyWith(
    "ExemptDomains csl:example.net\nDontSignMailTo csl:boss@a.example,b.example\n",
  );
  const exempt = await decide(input(policy, { sender: { ...JOE, domain: "Example.NET" } }));
  assert.deepEqual(exempt, {
    kind: "skip",
    why: [`sender domain 'Example.NET' is exempt (ExemptDomains ${MEMORY_CONF}:5)`],
  });
  for (const rcpt of ["boss@a.example", "anyone@b.example"]) {
    const d = await decide(input(policy, { recipients: ["bob@example.org", rcpt] }));
    assert.equal(d.kind, "verify", rcpt);
    assert.ok(d.why.includes(`recipient '${rcpt}' is in DontSignMailTo; not signing`), rcpt);
  }
});

Deno.test("decide() says why it neither signs nor verifies", async () => {
  const ignoring = await policyWith("ExternalIgnoreList csl:192.0.2.0/24\n");
  const outside = await decide(input(ignoring, { client: EXTERNAL }));
  assert.equal(outside.kind, "skip");
  // ExternalIgnoreList silences the complaint about our domain, and skips verifying.
  assert.deepEqual(outside.why, [
    "mail.example.org [192.0.2.25] not internal",
    "not authenticated",
    'mail.example.org [192.0.2.25] is in ExternalIgnoreList ("192.0.2.0/24"); not verifying',
  ]);
  const signOnly = await policyWith("Mode s\n");
  const unsigned = await decide(input(signOnly, { sender: undefined }));
  assert.equal(unsigned.kind, "skip");
  assert.deepEqual(unsigned.why.slice(1), [
    "can't determine message sender; not signing",
    "verify mode not enabled; leaving the message alone",
  ]);
});

Deno.test("decide() asks each data set once per message, with OpenDKIM's keys", async () => {
  const loaded = await policyWith("");
  const exemptDomains = new RecordingSet([]);
  const mta = new RecordingSet(["MSA"]);
  const dontSignMailTo = new RecordingSet(["b.example"]);
  const policy: FilterPolicy<SigningKey> = { ...loaded, exemptDomains, mta, dontSignMailTo };
  const d = await decide(input(policy, {
    client: EXTERNAL,
    macros: (name) => (name === "daemon_name" ? "MSA" : undefined),
    recipients: ["bob@example.org", "ann@b.example"],
  }));
  assert.ok(d.why.includes("recipient 'ann@b.example' is in DontSignMailTo; not signing"));
  assert.deepEqual(exemptDomains.calls, [["example.com"]]);
  assert.deepEqual(mta.calls, [["MSA"]]);
  assert.deepEqual(dontSignMailTo.calls, [[
    "bob@example.org",
    "example.org",
    "ann@b.example",
    "b.example",
  ]]);
});

Deno.test("decide() rejects when a data set cannot answer", async () => {
  const loaded = await policyWith("");
  const down: DataSetLookup = { lookup: () => Promise.reject(new Error("database is down")) };
  await assert.rejects(
    () => decide(input({ ...loaded, exemptDomains: down })),
    /database is down/,
  );
});
