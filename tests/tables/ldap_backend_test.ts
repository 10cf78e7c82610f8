/**
 * The LDAP back end against a real OpenLDAP slapd (tests/helpers/slapd_server.ts): KeyTable and
 * SigningTable lookups as OpenDKIM's ldap: data sets make them, injection, wrong password,
 * outage and recovery, StartTLS, ldaps, ldapi and the timeout.
 */
import assert from "node:assert/strict";
import { openLdap } from "../../lib/tables/ldap_backend.ts";
import { parseLdapUri } from "../../lib/tables/ldap_uri.ts";
import type { TableBackend } from "../../lib/tables/table_backend.ts";
import {
  type Slapd,
  SLAPD_BIND_DN,
  SLAPD_BIND_PASSWORD,
  SLAPD_SUFFIX,
  startSlapd,
} from "../helpers/slapd_server.ts";

const ENTRIES = `dn: cn=k1,ou=keys,${SLAPD_SUFFIX}
objectClass: applicationProcess
objectClass: dkimEntry
cn: k1
dkimKeyName: k1
dkimDomain: example.org
dkimSelector: sel1
dkimKey: /keys/k1.pem

dn: cn=k2,ou=keys,${SLAPD_SUFFIX}
objectClass: applicationProcess
objectClass: dkimEntry
cn: k2
dkimKeyName: k2
dkimDomain: example.net
dkimSelector: sel2
dkimKey: /keys/k2.pem

dn: cn=s1,ou=signing,${SLAPD_SUFFIX}
objectClass: applicationProcess
objectClass: dkimEntry
cn: s1
dkimIdentity: example.org
dkimKeyName: k1

dn: cn=s2,ou=signing,${SLAPD_SUFFIX}
objectClass: applicationProcess
objectClass: dkimEntry
cn: s2
dkimIdentity: boss@example.net
dkimKeyName: k2

dn: dc=org,ou=zones,${SLAPD_SUFFIX}
objectClass: dcObject
objectClass: organizationalUnit
dc: org
ou: org

dn: dc=example,dc=org,ou=zones,${SLAPD_SUFFIX}
objectClass: dcObject
objectClass: organizationalUnit
objectClass: dkimEntry
dc: example
ou: example
dkimKeyName: k1
`;

const TIMEOUTS = { queryTimeoutMs: 3000, connectTimeoutMs: 3000 };
const BIND = { bindDn: SLAPD_BIND_DN, bindPassword: SLAPD_BIND_PASSWORD };
const signal = () => AbortSignal.timeout(5000);

function keyTableUri(url: string): string {
  return `${url}/ou=keys,${SLAPD_SUFFIX}?dkimDomain,dkimSelector,dkimKey?one?(dkimKeyName=$d)`;
}
function signingTableUri(url: string): string {
  return `${url}/ou=signing,${SLAPD_SUFFIX}?dkimKeyName?sub?(dkimIdentity=$d)`;
}

async function withSlapd(
  options: { tls?: boolean },
  body: (slapd: Slapd) => Promise<void>,
): Promise<void> {
  const slapd = await startSlapd({ ldif: ENTRIES, ...options });
  try {
    await body(slapd);
  } finally {
    await slapd.close();
  }
}

async function using(backend: TableBackend, body: (b: TableBackend) => Promise<void>) {
  try {
    await body(backend);
  } finally {
    await backend.close();
  }
}

Deno.test("openLdap() against slapd", async (t) => {
  await withSlapd({}, async (slapd) => {
    await t.step("KeyTable: a key name to its domain, selector and key, in order", async () => {
      await using(
        openLdap(parseLdapUri(keyTableUri(slapd.url)), { ...TIMEOUTS, ...BIND }),
        async (b) => {
          assert.deepEqual(await b.query(["k2", "nope", "K1"], signal()), [
            ["example.net", "sel2", "/keys/k2.pem"],
            undefined,
            ["example.org", "sel1", "/keys/k1.pem"],
          ]);
        },
      );
    });

    await t.step("SigningTable: an address or a domain to a key name", async () => {
      await using(
        openLdap(parseLdapUri(signingTableUri(slapd.url)), { ...TIMEOUTS, ...BIND }),
        async (b) => {
          assert.deepEqual(
            await b.query(["boss@example.net", "example.net", "example.org"], signal()),
            [["k2"], undefined, ["k1"]],
          );
        },
      );
    });

    await t.step(
      "$D: the domain as dc= components of the base DN; a missing one is not found",
      async () => {
        const uri = `${slapd.url}/$D,ou=zones,${SLAPD_SUFFIX}?dkimKeyName?base`;
        await using(openLdap(parseLdapUri(uri), { ...TIMEOUTS, ...BIND }), async (b) => {
          assert.deepEqual(
            await b.query(["example.org", "other.org", "example.com", "a,b.org", "x+y"], signal()),
            [["k1"], undefined, undefined, undefined, undefined],
          );
        });
      },
    );

    await t.step("a data set without attributes answers whether the key exists", async () => {
      const uri = `${slapd.url}/ou=signing,${SLAPD_SUFFIX}??one?(dkimIdentity=$d)`;
      await using(openLdap(parseLdapUri(uri), { ...TIMEOUTS, ...BIND }), async (b) => {
        assert.deepEqual(await b.query(["example.org", "example.com"], signal()), [[], undefined]);
      });
    });

    await t.step("injection: *, )(, \\ and NUL in the key find nothing", async () => {
      await using(
        openLdap(parseLdapUri(signingTableUri(slapd.url)), { ...TIMEOUTS, ...BIND }),
        async (b) => {
          const keys = [
            "*",
            "*example.org",
            "example.org)(dkimIdentity=*",
            "x)(|(cn=*",
            "\\2a",
            "example.org\0",
            "\\",
          ];
          assert.deepEqual(await b.query(keys, signal()), keys.map(() => undefined));
          // The same search without escaping would have matched: the guard is what stops it.
          assert.deepEqual(await b.query(["example.org"], signal()), [["k1"]]);
        },
      );
      const dn = `${slapd.url}/cn=$d,ou=keys,${SLAPD_SUFFIX}?dkimKey?base`;
      await using(openLdap(parseLdapUri(dn), { ...TIMEOUTS, ...BIND }), async (b) => {
        assert.deepEqual(await b.query(["k1", "k1,ou=keys", "*", "k1\0"], signal()), [
          ["/keys/k1.pem"],
          undefined,
          undefined,
          undefined,
        ]);
      });
    });

    await t.step("anonymous binds see nothing here: the bind is what reads the table", async () => {
      await using(openLdap(parseLdapUri(keyTableUri(slapd.url)), TIMEOUTS), async (b) => {
        assert.deepEqual(await b.query(["k1"], signal()), [undefined]);
      });
    });

    await t.step("a wrong password is refused clearly, without the password", async () => {
      const wrong = "Wr0ng-Pa55word";
      await using(
        openLdap(parseLdapUri(keyTableUri(slapd.url)), {
          ...TIMEOUTS,
          ...BIND,
          bindPassword: wrong,
        }),
        async (b) => {
          const err = await b.query(["k1"], signal()).then(() => undefined, (e: Error) => e);
          assert.ok(err instanceof Error);
          assert.match(err.message, /bind as "cn=dkim,dc=example,dc=test" refused/);
          assert.match(err.message, /LDAP result 49/);
          assert.match(err.message, new RegExp(`LDAP data set "ldap://127\\.0\\.0\\.1`));
          assert.doesNotMatch(err.message, new RegExp(wrong));
        },
      );
    });

    await t.step(
      "BackendOptions.password (a file or credential) overrides LDAPBindPassword",
      async () => {
        await using(
          openLdap(parseLdapUri(keyTableUri(slapd.url)), {
            ...TIMEOUTS,
            ...BIND,
            bindPassword: "wrong",
            password: SLAPD_BIND_PASSWORD,
          }),
          async (b) =>
            assert.deepEqual(await b.query(["k1"], signal()), [[
              "example.org",
              "sel1",
              "/keys/k1.pem",
            ]]),
        );
      },
    );

    await t.step("ldapi: the socket in slapd's directory", async () => {
      await using(
        openLdap(parseLdapUri(keyTableUri(slapd.ldapiUrl)), { ...TIMEOUTS, ...BIND }),
        async (b) => {
          assert.deepEqual(await b.query(["k1"], signal()), [[
            "example.org",
            "sel1",
            "/keys/k1.pem",
          ]]);
        },
      );
    });

    await t.step("several URLs: a dead server first, the next one answers", async () => {
      const dead = "ldap://127.0.0.1:1";
      const uri = `${keyTableUri(dead)} ${slapd.url}/`;
      await using(openLdap(parseLdapUri(uri), { ...TIMEOUTS, ...BIND }), async (b) => {
        assert.deepEqual(await b.query(["k2"], signal()), [[
          "example.net",
          "sel2",
          "/keys/k2.pem",
        ]]);
      });
    });

    await t.step("a row added is seen by the next query (no cache here)", async () => {
      await using(
        openLdap(parseLdapUri(signingTableUri(slapd.url)), { ...TIMEOUTS, ...BIND }),
        async (b) => {
          assert.deepEqual(await b.query(["new.example"], signal()), [undefined]);
          await slapd.add(
            `dn: cn=s3,ou=signing,${SLAPD_SUFFIX}\nobjectClass: applicationProcess\nobjectClass: dkimEntry\ncn: s3\ndkimIdentity: new.example\ndkimKeyName: k2\n`,
          );
          assert.deepEqual(await b.query(["new.example"], signal()), [["k2"]]);
        },
      );
    });

    await t.step("scan() lists the entries with their key attribute", async () => {
      await using(
        openLdap(parseLdapUri(keyTableUri(slapd.url)), { ...TIMEOUTS, ...BIND }),
        async (b) => {
          const rows = await b.scan(100, signal());
          assert.deepEqual(
            rows.sort((x, y) => x.key.localeCompare(y.key)),
            [
              { key: "k1", columns: ["example.org", "sel1", "/keys/k1.pem"] },
              { key: "k2", columns: ["example.net", "sel2", "/keys/k2.pem"] },
            ],
          );
          assert.equal((await b.scan(1, signal())).length, 1);
        },
      );
      const zones = `${slapd.url}/$D,ou=zones,${SLAPD_SUFFIX}?dkimKeyName?base`;
      await using(openLdap(parseLdapUri(zones), { ...TIMEOUTS, ...BIND }), async (b) => {
        const rows = await b.scan(100, signal());
        assert.deepEqual(rows.filter((r) => r.columns[0] !== ""), [{
          key: "example",
          columns: ["k1"],
        }]);
      });
    });

    await t.step("close() makes later queries reject", async () => {
      const b = openLdap(parseLdapUri(keyTableUri(slapd.url)), { ...TIMEOUTS, ...BIND });
      assert.deepEqual(await b.query(["k1"], signal()), [["example.org", "sel1", "/keys/k1.pem"]]);
      await b.close();
      await assert.rejects(b.query(["k1"], signal()), /closed/);
    });
  });
});

Deno.test("openLdap() rejects promptly while slapd is down and answers again when it is back", async () => {
  await withSlapd({}, async (slapd) => {
    await using(
      openLdap(parseLdapUri(keyTableUri(slapd.url)), { ...TIMEOUTS, ...BIND }),
      async (b) => {
        assert.deepEqual(await b.query(["k1"], signal()), [[
          "example.org",
          "sel1",
          "/keys/k1.pem",
        ]]);
        await slapd.stop();
        for (let i = 0; i < 3; i++) {
          const started = performance.now();
          await assert.rejects(b.query(["k1"], signal()), /LDAP data set "ldap:\/\/127\.0\.0\.1/);
          assert.ok(performance.now() - started < 1000, "a refused connection fails at once");
        }
        await slapd.start();
        assert.deepEqual(await b.query(["k1", "k2"], signal()), [
          ["example.org", "sel1", "/keys/k1.pem"],
          ["example.net", "sel2", "/keys/k2.pem"],
        ]);
        // A restart behind an open connection: the stale one is dropped and the query retried.
        await slapd.stop();
        await slapd.start();
        assert.deepEqual(await b.query(["k2"], signal()), [[
          "example.net",
          "sel2",
          "/keys/k2.pem",
        ]]);
      },
    );
  });
});

Deno.test("openLdap() honours LDAPTimeout and the query's signal when slapd hangs", async () => {
  await withSlapd({}, async (slapd) => {
    const uri = parseLdapUri(keyTableUri(slapd.url));
    await using(openLdap(uri, { ...TIMEOUTS, ...BIND, timeoutMs: 400 }), async (b) => {
      assert.deepEqual(await b.query(["k1"], signal()), [["example.org", "sel1", "/keys/k1.pem"]]);
      await slapd.pause();
      try {
        let started = performance.now();
        await assert.rejects(b.query(["k1"], AbortSignal.timeout(10_000)), /timed out|connect/i);
        let took = performance.now() - started;
        assert.ok(took >= 350 && took < 3000, `LDAPTimeout 400 ms took ${took} ms`);
        started = performance.now();
        await assert.rejects(b.query(["k2"], AbortSignal.timeout(150)), /query abandoned/);
        took = performance.now() - started;
        assert.ok(took < 1000, `the signal's 150 ms took ${took} ms`);
      } finally {
        slapd.resume();
      }
      assert.deepEqual(await b.query(["k2"], signal()), [["example.net", "sel2", "/keys/k2.pem"]]);
    });
  });
});

Deno.test("openLdap() speaks StartTLS when LDAPUseTLS asks, and ldaps", async () => {
  await withSlapd({ tls: true }, async (slapd) => {
    const tlsCa = slapd.caPem!;
    await using(
      openLdap(parseLdapUri(keyTableUri(slapd.url)), { ...TIMEOUTS, ...BIND, useTls: true, tlsCa }),
      async (b) =>
        assert.deepEqual(await b.query(["k1"], signal()), [[
          "example.org",
          "sel1",
          "/keys/k1.pem",
        ]]),
    );
    await using(
      openLdap(parseLdapUri(keyTableUri(slapd.ldapsUrl!)), { ...TIMEOUTS, ...BIND, tlsCa }),
      async (b) =>
        assert.deepEqual(await b.query(["k2"], signal()), [[
          "example.net",
          "sel2",
          "/keys/k2.pem",
        ]]),
    );
    // An untrusted certificate: StartTLS fails, and the bind (with its password) never happens.
    await using(
      openLdap(parseLdapUri(keyTableUri(slapd.url)), { ...TIMEOUTS, ...BIND, useTls: true }),
      async (b) =>
        await assert.rejects(b.query(["k1"], signal()), /StartTLS \(LDAPUseTLS\) failed/),
    );
  });
  // A server without TLS refuses StartTLS: no silent fallback to plain text.
  await withSlapd({}, async (slapd) => {
    await using(
      openLdap(parseLdapUri(keyTableUri(slapd.url)), { ...TIMEOUTS, ...BIND, useTls: true }),
      async (b) =>
        await assert.rejects(b.query(["k1"], signal()), /StartTLS \(LDAPUseTLS\) failed/),
    );
  });
});

Deno.test("openLdap() refuses a SASL LDAPAuthMechanism, naming the setting", () => {
  const spec = parseLdapUri("ldap://127.0.0.1/dc=x?cn");
  for (const m of ["DIGEST-MD5", "GSSAPI", "EXTERNAL"]) {
    assert.throws(
      () => openLdap(spec, { ...TIMEOUTS, authMechanism: m }),
      /Unsupported "LDAPAuthMechanism" "/,
    );
  }
  for (const m of ["", "none", "simple", "SIMPLE"]) {
    openLdap(spec, { ...TIMEOUTS, authMechanism: m });
  }
});
