import assert from "node:assert/strict";
import { closestName, MAX_SUGGEST_LENGTH } from "../../lib/config/did_you_mean.ts";

const NAMES = ["KeyTable", "SigningTable", "Selector", "Socket", "Syslog", "SyslogSuccess"];

Deno.test("closestName() suggests a name within 2 edits, or a third of the name", () => {
  const cases: { name: string; want: string | undefined; why: string }[] = [
    { name: "KeyTable", want: "KeyTable", why: "exact" },
    { name: "KEYTABLE", want: "KeyTable", why: "case is no edit" },
    { name: "KeyTabel", want: "KeyTable", why: "2 edits (a swap)" },
    { name: "Sokcet", want: "Socket", why: "2 edits" },
    { name: "Sckt", want: "Socket", why: "2 deletions" },
    { name: "Sock", want: "Socket", why: "2 insertions" },
    { name: "Skt", want: undefined, why: "3 edits, more than a third of 3 letters and 2" },
    { name: "SiXXXXgTable", want: "SigningTable", why: "4 edits, a third of 12 letters" },
    { name: "SiXXXXXTable", want: undefined, why: "5 edits, more than a third of 12 letters" },
    { name: "Frobnicate", want: undefined, why: "nothing close" },
    { name: "", want: undefined, why: "no letters: every name is more than 2 edits away" },
  ];
  for (const c of cases) assert.equal(closestName(c.name, NAMES), c.want, `${c.name}: ${c.why}`);
});

Deno.test("closestName() takes the first of equally close names", () => {
  assert.equal(closestName("Sxcket", ["Socket", "Sucket"]), "Socket");
  assert.equal(closestName("Sxcket", ["Sucket", "Socket"]), "Sucket");
});

Deno.test("closestName() takes an abbreviation of one name, from three letters", () => {
  const actions = ["badSignature", "dnsError", "internalError", "noSignature", "security"];
  assert.equal(closestName("badSig", actions), "badSignature");
  assert.equal(closestName("INTERN", actions), "internalError");
  // Too short to be a likely abbreviation, and too far in edits.
  assert.equal(closestName("ba", ["badSignature"]), undefined);
  // Two names start so: no guess.
  assert.equal(closestName("Syslo", ["SyslogFacility", "SyslogSuccess"]), undefined);
  assert.equal(closestName("SyslogS", ["SyslogFacility", "SyslogSuccess"]), "SyslogSuccess");
});

Deno.test("closestName() does not compare names longer than MAX_SUGGEST_LENGTH", () => {
  const long = "k".repeat(MAX_SUGGEST_LENGTH);
  assert.equal(closestName(long, [long]), long);
  assert.equal(closestName(`${long}k`, [`${long}k`]), undefined);
  assert.equal(closestName("KeyTable", []), undefined);
});
