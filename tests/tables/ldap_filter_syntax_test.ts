// The configuration-time filter check must accept and refuse exactly what the LDAP client
// (npm ldapts, which parses the filter again at every query) does, with the same message: the
// check was moved out of ldapts so a dkimd without LDAP data sets never loads the client.
import assert from "node:assert/strict";
import fc from "fast-check";
import { FilterParser } from "ldapts";
import { checkLdapFilter } from "../../lib/tables/ldap_filter_syntax.ts";

/** What each says of `filter`: "ok", or the message thrown. */
function verdicts(filter: string): { ours: string; ldapts: string } {
  const run = (f: () => unknown) => {
    try {
      f();
      return "ok";
    } catch (e) {
      return (e as Error).message;
    }
  };
  return {
    ours: run(() => checkLdapFilter(filter)),
    ldapts: run(() => FilterParser.parseString(filter)),
  };
}

const CASES = [
  "",
  "(objectClass=*)",
  "objectClass=*",
  "(dkimKeyName=x)",
  "(&(objectClass=dkimKey)(dkimKeyName=x))",
  "(|(a=1)(b=2)(!(c=3)))",
  "(!(cn=x))",
  "(cn=x",
  "(cn=x))",
  "((cn=x)",
  "(&(a=1)(b=2)",
  "(&)",
  "(|(a=1)",
  "(!cn=x)",
  "(cn=a*b*c)",
  "(cn=*b*)",
  "(cn=a(*b)",
  "(cn=a*b(*c(x)",
  "(cn=a*b(*c\\zz)",
  "(cn=\\2a)",
  "(cn=\\2)",
  "(cn=\\zz)",
  "(cn=a\\)",
  "(cn>=5)",
  "(cn<=5)",
  "(cn~=x)",
  "(cn>5)",
  "(cn!x)",
  "(=x)",
  "( cn=x)",
  "(cn:=x)",
  "(cn:dn:=x)",
  "(cn:dn:2.4.6.8.10:=x)",
  "(:1.2.3:=x)",
  "(:dn:1.2.3:=x)",
  "(cn:rule:other:=x)",
  "(cn:rule)",
  "(cn:=x(y)",
  "(cn=x)(sn=y)",
  "(&(a=1)(b=2))x",
];

Deno.test("checkLdapFilter() agrees with ldapts's FilterParser on every case, message and all", () => {
  for (const filter of CASES) {
    const { ours, ldapts } = verdicts(filter);
    assert.equal(ours, ldapts, JSON.stringify(filter));
  }
});

Deno.test("checkLdapFilter() agrees with ldapts's FilterParser on generated filters", () => {
  // Filters made of the characters that matter to the grammar, so most are near misses.
  const piece = fc.constantFrom(
    "(",
    ")",
    "&",
    "|",
    "!",
    "=",
    "*",
    ":",
    ">",
    "<",
    "~",
    "\\",
    "2a",
    "zz",
    "cn",
    "dn",
    "1.2",
    "x",
    " ",
    "(cn=x)",
    "(&",
    "(|",
    "(!",
  );
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 14 }), (pieces) => {
      const filter = pieces.join("");
      const { ours, ldapts } = verdicts(filter);
      assert.equal(ours, ldapts, JSON.stringify(filter));
    }),
    { numRuns: 20_000 },
  );
});
