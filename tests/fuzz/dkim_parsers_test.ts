// Property and mutation fuzzing of the DKIM text parsers: tag lists, header splitting and
// selection, DKIM-Signature fields, key records and Authentication-Results. Every input gives a
// result or the parser's typed error; results obey the grammar; where an independent reference
// exists (tests/helpers/fuzz.ts), the parser agrees with it.
import assert from "node:assert/strict";
import fc from "fast-check";
import { fromLatin1, latin1, toBase64 } from "../../lib/bytes.ts";
import {
  formatAuthResults,
  formatDkimResult,
  parseAuthservId,
  quoteValue,
} from "../../lib/dkim/auth_results.ts";
import {
  type HeaderField,
  makeHeaderField,
  MAX_HEADER_FIELDS,
  MessageSyntaxError,
  selectHeaders,
  splitMessage,
} from "../../lib/dkim/header.ts";
import { parseKeyRecord } from "../../lib/dkim/key_record.ts";
import { DkimError } from "../../lib/dkim/dkim_error.ts";
import type { Verdict } from "../../lib/dkim/result.ts";
import {
  decodeQuotedPrintable,
  encodeQuotedPrintable,
  isDomainName,
  parseSignature,
  SIGNATURE_FIELD,
  summarizeSignature,
  withoutSignatureValue,
} from "../../lib/dkim/signature.ts";
import { MAX_TAGS, parseTagList, stripWhitespace, TagListError } from "../../lib/dkim/tag_list.ts";
import { edKey, MESSAGE, recordFor, rsaKey, signed } from "../helpers/dkim_fixtures.ts";
import {
  anyText,
  applyEdits,
  edits,
  fuzzParams,
  latin1Text,
  referenceSelect,
  referenceSplit,
  referenceWithoutB,
} from "../helpers/fuzz.ts";

const FAIL_RESULTS = ["fail", "neutral", "policy", "permerror", "temperror"];

function onlyThrows<T>(fn: () => T, ...types: (new (...args: never[]) => Error)[]): T | undefined {
  try {
    return fn();
  } catch (error) {
    if (!types.some((t) => error instanceof t)) throw error;
    return undefined;
  }
}

const TAG_TOKENS = ["v", "a", "b", "bh", "d", "s", "h", "i", "l", "t", "x", "q", "c", "k", "p"];
const tagListText = fc.oneof(
  latin1Text(40, TAG_TOKENS.map((t) => `${t}=`)),
  anyText(80),
);

Deno.test("parseTagList() returns a grammatical map or throws TagListError for any text", () => {
  fc.assert(
    fc.property(tagListText, (text) => {
      let tags: Map<string, string>;
      try {
        tags = parseTagList(text);
      } catch (error) {
        assert.ok(error instanceof TagListError, String(error));
        assert.ok(error.offset >= 0 && error.offset <= text.length, `offset ${error.offset}`);
        return;
      }
      assert.ok(tags.size <= MAX_TAGS);
      for (const [name, value] of tags) {
        assert.match(name, /^[A-Za-z][A-Za-z0-9_]*$/);
        assert.doesNotMatch(value, /^[ \t\r\n]|[ \t\r\n]$/, `value of ${name} is trimmed`);
        // deno-lint-ignore no-control-regex
        assert.doesNotMatch(value, /[\0-\x08\x0b\x0c\x0e-\x1f\x7f;]/, `value of ${name}`);
      }
    }),
    fuzzParams(3000),
  );
});

// tval = 1*VALCHAR (%x21-3A / %x3C-7E); a value is tvals joined by whitespace or folds.
const valchar = fc.integer({ min: 0x21, max: 0x7e }).filter((c) => c !== 0x3b)
  .map((c) => String.fromCharCode(c));
const tval = fc.string({ unit: valchar, minLength: 1, maxLength: 8 });
const fws = fc.constantFrom("", " ", "\t", "  ", "\r\n ", "\r\n\t", "\n ");
const inner = fc.constantFrom(" ", "\t", "\r\n ", " \r\n\t ");
const tagValue = fc.array(tval, { maxLength: 4 }).chain((parts) =>
  fc.array(inner, { minLength: parts.length, maxLength: parts.length }).map((seps) =>
    parts.map((p, i) => (i === 0 ? p : seps[i] + p)).join("")
  )
);
const tagName = fc.stringMatching(/^[A-Za-z][A-Za-z0-9_]{0,5}$/);

Deno.test("parseTagList() reads back every well-formed tag list, however spaced", () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.tuple(tagName, tagValue), {
        maxLength: 12,
        selector: ([name]) => name,
      }),
      fc.array(fws, { minLength: 60, maxLength: 60 }),
      fc.boolean(),
      (tags, spaces, trailing) => {
        let text = "";
        tags.forEach(([name, value], i) => {
          const s = (k: number) => spaces[(i * 5 + k) % spaces.length];
          text += `${i > 0 ? ";" : ""}${s(0)}${name}${s(1)}=${s(2)}${value}${s(3)}`;
        });
        if (trailing) text += `;${spaces[59]}`;
        assert.deepEqual([...parseTagList(text)], tags);
      },
    ),
    fuzzParams(1000),
  );
});

Deno.test("stripWhitespace() removes exactly the folding whitespace", () => {
  fc.assert(
    fc.property(latin1Text(30), (text) => {
      assert.equal(stripWhitespace(text), [...text].filter((c) => !" \t\r\n".includes(c)).join(""));
    }),
    fuzzParams(500),
  );
});

const headerTokens = ["From", "To", "Subject", "DKIM-Signature", "X-A", "from", ": ", ":"];
const messageText = fc.oneof(
  latin1Text(60, headerTokens),
  fc.array(
    fc.oneof(
      fc.tuple(fc.constantFrom(...headerTokens.slice(0, 5)), latin1Text(6)).map(([n, v]) =>
        `${n}:${v}\r\n`
      ),
      fc.constantFrom(" folded\r\n", "\tfolded\r\n", "\r\n", "No colon\r\n", "X: y\n"),
    ),
    { maxLength: 12 },
  ).map((lines) => lines.join("")),
);

Deno.test("splitMessage() agrees with the reference split or throws MessageSyntaxError", () => {
  fc.assert(
    fc.property(messageText, (text) => {
      const bytes = fromLatin1(text);
      const want = referenceSplit(text);
      let got: ReturnType<typeof splitMessage>;
      try {
        got = splitMessage(bytes);
      } catch (error) {
        assert.ok(error instanceof MessageSyntaxError, String(error));
        assert.ok(error.line >= 1, `line ${error.line}`);
        const tooMany = want !== undefined && want.fields.length > MAX_HEADER_FIELDS;
        assert.ok(want === undefined || tooMany, `reference split ${JSON.stringify(text)}`);
        return;
      }
      assert.ok(want, `the reference refuses ${JSON.stringify(text)}`);
      assert.deepEqual(got.fields.map((f) => latin1(f.raw)), want.fields);
      assert.equal(latin1(bytes.subarray(got.bodyOffset)), want.body);
      for (const f of got.fields) {
        const raw = latin1(f.raw);
        assert.equal(f.name, raw.slice(0, raw.indexOf(":")).replace(/[ \t]+$/, ""));
      }
    }),
    fuzzParams(3000),
  );
});

Deno.test("selectHeaders() agrees with the RFC 6376 §5.4.2 reference selection", () => {
  // Field names as an MTA may pass them (with whitespace before the colon); h= names as
  // parseSignature() allows them.
  const fieldName = fc.constantFrom("From", "from", "FROM", "To", "Subject", "X", "x ", "Y\t");
  const hName = fc.constantFrom("From", "from", "FROM", "To", "subject", "X", "y", "Z");
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fieldName, fc.nat(99)), { maxLength: 12 }),
      fc.array(hName, { maxLength: 12 }),
      (list, names) => {
        const fields = list.map(([n, v]) => makeHeaderField(n, fromLatin1(` ${v}`)));
        const picked = selectHeaders(fields, names).map((f) => latin1(f.raw));
        assert.deepEqual(picked, referenceSelect(fields.map((f) => latin1(f.raw)), names));
      },
    ),
    fuzzParams(1000),
  );
});

const rsa = await rsaKey();
const ed = await edKey();
const signedMessage = await signed(MESSAGE, [
  { domain: "example.com", selector: "rsa", key: rsa, bodyLength: true, ttl: 3600 },
  {
    domain: "example.com",
    selector: "ed",
    key: ed,
    identity: "alice@mail.example.com",
    canonicalization: ["simple", "simple"],
    oversignHeaders: ["From", "Subject"],
  },
]);
const realSignatures = splitMessage(signedMessage).fields
  .filter((f) => f.name === SIGNATURE_FIELD)
  .map((f) => latin1(f.raw));

function signatureField(value: string): HeaderField {
  return { name: SIGNATURE_FIELD, raw: fromLatin1(`${SIGNATURE_FIELD}:${value}`) };
}

const signatureText = fc.oneof(
  latin1Text(50, [...TAG_TOKENS.map((t) => `${t}=`), "rsa-sha256", "example.com", "from"]),
  fc.tuple(fc.constantFrom(...realSignatures), edits(3)).map(([raw, e]) =>
    latin1(applyEdits(fromLatin1(raw), e)).slice(SIGNATURE_FIELD.length + 1)
  ),
);

Deno.test("parseSignature() returns a consistent signature or throws DkimError", () => {
  fc.assert(
    fc.property(signatureText, (value) => {
      const field = signatureField(value);
      const summary = summarizeSignature(field);
      assert.equal(typeof summary, "object");
      const sig = onlyThrows(() => parseSignature(field), DkimError);
      if (!sig) return;
      assert.ok(isDomainName(sig.domain), sig.domain);
      assert.ok(sig.headers.some((h) => h.toLowerCase() === "from"));
      assert.ok(sig.signature.length > 0);
      const idDomain = sig.identity.slice(sig.identity.lastIndexOf("@") + 1).toLowerCase();
      assert.ok(idDomain === sig.domain || idDomain.endsWith(`.${sig.domain}`), sig.identity);
      for (const n of [sig.length, sig.timestamp, sig.expiration]) {
        assert.ok(n === undefined || Number.isSafeInteger(n), String(n));
      }
      assert.equal(summary.domain, sig.domain);
    }),
    fuzzParams(3000),
  );
});

Deno.test("parseSignature() parses every real signature it is shown", () => {
  for (const raw of realSignatures) {
    const sig = parseSignature(signatureField(raw.slice(SIGNATURE_FIELD.length + 1)));
    assert.equal(sig.domain, "example.com");
  }
});

Deno.test("withoutSignatureValue() empties exactly the b= value, as the reference does", () => {
  fc.assert(
    fc.property(signatureText, (value) => {
      const field = signatureField(value);
      const got = latin1(withoutSignatureValue(field).raw);
      const want = referenceWithoutB(latin1(field.raw));
      // The reference empties every "b" tag; a valid list has at most one.
      const bTags = value.split(";").filter((s) =>
        s.includes("=") && s.slice(0, s.indexOf("=")).replace(/[ \t\r\n]/g, "") === "b"
      ).length;
      if (bTags <= 1) {
        assert.equal(got, want);
      }
      assert.ok(got.length <= field.raw.length);
    }),
    fuzzParams(3000),
  );
});

Deno.test("decodeQuotedPrintable() inverts encodeQuotedPrintable() for every byte", () => {
  fc.assert(
    fc.property(latin1Text(30), (text) => {
      const encoded = encodeQuotedPrintable(text);
      assert.match(encoded, /^(?:[\x21-\x3a\x3c\x3e-\x7e]|=[0-9A-F]{2})*$/);
      assert.equal(decodeQuotedPrintable(encoded), text);
    }),
    fuzzParams(500),
  );
});

const realRecords = [recordFor(rsa), recordFor(ed), recordFor(rsa, "t=y:s; h=sha256; s=email; ")];
const recordText = fc.oneof(
  latin1Text(50, ["v=DKIM1", "k=", "p=", "h=", "s=", "t=", "rsa", "ed25519", "email", "*"]),
  anyText(60),
  fc.tuple(fc.constantFrom(...realRecords), edits(3)).map(([r, e]) =>
    latin1(applyEdits(fromLatin1(r), e))
  ),
);

Deno.test("parseKeyRecord() returns a usable record or throws DkimError", () => {
  fc.assert(
    fc.property(recordText, (text) => {
      const record = onlyThrows(() => parseKeyRecord(text), DkimError);
      if (!record) return;
      assert.ok(record.keyType === "rsa" || record.keyType === "ed25519");
      assert.ok(record.services.includes("*") || record.services.includes("email"));
      assert.ok(record.publicKey instanceof Uint8Array);
      for (const list of [record.flags, record.services, record.hashes ?? []]) {
        // Items are trimmed and lower-cased; inner whitespace is legal tag-value syntax.
        for (const item of list) assert.match(item, /^[^ \t\r\n:A-Z](?:[^:A-Z]*[^ \t\r\n:A-Z])?$/);
      }
    }),
    fuzzParams(3000),
  );
});

// RFC 5322 §2.2 and §3.2: a field value is printable text and WSP; CRLF only as folding
// (followed by WSP); quoted strings closed and comments balanced, with quoted-pairs inside both.
function assertFieldValue(value: string): void {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x0d) {
      assert.ok(value[i + 1] === "\n" && /[ \t]/.test(value[i + 2] ?? ""), `bare CR at ${i}`);
      i++;
      continue;
    }
    assert.ok(c !== 0x0a, `bare LF at ${i}: ${JSON.stringify(value)}`);
    assert.ok((c >= 0x20 || c === 0x09) && c !== 0x7f, `control 0x${c.toString(16)} at ${i}`);
  }
  let quoted = false;
  let depth = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if ((quoted || depth > 0) && c === "\\") {
      i++;
      continue;
    }
    if (quoted) {
      if (c === '"') quoted = false;
    } else if (depth > 0) {
      if (c === "(") depth++;
      if (c === ")") depth--;
    } else if (c === '"') {
      quoted = true;
    } else if (c === "(") {
      depth = 1;
    } else {
      assert.notEqual(c, ")", `unbalanced ")" at ${i}: ${JSON.stringify(value)}`);
    }
  }
  assert.ok(!quoted && depth === 0, `unclosed quote or comment: ${JSON.stringify(value)}`);
}

const verdictText = fc.oneof(latin1Text(12), anyText(20));
const verdict: fc.Arbitrary<Verdict> = fc.record({
  result: fc.constantFrom(...FAIL_RESULTS),
  reason: verdictText,
  domain: fc.option(verdictText, { nil: undefined }),
  identity: fc.option(verdictText, { nil: undefined }),
  selector: fc.option(verdictText, { nil: undefined }),
  algorithm: fc.option(verdictText, { nil: undefined }),
  b: fc.option(verdictText, { nil: undefined }),
  key: fc.option(
    fc.record({
      type: fc.constantFrom("rsa" as const, "ed25519" as const),
      bits: fc.integer({ min: -1, max: 1 << 20 }),
      testing: fc.boolean(),
    }),
    { nil: undefined },
  ),
}) as fc.Arbitrary<Verdict>;

Deno.test("formatAuthResults() makes a valid field value whatever the verdict text", () => {
  fc.assert(
    fc.property(
      verdictText,
      fc.array(verdict, { maxLength: 4 }),
      fc.record({ noHeaderB: fc.boolean(), brief: fc.boolean() }),
      (id, verdicts, options) => {
        const value = formatAuthResults(id, verdicts, options);
        assertFieldValue(value);
        for (const v of verdicts) assertFieldValue(formatDkimResult(v, options));
        assertFieldValue(quoteValue(id));
        assertFieldValue(quoteValue(id, true));
        // The authserv-id reads back unless it had characters a field value cannot carry.
        // deno-lint-ignore no-control-regex
        if (id !== "" && !/[\0-\x1f\x7f]/.test(id)) assert.equal(parseAuthservId(value), id);
      },
    ),
    fuzzParams(3000),
  );
});

Deno.test("parseAuthservId() returns a string or undefined for any field value", () => {
  const arValue = fc.oneof(
    latin1Text(40, ["(", ")", '"', "\\", ";", "mx.example.org", "dkim=pass"]),
    anyText(60),
    fc.tuple(fc.integer({ min: 0, max: 2000 }), fc.boolean()).map(([n, close]) =>
      "(".repeat(n) + (close ? ")".repeat(n) : "") + " mx.example.org; dkim=pass"
    ),
  );
  fc.assert(
    fc.property(arValue, (value) => {
      const id = parseAuthservId(value);
      assert.ok(id === undefined || (typeof id === "string" && id.length > 0));
      if (id !== undefined) assert.ok(id.length <= value.length);
    }),
    fuzzParams(2000),
  );
});

Deno.test("parseSignature() sees the b= value the signer wrote", () => {
  for (const raw of realSignatures) {
    const sig = parseSignature(signatureField(raw.slice(SIGNATURE_FIELD.length + 1)));
    assert.equal(toBase64(sig.signature), sig.b);
  }
});
