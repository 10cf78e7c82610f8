/**
 * decide(): opendkim(8) OPERATION's sign-or-verify decision and its LogWhy lines, with the
 * configuration in memory, and the lookups it makes through the data set interface.
 */
import assert from "node:assert/strict";
import type { SigningKey } from "../../lib/crypto/private_key.ts";
import { decide, type DecisionInput } from "../../lib/filter/decide.ts";
import type { FilterPolicy } from "../../lib/filter/filter_policy.ts";
import { AuthorizedSigners } from "../../lib/policy/authorized_signers.ts";
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

// AuthorizedSigners: a shared host signing example.com and example.net, where every login may
// sign for its own domain and postmaster@example.com for both.
const SHARED = "SigningTable csl:example.com=rsa,example.net=rsa\n" +
  "AuthorizedSigners /etc/dkimd/authorized_signers\n";
const SIGNERS_FILE = "*  %\npostmaster@example.com  example.com, example.net\n";

async function sharedHost(extra = ""): Promise<FilterPolicy<SigningKey>> {
  const signing = await exampleSigning();
  const { loaded } = await memoryRuntime(
    `Mode sv\n${signing.conf}InternalHosts csl:10.0.0.0/8\n${SHARED}${extra}`,
    { files: { ...signing.files, "/etc/dkimd/authorized_signers": SIGNERS_FILE } },
  );
  return loaded;
}

const login = (name?: string) => (macro: string) =>
  macro === "auth_type" ? "PLAIN" : macro === "auth_authen" ? name : undefined;
const CEO_NET = { user: "ceo", domain: "example.net", field: "From" } as const;

Deno.test("decide() with AuthorizedSigners signs an authenticated login's own domain, naming the entry", async () => {
  const policy = await sharedHost();
  const d = await decide(input(policy, { client: EXTERNAL, macros: login("joe@example.com") }));
  assert.equal(d.kind, "sign");
  assert.ok(
    d.why.includes(
      "login 'joe@example.com' may sign for From 'joe@example.com' " +
        `(AuthorizedSigners "*" at /etc/dkimd/authorized_signers:1: "%")`,
    ),
    d.why.join("\n"),
  );
  const admin = await decide(input(policy, {
    client: EXTERNAL,
    macros: login("Postmaster@Example.com"),
    sender: CEO_NET,
  }));
  assert.equal(admin.kind, "sign");
});

Deno.test("decide() with AuthorizedSigners refuses an authenticated login another domain's From, with On-UnauthorizedSigner's action", async () => {
  const want = "login 'joe@example.com' may not sign for From 'ceo@example.net' " +
    `(AuthorizedSigners "*" at /etc/dkimd/authorized_signers:1 allows only %)`;
  const d = await decide(
    input(await sharedHost(), {
      client: EXTERNAL,
      macros: login("joe@example.com"),
      sender: CEO_NET,
    }),
  );
  assert.deepEqual(d, {
    kind: "unauthorized",
    why: ["mail.example.org [192.0.2.25] not internal", "authenticated (auth_type PLAIN)"],
    refusal: want,
    action: "accept",
  });
  for (const action of ["reject", "tempfail", "discard"]) {
    const policy = await sharedHost(`On-UnauthorizedSigner ${action}\n`);
    const r = await decide(
      input(policy, { client: EXTERNAL, macros: login("joe@example.com"), sender: CEO_NET }),
    );
    assert.ok(r.kind === "unauthorized" && r.action === action && r.refusal === want, action);
  }
});

Deno.test("decide() with AuthorizedSigners checks every authenticated message, an internal client's too", async () => {
  const policy = await sharedHost();
  // Authenticated from an InternalHosts address (webmail on the host, say): still checked.
  const internal = await decide(
    input(policy, { macros: login("joe@example.com"), sender: CEO_NET }),
  );
  assert.equal(internal.kind, "unauthorized");
  // No {auth_authen}: only the "*" entry can answer, and % has no login domain to allow.
  const nameless = await decide(input(policy, { client: EXTERNAL, macros: login(undefined) }));
  assert.ok(nameless.kind === "unauthorized", nameless.kind);
  assert.match(nameless.refusal, /^login \(none: the MTA sent no \{auth_authen\}\) may not sign/);
});

Deno.test("decide() with AuthorizedSigners leaves unauthenticated mail as OpenDKIM does: InternalHosts, MTA, MacroList", async () => {
  const policy = await sharedHost("MTA MSA\nMacroList daemon_name=ORIG\n");
  const origins: Partial<DecisionInput<SigningKey>>[] = [
    {},
    { client: EXTERNAL, macros: (n) => (n === "daemon_name" ? "MSA" : undefined) },
    { client: EXTERNAL, macros: (n) => (n === "daemon_name" ? "ORIG" : undefined) },
  ];
  for (const more of origins) {
    const d = await decide(input(policy, { ...more, sender: CEO_NET }));
    assert.equal(d.kind, "sign");
    assert.ok(!d.why.some((w) => w.includes("AuthorizedSigners")), d.why.join("\n"));
  }
});

Deno.test("decide() with AuthorizedSigners refuses only signatures: a From it does not sign for is verified as before", async () => {
  const d = await decide(input(await sharedHost(), {
    client: EXTERNAL,
    macros: login("joe@example.com"),
    sender: { user: "joe", domain: "gmail.example", field: "From" },
  }));
  assert.equal(d.kind, "verify");
  assert.ok(d.why.includes("no signing table match for 'joe@gmail.example'"), d.why.join("\n"));
});

Deno.test("decide() without AuthorizedSigners signs any From for an authenticated client, as OpenDKIM", async () => {
  const signing = await exampleSigning();
  const { loaded } = await memoryRuntime(
    `Mode sv\n${signing.conf}SigningTable csl:example.com=rsa,example.net=rsa\n`,
    { files: signing.files },
  );
  const d = await decide(
    input(loaded, { client: EXTERNAL, macros: login("joe@example.com"), sender: CEO_NET }),
  );
  assert.equal(d.kind, "sign");
});

Deno.test("decide() asks AuthorizedSigners the login and * in one lookup, and rejects when it cannot answer", async () => {
  const loaded = await sharedHost();
  const set = new RecordingSet(["*"]);
  const policy: FilterPolicy<SigningKey> = {
    ...loaded,
    authorizedSigners: AuthorizedSigners.keyed(set),
  };
  const d = await decide(
    input(policy, { client: EXTERNAL, macros: login("joe@example.com"), sender: CEO_NET }),
  );
  // RecordingSet's "*" entry has no value: it allows nothing.
  assert.equal(d.kind, "unauthorized");
  assert.deepEqual(set.calls, [["joe@example.com", "*"]]);
  const down: DataSetLookup = { lookup: () => Promise.reject(new Error("database is down")) };
  await assert.rejects(
    () =>
      decide(input({ ...loaded, authorizedSigners: AuthorizedSigners.keyed(down) }, {
        client: EXTERNAL,
        macros: login("joe@example.com"),
      })),
    /database is down/,
  );
});
