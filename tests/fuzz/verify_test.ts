// End-to-end mutation fuzzing of verifyMessage(): signed corpus messages have bytes flipped,
// inserted and deleted, header fields duplicated, moved, dropped and added, DKIM-Signature tags
// mangled and bodies extended, while a ZoneResolver serves real, altered, broken and missing key
// records. verifyMessage() always resolves to one verdict per evaluated signature (or throws
// MessageSyntaxError for what is no message), and the security property holds: a signature
// passes only when the bytes it covers, recomputed by the independent reference
// canonicalization of tests/helpers/fuzz.ts, are exactly those its signer signed.
import assert from "node:assert/strict";
import fc from "fast-check";
import { fromLatin1, latin1, toBase64 } from "../../lib/bytes.ts";
import type { SigningKey } from "../../lib/crypto/private_key.ts";
import { MessageSyntaxError, splitMessage } from "../../lib/dkim/header.ts";
import type { DkimResult } from "../../lib/dkim/dkim_error.ts";
import type { Verdict } from "../../lib/dkim/result.ts";
import type { SignOptions } from "../../lib/dkim/sign.ts";
import { parseKeyRecord } from "../../lib/dkim/key_record.ts";
import { SIGNATURE_FIELD } from "../../lib/dkim/signature.ts";
import { MAX_SIGNATURES_DEFAULT, verifyMessage } from "../../lib/dkim/verify.ts";
import { corpus } from "../helpers/corpus.ts";
import { loadKey, recordFor, rsaKey, signed } from "../helpers/dkim_fixtures.ts";
import {
  applyEdits,
  type Edit,
  edits,
  fuzzParams,
  fuzzRuns,
  fuzzSettings,
  latin1Text,
  type ReferenceMessage,
  referenceSignedData,
  referenceSplit,
  type SignedData,
} from "../helpers/fuzz.ts";
import { type ZoneEntry, ZoneResolver } from "../helpers/zone_resolver.ts";

const NOW = 1_800_000_000;
const RESULTS: readonly DkimResult[] = [
  "pass",
  "fail",
  "neutral",
  "policy",
  "temperror",
  "permerror",
];

const rsa = await rsaKey();
const ed = await loadKey("ed25519.pem");
const RSA_NAME = "rsa._domainkey.example.com";
const ED_NAME = "ed._domainkey.example.com";

const VARIANTS: readonly (readonly SignOptions[])[] = [
  [{ domain: "example.com", selector: "rsa", key: rsa }],
  [{
    domain: "example.com",
    selector: "ed",
    key: ed,
    canonicalization: ["simple", "simple"],
    identity: "alice@mail.example.com",
    oversignHeaders: ["From", "Subject", "To"],
  }],
  [{
    domain: "Example.COM",
    selector: "rsa",
    key: rsa,
    canonicalization: ["simple", "relaxed"],
    bodyLength: true,
    ttl: 3600,
  }],
  [
    { domain: "example.com", selector: "rsa", key: rsa, canonicalization: ["relaxed", "simple"] },
    { domain: "example.com", selector: "ed", key: ed, signHeaders: ["From", "Subject", "Date"] },
  ],
];

/** A signed message. */
interface Seed {
  readonly name: string;
  readonly bytes: Uint8Array;
}

/** What a signature (by its b= value as written by the signer) covers in what it signed. */
const signedData = new Map<string, SignedData>();

// Folding whitespace only: String.prototype.trim() would also take U+00A0 and other 8-bit
// bytes that are no whitespace to DKIM.
function fws(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && " \t\r\n".includes(text[start])) start++;
  while (end > start && " \t\r\n".includes(text[end - 1])) end--;
  return text.slice(start, end);
}

// The tags the reference needs, read the plain way: split at ";", the name before "=", values
// without surrounding whitespace; undefined when a tag repeats or a segment has no "=".
function referenceTags(field: string): Map<string, string> | undefined {
  const tags = new Map<string, string>();
  for (const segment of field.slice(field.indexOf(":") + 1).split(";")) {
    if (fws(segment) === "") continue;
    const eq = segment.indexOf("=");
    if (eq === -1) return undefined;
    const name = fws(segment.slice(0, eq));
    if (tags.has(name)) return undefined;
    tags.set(name, fws(segment.slice(eq + 1)));
  }
  return tags;
}

// What the signature field `field` covers in `message`, per the reference.
function covered(message: ReferenceMessage, field: string): SignedData | undefined {
  const tags = referenceTags(field);
  if (!tags) return undefined;
  const h = (tags.get("h") ?? "").split(":").map(fws);
  const [head, body = "simple"] = (tags.get("c") ?? "simple/simple").toLowerCase().split("/");
  const l = tags.get("l");
  return referenceSignedData(
    message,
    field,
    h,
    [head as "simple" | "relaxed", body as "simple" | "relaxed"],
    l === undefined ? undefined : Number(l),
  );
}

function isSignatureField(field: string): boolean {
  const name = field.slice(0, field.indexOf(":")).replace(/[ \t]+$/, "");
  return name.replace(/[A-Z]/g, (c) => c.toLowerCase()) === "dkim-signature";
}

function bValue(field: string): string | undefined {
  return referenceTags(field)?.get("b")?.replace(/[ \t\r\n]/g, "");
}

const seeds: Seed[] = [];
for (const message of await corpus()) {
  for (const [v, options] of VARIANTS.entries()) {
    const bytes = await signed(message.bytes, options, NOW);
    const split = referenceSplit(latin1(bytes));
    assert.ok(split, message.name);
    for (const field of split.fields.filter(isSignatureField)) {
      signedData.set(bValue(field)!, covered(split, field)!);
    }
    seeds.push({ name: `${message.name}#${v}`, bytes });
  }
}

// Structural changes to a message, made on its reference split.
type HeaderOp =
  | { readonly kind: "duplicate"; readonly at: number; readonly to: number }
  | { readonly kind: "move"; readonly at: number; readonly to: number }
  | { readonly kind: "drop"; readonly at: number }
  | { readonly kind: "add"; readonly to: number; readonly field: string }
  | { readonly kind: "rename"; readonly at: number; readonly style: "upper" | "lower" | "space" }
  | { readonly kind: "fold"; readonly at: number; readonly with: string }
  | { readonly kind: "tag"; readonly at: number; readonly tag: TagOp }
  | { readonly kind: "body"; readonly change: BodyOp };

type TagOp =
  | { readonly kind: "drop"; readonly at: number }
  | { readonly kind: "duplicate"; readonly at: number }
  | { readonly kind: "swap"; readonly at: number; readonly with: number }
  | { readonly kind: "value"; readonly at: number; readonly value: string }
  | { readonly kind: "rename"; readonly at: number }
  | { readonly kind: "space"; readonly at: number; readonly with: string }
  | { readonly kind: "extra"; readonly text: string };

type BodyOp =
  | { readonly kind: "append"; readonly text: string }
  | { readonly kind: "prepend"; readonly text: string }
  | { readonly kind: "lf"; readonly at: number };

const TAG_VALUES = [
  "",
  "1",
  "2",
  "rsa-sha1",
  "ed25519-sha256",
  "rsa-sha256",
  "relaxed/relaxed",
  "simple",
  "relaxed/simple/x",
  "example.net",
  "sub.example.com",
  "rsa",
  "ed",
  "from",
  "from:from:subject",
  "to:cc",
  "0",
  "00000000000000000000001",
  "99999999999999999999",
  "@example.com",
  "x=0D=0AInjected:=20yes@example.com",
  "dns/txt",
  "AAAA",
];
const wsp = fc.constantFrom(" ", "\t", "\r\n ", "\r\n\t", "  ");
const tagOp: fc.Arbitrary<TagOp> = fc.oneof(
  fc.record({ kind: fc.constant("drop" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("duplicate" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("swap" as const), at: fc.nat(), with: fc.nat() }),
  fc.record({
    kind: fc.constant("value" as const),
    at: fc.nat(),
    value: fc.oneof(fc.constantFrom(...TAG_VALUES), latin1Text(4)),
  }),
  fc.record({ kind: fc.constant("rename" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("space" as const), at: fc.nat(), with: wsp }),
  fc.record({
    kind: fc.constant("extra" as const),
    text: fc.constantFrom(" z=1", " l=0", " i=@example.com", " q=dns/txt", " t=1", " x=1"),
  }),
);
const bodyOp: fc.Arbitrary<BodyOp> = fc.oneof(
  fc.record({
    kind: fc.constant("append" as const),
    text: fc.oneof(
      fc.constantFrom("\r\n", "\r\n\r\n", " ", "\t\r\n", "Evil\r\n", "\r\n-- \r\nx"),
      latin1Text(6),
    ),
  }),
  fc.record({ kind: fc.constant("prepend" as const), text: fc.constantFrom(" ", "\r\n", "x") }),
  fc.record({ kind: fc.constant("lf" as const), at: fc.nat() }),
);
const headerOp: fc.Arbitrary<HeaderOp> = fc.oneof(
  fc.record({ kind: fc.constant("duplicate" as const), at: fc.nat(), to: fc.nat() }),
  fc.record({ kind: fc.constant("move" as const), at: fc.nat(), to: fc.nat() }),
  fc.record({ kind: fc.constant("drop" as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant("add" as const),
    to: fc.nat(),
    field: fc.constantFrom(
      "From: Mallory <mallory@example.net>",
      "Subject: Urgent",
      "To: victim@example.org",
      "Reply-To: mallory@example.net",
      "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=rsa; h=from; bh=AAAA; b=AAAA",
      "X-Unsigned: whatever",
    ),
  }),
  fc.record({
    kind: fc.constant("rename" as const),
    at: fc.nat(),
    style: fc.constantFrom("upper" as const, "lower" as const, "space" as const),
  }),
  fc.record({ kind: fc.constant("fold" as const), at: fc.nat(), with: wsp }),
  fc.record({ kind: fc.constant("tag" as const), at: fc.nat(), tag: tagOp }),
  fc.record({ kind: fc.constant("body" as const), change: bodyOp }),
);

function applyTagOp(field: string, op: TagOp): string {
  const colon = field.indexOf(":");
  const head = field.slice(0, colon + 1);
  const segments = field.slice(colon + 1).split(";");
  const i = "at" in op ? op.at % segments.length : 0;
  switch (op.kind) {
    case "drop":
      segments.splice(i, 1);
      break;
    case "duplicate":
      segments.splice(i, 0, segments[i]);
      break;
    case "swap": {
      const j = op.with % segments.length;
      [segments[i], segments[j]] = [segments[j], segments[i]];
      break;
    }
    case "value": {
      const eq = segments[i].indexOf("=");
      if (eq >= 0) segments[i] = `${segments[i].slice(0, eq + 1)}${op.value}`;
      break;
    }
    case "rename":
      segments[i] = segments[i].replace(/[a-z]/, (c) => c.toUpperCase());
      break;
    case "space": {
      const eq = segments[i].indexOf("=");
      const at = eq >= 0 ? eq + 1 : 0;
      segments[i] = segments[i].slice(0, at) + op.with + segments[i].slice(at);
      break;
    }
    case "extra":
      segments.push(op.text);
      break;
  }
  return head + segments.join(";");
}

function applyHeaderOps(message: ReferenceMessage, ops: readonly HeaderOp[]): ReferenceMessage {
  const fields = [...message.fields];
  let body = message.body;
  for (const op of ops) {
    const n = fields.length;
    if (op.kind === "body") {
      const c = op.change;
      if (c.kind === "append") body += c.text;
      else if (c.kind === "prepend") body = c.text + body;
      else {
        const crlf = body.indexOf("\r\n", c.at % (body.length + 1));
        if (crlf >= 0) body = body.slice(0, crlf) + body.slice(crlf + 1);
      }
      continue;
    }
    if (op.kind === "add") {
      fields.splice(op.to % (n + 1), 0, op.field);
      continue;
    }
    if (n === 0) continue;
    const i = op.at % n;
    switch (op.kind) {
      case "duplicate":
        fields.splice(op.to % (n + 1), 0, fields[i]);
        break;
      case "move": {
        const [f] = fields.splice(i, 1);
        fields.splice(op.to % n, 0, f);
        break;
      }
      case "drop":
        fields.splice(i, 1);
        break;
      case "rename": {
        const colon = fields[i].indexOf(":");
        const name = fields[i].slice(0, colon);
        const renamed = op.style === "upper"
          ? name.toUpperCase()
          : op.style === "lower"
          ? name.toLowerCase()
          : `${name} `;
        fields[i] = renamed + fields[i].slice(colon);
        break;
      }
      case "fold": {
        const space = fields[i].indexOf(" ", fields[i].indexOf(":"));
        if (space >= 0) {
          fields[i] = `${fields[i].slice(0, space)}\r\n${op.with}${fields[i].slice(space + 1)}`;
        }
        break;
      }
      case "tag": {
        const signatures = fields.map((f, k) => [f, k] as const).filter(([f]) =>
          isSignatureField(f)
        );
        if (signatures.length === 0) break;
        const [field, k] = signatures[op.at % signatures.length];
        fields[k] = applyTagOp(field, op.tag);
        break;
      }
    }
  }
  return { fields, body };
}

function joinMessage(message: ReferenceMessage): Uint8Array {
  return fromLatin1(`${message.fields.map((f) => `${f}\r\n`).join("")}\r\n${message.body}`);
}

/** A seed and what to do to it. */
interface Mutation {
  readonly seed: number;
  readonly ops: readonly HeaderOp[];
  readonly edits: readonly Edit[];
}

const mutation: fc.Arbitrary<Mutation> = fc.record({
  seed: fc.nat(seeds.length - 1),
  ops: fc.oneof(
    { weight: 1, arbitrary: fc.constant([]) },
    { weight: 4, arbitrary: fc.array(headerOp, { minLength: 1, maxLength: 4 }) },
  ),
  edits: fc.oneof(
    { weight: 3, arbitrary: fc.constant([]) },
    { weight: 2, arbitrary: edits(3) },
  ),
});

function mutate(m: Mutation): Uint8Array {
  const seed = seeds[m.seed].bytes;
  let bytes = seed;
  if (m.ops.length > 0) {
    const split = referenceSplit(latin1(seed))!;
    bytes = joinMessage(applyHeaderOps(split, m.ops));
  }
  return applyEdits(bytes, m.edits);
}

// What a key name serves: mostly the real record, sometimes altered, broken or absent.
function keyEntry(real: string): fc.Arbitrary<ZoneEntry> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.constant([real]) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        "t=y; ",
        "t=s; ",
        "t=y:s; ",
        "h=sha256; ",
        "h=sha1; ",
        "s=email; ",
        "s=other; ",
        "n=note; ",
        "g=*; ",
        "k=ed25519; ",
        "k=rsa; ",
      ).map((extra) => [real.replace("p=", `${extra}p=`)]),
    },
    {
      weight: 2,
      arbitrary: edits(2).map((e) => [latin1(applyEdits(fromLatin1(real), e))]),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom<ZoneEntry>(
        "servfail",
        "nxdomain",
        "nodata",
        "refused",
        "malformed",
        "network",
        [],
        ["v=DKIM1; p="],
        ["v=spf1 -all", real],
        [real, real],
        [`v=DKIM1; p=${toBase64(new Uint8Array(32))}`],
      ),
    },
    { weight: 1, arbitrary: fc.array(latin1Text(20, ["v=DKIM1", "p=", "k="]), { maxLength: 2 }) },
  );
}

function zone(entries: { rsa: ZoneEntry; ed: ZoneEntry }): ZoneResolver {
  return new ZoneResolver({ [RSA_NAME]: entries.rsa, [ED_NAME]: entries.ed });
}

function checkVerdicts(verdicts: readonly Verdict[], split: ReferenceMessage): number {
  const signatures = split.fields.filter(isSignatureField);
  assert.equal(verdicts.length, Math.min(signatures.length, MAX_SIGNATURES_DEFAULT));
  let passes = 0;
  for (const v of verdicts) {
    assert.ok(RESULTS.includes(v.result), v.result);
    if (v.result !== "pass") {
      assert.equal(typeof v.reason, "string");
      assert.doesNotMatch(v.reason, /^internal error/, v.reason);
      continue;
    }
    passes++;
    // The security property.
    const field = latin1(v.signature.field.raw);
    // By the signature bytes: base64 has several spellings of the same bytes (the unused low
    // bits before "=" padding), and b= itself is not signed.
    const original = signedData.get(toBase64(v.signature.signature));
    assert.ok(original, `pass with a b= no signer made: ${JSON.stringify(field)}`);
    const now = covered(split, field);
    assert.ok(now, `the reference cannot read a passing signature: ${JSON.stringify(field)}`);
    assert.equal(now.headers, original.headers, "passed with different signed header bytes");
    assert.equal(now.body, original.body, "passed with different signed body bytes");
  }
  return passes;
}

Deno.test("verifyMessage() passes every seed unchanged", async () => {
  const resolver = zone({ rsa: [recordFor(rsa)], ed: [recordFor(ed)] });
  for (const seed of seeds) {
    const verdicts = await verifyMessage(seed.bytes, { resolver, now: () => NOW });
    assert.ok(verdicts.length > 0, seed.name);
    for (const v of verdicts) assert.equal(v.result, "pass", `${seed.name}: ${v.reason}`);
  }
});

Deno.test("verifyMessage() passes a mutated message only when its signed bytes are unchanged", async () => {
  let passes = 0;
  let mutatedPasses = 0;
  const runs = fuzzRuns(4000);
  await fc.assert(
    fc.asyncProperty(
      mutation,
      keyEntry(recordFor(rsa)),
      keyEntry(recordFor(ed)),
      fc.constantFrom(NOW, NOW + 3500, NOW + 100_000, NOW - 10_000),
      async (m, rsaEntry, edEntry, now) => {
        const message = mutate(m);
        const resolver = zone({ rsa: rsaEntry, ed: edEntry });
        let verdicts: Verdict[];
        try {
          verdicts = await verifyMessage(message, { resolver, now: () => now });
        } catch (error) {
          assert.ok(error instanceof MessageSyntaxError, String(error));
          return;
        }
        const split = referenceSplit(latin1(message));
        assert.ok(split, "verifyMessage() read what the reference cannot split");
        const n = checkVerdicts(verdicts, split);
        passes += n;
        if (latin1(message) !== latin1(seeds[m.seed].bytes)) mutatedPasses += n;
      },
    ),
    fuzzParams(4000),
  );
  // The property is not vacuous: signatures did pass, some of them on changed messages.
  if (runs >= 100 && fuzzSettings().path === undefined) {
    assert.ok(passes > 0, "no signature passed at all");
    assert.ok(mutatedPasses > 0, "no mutated message passed");
  }
});

Deno.test("verifyMessage() resolves or throws MessageSyntaxError for arbitrary bytes", async () => {
  const resolver = zone({ rsa: [recordFor(rsa)], ed: [recordFor(ed)] });
  const message = fc.oneof(
    latin1Text(80, [
      "DKIM-Signature:",
      "dkim-signature: ",
      " v=1; a=rsa-sha256; d=example.com; s=rsa; h=from; bh=",
      "; b=",
      "From: a@example.com\r\n",
      "\r\n\r\n",
    ]),
    fc.uint8Array({ maxLength: 300, size: "max" }).map(latin1),
  );
  await fc.assert(
    fc.asyncProperty(message, async (text) => {
      let verdicts: Verdict[];
      try {
        verdicts = await verifyMessage(fromLatin1(text), { resolver, now: () => NOW });
      } catch (error) {
        assert.ok(error instanceof MessageSyntaxError, String(error));
        return;
      }
      const split = referenceSplit(text);
      assert.ok(split);
      assert.equal(checkVerdicts(verdicts, split), 0, "a random message passed");
    }),
    fuzzParams(1000),
  );
});

Deno.test("verifyMessage() passes under an arbitrary key record only with the signer's key", async () => {
  const rsaSeeds = seeds.filter((s) => s.name.endsWith("#0"));
  const realKeys = [rsa, ed].map((k: SigningKey) => toBase64(k.publicKey));
  const record = fc.oneof(
    latin1Text(20, ["v=DKIM1; ", "k=rsa; ", "k=ed25519; ", "t=y; ", "h=sha256; ", "p="]),
    fc.tuple(
      fc.array(fc.constantFrom("v=DKIM1", "k=rsa", "t=s", "s=*", "h=sha1:sha256", "x=y"), {
        maxLength: 4,
      }),
      fc.constantFrom(...realKeys, "", "AAAA", toBase64(new Uint8Array(300))),
    ).map(([tags, p]) => [...tags, `p=${p}`].join("; ")),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.nat(rsaSeeds.length - 1),
      fc.array(record, { maxLength: 3 }),
      async (i, records) => {
        const seed = rsaSeeds[i];
        const resolver = new ZoneResolver({ [RSA_NAME]: records });
        const [v] = await verifyMessage(seed.bytes, { resolver, now: () => NOW });
        if (v.result !== "pass") {
          assert.doesNotMatch(v.reason, /^internal error/, v.reason);
          return;
        }
        // The first record that parses is the one used; it must carry the signer's key.
        const used = records.flatMap((r) => {
          try {
            return [parseKeyRecord(r)];
          } catch {
            return [];
          }
        })[0];
        assert.ok(used, `passed without a key record: ${JSON.stringify(records)}`);
        assert.equal(toBase64(used.publicKey), realKeys[0], JSON.stringify(records));
      },
    ),
    fuzzParams(1000),
  );
});

Deno.test("verifyMessage() stops at MAX_SIGNATURES_DEFAULT signatures, however many there are", async () => {
  const resolver = zone({ rsa: [recordFor(rsa)], ed: [recordFor(ed)] });
  const seed = seeds[0].bytes;
  const { fields } = splitMessage(seed);
  const signature = latin1(fields.find((f) => f.name === SIGNATURE_FIELD)!.raw);
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 0, max: 200 }), async (extra) => {
      const message = fromLatin1(`${`${signature}\r\n`.repeat(extra)}${latin1(seed)}`);
      const verdicts = await verifyMessage(message, { resolver, now: () => NOW });
      assert.equal(verdicts.length, Math.min(extra + 1, MAX_SIGNATURES_DEFAULT));
      for (const v of verdicts) assert.equal(v.result, "pass");
    }),
    fuzzParams(30),
  );
});
