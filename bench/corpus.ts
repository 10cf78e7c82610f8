/**
 * The benchmark's messages: realistic mail of about 2 KB, 200 KB and 2 MB, made from a seeded
 * random generator so every run hashes the same bytes. Each has the header set a message has
 * by the time it reaches a submission server's filter (a Received chain, From, To, Cc, Subject,
 * Date, Message-ID, MIME fields, threading fields, a mailer, a list header: 15 fields), and a
 * multipart/mixed body holding a multipart/alternative text part (quoted-printable plain text
 * with soft line breaks, and indented HTML: the whitespace relaxed canonicalization works on)
 * and, for the larger sizes, base64 attachments (a PDF, a JPEG: the long lines without spaces
 * that most of a big message is).
 *
 * The verify corpus is the same messages signed by dkimd's core (relaxed/relaxed), one copy per
 * key, so both filters see identical, valid signatures.
 *
 * @module
 */
import { concat, fromLatin1, latin1 } from "../lib/bytes.ts";
import type { SigningKey } from "../lib/crypto/private_key.ts";
import { splitMessage } from "../lib/dkim/header.ts";
import { signMessage } from "../lib/dkim/sign.ts";

/** The message sizes the benchmark runs, by label. */
export const MESSAGE_SIZES = { "2KB": 2 * 1024, "200KB": 200 * 1024, "2MB": 2 * 1024 * 1024 };

/** A size label: "2KB", "200KB" or "2MB". */
export type SizeLabel = keyof typeof MESSAGE_SIZES;

/** The size labels in increasing order. */
export const SIZE_LABELS: readonly SizeLabel[] = ["2KB", "200KB", "2MB"];

/**
 * Distinct messages per size: enough that no two consecutive messages of a connection are the
 * same bytes, few enough that the 2 MB corpus (8 MiB, twice more signed) loads quickly.
 */
export const MESSAGES_PER_SIZE: Readonly<Record<SizeLabel, number>> = {
  "2KB": 32,
  "200KB": 8,
  "2MB": 4,
};

/** The signing domain of every benchmark message (the From domain). */
export const BENCH_DOMAIN = "example.com";

/** A small deterministic random generator (mulberry32), so every run makes the same corpus. */
export class Random {
  #state: number;

  /** Starts the sequence at `seed`. */
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** The next number in [0, 1). */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** One of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
}

const WORDS = (
  "the of and to a in for is on that by this with you it not or be are from at as your all " +
  "have new more an was we will home can us about if page my has search free but our one " +
  "other do no information time they site he up may what which their news out use any there " +
  "see only so his when contact here business who web also now help get pm view online first " +
  "am been would how were me services some these click its like service than find price date " +
  "back top people had list name just over state year day into email two health world re " +
  "next used go work last most products music buy data make them should product system post " +
  "her city add policy number such please available copyright support message after best " +
  "software then jan good video well where info rights public books high school through each " +
  "links she review years order very privacy book items company read group need many user " +
  "said does set under general research university january mail full map reviews program " +
  "life know games way days management part could great united hotel real item international " +
  "center ebay must store travel comments made development report off member details line " +
  "terms before hotels did send right type because local those using results office " +
  "education national car design take posted internet address community within states area " +
  "want phone dvd shipping reserved subject between forum family long based code show even " +
  "black check special prices website index being women much sign file link open today " +
  "technology south case project same pages uk version section own found sports house " +
  "related security both county american photo game members power while care network down " +
  "computer systems three total place end following download him without per access think " +
  "north resources current posts big media law control water history pictures size art " +
  "personal since including guide shop directory board location change white text small " +
  "rating rate government children during usa return students shopping account times sites"
).split(" ");

const NAMES = [
  ["Alice", "Martin"],
  ["Bruno", "Keller"],
  ["Chloé", "Dubois"],
  ["Dmitri", "Ivanov"],
  ["Eva", "Lindqvist"],
  ["Farid", "Haddad"],
  ["Grace", "O'Neill"],
  ["Hiro", "Tanaka"],
];

function sentence(rng: Random, words: number): string {
  const out: string[] = [];
  for (let i = 0; i < words; i++) out.push(rng.pick(WORDS));
  const s = out.join(" ");
  return s[0].toUpperCase() + s.slice(1) + rng.pick([".", ".", ".", "?", "!"]);
}

function paragraph(rng: Random): string {
  const n = 2 + rng.int(4);
  const parts: string[] = [];
  // Two spaces after a full stop, as many people still type: relaxed canonicalization's work.
  for (let i = 0; i < n; i++) parts.push(sentence(rng, 6 + rng.int(12)));
  return parts.join(rng.next() < 0.3 ? "  " : " ");
}

/** Wraps text at 76 columns as quoted-printable does, with `=` soft breaks and a trailing space now and then. */
function quotedPrintable(text: string, rng: Random): string {
  const lines: string[] = [];
  for (const para of text.split("\n")) {
    let rest = para;
    while (rest.length > 75) {
      let cut = rest.lastIndexOf(" ", 74);
      if (cut < 40) cut = 74;
      // A soft break right after a space: the space stays at the end of the line (encoded as
      // "=20" by careful encoders, left bare by others).
      const head = rest.slice(0, cut + 1);
      lines.push(head.endsWith(" ") && rng.next() < 0.5 ? `${head.slice(0, -1)}=20=` : `${head}=`);
      rest = rest.slice(cut + 1);
    }
    lines.push(rest);
  }
  return lines.join("\r\n");
}

function htmlPart(paragraphs: readonly string[]): string {
  const lines = [
    "<!DOCTYPE html>",
    "<html>",
    "  <head>",
    '    <meta http-equiv="Content-Type" content="text/html; charset=utf-8">',
    "    <style>body { font-family: Arial, sans-serif; }</style>",
    "  </head>",
    "  <body>",
  ];
  for (const p of paragraphs) {
    lines.push("    <div>");
    lines.push(`      <p>${p}</p>`);
    lines.push("    </div>");
  }
  lines.push("  </body>", "</html>");
  return lines.join("\r\n");
}

/** Base64 of `bytes` random bytes in 76-column lines, as MIME writes an attachment. */
function base64Lines(rng: Random, bytes: number): string {
  const raw = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i += 4) {
    const v = (rng.next() * 4294967296) >>> 0;
    raw[i] = v & 0xff;
    if (i + 1 < bytes) raw[i + 1] = (v >>> 8) & 0xff;
    if (i + 2 < bytes) raw[i + 2] = (v >>> 16) & 0xff;
    if (i + 3 < bytes) raw[i + 3] = v >>> 24;
  }
  const text = btoa(latin1(raw));
  const lines: string[] = [];
  for (let i = 0; i < text.length; i += 76) lines.push(text.slice(i, i + 76));
  return lines.join("\r\n");
}

function rfc2822Date(ms: number): string {
  const d = new Date(ms);
  const day = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"][d.getUTCDay()];
  const month =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][
      d.getUTCMonth()
    ];
  const p = (n: number) => String(n).padStart(2, "0");
  return `${day}, ${d.getUTCDate()} ${month} ${d.getUTCFullYear()} ` +
    `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

function hex(rng: Random, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += "0123456789abcdef"[rng.int(16)];
  return s;
}

/**
 * One realistic message of about `size` bytes (within 2 %), CRLF line ends, from
 * `*@example.com`; the same `seed` gives the same bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateMessage } from "./corpus.ts";
 * import { splitMessage } from "../lib/dkim/header.ts";
 * const message = generateMessage(200 * 1024, 1);
 * assert.ok(Math.abs(message.length - 200 * 1024) < 4096);
 * assert.equal(splitMessage(message).fields.length, 15);
 * assert.deepEqual(generateMessage(2048, 7), generateMessage(2048, 7));
 * ```
 */
export function generateMessage(size: number, seed: number): Uint8Array {
  const rng = new Random(seed);
  const [fromFirst, fromLast] = rng.pick(NAMES);
  const [toFirst, toLast] = rng.pick(NAMES);
  const [ccFirst, ccLast] = rng.pick(NAMES);
  const addr = (first: string, last: string, domain: string) =>
    `${first.normalize("NFD").replace(/[^\x20-\x7e]/g, "").toLowerCase()}.${
      last.replace(/'/g, "").toLowerCase()
    }@${domain}`;
  const from = addr(fromFirst, fromLast, "example.com");
  const to = addr(toFirst, toLast, "example.org");
  const cc = addr(ccFirst, ccLast, "example.net");
  const when = Date.UTC(2026, 2, 1) + rng.int(86_400_000 * 30);
  const msgid = `${hex(rng, 16)}.${hex(rng, 8)}@mail.example.com`;
  const boundaryMixed = `=_mixed_${hex(rng, 24)}`;
  const boundaryAlt = `=_alt_${hex(rng, 24)}`;
  const subject = sentence(rng, 4 + rng.int(5)).replace(/[.?!]$/, "");
  const header = [
    `Received: from submit.example.com (submit.example.com [192.0.2.24])\r\n` +
    `\tby mail.example.com (Postfix) with ESMTP id ${hex(rng, 10).toUpperCase()};\r\n` +
    `\t${rfc2822Date(when + 1000)}`,
    `Received: from [198.51.100.7] (dsl-7.example.net [198.51.100.7])\r\n` +
    `\t(Authenticated sender: ${from})\r\n` +
    `\tby submit.example.com (Postfix) with ESMTPSA id ${hex(rng, 10).toUpperCase()};\r\n` +
    `\t${rfc2822Date(when)}`,
    `From: ${fromFirst} ${fromLast} <${from}>`,
    `To: ${toFirst} ${toLast} <${to}>`,
    `Cc: ${ccFirst} ${ccLast} <${cc}>`,
    `Subject: Re: ${subject}`,
    `Date: ${rfc2822Date(when)}`,
    `Message-ID: <${msgid}>`,
    `In-Reply-To: <${hex(rng, 16)}@mail.example.org>`,
    `References: <${hex(rng, 16)}@mail.example.net>\r\n <${hex(rng, 16)}@mail.example.org>`,
    `Reply-To: ${fromFirst} ${fromLast} <${from}>`,
    `MIME-Version: 1.0`,
    `Content-Type: multipart/mixed;\r\n\tboundary="${boundaryMixed}"`,
    `User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.8.0`,
    `List-Unsubscribe: <mailto:leave-${hex(rng, 12)}@lists.example.com>`,
  ].join("\r\n") + "\r\n\r\n";

  // The text (twice: plain and HTML) fills what the small size leaves, a few KB otherwise.
  const pool: string[] = [];
  for (let chars = 0; chars < 6000;) {
    const p = paragraph(rng);
    pool.push(p);
    chars += p.length;
  }
  const alternativePart = (textChars: number) => {
    const paragraphs = takeText(pool, textChars);
    const plain = quotedPrintable(
      `Hello ${toFirst},\n\n${paragraphs.join("\n\n")}\n\n-- \n${fromFirst}`,
      new Random(seed),
    );
    return [
      `--${boundaryMixed}`,
      `Content-Type: multipart/alternative;\r\n\tboundary="${boundaryAlt}"`,
      "",
      `--${boundaryAlt}`,
      "Content-Type: text/plain; charset=utf-8; format=flowed",
      "Content-Transfer-Encoding: quoted-printable",
      "",
      plain,
      "",
      `--${boundaryAlt}`,
      "Content-Type: text/html; charset=utf-8",
      "Content-Transfer-Encoding: 7bit",
      "",
      htmlPart(paragraphs),
      "",
      `--${boundaryAlt}--`,
      "",
    ].join("\r\n");
  };
  const closing = `--${boundaryMixed}--\r\n`;
  let alternative = alternativePart(6000);
  if (size <= SMALL_MESSAGE_MAX) {
    // No attachment: size the text so the whole message comes out at `size`.
    let guess = 400;
    for (let pass = 0; pass < 3; pass++) {
      alternative = alternativePart(guess);
      const over = header.length + alternative.length + closing.length - size;
      guess = Math.max(40, guess - Math.round(over / 2));
    }
  }
  const parts = [alternative];
  // Attachments make up the rest: base64 grows the bytes by 4/3 plus CRLF per 76 columns.
  let left = size - header.length - alternative.length - closing.length;
  const attachments = [
    { type: "application/pdf", name: "quarterly-report.pdf" },
    { type: "image/jpeg", name: "IMG_2041.jpg" },
  ];
  for (let a = 0; a < attachments.length && left > 1024; a++) {
    const { type, name } = attachments[a];
    const head = [
      `--${boundaryMixed}`,
      `Content-Type: ${type}; name="${name}"`,
      `Content-Disposition: attachment; filename="${name}"`,
      "Content-Transfer-Encoding: base64",
      "",
      "",
    ].join("\r\n");
    // The first attachment takes 60 % of what is left, the last one all of it.
    const share = a === attachments.length - 1 ? left : Math.floor(left * 0.6);
    const encoded = Math.max(0, share - head.length - 2);
    const rawBytes = Math.floor((encoded * 76) / 78 / 4) * 3;
    const part = `${head}${base64Lines(rng, rawBytes)}\r\n`;
    parts.push(part);
    left -= part.length;
  }
  return fromLatin1(header + parts.join("") + closing);
}

/** The text paragraphs of `pool` cut to about `chars` characters, at a word, ending a sentence. */
function takeText(pool: readonly string[], chars: number): string[] {
  const out: string[] = [];
  let left = chars;
  for (const p of pool) {
    if (left <= 0) break;
    if (p.length <= left) {
      out.push(p);
      left -= p.length + 2;
      continue;
    }
    const cut = p.lastIndexOf(" ", left);
    out.push(`${p.slice(0, cut > 0 ? cut : left).replace(/[ .?!]+$/, "")}.`);
    break;
  }
  return out;
}

/** Messages up to this size have no attachment. */
const SMALL_MESSAGE_MAX = 16 * 1024;

/** A message ready for the milter: header fields as the MTA sends them, and the body. */
export interface MilterMessage {
  /** Name and value (after the colon, leading space kept, folds as bare LF, as Postfix sends them). */
  readonly headers: readonly (readonly [string, Uint8Array])[];
  /** The body, CRLF line ends. */
  readonly body: Uint8Array;
  /** The whole message's size in bytes. */
  readonly bytes: number;
}

/**
 * Splits a message file into what the milter client sends. Postfix keeps message lines with
 * bare LF in its queue files, so a folded header value reaches the milter with LF folds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { toMilterMessage } from "./corpus.ts";
 * import { latin1, utf8 } from "../lib/bytes.ts";
 * const m = toMilterMessage(utf8("Subject: a\r\n b\r\nFrom: x@y\r\n\r\nHi\r\n"));
 * assert.equal(m.headers[0][0], "Subject");
 * assert.equal(latin1(m.headers[0][1]), " a\n b");
 * assert.equal(latin1(m.body), "Hi\r\n");
 * ```
 */
export function toMilterMessage(message: Uint8Array): MilterMessage {
  const { fields, bodyOffset } = splitMessage(message);
  const headers = fields.map((f) => {
    const value = latin1(f.raw.subarray(f.raw.indexOf(0x3a) + 1)).replaceAll("\r\n", "\n");
    return [f.name, fromLatin1(value)] as const;
  });
  return { headers, body: message.subarray(bodyOffset), bytes: message.length };
}

/** A signing key of the benchmark, with the selector its record is published under. */
export interface BenchKey {
  /** `rsa` or `ed25519`. */
  readonly algorithm: "rsa" | "ed25519";
  /** The selector (`rsa2048` or `ed25519`). */
  readonly selector: string;
  /** The key, imported. */
  readonly key: SigningKey;
}

/** Where {@link writeCorpus} put the messages. */
export interface CorpusPaths {
  /** Unsigned messages by size: the sign workload. */
  readonly sign: Readonly<Record<SizeLabel, string>>;
  /** Signed messages by key algorithm and size: the verify workload. */
  readonly verify: Readonly<Record<"rsa" | "ed25519", Readonly<Record<SizeLabel, string>>>>;
}

/**
 * Writes the corpus under `dir`: `sign/SIZE/NN.eml`, and `verify/ALG/SIZE/NN.eml` signed with
 * each key (relaxed/relaxed, d={@link BENCH_DOMAIN}).
 */
export async function writeCorpus(
  dir: string,
  keys: readonly BenchKey[],
  sizes: readonly SizeLabel[] = SIZE_LABELS,
): Promise<CorpusPaths> {
  const sign = {} as Record<SizeLabel, string>;
  const verify = { rsa: {}, ed25519: {} } as Record<"rsa" | "ed25519", Record<SizeLabel, string>>;
  for (const size of sizes) {
    sign[size] = `${dir}/sign/${size}`;
    await Deno.mkdir(sign[size], { recursive: true });
    for (const k of keys) {
      verify[k.algorithm][size] = `${dir}/verify/${k.algorithm}/${size}`;
      await Deno.mkdir(verify[k.algorithm][size], { recursive: true });
    }
    for (let i = 0; i < MESSAGES_PER_SIZE[size]; i++) {
      const message = generateMessage(MESSAGE_SIZES[size], 1000 * SIZE_LABELS.indexOf(size) + i);
      const name = `${String(i).padStart(2, "0")}.eml`;
      await Deno.writeFile(`${sign[size]}/${name}`, message);
      for (const k of keys) {
        const [field] = await signMessage(message, [{
          domain: BENCH_DOMAIN,
          selector: k.selector,
          key: k.key,
        }]);
        await Deno.writeFile(
          `${verify[k.algorithm][size]}/${name}`,
          concat([field.raw, fromLatin1("\r\n"), message]),
        );
      }
    }
  }
  return { sign, verify };
}

/** Reads every `*.eml` of `dir`, in name order, as milter messages. */
export async function readCorpus(dir: string): Promise<MilterMessage[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.endsWith(".eml")) names.push(e.name);
  }
  names.sort();
  const out: MilterMessage[] = [];
  for (const name of names) out.push(toMilterMessage(await Deno.readFile(`${dir}/${name}`)));
  if (out.length === 0) throw new Error(`No messages (*.eml) in "${dir}"`);
  return out;
}
