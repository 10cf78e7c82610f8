import assert from "node:assert/strict";
import { openLdapUri } from "../../lib/tables/open_backend.ts";
import {
  DEFAULT_LDAPI_SOCKET,
  escapeDnValue,
  escapeFilterValue,
  expandBaseDn,
  expandFilter,
  parseLdapUri,
} from "../../lib/tables/ldap_uri.ts";

Deno.test("parseLdapUri() reads every RFC 4516 part of a KeyTable URL", () => {
  const text =
    "ldap://127.0.0.1:3389/ou=keys,dc=example,dc=test?dkimDomain,dkimSelector,dkimKey?one?(dkimKeyName=$d)";
  assert.deepEqual(parseLdapUri(text), {
    text,
    servers: [{ scheme: "ldap", host: "127.0.0.1", port: 3389 }],
    baseDn: "ou=keys,dc=example,dc=test",
    attributes: ["dkimDomain", "dkimSelector", "dkimKey"],
    scope: "one",
    filter: "(dkimKeyName=$d)",
  });
});

Deno.test("parseLdapUri() applies OpenLDAP's defaults: port 389/636, scope base, (objectClass=*)", () => {
  const plain = parseLdapUri("ldap://ldap.example.com/dc=example,dc=com");
  assert.deepEqual(plain.servers, [{ scheme: "ldap", host: "ldap.example.com", port: 389 }]);
  assert.equal(plain.scope, "base");
  assert.equal(plain.filter, "(objectClass=*)");
  assert.deepEqual(plain.attributes, []);
  assert.deepEqual(parseLdapUri("LDAPS://ldap.example.com").servers, [
    { scheme: "ldaps", host: "ldap.example.com", port: 636 },
  ]);
  assert.deepEqual(parseLdapUri("ldap:///dc=x").servers, [
    { scheme: "ldap", host: "localhost", port: 389 },
  ]);
});

Deno.test("parseLdapUri() reads an ldapi socket path, percent-encoded, or libldap's default", () => {
  assert.deepEqual(parseLdapUri("ldapi://%2Frun%2Fslapd%2Fldapi/dc=x?cn").servers, [
    { scheme: "ldapi", host: "/run/slapd/ldapi" },
  ]);
  assert.deepEqual(parseLdapUri("ldapi:///dc=x").servers, [
    { scheme: "ldapi", host: DEFAULT_LDAPI_SOCKET },
  ]);
  assert.throws(() => parseLdapUri("ldapi://relative/dc=x"), /absolute path/);
});

Deno.test("parseLdapUri() takes servers from every URL, the search from the first (opendkim-db.c)", () => {
  const spec = parseLdapUri(
    "ldap://a.example/dc=a?cn?sub?(cn=$d)\tldaps://b.example:1636/dc=b?sn?base  ldap://[::1]:3389",
  );
  assert.deepEqual(spec.servers, [
    { scheme: "ldap", host: "a.example", port: 389 },
    { scheme: "ldaps", host: "b.example", port: 1636 },
    { scheme: "ldap", host: "::1", port: 3389 },
  ]);
  assert.equal(spec.baseDn, "dc=a");
  assert.deepEqual(spec.attributes, ["cn"]);
  assert.equal(spec.scope, "sub");
  assert.equal(spec.filter, "(cn=$d)");
});

Deno.test("parseLdapUri() percent-decodes the DN and filter, and wraps a bare filter", () => {
  const spec = parseLdapUri("ldap://h/ou=a%20b,dc=x?cn?sub?mail=$d%3F");
  assert.equal(spec.baseDn, "ou=a b,dc=x");
  assert.equal(spec.filter, "(mail=$d?)");
});

Deno.test("parseLdapUri() accepts OpenLDAP's scope words and ignores non-critical extensions", () => {
  assert.equal(parseLdapUri("ldap://h/dc=x??subtree").scope, "sub");
  assert.equal(parseLdapUri("ldap://h/dc=x??onelevel").scope, "one");
  assert.equal(parseLdapUri("ldap://h/dc=x??children").scope, "children");
  assert.equal(parseLdapUri("ldap://h/dc=x??base?(cn=*)?x-ext=1").scope, "base");
});

Deno.test("parseLdapUri() refuses what it cannot honour, saying why", () => {
  const cases: [string, RegExp][] = [
    ["", /Empty LDAP data set/],
    ["http://h/dc=x", /scheme must be ldap, ldaps or ldapi/],
    ["ldap:h/dc=x", /expected scheme:\/\//],
    ["ldap://h:99999/dc=x", /port "99999" is not 1 to 65535/],
    ["ldap://h:0/dc=x", /port "0"/],
    ["ldap://h/dc=x??deep", /scope "deep" is not base, one or sub/],
    ["ldap://h/dc=x?a%20b", /"a b" is not an attribute name/],
    ["ldap://h/dc=x?*", /"\*" is not an attribute name/],
    ["ldap://h/dc=x??sub?(cn=$x)", /"\$x" in the filter is not a substitution/],
    ["ldap://h/$k,dc=x", /"\$k" in the base DN/],
    ["ldap://h/dc=x??sub?(cn=*)?!bindname=cn%3Dx", /critical extension "!bindname=cn=x"/],
    ["ldap://h/dc=%zz", /bad percent-encoding in the base DN/],
    ["ldap://h/dc=x?a?b?c?d?e", /too many "\?" parts/],
    ["ldap://h/dc=x ftp://h/", /scheme must be ldap/],
  ];
  for (const [text, want] of cases) assert.throws(() => parseLdapUri(text), want, text);
});

Deno.test("escapeFilterValue() escapes RFC 4515's five characters and nothing else", () => {
  assert.equal(escapeFilterValue("a*b(c)d\\e\0f"), "a\\2ab\\28c\\29d\\5ce\\00f");
  assert.equal(escapeFilterValue("exämple.com=x"), "exämple.com=x");
});

Deno.test("escapeDnValue() escapes RFC 4514's specials, leading # or space, trailing space", () => {
  assert.equal(
    escapeDnValue('a,b+c"d\\e<f>g;h=i\0'),
    "a\\2cb\\2bc\\22d\\5ce\\3cf\\3eg\\3bh\\3di\\00",
  );
  assert.equal(escapeDnValue("#x "), "\\23x\\20");
  assert.equal(escapeDnValue(" x"), "\\20x");
  assert.equal(escapeDnValue("example"), "example");
});

Deno.test("expandBaseDn() and expandFilter() substitute $d and $D, escaped for where they go", () => {
  assert.equal(
    expandBaseDn("$D,ou=z,dc=t", "mail.example.org"),
    "dc=mail,dc=example,dc=org,ou=z,dc=t",
  );
  assert.equal(expandBaseDn("cn=$d,dc=t", "a,cn=b"), "cn=a\\2ccn\\3db,dc=t");
  assert.equal(expandBaseDn("$D,dc=t", "a,b.c"), "dc=a\\2cb,dc=c,dc=t");
  assert.equal(expandFilter("(&(cn=$d)(o=$D))", "x*.y"), "(&(cn=x\\2a.y)(o=dc=x\\2a,dc=y))");
  assert.equal(expandFilter("(cn=$d)", ")(uid=*"), "(cn=\\29\\28uid=\\2a)");
});

Deno.test("a bad LDAP filter is refused when the back end opens (at load), not at each query", async () => {
  // parseLdapUri() leaves RFC 4515 syntax to the client, which is loaded only to open an LDAP
  // data set; openLdapUri() is what the configuration load awaits.
  const options = { queryTimeoutMs: 1000, connectTimeoutMs: 1000 };
  for (const text of ["ldap://h/dc=x??sub?(cn=$d", "ldap://h/dc=x??sub?(cn=a\\zz)"]) {
    assert.doesNotThrow(() => parseLdapUri(text), text);
    await assert.rejects(openLdapUri(text, options), /Invalid LDAP URL .*: bad filter/, text);
  }
  const good = await openLdapUri("ldap://127.0.0.1:1/dc=x??sub?(cn=$d)", options);
  await good.close();
});
