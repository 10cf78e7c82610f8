import assert from "node:assert/strict";
import { fromLatin1, toBase64 } from "../../lib/bytes.ts";
import { generateSigningKey, importPrivateKey } from "../../lib/crypto/private_key.ts";
import { parseKeyRecord } from "../../lib/dkim/key_record.ts";
import {
  encodeNote,
  formatKeyRecord,
  formatZoneFileRecord,
  KEY_CHUNK_CHARS,
  KeyNoteError,
  keyRecordStrings,
  MAX_CHARACTER_STRING_BYTES,
  MAX_NOTE_BYTES,
  parseZoneFileRecord,
  splitCharacterStrings,
  ZoneFileSyntaxError,
} from "../../lib/dkim/key_text.ts";

Deno.test("formatZoneFileRecord() writes opendkim-genkey's layout for a 2048-bit RSA key", async () => {
  const key = await importPrivateKey(
    await Deno.readTextFile(new URL("../testdata/keys/rsa2048_pkcs8.pem", import.meta.url)),
  );
  const p = toBase64(key.publicKey);
  assert.equal(p.length, 392);
  const text = formatZoneFileRecord(
    { keyType: "rsa", publicKey: key.publicKey, hashes: ["sha256"] },
    { selector: "dkim", domain: "example.com" },
  );
  assert.equal(
    text,
    'dkim._domainkey\tIN\tTXT\t( "v=DKIM1; h=sha256; k=rsa; "\n' +
      `\t  "p=${p.slice(0, 250)}"\n` +
      `\t  "${p.slice(250)}" )  ; ----- DKIM key dkim for example.com\n`,
  );
  const parsed = parseZoneFileRecord(text);
  assert.equal(parsed.record, `v=DKIM1; h=sha256; k=rsa; p=${p}`);
  assert.deepEqual(parseKeyRecord(parsed.record).publicKey, key.publicKey);
});

Deno.test("formatZoneFileRecord() writes every flag, the note and the absolute owner", () => {
  const publicKey = new Uint8Array(32).fill(7);
  const p = toBase64(publicKey);
  const cases: { tags: object; domain?: string; append?: boolean; first: string; end: string }[] = [
    {
      tags: { testing: true },
      first: 'ed._domainkey\tIN\tTXT\t( "v=DKIM1; k=ed25519; t=y; "',
      end: " )  ; ----- DKIM key ed for example.com\n",
    },
    {
      tags: { noSubdomains: true, emailOnly: true },
      first: 'ed._domainkey\tIN\tTXT\t( "v=DKIM1; k=ed25519; t=s; s=email; "',
      end: " )  ; ----- DKIM key ed for example.com\n",
    },
    {
      tags: {
        testing: true,
        noSubdomains: true,
        emailOnly: true,
        note: "hi there",
        hashes: ["sha256"],
      },
      append: true,
      first:
        'ed._domainkey.example.com.\tIN\tTXT\t( "v=DKIM1; n=\\"hi there\\"; h=sha256; k=ed25519; t=y:s; s=email; "',
      end: " )  ; ----- DKIM key ed for example.com\n",
    },
    {
      tags: {},
      domain: "",
      first: 'ed._domainkey\tIN\tTXT\t( "v=DKIM1; k=ed25519; "',
      end: " ) \n",
    },
  ];
  for (const c of cases) {
    const text = formatZoneFileRecord(
      { keyType: "ed25519", publicKey, ...c.tags },
      { selector: "ed", domain: c.domain ?? "example.com", appendDomain: c.append },
    );
    const [first, second] = text.split("\n");
    assert.equal(first, c.first);
    assert.equal(second, `\t  "p=${p}" ${c.end.slice(1, -1)}`);
    assert.ok(text.endsWith(c.end));
    const record = parseZoneFileRecord(text).record;
    assert.deepEqual(parseKeyRecord(record).publicKey, publicKey);
    assert.equal(record, formatKeyRecord({ keyType: "ed25519", publicKey, ...c.tags }));
  }
});

Deno.test("keyRecordStrings() keeps every string within 255 bytes, long keys and notes included", async () => {
  const rsa4096 = await importPrivateKey(
    await Deno.readTextFile(new URL("../testdata/keys/rsa4096.pem", import.meta.url)),
  );
  const cases = [
    { keyType: "rsa" as const, publicKey: rsa4096.publicKey, hashes: ["sha256"] },
    { keyType: "rsa" as const, publicKey: rsa4096.publicKey, note: "n".repeat(MAX_NOTE_BYTES) },
    { keyType: "ed25519" as const, publicKey: new Uint8Array(32), note: "é;=".repeat(100) },
    // 375 bytes of key: exactly three 250-character pieces of base64, no empty string after.
    { keyType: "rsa" as const, publicKey: new Uint8Array(375) },
  ];
  for (const spec of cases) {
    const strings = keyRecordStrings(spec);
    for (const s of strings) {
      assert.ok(s.length > 0 && fromLatin1(s).length <= MAX_CHARACTER_STRING_BYTES, s);
    }
    const p = toBase64(spec.publicKey);
    const at = strings.findIndex((s) => s.startsWith("p="));
    assert.equal(strings[at], `p=${p.slice(0, KEY_CHUNK_CHARS)}`);
    assert.equal(strings.slice(at).join(""), `p=${p}`);
    const text = formatZoneFileRecord(spec, { selector: "s", domain: "example.com" });
    const parsed = parseZoneFileRecord(text);
    assert.deepEqual(parsed.strings, strings);
    const record = parseKeyRecord(parsed.record);
    assert.deepEqual(record.publicKey, spec.publicKey);
  }
});

Deno.test("encodeNote() makes any note a valid n= qp-section", () => {
  const cases = [
    { note: "hello world", want: "hello world" },
    { note: " padded ", want: "=20padded=20" },
    { note: 'say "hi" \\o/', want: "say =22hi=22 =5Co/" },
    { note: "a;b=c", want: "a=3Bb=3Dc" },
    { note: "日本", want: "=E6=97=A5=E6=9C=AC" },
  ];
  for (const { note, want } of cases) {
    assert.equal(encodeNote(note), want);
    const record = formatKeyRecord({ keyType: "ed25519", publicKey: new Uint8Array(32), note });
    assert.doesNotThrow(() => parseKeyRecord(record), record);
  }
  assert.throws(() => encodeNote("x".repeat(MAX_NOTE_BYTES + 1)), KeyNoteError);
});

Deno.test("splitCharacterStrings() cuts at the size asked for, at most 255", () => {
  assert.deepEqual(splitCharacterStrings("a".repeat(511)).map((s) => s.length), [255, 255, 1]);
  assert.deepEqual(splitCharacterStrings("abc", 1), ["a", "b", "c"]);
  assert.throws(() => splitCharacterStrings("abc", 256), RangeError);
  assert.throws(() => splitCharacterStrings("abc", 0), RangeError);
});

Deno.test("parseZoneFileRecord() reads zone-file TXT syntax and refuses what a loader refuses", () => {
  const ok = [
    { text: 's IN TXT "a" "b"', owner: "s", strings: ["a", "b"] },
    { text: 's 300 IN TXT ( "a\\"b" ; c\n "\\092\\065" )\n', owner: "s", strings: ['a"b', "\\A"] },
    { text: 's.example.com. TXT "x"\nnext IN TXT "y"', owner: "s.example.com.", strings: ["x"] },
  ];
  for (const c of ok) {
    const r = parseZoneFileRecord(c.text);
    assert.equal(r.owner, c.owner);
    assert.deepEqual(r.strings, c.strings);
  }
  const bad = [
    { text: `s IN TXT "${"x".repeat(256)}"`, want: /256 bytes; at most 255/ },
    { text: 's IN TXT ( "a"', want: /"\(" without "\)"/ },
    { text: 's IN TXT "a" )', want: /"\)" without "\("/ },
    { text: 's IN TXT "a', want: /unterminated string/ },
    { text: "s IN TXT", want: /TXT without strings/ },
    { text: '"s" IN TXT "a"', want: /expected an owner name/ },
    { text: "s IN A 192.0.2.1", want: /expected an owner name, then TXT/ },
    { text: 's CH TXT "a"', want: /"CH" is not a TTL or the class IN/ },
    { text: 's IN TXT "\\300"', want: /over 255/ },
    { text: "s IN TXT bare", want: /"bare" is not a quoted string/ },
  ];
  for (const { text, want } of bad) {
    assert.throws(
      () => parseZoneFileRecord(text),
      (e) => e instanceof ZoneFileSyntaxError && want.test(e.message),
      text,
    );
  }
});

Deno.test("generated keys give records that parse back to the same key", async () => {
  for (const type of ["rsa", "ed25519"] as const) {
    const key = await generateSigningKey(type, type === "rsa" ? 1024 : undefined);
    const record = formatKeyRecord({ keyType: type, publicKey: key.publicKey });
    const parsed = parseKeyRecord(record);
    assert.equal(parsed.keyType, type);
    assert.deepEqual(parsed.publicKey, key.publicKey);
  }
});
