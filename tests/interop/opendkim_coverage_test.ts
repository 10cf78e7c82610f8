/**
 * Issue 18's "the comparison tests cover every implemented setting": the settings no other
 * comparison varied, each run in Debian's opendkim and dkimd on the same opendkim.conf and the
 * same messages through the milter (tests/helpers/opendkim_milter.ts), comparing the reply and
 * every header, recipient and quarantine change. Where dkimd departs on purpose, the case asserts
 * both sides and names the departure, which the setting's `opendkim` field in
 * lib/config/settings.ts says too. tests/config/comparison_coverage_test.ts maps each setting to
 * the comparison that covers it.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import type { ClientMessage, MessageResult } from "../../lib/milter/client.ts";
import type { SignOptions } from "../../lib/dkim/sign.ts";
import { loadKey, MESSAGE, recordFor, signed, writeTestKeys } from "../helpers/dkim_fixtures.ts";
import { mtaMessage } from "../helpers/mta_message.ts";
import { runCli } from "../helpers/run_cli.ts";
import { startFakeDnsServer } from "../helpers/fake_dns_server.ts";
import {
  HAVE_OPENDKIM,
  type MilterPair,
  observe,
  type Observed,
  sendTo,
  startOpenDkim,
  startPair,
} from "../helpers/opendkim_milter.ts";

const KEY_FILE = new URL("../testdata/keys/rsa2048_pkcs8.pem", import.meta.url).pathname;

/** What both milters did with one message, and their raw answers (for tags Observed leaves out). */
interface Both {
  readonly opendkim: Observed;
  readonly dkimd: Observed;
  readonly raw: { readonly opendkim: MessageResult; readonly dkimd: MessageResult };
}

type Send = (m: ClientMessage) => Promise<Both>;

/**
 * The test keys (selectors `rsa`, `ed`, `seed` of example.com) plus `small`, a 1024-bit RSA key,
 * in a TestPublicKeys file of `dir`.
 */
async function keysFile(dir: string): Promise<string> {
  const keys = await writeTestKeys(dir);
  const small = await loadKey("rsa1024.pem");
  await Deno.writeTextFile(keys, `small._domainkey.example.com ${recordFor(small)}\n`, {
    append: true,
  });
  return keys;
}

/** A KeyTable and a `refile:` SigningTable signing example.com with the `rsa` key. */
async function tables(dir: string): Promise<string[]> {
  await Deno.writeTextFile(`${dir}/key_table`, `k example.com:rsa:${KEY_FILE}\n`);
  await Deno.writeTextFile(`${dir}/signing_table`, `*@example.com k\n`);
  return [`KeyTable ${dir}/key_table`, `SigningTable refile:${dir}/signing_table`];
}

/**
 * The fields both sign unless a case says otherwise: the two defaults differ on purpose (dkimd
 * adds Message-ID and the MIME fields and oversigns From; the setting's `opendkim` field says so).
 */
const SIGNED_FIELDS = ["SignHeaders From,To,Subject,Date", "OversignHeaders From"];

/** The lines of `base` whose setting `lines` does not give. */
function defaults(lines: readonly string[], base: readonly string[]): string[] {
  const named = new Set(lines.map((l) => l.split(/\s/)[0].toLowerCase()));
  return base.filter((l) => !named.has(l.split(/\s/)[0].toLowerCase()));
}

/**
 * Runs `body` with opendkim and dkimd on "Mode sv", the test keys, "RequireSafeKeys no" (the
 * test key files are readable by all), SIGNED_FIELDS and the lines `extra` gives (which win).
 */
async function withPair(
  extra: (dir: string) => Promise<readonly string[]> | readonly string[],
  body: (send: Send, pair: MilterPair) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dkimd-od18c-" });
  try {
    const more = await extra(dir);
    const lines = [
      "Mode sv",
      `TestPublicKeys ${await keysFile(dir)}`,
      ...defaults(more, ["RequireSafeKeys no", ...SIGNED_FIELDS]),
      ...more,
    ];
    const pair = await startPair(dir, lines);
    try {
      await body(async (m) => {
        const [opendkim, dkimd] = await Promise.all([
          sendTo(pair.opendkim.port, m),
          sendTo(pair.dkimd.port, m),
        ]);
        return {
          opendkim: observe(opendkim),
          dkimd: observe(dkimd),
          raw: { opendkim, dkimd },
        };
      }, pair);
    } finally {
      await pair.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Asserts both milters did the same; answers what they did. */
function same(r: Both, what = ""): Observed {
  assert.deepEqual(r.dkimd, r.opendkim, what);
  return r.dkimd;
}

/** `bytes` from an outside client (verified). */
const inbound = (bytes: Uint8Array, qid = "IN1", address = "192.0.2.7"): ClientMessage =>
  mtaMessage(bytes, { qid, address, hostname: "mx.example.net" });

/** `bytes` from 127.0.0.1 (InternalHosts by default: signed). */
const outbound = (bytes: Uint8Array, qid = "OUT1"): ClientMessage =>
  mtaMessage(bytes, { qid, address: "127.0.0.1" });

/** `message` with `lines` added on top of its header. */
function withFields(message: Uint8Array, ...lines: string[]): Uint8Array {
  return new Uint8Array([...fromLatin1(lines.map((l) => `${l}\r\n`).join("")), ...message]);
}

/** `message` signed by example.com's `rsa` key (or `options` over it), at `now`. */
async function signedBy(
  options: Partial<SignOptions> = {},
  message = MESSAGE,
  now = Math.floor(Date.now() / 1000),
): Promise<Uint8Array> {
  return await signed(message, [{
    domain: "example.com",
    selector: "rsa",
    key: await loadKey("rsa2048_pkcs8.pem"),
    canonicalization: ["relaxed", "relaxed"],
    signHeaders: ["From", "To", "Subject", "Date"],
    ...options,
  }], now);
}

/** The signed message with its body changed after signing: the signature fails. */
async function badlySigned(): Promise<Uint8Array> {
  return fromLatin1(latin1(await signedBy()).replace("Noon", "Nine"));
}

/** The DKIM-Signature summaries among a milter's changes. */
const signatures = (o: Observed) =>
  o.changes.filter((c) => / DKIM-Signature: /.test(c)).map((c) => c.replace(/^.*?: /, ""));

/** The Authentication-Results summaries among a milter's changes. */
const results = (o: Observed) =>
  o.changes.filter((c) => / Authentication-Results: /.test(c)).map((c) => c.replace(/^.*?: /, ""));

/** The value of the DKIM-Signature a milter inserted, unfolded. */
function signatureValue(result: MessageResult): string {
  for (const m of result.modifications) {
    if ((m.type === "insheader" || m.type === "addheader") && m.name === "DKIM-Signature") {
      return (typeof m.value === "string" ? m.value : latin1(m.value)).replace(/\s+/g, "");
    }
  }
  return "";
}

/** Tag `name` of a DKIM-Signature value. */
const tag = (value: string, name: string) => new RegExp(`(?:^|;)${name}=([^;]*)`).exec(value)?.[1];

Deno.test({
  name:
    "Canonicalization, SignHeaders, OversignHeaders, SignatureAlgorithm rsa-sha256: the same c=, h= and a= in both",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    await withPair(async (dir) => [
      ...(await tables(dir)),
      "Canonicalization simple/simple",
      "SignatureAlgorithm rsa-sha256",
      "SignHeaders From,Subject,Message-ID",
      "OversignHeaders Subject",
    ], async (send) => {
      const out = same(await send(outbound(MESSAGE)));
      assert.deepEqual(signatures(out), [
        "d=example.com s=rsa a=rsa-sha256 c=simple/simple h=from:message-id:subject:subject",
      ]);
    });
    await withPair(async (dir) => [
      ...(await tables(dir)),
      "Canonicalization relaxed",
      "OversignHeaders To,Date",
    ], async (send) => {
      const out = same(await send(outbound(MESSAGE)));
      assert.match(signatures(out)[0], / c=relaxed\/simple /);
    });
  },
});

Deno.test({
  name: "OmitHeaders: the named fields are left out of h= in both",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    await withPair(async (dir) => [
      ...(await tables(dir)),
      "OmitHeaders Subject,Message-ID",
      "OversignHeaders From",
    ], async (send) => {
      const out = same(await send(outbound(MESSAGE)));
      assert.doesNotMatch(signatures(out)[0], /subject|message-id/);
      assert.match(signatures(out)[0], /h=.*from/);
    });
  },
});

Deno.test({
  name:
    "SignatureAlgorithm rsa-sha1 departure: OpenDKIM signs a=rsa-sha1; dkimd signs rsa-sha256 (RFC 8301 forbids signing with SHA-1)",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    await withPair(
      async (dir) => [...(await tables(dir)), "SignatureAlgorithm rsa-sha1"],
      async (send) => {
        const r = await send(outbound(MESSAGE));
        assert.match(signatures(r.opendkim)[0], / a=rsa-sha1 /);
        assert.match(signatures(r.dkimd)[0], / a=rsa-sha256 /);
        assert.deepEqual(
          signatures(r.dkimd).map((v) => v.replace("rsa-sha256", "rsa-sha1")),
          signatures(r.opendkim),
        );
      },
    );
  },
});

Deno.test({
  name: "MinimumKeyBits: a signature by a key shorter than the minimum is not a pass in both",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    const small = await signedBy({ selector: "small", key: await loadKey("rsa1024.pem") });
    await withPair(() => ["MinimumKeyBits 1024"], async (send) => {
      const r = same(await send(inbound(small)));
      assert.match(results(r)[0], /dkim=pass/);
    });
    await withPair(() => ["MinimumKeyBits 2048"], async (send) => {
      const r = same(await send(inbound(small)));
      assert.doesNotMatch(results(r)[0], /dkim=pass/);
      same(await send(inbound(await signedBy(), "IN2")));
    });
  },
});

const SUB = fromLatin1(
  latin1(MESSAGE).replace("alice@example.com", "alice@mail.example.com"),
);

Deno.test({
  name:
    "Domain, Selector, KeyFile and SubDomains: the single key signs its domain, and its subdomains only with SubDomains, in both",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    const single = ["Domain example.com", "Selector rsa", `KeyFile ${KEY_FILE}`];
    await withPair(() => single, async (send) => {
      const own = same(await send(outbound(MESSAGE)));
      assert.match(signatures(own)[0], /^d=example\.com s=rsa /);
      const sub = same(await send(outbound(SUB, "OUT2")));
      assert.deepEqual(signatures(sub), []);
    });
    await withPair(() => [...single, "SubDomains yes"], async (send) => {
      const sub = await send(outbound(SUB));
      // Departure: both sign d=example.com with an i=; OpenDKIM's names d= (@example.com),
      // dkimd's the sender's subdomain (@mail.example.com), which RFC 6376 §3.5 allows.
      assert.match(signatures(sub.opendkim)[0], /^d=example\.com s=rsa .* i=@example\.com$/);
      assert.match(signatures(sub.dkimd)[0], /^d=example\.com s=rsa .* i=@mail\.example\.com$/);
      assert.deepEqual(
        signatures(sub.dkimd).map((v) => v.replace("@mail.", "@")),
        signatures(sub.opendkim),
      );
    });
  },
});

Deno.test({
  name:
    "KeyTable and SigningTable: refile: patterns and plain keys (address, then domain) choose the same key in both",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    await withPair(async (dir) => {
      await Deno.writeTextFile(`${dir}/key_table`, `k example.com:rsa:${KEY_FILE}\n`);
      await Deno.writeTextFile(`${dir}/signing_table`, `*@*.example.com k\n`);
      return [`KeyTable ${dir}/key_table`, `SigningTable refile:${dir}/signing_table`];
    }, async (send) => {
      assert.match(signatures(same(await send(outbound(SUB))))[0], /^d=example\.com /);
      assert.deepEqual(signatures(same(await send(outbound(MESSAGE, "OUT2")))), []);
    });
    await withPair(async (dir) => {
      await Deno.writeTextFile(`${dir}/key_table`, `k example.com:rsa:${KEY_FILE}\n`);
      await Deno.writeTextFile(`${dir}/signing_table`, `example.com k\n`);
      return [`KeyTable ${dir}/key_table`, `SigningTable ${dir}/signing_table`];
    }, async (send) => {
      assert.match(signatures(same(await send(outbound(MESSAGE))))[0], /^d=example\.com /);
      assert.deepEqual(signatures(same(await send(outbound(SUB, "OUT2")))), []);
    });
  },
});

Deno.test({
  name:
    "MultipleSignatures: every matching SigningTable entry signs in both; without it the first only",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    const twoKeys = async (dir: string) => {
      await Deno.writeTextFile(
        `${dir}/key_table`,
        `k example.com:rsa:${KEY_FILE}\nk2 example.com:small:${
          new URL("../testdata/keys/rsa1024.pem", import.meta.url).pathname
        }\n`,
      );
      await Deno.writeTextFile(`${dir}/signing_table`, `*@example.com k\n*@example.com k2\n`);
      return [`KeyTable ${dir}/key_table`, `SigningTable refile:${dir}/signing_table`];
    };
    await withPair(
      async (dir) => [...(await twoKeys(dir)), "MultipleSignatures yes"],
      async (send) => {
        // Both add the same two signatures; each inserts them on top in its own order.
        const r = await send(outbound(MESSAGE));
        assert.deepEqual(signatures(r.dkimd).sort(), signatures(r.opendkim).sort());
        assert.equal(signatures(r.dkimd).length, 2);
      },
    );
    await withPair(twoKeys, async (send) => {
      const r = same(await send(outbound(MESSAGE)));
      assert.equal(signatures(r).length, 1);
    });
  },
});

Deno.test({
  name:
    "InternalHosts, PeerList: internal clients' mail is signed, outsiders' verified, peers' passed untouched, alike in both",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    await withPair(async (dir) => [
      ...(await tables(dir)),
      "InternalHosts 192.0.2.0/24",
      "PeerList 198.51.100.9",
    ], async (send) => {
      const internal = same(await send(inbound(MESSAGE, "IN1", "192.0.2.7")));
      assert.equal(signatures(internal).length, 1);
      // 127.0.0.1 is no longer internal: verified.
      const local = same(await send(outbound(await signedBy())));
      assert.deepEqual(signatures(local), []);
      assert.match(results(local)[0], /dkim=pass/);
      const peer = same(await send(inbound(await signedBy(), "IN2", "198.51.100.9")));
      assert.deepEqual(peer, { final: "accept", changes: [] });
    });
  },
});

Deno.test({
  name:
    "ExternalIgnoreList departure: OpenDKIM still verifies its hosts' mail (it only stops logging it); dkimd leaves it alone",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    await withPair(async (dir) => [
      ...(await tables(dir)),
      "ExternalIgnoreList 192.0.2.8",
    ], async (send) => {
      const ignored = await send(inbound(await signedBy(), "IN1", "192.0.2.8"));
      assert.deepEqual(signatures(ignored.opendkim), []);
      assert.match(results(ignored.opendkim)[0], /dkim=pass/);
      assert.deepEqual(ignored.dkimd, { final: "accept", changes: [] });
      same(await send(inbound(await signedBy(), "IN2", "192.0.2.7")));
    });
  },
});

/** `m` with `values` added to the macros sent at `stage`. */
function withMacros(
  m: ClientMessage,
  stage: "connect" | "mail",
  values: Record<string, string>,
): ClientMessage {
  return { ...m, macros: { ...m.macros, [stage]: { ...m.macros?.[stage], ...values } } };
}

Deno.test({
  name: "MTA: mail through a named MTA is signed from any client in both",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    await withPair(async (dir) => [
      ...(await tables(dir)),
      "MTA msa",
    ], async (send) => {
      const plain = same(await send(inbound(MESSAGE)));
      assert.deepEqual(signatures(plain), []);
      const msa = same(
        await send(withMacros(inbound(MESSAGE), "connect", { "{daemon_name}": "msa" })),
      );
      assert.equal(signatures(msa).length, 1);
      const other = same(
        await send(withMacros(inbound(MESSAGE), "connect", { "{daemon_name}": "smtpd" })),
      );
      assert.deepEqual(signatures(other), []);
    });
  },
});

/**
 * `m` with `values` sent at connect, MAIL and end of header, as Postfix has {daemon_name} and
 * {auth_type} by then: each milter gets them at the stage it asked for (OpenDKIM asks at end of
 * header only, with a symbol list, so the client then sends it no macros at the other stages).
 */
function withMtaMacros(m: ClientMessage, values: Record<string, string>): ClientMessage {
  const macros = { ...m.macros };
  for (const stage of ["connect", "mail", "eoh"] as const) {
    macros[stage] = { ...macros[stage], ...values };
  }
  return { ...m, macros };
}

Deno.test({
  name:
    "MacroList departures: OpenDKIM never matches a braced name, and a set macro with another value undoes an MTA match; dkimd takes braces and keeps the MTA match",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    const daemon = (name: string) => withMtaMacros(inbound(MESSAGE), { "{daemon_name}": name });
    await withPair(async (dir) => [
      ...(await tables(dir)),
      "MTA msa",
      "MacroList daemon_name=msa2|msa3",
    ], async (send) => {
      assert.deepEqual(signatures(same(await send(inbound(MESSAGE)))), []);
      assert.equal(signatures(same(await send(daemon("msa3")))).length, 1);
      assert.equal(signatures(same(await send(daemon("smtpd")))).length, 0);
      const auth = withMtaMacros(inbound(MESSAGE), { "{auth_type}": "CRAM-MD5" });
      assert.equal(signatures(same(await send(auth))).length, 1);
      // OpenDKIM looks each set macro up and stores the answer over the MTA step's: "msa" is in
      // MTA but not among MacroList's values, so its mail goes unsigned. dkimd signs mail that
      // any step calls ours, as opendkim.conf(5) describes the steps.
      const msa = await send(daemon("msa"));
      assert.deepEqual(signatures(msa.opendkim), []);
      assert.equal(signatures(msa.dkimd).length, 1);
    });
    await withPair(async (dir) => [
      ...(await tables(dir)),
      "MacroList {daemon_name}=msa2|msa3",
    ], async (send) => {
      assert.deepEqual(signatures(same(await send(daemon("smtpd")))), []);
      // OpenDKIM adds braces to the name as written and asks libmilter for "{{daemon_name}}",
      // which no MTA sends; dkimd drops the braces, so the entry works as written.
      const braced = await send(daemon("msa2"));
      assert.deepEqual(signatures(braced.opendkim), []);
      assert.equal(signatures(braced.dkimd).length, 1);
    });
  },
});

Deno.test({
  name:
    "SenderHeaders, ExemptDomains, DontSignMailTo: the sender field chosen, exempt senders and excluded recipients, alike in both",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    await withPair(async (dir) => [
      ...(await tables(dir)),
      "SenderHeaders Sender,From",
      "ExemptDomains example.net",
      "DontSignMailTo list@example.org",
    ], async (send) => {
      const other = fromLatin1(latin1(MESSAGE).replace("alice@example.com", "al@other.example"));
      const bySender = same(
        await send(outbound(withFields(other, "Sender: alice@example.com"))),
      );
      assert.equal(signatures(bySender).length, 1);
      const exempt = fromLatin1(latin1(MESSAGE).replace("alice@example.com", "al@example.net"));
      same(await send(inbound(await signedBy({}, exempt), "IN1")));
      const toList = same(
        await send({ ...outbound(MESSAGE, "OUT2"), rcpts: ["<list@example.org>"] }),
      );
      assert.deepEqual(signatures(toList), []);
    });
  },
});

Deno.test({
  name:
    "AlwaysAddARHeader, AuthservID, AuthservIDWithJobID: the same Authentication-Results in both",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    await withPair(async (dir) => [
      ...(await tables(dir)),
      "AlwaysAddARHeader yes",
      "AuthservID mx.example.net",
      "AuthservIDWithJobID yes",
    ], async (send) => {
      const none = await send(inbound(MESSAGE));
      // Departure: dkimd quotes an authserv-id with the job id ("/" is not allowed in a token,
      // RFC 8601 §2.2 and RFC 2045's tspecials); OpenDKIM writes it bare.
      assert.deepEqual(results(none.opendkim), ["mx.example.net/IN1; dkim=none"]);
      assert.deepEqual(results(none.dkimd), ['"mx.example.net/IN1"; dkim=none']);
      assert.equal(none.dkimd.final, none.opendkim.final);
      const good = await send(inbound(await signedBy(), "IN2"));
      assert.match(results(good.opendkim)[0], /^mx\.example\.net\/IN2; dkim=pass/);
      assert.match(results(good.dkimd)[0], /^"mx\.example\.net\/IN2"; dkim=pass/);
    });
  },
});

const FOREIGN_AR = [
  "Authentication-Results: mx.test; dkim=pass header.d=example.com",
  "Authentication-Results: other.example; dkim=pass header.d=example.com",
  "Authentication-Results: third.example; dkim=fail header.d=example.com",
];

Deno.test({
  name: "RemoveARAll, RemoveARFrom: the same Authentication-Results fields are deleted in both",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    for (const line of ["RemoveARAll yes", "RemoveARFrom other.example"]) {
      await withPair(async (dir) => [...(await tables(dir)), line], async (send) => {
        const r = await send(inbound(withFields(await signedBy(), ...FOREIGN_AR)));
        if (line.startsWith("RemoveARFrom")) {
          // Departure: dkimd also deletes the forged field claiming our authserv-id (mx.test),
          // whatever RemoveARFrom says; OpenDKIM keeps it.
          assert.deepEqual(
            r.dkimd.changes.filter((c) => c !== "chgheader 1 Authentication-Results: (deleted)"),
            r.opendkim.changes,
          );
          assert.ok(r.dkimd.changes.includes("chgheader 1 Authentication-Results: (deleted)"));
          assert.ok(!r.opendkim.changes.includes("chgheader 1 Authentication-Results: (deleted)"));
        } else same(r, line);
        assert.ok(r.dkimd.changes.some((c) => /^chgheader .*\(deleted\)/.test(c)), line);
      });
    }
  },
});

Deno.test({
  name:
    "SoftwareHeader and X-Header departure: both add a DKIM-Filter field, dkimd's names dkimd; every other change is the same",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    for (const line of ["SoftwareHeader yes", "X-Header yes"]) {
      await withPair(async (dir) => [...(await tables(dir)), line], async (send) => {
        const r = await send(outbound(MESSAGE));
        const filter = (o: Observed) => o.changes.filter((c) => / DKIM-Filter: /.test(c));
        assert.match(filter(r.opendkim)[0] ?? "", /DKIM-Filter: OpenDKIM Filter/);
        assert.match(filter(r.dkimd)[0] ?? "", /DKIM-Filter: .*dkimd/i);
        const rest = (o: Observed) => o.changes.filter((c) => !/ DKIM-Filter: /.test(c));
        assert.deepEqual(rest(r.dkimd), rest(r.opendkim));
        assert.equal(r.dkimd.final, r.opendkim.final);
      });
    }
  },
});

Deno.test({
  name: "MaximumSignedBytes: l= caps the signed body alike in both",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    await withPair(
      async (dir) => [...(await tables(dir)), "MaximumSignedBytes 10"],
      async (send) => {
        const r = same(await send(outbound(MESSAGE)));
        assert.match(signatures(r)[0], / l=10\b/);
      },
    );
  },
});

Deno.test({
  name: "SignatureTTL: x= is t= plus the TTL in both",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    await withPair(async (dir) => [...(await tables(dir)), "SignatureTTL 3600"], async (send) => {
      const r = await send(outbound(MESSAGE));
      same(r);
      for (const raw of [r.raw.opendkim, r.raw.dkimd]) {
        const value = signatureValue(raw);
        assert.equal(Number(tag(value, "x")) - Number(tag(value, "t")), 3600, value);
      }
    });
  },
});

Deno.test({
  name: "ClockDrift: a t= in the future beyond the drift is not a pass in both; within it, a pass",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    const ahead = await signedBy({}, MESSAGE, Math.floor(Date.now() / 1000) + 1800);
    for (const [drift, pass] of [["60", false], ["3600", true]] as const) {
      await withPair(() => [`ClockDrift ${drift}`], async (send) => {
        const r = await send(inbound(ahead));
        if (pass) {
          assert.match(results(same(r))[0], /dkim=pass/);
        } else {
          // Departure: a signature dated in the future is not accepted by local policy, RFC 8601
          // §2.7.1's dkim=policy, in dkimd; OpenDKIM calls it a permanent error.
          assert.match(results(r.opendkim)[0], /dkim=permerror/);
          assert.match(results(r.dkimd)[0], /dkim=policy/);
        }
      });
    }
  },
});

Deno.test({
  name: "RemoveOldSignatures: a signing milter deletes the message's own signatures in both",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    await withPair(
      async (dir) => [...(await tables(dir)), "RemoveOldSignatures yes"],
      async (send) => {
        const r = await send(outbound(await signedBy()));
        // OpenDKIM numbers the first field 0, dkimd 1 as the milter protocol does; MTAs read 0 as
        // 1 (Postfix's milter8.c, for Sendmail's sake): the same field is deleted.
        const first = (o: Observed) => ({
          ...o,
          changes: o.changes.map((c) => c.replace(/^chgheader 0 /, "chgheader 1 ")),
        });
        assert.deepEqual(first(r.dkimd), first(r.opendkim));
        assert.ok(r.dkimd.changes.includes("chgheader 1 DKIM-Signature: (deleted)"));
      },
    );
  },
});

Deno.test({
  name:
    "MaximumHeaders: a header block over the limit is refused alike in both; under it, handled as usual",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    await withPair(async (dir) => [...(await tables(dir)), "MaximumHeaders 400"], async (send) => {
      same(await send(outbound(MESSAGE)));
      const big = withFields(MESSAGE, `X-Padding: ${"x".repeat(500)}`);
      for (const m of [outbound(big, "OUT2"), inbound(big)]) {
        // Both answer tempfail; dkimd's reply carries 451 4.3.4 where OpenDKIM leaves the MTA's.
        const r = await send(m);
        assert.equal(r.opendkim.final, "tempfail");
        assert.equal(r.dkimd.final, "tempfail 451 4.3.4");
        assert.deepEqual(r.dkimd.changes, r.opendkim.changes);
      }
    });
  },
});

/**
 * What a reply means, with dkimd's enhanced codes for On-* actions written as OpenDKIM's. The
 * departure: dkimd rejects with 5.7.1 and tempfails with 4.7.1 (RFC 3463: delivery not authorized,
 * message refused), where OpenDKIM says 5.7.0 and 4.7.0.
 */
function onReply(o: Observed): Observed {
  return {
    ...o,
    final: o.final.replace(/^reject 550 5\.7\.1$/, "reject 550 5.7.0")
      .replace(/^tempfail 451 4\.7\.1$/, "tempfail 451 4.7.0"),
  };
}

/** Asserts both did the same once dkimd's On-* codes are read as OpenDKIM's. */
function sameAction(r: Both): Observed {
  assert.deepEqual(onReply(r.dkimd), r.opendkim);
  if (/^reject/.test(r.opendkim.final)) assert.equal(r.dkimd.final, "reject 550 5.7.1");
  return r.opendkim;
}

/** A signature naming a selector no key record has. */
async function unknownSelector(): Promise<Uint8Array> {
  return await signedBy({ selector: "missing" });
}

/** A signature whose a= no verifier knows. */
async function brokenSignature(): Promise<Uint8Array> {
  return fromLatin1(latin1(await signedBy()).replace("a=rsa-sha256", "a=rsa-sha999"));
}

Deno.test({
  name:
    "On-NoSignature, On-BadSignature, On-KeyNotFound, On-SignatureError: the same reply to each kind of failure in both",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    await withPair(() => [
      "On-NoSignature reject",
      "On-BadSignature tempfail",
      "On-KeyNotFound discard",
      "On-SignatureError reject",
    ], async (send) => {
      assert.match(sameAction(await send(inbound(MESSAGE, "IN1"))).final, /^reject 550/);
      assert.match(
        sameAction(await send(inbound(await badlySigned(), "IN2"))).final,
        /^tempfail 451/,
      );
      // Departure: a selector missing from TestPublicKeys is dkim=permerror in dkimd (no key, RFC
      // 8601 §2.7.1); OpenDKIM says fail. The action is the same.
      const missing = await send(inbound(await unknownSelector(), "IN3"));
      assert.deepEqual(
        onReply(missing.dkimd).changes.map((c) => c.replace("dkim=permerror", "dkim=fail")),
        missing.opendkim.changes,
      );
      assert.match(results(missing.dkimd)[0], /dkim=permerror/);
      assert.equal(missing.dkimd.final, "discard");
      assert.equal(missing.opendkim.final, "discard");
      // For an a= no one knows both say dkim=permerror (RFC 6376 §6.1.1); departure: OpenDKIM
      // applies no action (DKIM_STAT_CANTVRFY) and accepts, dkimd ignores the signature and
      // applies On-NoSignature, here reject (tests/interop/unknown_algorithm_test.ts).
      const broken = await send(inbound(await brokenSignature(), "IN4"));
      assert.match(results(broken.opendkim)[0], /dkim=permerror/);
      assert.equal(broken.opendkim.final, "accept");
      assert.deepEqual(results(broken.dkimd), results(broken.opendkim));
      assert.equal(broken.dkimd.final, "reject 550 5.7.1");
      assert.equal(sameAction(await send(inbound(await signedBy(), "IN5"))).final, "accept");
    });
  },
});

Deno.test({
  name: "On-Default: every failure gets its action in both; a pass is accepted",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    await withPair(() => ["On-Default reject"], async (send) => {
      for (const [m, qid] of [[MESSAGE, "IN1"], [await badlySigned(), "IN2"]] as const) {
        assert.match(sameAction(await send(inbound(m, qid))).final, /^reject 550/);
      }
      assert.equal(sameAction(await send(inbound(await signedBy(), "IN3"))).final, "accept");
    });
  },
});

Deno.test({
  name:
    "FixCRLF: a signature over CRLF lines verifies on a body with bare LF only with FixCRLF, in both",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    const good = await signedBy({ canonicalization: ["relaxed", "simple"] });
    const text = latin1(good);
    const split = text.indexOf("\r\n\r\n") + 4;
    const bare = fromLatin1(text.slice(0, split) + text.slice(split).replaceAll("\r\n", "\n"));
    for (const [line, pass] of [["FixCRLF yes", true], ["FixCRLF no", false]] as const) {
      await withPair(() => [line], async (send) => {
        const r = same(await send(inbound(bare)), line);
        assert.equal(/dkim=pass/.test(results(r)[0] ?? ""), pass, results(r).join("\n"));
      });
    }
  },
});

Deno.test({
  name: "NoHeaderB: Authentication-Results carry header.b in both, and without it in both",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    const headerB = (r: MessageResult) =>
      r.modifications.some((m) =>
        m.type === "insheader" && m.name === "Authentication-Results" &&
        /header\.b=/.test(typeof m.value === "string" ? m.value : latin1(m.value))
      );
    for (const [line, present] of [["NoHeaderB no", true], ["NoHeaderB yes", false]] as const) {
      await withPair(() => [line], async (send) => {
        const r = await send(inbound(await signedBy()));
        same(r, line);
        assert.equal(headerB(r.raw.opendkim), present, line);
        assert.equal(headerB(r.raw.dkimd), present, line);
      });
    }
  },
});

Deno.test({
  name:
    "RequireSafeKeys departure: a private key file every user may read is never used by either; OpenDKIM starts and signs nothing, dkimd refuses to start, naming the fix",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "dkimd-od18c-" });
    try {
      await Deno.copyFile(KEY_FILE, `${dir}/open.pem`);
      await Deno.chmod(`${dir}/open.pem`, 0o644);
      await Deno.writeTextFile(`${dir}/key_table`, `k example.com:rsa:${dir}/open.pem\n`);
      await Deno.writeTextFile(`${dir}/signing_table`, `*@example.com k\n`);
      const lines = [
        "Mode s",
        `KeyTable ${dir}/key_table`,
        `SigningTable refile:${dir}/signing_table`,
        "RequireSafeKeys yes",
      ];
      const opendkim = await startOpenDkim(dir, lines);
      try {
        const r = observe(await sendTo(opendkim.port, outbound(MESSAGE)));
        assert.deepEqual(signatures(r), []);
      } finally {
        await opendkim.stop();
      }
      await Deno.writeTextFile(`${dir}/dkimd.conf`, lines.join("\n") + "\n");
      const check = await runCli(["check-config", `${dir}/dkimd.conf`]);
      assert.notEqual(check.code, 0);
      assert.match(check.stderr + check.text, /Unsafe key.*chmod/s);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "On-DNSError, DNSConnect departures: OpenDKIM accepts a message whose key query fails with no result and no action, over UDP; dkimd says temperror, applies the action, asks over TCP",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    const dns = await startFakeDnsServer({
      "rsa._domainkey.example.com": { txt: [recordFor(await loadKey("rsa2048_pkcs8.pem"))] },
      "servfail._domainkey.example.com": { rcode: "SERVFAIL" },
      "silent._domainkey.example.com": { drop: true },
    });
    const dir = await Deno.makeTempDir({ prefix: "dkimd-od18h-" });
    try {
      const pair = await startPair(dir, [
        "Mode v",
        // Debian's OpenDKIM (libunbound) forwards to this address and port, as dkimd asks it.
        `Nameservers 127.0.0.1@${dns.port}`,
        "DNSTimeout 2",
        "On-DNSError reject",
        "DNSConnect yes",
      ]);
      try {
        /** What `port` did with a message signed with `selector`, and how it asked for the key. */
        const verify = async (port: number, selector: string, qid: string) => {
          const before = dns.queries.length;
          const r = observe(await sendTo(port, inbound(await signedBy({ selector }), qid)));
          const asked = dns.queries.slice(before).map((q) => `${q.name} ${q.transport}`);
          return { r, asked };
        };
        const key = "rsa._domainkey.example.com";
        const good = {
          opendkim: await verify(pair.opendkim.port, "rsa", "IN1"),
          dkimd: await verify(pair.dkimd.port, "rsa", "IN1"),
        };
        // (OpenDKIM's result comment "(2048-bit key; unprotected)" holds a ";", which the
        // summary of results splits on: compare the verdicts.)
        for (const side of [good.opendkim, good.dkimd]) {
          assert.equal(side.r.final, "accept");
          assert.match(results(side.r)[0], /dkim=pass\b.*header\.s=rsa/);
        }
        // DNSConnect: Debian's 2.11 reads it and still asks over UDP; dkimd asks over TCP.
        assert.deepEqual(good.opendkim.asked, [`${key} udp`]);
        assert.deepEqual(good.dkimd.asked, [`${key} tcp`]);
        for (const selector of ["servfail", "silent"]) {
          // OpenDKIM computes the On-DNSError reply for dkim_eom()'s KEYFAIL and then drops it
          // (opendkim.c stores it in a variable that is overwritten), and adds no result.
          const od = await verify(pair.opendkim.port, selector, "IN2");
          assert.deepEqual(od.r, { final: "accept", changes: [] }, selector);
          const dk = await verify(pair.dkimd.port, selector, "IN2");
          assert.equal(dk.r.final, "reject 550 5.7.1", selector);
          assert.match(
            results(dk.r)[0],
            new RegExp(`dkim=temperror header.d=example.com header.s=${selector}`),
          );
          assert.ok(od.asked.length > 0 && od.asked.every((q) => q.endsWith(" udp")), selector);
          assert.ok(dk.asked.some((q) => q.endsWith(" tcp")), selector);
        }
      } finally {
        await pair.stop();
      }
    } finally {
      await dns.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "TestDNSData: key records from the data set, in place of DNS, alike in both; a name it lacks departs",
  ignore: !HAVE_OPENDKIM,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "dkimd-od18h-" });
    // Nothing listens here: a query that escaped the data set would fail, not pass.
    const nowhere = "127.0.0.1@9";
    try {
      const record = recordFor(await loadKey("rsa2048_pkcs8.pem"));
      await Deno.writeTextFile(`${dir}/dns_data`, `rsa._domainkey.example.com ${record}\n`);
      const pair = await startPair(dir, [
        "Mode v",
        `TestDNSData ${dir}/dns_data`,
        `Nameservers ${nowhere}`,
        "DNSTimeout 1",
        ...SIGNED_FIELDS,
      ]);
      try {
        const both = async (m: ClientMessage): Promise<Both> => {
          const [opendkim, dkimd] = await Promise.all([
            sendTo(pair.opendkim.port, m),
            sendTo(pair.dkimd.port, m),
          ]);
          return { opendkim: observe(opendkim), dkimd: observe(dkimd), raw: { opendkim, dkimd } };
        };
        assert.match(results(same(await both(inbound(await signedBy(), "IN1"))))[0], /dkim=pass/);
        // Departure: for a name the data set lacks, OpenDKIM adds no result and accepts, as for a
        // key query that failed (see On-DNSError above); dkimd takes it as a name that does not
        // exist: no key, dkim=permerror, and On-KeyNotFound (accept by default).
        const missing = await both(inbound(await signedBy({ selector: "missing" }), "IN2"));
        assert.deepEqual(missing.opendkim, { final: "accept", changes: [] });
        assert.equal(missing.dkimd.final, "accept");
        assert.match(
          results(missing.dkimd)[0],
          /dkim=permerror header.d=example.com header.s=missing/,
        );
      } finally {
        await pair.stop();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
