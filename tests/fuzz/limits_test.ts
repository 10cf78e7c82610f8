// Large hostile inputs, one or more per parser: megabytes of folding whitespace, a megabyte tag
// list, 10^5 header fields, deeply nested comments, oversized frames, PEM and config files past
// their limits. Each call runs in a worker (tests/helpers/fuzz.ts boundedCall) so work that
// grows faster than the input shows as a failure, not a stuck run; each must finish with a
// bounded result, and where a limit is documented (MAX_TAGS, MAX_HEADER_FIELDS,
// MAX_FRAME_BYTES_DEFAULT, ...) it must be the limit that stops the input.
import assert from "node:assert/strict";
import {
  MAX_CONFIG_BYTES,
  MAX_CONFIG_LINES,
  readOpendkimConf,
} from "../../lib/config/opendkim_conf.ts";
import { MAX_YAML_BYTES } from "../../lib/config/yaml_conf.ts";
import { MAX_DER_LENGTH_OCTETS } from "../../lib/crypto/der.ts";
import { MAX_PRIVATE_KEY_INPUT_BYTES } from "../../lib/crypto/private_key.ts";
import { MAX_PEM_BLOCKS } from "../../lib/crypto/pem.ts";
import { MAX_HEADER_FIELDS } from "../../lib/dkim/header.ts";
import { MAX_TAGS } from "../../lib/dkim/tag_list.ts";
import { MAX_SIGNATURES_DEFAULT } from "../../lib/dkim/verify.ts";
import { MAX_NAMESERVERS } from "../../lib/dns/nameserver.ts";
import { MAX_FRAME_BYTES_DEFAULT } from "../../lib/milter/frame.ts";
import { MAX_DATA_SET_LINE_LENGTH } from "../../lib/policy/dataset.ts";
import { MAX_PATTERN_LENGTH } from "../../lib/policy/signing_table.ts";
import { boundedCall, type BoundedOutcome } from "../helpers/fuzz.ts";

/** Far above the normal running time of any case here (well under a second): only a hang or
 * work quadratic in the input reaches it. */
const HANG_LIMIT_MS = 15_000;
const TARGETS = new URL("./regressions/targets.ts", import.meta.url).href;
const MB = 1024 * 1024;

interface Case {
  /** What the input is. */
  readonly name: string;
  /** The export of regressions/targets.ts. */
  readonly target: string;
  /** Its arguments. */
  readonly args: () => unknown[];
  /**
   * The error name the input must stop with, a list of error names any of which may stop it
   * (or none), or a check of the summary returned.
   */
  readonly expect: string | readonly string[] | ((value: unknown) => void);
}

const frame = (length: number, code = 0x42): Uint8Array => {
  const out = new Uint8Array(4 + Math.min(length, 1));
  new DataView(out.buffer).setUint32(0, length);
  if (length > 0) out[4] = code;
  return out;
};

const equals = (want: unknown) => (value: unknown) => assert.deepEqual(value, want);
const atMost = (max: number) => (value: unknown) =>
  assert.ok(typeof value === "number" && value <= max, `${value} > ${max}`);

const CASES: readonly Case[] = [
  // Tag lists (DKIM-Signature and key records).
  {
    name: "a 1 MB tag list of distinct tags stops at MAX_TAGS",
    target: "parseTagList",
    args: () => [Array.from({ length: 100_000 }, (_, i) => `t${i}=v`).join("; ")],
    expect: "TagListError",
  },
  {
    name: "exactly MAX_TAGS tags are read",
    target: "parseTagList",
    args: () => [Array.from({ length: MAX_TAGS }, (_, i) => `t${i}=v`).join("; ")],
    expect: equals(MAX_TAGS),
  },
  {
    name: "2 MB of empty segments",
    target: "parseTagList",
    args: () => [";".repeat(2 * MB)],
    expect: equals(0),
  },
  {
    name: "2 MB of folding whitespace inside a value",
    target: "parseTagList",
    args: () => [`a=x${"\r\n ".repeat(MB / 2)}y`],
    expect: equals(1),
  },
  {
    name: "2 MB of folding whitespace between tags",
    target: "parseTagList",
    args: () => [`a=1;${"\r\n\t".repeat(MB / 2)}b=2`],
    expect: equals(2),
  },
  {
    name: "a 1 MB h= list",
    target: "parseSignature",
    args: () => [
      `v=1; a=rsa-sha256; d=example.com; s=s; bh=AAAA; b=AAAA; h=${"from:".repeat(200_000)}from`,
    ],
    expect: equals("example.com"),
  },
  {
    name: "a 1 MB key record of folded base64",
    target: "parseKeyRecord",
    args: () => [`v=DKIM1; k=rsa; p=${"AAAA\r\n ".repeat(150_000)}AAAA`],
    expect: equals("rsa"),
  },
  // Messages.
  {
    name: "10^5 header fields stop at MAX_HEADER_FIELDS",
    target: "splitMessage",
    args: () => ["X-A: b\r\n".repeat(100_000) + "\r\nbody\r\n"],
    expect: "MessageSyntaxError",
  },
  {
    name: "exactly MAX_HEADER_FIELDS header fields are read",
    target: "splitMessage",
    args: () => ["X-A: b\r\n".repeat(MAX_HEADER_FIELDS) + "\r\n"],
    expect: equals({ fields: MAX_HEADER_FIELDS, bodyOffset: 8 * MAX_HEADER_FIELDS + 2 }),
  },
  {
    name: "one field folded over 2 MB",
    target: "splitMessage",
    args: () => [`X: a${"\r\n b".repeat(MB / 2)}\r\n\r\n`],
    expect: (v) => assert.equal((v as { fields: number }).fields, 1),
  },
  {
    name: "MAX_HEADER_FIELDS DKIM-Signature fields give MAX_SIGNATURES_DEFAULT verdicts",
    target: "verdictCount",
    args: () => [
      "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s; h=from; bh=AAAA; b=AAAA\r\n"
        .repeat(MAX_HEADER_FIELDS - 1) + "From: a@example.com\r\n\r\nbody\r\n",
    ],
    expect: equals(MAX_SIGNATURES_DEFAULT),
  },
  {
    name: "a signed field list of 10^5 names against 1000 fields",
    target: "verdictCount",
    args: () => [
      `DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s; bh=AAAA; b=AAAA; h=${
        "from:".repeat(100_000)
      }from\r\n` + "From: a@example.com\r\n".repeat(MAX_HEADER_FIELDS - 1) + "\r\nbody\r\n",
    ],
    expect: equals(1),
  },
  {
    name: "8 MB of whitespace-only body lines (relaxed)",
    target: "canonicalBody",
    args: () => [" \t \r\n".repeat(2 * MB), "relaxed"],
    expect: equals({ total: 0, largest: 0 }),
  },
  {
    name: "8 MB of spaces in one line (relaxed), emitted in bounded pieces",
    target: "canonicalBody",
    args: () => [`x${" ".repeat(8 * MB)}y`, "relaxed"],
    expect: (v) => {
      const { total, largest } = v as { total: number; largest: number };
      assert.equal(total, 5);
      assert.ok(largest <= 65536 + 8, `largest ${largest}`);
    },
  },
  {
    name: "8 MB of empty lines then text (simple), emitted in bounded pieces",
    target: "canonicalBody",
    args: () => [`${"\r\n".repeat(4 * MB)}x`, "simple"],
    expect: (v) => {
      const { total, largest } = v as { total: number; largest: number };
      assert.equal(total, 8 * MB + 3);
      assert.ok(largest <= 65536 + 8, `largest ${largest}`);
    },
  },
  // Authentication-Results.
  {
    name: "10^6 nested comments before the authserv-id",
    target: "authservId",
    args: () => [`${"(".repeat(MB)}${")".repeat(MB)} mx.example.org; dkim=pass`],
    expect: equals("mx.example.org"),
  },
  {
    name: "10^6 unclosed comments",
    target: "authservId",
    args: () => ["(".repeat(MB)],
    expect: equals(null),
  },
  {
    name: "10^6 escaped characters in a comment",
    target: "authservId",
    args: () => [`(${"\\)".repeat(MB / 2)}) mx.example.org`],
    expect: equals("mx.example.org"),
  },
  {
    name: "a 1 MB verdict text is quoted in linear size",
    target: "authResultsLength",
    args: () => ['"\\\r\n\0('.repeat(MB / 6)],
    expect: atMost(4 * MB),
  },
  // The milter codec.
  {
    name: "a frame length of 2^32-1 is refused on arrival",
    target: "frameStream",
    args: () => [frame(0xffffffff)],
    expect: equals({ frames: 0, maxBuffered: 0, error: "MilterProtocolError" }),
  },
  {
    name: "a frame one byte over MAX_FRAME_BYTES_DEFAULT is refused on arrival",
    target: "frameStream",
    args: () => [frame(MAX_FRAME_BYTES_DEFAULT + 1)],
    expect: equals({ frames: 0, maxBuffered: 0, error: "MilterProtocolError" }),
  },
  {
    name: "a frame of exactly MAX_FRAME_BYTES_DEFAULT is read",
    target: "frameStream",
    args: () => {
      const bytes = new Uint8Array(4 + MAX_FRAME_BYTES_DEFAULT);
      new DataView(bytes.buffer).setUint32(0, MAX_FRAME_BYTES_DEFAULT);
      bytes[4] = 0x42;
      return [bytes];
    },
    expect: (v) => assert.equal((v as { frames: number }).frames, 1),
  },
  {
    name: "4 MB of one-byte frames never pile up in the decoder",
    target: "frameStream",
    args: () => {
      const one = Uint8Array.of(0, 0, 0, 1, 0x4e);
      const bytes = new Uint8Array(4 * MB - ((4 * MB) % 5));
      for (let i = 0; i < bytes.length; i += 5) bytes.set(one, i);
      return [bytes];
    },
    expect: (v) => {
      const r = v as { frames: number; maxBuffered: number; error: string | null };
      assert.equal(r.error, null);
      assert.ok(r.maxBuffered < 5, `held ${r.maxBuffered} bytes`);
    },
  },
  // Keys.
  {
    name: `more than MAX_PEM_BLOCKS (${MAX_PEM_BLOCKS}) PEM blocks`,
    target: "pemBlocks",
    args: () => ["-----BEGIN X-----\nAAAA\n-----END X-----\n".repeat(100_000)],
    expect: "PemError",
  },
  {
    name: "a PEM body of 2 MB",
    target: "pemBlocks",
    args: () => [`-----BEGIN X-----\n${"AAAA".repeat(MB / 2)}\n-----END X-----\n`],
    expect: equals(1),
  },
  {
    name: "a private key input over MAX_PRIVATE_KEY_INPUT_BYTES",
    target: "privateKeyType",
    args: () => [
      `-----BEGIN PRIVATE KEY-----\n${"A".repeat(MAX_PRIVATE_KEY_INPUT_BYTES)}\n` +
      "-----END PRIVATE KEY-----\n",
    ],
    expect: "KeyError",
  },
  {
    name: "a DER length of more than MAX_DER_LENGTH_OCTETS octets",
    target: "derLength",
    args: () => [Uint8Array.of(0x30, 0x80 | (MAX_DER_LENGTH_OCTETS + 1), 1, 0, 0, 0, 0, 0)],
    expect: "DerError",
  },
  {
    name: "SEQUENCEs nested 10^5 deep",
    target: "derLength",
    args: () => {
      // Each level: 0x30, 0x84 and a 4-octet length of everything inside it.
      const depth = 100_000;
      const bytes = new Uint8Array(6 * depth);
      for (let i = 0; i < depth; i++) {
        const inside = 6 * (depth - i - 1);
        bytes.set([
          0x30,
          0x84,
          inside >>> 24,
          (inside >>> 16) & 0xff,
          (inside >>> 8) & 0xff,
          inside & 0xff,
        ], 6 * i);
      }
      return [bytes];
    },
    expect: "DerError",
  },
  // DNS configuration.
  {
    name: "a key file line with 2 MB of inner whitespace",
    target: "keyFileNames",
    args: () => [`s._domainkey.example.com${" ".repeat(MB)}v=DKIM1;${" ".repeat(MB)}p=AAAA\n`],
    expect: equals(1),
  },
  {
    name: "a key file of 10^5 names",
    target: "keyFileNames",
    args: () => [
      Array.from({ length: 100_000 }, (_, i) => `s${i}._domainkey.example.com p=`).join("\n"),
    ],
    expect: equals(100_000),
  },
  {
    name: "a resolv.conf line with 2 MB of whitespace",
    target: "resolvConfServers",
    args: () => [`nameserver${" \t".repeat(MB)}192.0.2.1\noptions${" ".repeat(MB)}x\n`],
    expect: equals(1),
  },
  {
    name: "a nameserver list past MAX_NAMESERVERS",
    target: "nameservers",
    args: () => [Array.from({ length: 100_000 }, () => "127.0.0.1").join(",")],
    expect: "NameserverSyntaxError",
  },
  {
    name: `exactly MAX_NAMESERVERS (${MAX_NAMESERVERS}) nameservers`,
    target: "nameservers",
    args: () => [Array.from({ length: MAX_NAMESERVERS }, () => "127.0.0.1").join(",")],
    expect: equals(MAX_NAMESERVERS),
  },
  // Configuration and policy files.
  {
    name: "an opendkim.conf over MAX_CONFIG_BYTES",
    target: "opendkimConfWarnings",
    args: () => [`Mode sv\n${"#".repeat(MAX_CONFIG_BYTES)}\n`],
    expect: "ConfigError",
  },
  {
    name: "an opendkim.conf line with 1 MB of whitespace inside",
    target: "opendkimConfWarnings",
    args: () => [`Mode${" ".repeat(MAX_CONFIG_BYTES / 2 - 10)}sv\n`],
    expect: equals(readOpendkimConf("Mode sv\n", "/etc/opendkim.conf").warnings.length),
  },
  {
    name: "a seconds value with 1 MB of whitespace inside",
    target: "seconds",
    args: () => [`5${" ".repeat(MB)}x`],
    expect: "ValueError",
  },
  {
    name: "a seconds value with 1 MB of whitespace around it",
    target: "seconds",
    args: () => [`${" ".repeat(MB)}5 m${" ".repeat(MB)}`],
    expect: equals(300),
  },
  {
    name: "an opendkim.conf value with 1 MB of whitespace inside",
    target: "opendkimConfWarnings",
    args: () => [`DNSTimeout 5${" ".repeat(MAX_CONFIG_BYTES / 2)}x\n`],
    expect: "ConfigError",
  },
  {
    name: `an opendkim.conf of more than MAX_CONFIG_LINES (${MAX_CONFIG_LINES}) lines`,
    target: "opendkimConfWarnings",
    args: () => ["#\n".repeat(MAX_CONFIG_LINES + 1)],
    expect: (v) => assert.equal(typeof v, "number"),
  },
  {
    name: "a YAML file over MAX_YAML_BYTES",
    target: "yamlConfWarnings",
    args: () => [`mode: sv\n${"#".repeat(MAX_YAML_BYTES)}\n`],
    expect: "ConfigError",
  },
  {
    name: "a YAML alias bomb in a list setting",
    target: "yamlConfWarnings",
    args: () => {
      // 10^30 names if expanded.
      let list = "[&a0 [x, x, x, x, x, x, x, x, x, x]";
      for (let i = 1; i < 30; i++) list += `, &a${i} [${Array(10).fill(`*a${i - 1}`).join(", ")}]`;
      return [`signHeaders: ${list}, *a29]\nmode: sv\n`];
    },
    expect: ["ConfigError", "ConfigErrors"],
  },
  {
    name: "a data set line over MAX_DATA_SET_LINE_LENGTH",
    target: "dataSetEntries",
    args: () => [`key ${"v".repeat(MAX_DATA_SET_LINE_LENGTH)}\n`],
    expect: "SourceError",
  },
  {
    name: "a data set of 10^5 entries with runs of whitespace",
    target: "dataSetEntries",
    args: () => [Array.from({ length: 100_000 }, (_, i) => `k${i}\t \t value ${i}  `).join("\n")],
    expect: equals(100_000),
  },
  {
    name: "a SigningTable pattern of MAX_PATTERN_LENGTH stars against a long address",
    target: "signingPatternMatches",
    args: () => [`${"*a".repeat(MAX_PATTERN_LENGTH / 2 - 1)}*b`, `${"a".repeat(5000)}@example.com`],
    expect: equals(false),
  },
  {
    name: "a host list of 10^5 networks",
    target: "hostListMatches",
    args: () => [
      Array.from({ length: 100_000 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.0/24`).join("\n"),
      "10.1.2.3",
    ],
    expect: equals(true),
  },
];

for (const c of CASES) {
  Deno.test(`${c.target}() bounds ${c.name}`, async () => {
    const outcome: BoundedOutcome = await boundedCall(TARGETS, c.target, c.args(), HANG_LIMIT_MS);
    assert.notEqual(outcome.kind, "timeout", `${c.name}: no result after ${HANG_LIMIT_MS} ms`);
    if (Array.isArray(c.expect)) {
      if (outcome.kind === "threw") {
        assert.ok(c.expect.includes(outcome.name), `${outcome.name}: ${outcome.message}`);
      }
    } else if (typeof c.expect === "string") {
      assert.equal(outcome.kind, "threw", `${c.name}: ${JSON.stringify(outcome)}`);
      if (outcome.kind === "threw") assert.equal(outcome.name, c.expect, outcome.message);
    } else {
      assert.equal(outcome.kind, "returned", `${c.name}: ${JSON.stringify(outcome)}`);
      if (outcome.kind === "returned") (c.expect as (value: unknown) => void)(outcome.value);
    }
  });
}
