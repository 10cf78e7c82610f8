/**
 * The LDAP settings beside Debian's opendkim (built with LDAP and SASL: `opendkim -V` lists
 * USE_LDAP; the binary links libsasl2): a private slapd (tests/helpers/slapd_server.ts) whose
 * ACL lets only the bind user read, serving StartTLS with a self-signed certificate, holds the
 * KeyTable and SigningTable; both filters run on the same opendkim.conf lines (LDAPBindUser,
 * LDAPBindPassword, LDAPUseTLS, LDAPTimeout, LDAPDisableCache, the keepalive settings,
 * LDAPSoftStart, and the SASL-only LDAPAuthName/Realm/User beside a simple bind) and sign the
 * same rows; then the same with the wrong password, and StartTLS to a certificate neither
 * trusts. The CA each trusts is given as each takes it: libldap's LDAPTLS_CACERT for opendkim
 * (it has no setting for it), DataSetTLSCAFile for dkimd. Last, LDAPTimeout's expiry: slapd
 * paused (SIGSTOP: connections accepted, nothing answered) while a message needs a lookup.
 *
 * @module
 */
import assert from "node:assert/strict";
import { MESSAGE } from "../helpers/dkim_fixtures.ts";
import { startDkimd } from "../helpers/dkimd_process.ts";
import { mtaMessage } from "../helpers/mta_message.ts";
import {
  HAVE_OPENDKIM,
  observe,
  type Observed,
  sendTo,
  startOpenDkim,
} from "../helpers/opendkim_milter.ts";
import {
  SLAPD_BIND_DN,
  SLAPD_BIND_PASSWORD,
  SLAPD_SUFFIX,
  startSlapd,
} from "../helpers/slapd_server.ts";
import { ldif } from "../helpers/table_world.ts";
import { openssl } from "../helpers/openssl.ts";

const KEY_FILE = new URL("../testdata/keys/rsa2048_pkcs8.pem", import.meta.url).pathname;

/** Runs the message through opendkim and dkimd on `lines`; what each did. */
async function both(
  dir: string,
  lines: readonly string[],
  trust: { opendkim: Record<string, string>; dkimd: readonly string[] },
): Promise<{ opendkim: Observed | string; dkimd: Observed; logs: string }> {
  await Deno.mkdir(`${dir}/opendkim`, { recursive: true });
  await Deno.mkdir(`${dir}/dkimd`, { recursive: true });
  // OpenDKIM opens its LDAP data sets at start: it exits there when it cannot bind.
  const opendkim = await startOpenDkim(`${dir}/opendkim`, lines, trust.opendkim).catch((e) =>
    String(e)
  );
  try {
    const dkimd = await startDkimd(
      `${dir}/dkimd`,
      (socket) => [...lines, ...trust.dkimd, `Socket ${socket}`, ""].join("\n"),
    );
    try {
      const m = mtaMessage(MESSAGE, { qid: "LDAP1", address: "127.0.0.1" });
      const [o, d] = await Promise.all([
        typeof opendkim === "string" ? opendkim : sendTo(opendkim.port, m).then(observe),
        sendTo(dkimd.port, m).then(observe),
      ]);
      const log = typeof opendkim === "string" ? opendkim : opendkim.log();
      return { opendkim: o, dkimd: d, logs: `opendkim: ${log}\ndkimd: ${dkimd.log()}` };
    } finally {
      await dkimd.stop();
    }
  } finally {
    if (typeof opendkim !== "string") await opendkim.stop();
  }
}

/** The signature both add for the row of example.com. */
const SIGNED: Observed = {
  final: "accept",
  changes: [
    "insheader 0 DKIM-Signature: d=example.com s=rsa a=rsa-sha256 c=simple/simple h=date:from:from:subject:to",
  ],
};

/** dkimd's answer to a message whose data set cannot be read: On-InternalError (tempfail). */
const DKIMD_TEMPFAIL: Observed = { final: "tempfail 451 4.7.1", changes: [] };

Deno.test({
  name:
    "LDAP settings: both bind, StartTLS and sign the same row; a wrong password or an untrusted certificate fail alike with SoftStart, and stop OpenDKIM at start without it",
  ignore: !HAVE_OPENDKIM,
  sanitizeResources: false,
  async fn() {
    const slapd = await startSlapd({
      tls: true,
      ldif: ldif({
        keys: [{ id: "k1", domain: "example.com", selector: "rsa", key: KEY_FILE }],
        signing: [["example.com", "k1"]],
      }),
    });
    const dir = await Deno.makeTempDir({ prefix: "dkimd-od18-ldap-" });
    try {
      await Deno.writeTextFile(`${dir}/ca.pem`, slapd.caPem!);
      const uri = (ou: string, attrs: string, attr: string) =>
        `${slapd.url}/ou=${ou},${SLAPD_SUFFIX}?${attrs}?one?(${attr}=$d)`;
      const base = (password: string) => [
        "Mode s",
        "RequireSafeKeys no",
        "SignHeaders From,To,Subject,Date",
        "OversignHeaders From",
        `KeyTable ${uri("keys", "dkimDomain,dkimSelector,dkimKey", "dkimKeyName")}`,
        `SigningTable ${uri("signing", "dkimKeyName", "dkimIdentity")}`,
        // slapd's ACL lets only this DN read (slapd_server.ts): an anonymous search finds nothing.
        `LDAPBindUser ${SLAPD_BIND_DN}`,
        `LDAPBindPassword ${password}`,
        "LDAPUseTLS yes",
        "LDAPTimeout 5",
        "LDAPDisableCache yes",
        "LDAPKeepaliveIdle 60",
        "LDAPKeepaliveInterval 10",
        "LDAPKeepaliveProbes 3",
        // SASL only: a simple bind (LDAPAuthMechanism unset) uses none of them, in both.
        "LDAPAuthName someone",
        "LDAPAuthRealm example.test",
        "LDAPAuthUser someone",
      ];
      const trusted = {
        opendkim: { LDAPTLS_CACERT: `${dir}/ca.pem` },
        dkimd: [`DataSetTLSCAFile ${dir}/ca.pem`],
      };
      // A CA file holding another certificate: libldap's and dkimd's checks both refuse slapd's.
      await Deno.writeTextFile(`${dir}/other.pem`, await otherCertificate(dir));
      const untrusted = {
        opendkim: { LDAPTLS_CACERT: `${dir}/other.pem` },
        dkimd: [`DataSetTLSCAFile ${dir}/other.pem`],
      };
      const good = await both(`${dir}/good`, base(SLAPD_BIND_PASSWORD), trusted);
      assert.deepEqual(good.opendkim, SIGNED, good.logs);
      assert.deepEqual(good.dkimd, SIGNED, good.logs);
      for (
        const [label, lines, trust, why] of [
          ["wrong password", base("wrong"), trusted, /Invalid credentials/],
          ["untrusted certificate", base(SLAPD_BIND_PASSWORD), untrusted, /Connect error/],
        ] as const
      ) {
        // Departure: without SoftStart OpenDKIM exits at start; dkimd always starts (as with
        // SoftStart) and answers each message On-InternalError (tempfail).
        const hard = await both(`${dir}/${label}`, lines, trust);
        assert.equal(typeof hard.opendkim, "string", `${label}: ${hard.logs}`);
        assert.match(hard.opendkim as string, why, label);
        assert.deepEqual(hard.dkimd, DKIMD_TEMPFAIL, `${label}: ${hard.logs}`);
        // With SoftStart (OpenDKIM's name since 2.10; dkimd reads it and warns) OpenDKIM
        // starts, and "error reading signing table" is its fixed tempfail: the same answer,
        // OpenDKIM without reply text.
        const soft = await both(`${dir}/${label} soft`, [...lines, "SoftStart yes"], trust);
        assert.deepEqual(soft.opendkim, { final: "tempfail", changes: [] }, soft.logs);
        assert.deepEqual(soft.dkimd, DKIMD_TEMPFAIL, soft.logs);
      }
      // Departure: Debian's OpenDKIM hands "none" and "simple" to a SASL bind, which slapd
      // refuses ("Authentication method not supported": it exits at start); dkimd binds simply
      // for both, as for the setting unset.
      for (const mechanism of ["none", "simple"]) {
        const r = await both(
          `${dir}/mech-${mechanism}`,
          [...base(SLAPD_BIND_PASSWORD), `LDAPAuthMechanism ${mechanism}`],
          trusted,
        );
        assert.match(String(r.opendkim), /Authentication method not supported/, r.logs);
        assert.deepEqual(r.dkimd, SIGNED, r.logs);
      }
      // Departure: OpenDKIM 2.11 refuses LDAPSoftStart (renamed SoftStart in 2.10); dkimd
      // reads it (it always starts while LDAP is down).
      const renamed = await both(
        `${dir}/softstart`,
        [...base(SLAPD_BIND_PASSWORD), "LDAPSoftStart yes"],
        trusted,
      );
      assert.match(String(renamed.opendkim), /unrecognized parameter/, renamed.logs);
      assert.deepEqual(renamed.dkimd, SIGNED, renamed.logs);
    } finally {
      await slapd.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** A self-signed certificate slapd was not made with (PEM). */
async function otherCertificate(dir: string): Promise<string> {
  const made = await openssl([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=127.0.0.1",
    "-keyout",
    `${dir}/other-key.pem`,
    "-out",
    `${dir}/other-cert.pem`,
  ]); // deno-fmt-ignore
  if (made.code !== 0) throw new Error(`openssl req failed: ${made.text}`);
  return await Deno.readTextFile(`${dir}/other-cert.pem`);
}

/** LDAPTimeout of the paused-slapd case, in seconds. */
const PAUSED_TIMEOUT_S = 2;
/**
 * The latest a reply may come while slapd is paused: each filter may spend the timeout on more
 * than one operation (bind, search, OpenDKIM's and dkimd's one retry), and a loaded machine adds
 * its share; only an upper bound is asserted, never a duration.
 */
const PAUSED_REPLY_BOUND_MS = (3 * PAUSED_TIMEOUT_S + 5) * 1000;

Deno.test({
  name:
    "LDAPTimeout: with slapd paused (connections open, nothing answers) both answer the message tempfail within the bound, and sign again once it runs",
  ignore: !HAVE_OPENDKIM,
  sanitizeResources: false,
  async fn() {
    const slapd = await startSlapd({
      ldif: ldif({
        keys: [{ id: "k1", domain: "example.com", selector: "rsa", key: KEY_FILE }],
        signing: [["example.com", "k1"]],
      }),
    });
    const dir = await Deno.makeTempDir({ prefix: "dkimd-od18-ldap-timeout-" });
    try {
      const uri = (ou: string, attrs: string, attr: string) =>
        `${slapd.url}/ou=${ou},${SLAPD_SUFFIX}?${attrs}?one?(${attr}=$d)`;
      const lines = [
        "Mode s",
        "RequireSafeKeys no",
        "SignHeaders From,To,Subject,Date",
        "OversignHeaders From",
        `KeyTable ${uri("keys", "dkimDomain,dkimSelector,dkimKey", "dkimKeyName")}`,
        `SigningTable ${uri("signing", "dkimKeyName", "dkimIdentity")}`,
        `LDAPBindUser ${SLAPD_BIND_DN}`,
        `LDAPBindPassword ${SLAPD_BIND_PASSWORD}`,
        `LDAPTimeout ${PAUSED_TIMEOUT_S}`,
        // OpenDKIM's own LDAP cache would answer the second message without asking slapd.
        "LDAPDisableCache yes",
      ];
      await Deno.mkdir(`${dir}/opendkim`);
      await Deno.mkdir(`${dir}/dkimd`);
      // Both start while slapd answers (OpenDKIM binds at start, so it needs no SoftStart);
      // slapd is paused before either has looked anything up, so dkimd's cache of data set
      // answers (DataSetCacheTTL) holds nothing to sign from.
      const opendkim = await startOpenDkim(`${dir}/opendkim`, lines);
      try {
        const dkimd = await startDkimd(
          `${dir}/dkimd`,
          (socket) => [...lines, `Socket ${socket}`, ""].join("\n"),
        );
        try {
          const logs = () => `opendkim: ${opendkim.log()}\ndkimd: ${dkimd.log()}`;
          const timed = async (port: number, qid: string) => {
            const started = performance.now();
            const observed = observe(
              await sendTo(port, mtaMessage(MESSAGE, { qid, address: "127.0.0.1" })),
            );
            return { observed, ms: performance.now() - started };
          };
          await slapd.pause();
          let paused;
          try {
            paused = await Promise.all([timed(opendkim.port, "P1"), timed(dkimd.port, "P2")]);
          } finally {
            slapd.resume();
          }
          const [o, d] = paused;
          // The same answer (measured on an idle machine: OpenDKIM after about 2 × LDAPTimeout,
          // its search timing out and its one retry too; dkimd after about 1 ×, its first
          // connection's bind timing out). OpenDKIM's "error reading signing table" is its fixed tempfail
          // (no reply text); dkimd's is On-InternalError's tempfail.
          assert.deepEqual(o.observed, { final: "tempfail", changes: [] }, logs());
          assert.deepEqual(d.observed, DKIMD_TEMPFAIL, logs());
          for (const [who, r] of [["opendkim", o], ["dkimd", d]] as const) {
            assert.ok(
              r.ms < PAUSED_REPLY_BOUND_MS,
              `${who} answered after ${Math.round(r.ms)} ms, past ${PAUSED_REPLY_BOUND_MS} ms`,
            );
          }
          // slapd runs again: both make their connection again and sign the row.
          const [o2, d2] = await Promise.all([timed(opendkim.port, "R1"), timed(dkimd.port, "R2")]);
          assert.deepEqual(o2.observed, SIGNED, logs());
          assert.deepEqual(d2.observed, SIGNED, logs());
        } finally {
          await dkimd.stop();
        }
      } finally {
        await opendkim.stop();
      }
    } finally {
      await slapd.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
