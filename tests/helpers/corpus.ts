/**
 * The corpus of awkward test messages (tests/testdata/messages) and ways to tamper with a signed
 * message that every canonicalization notices.
 *
 * @module
 */
import { concat, CRLF, indexOf, utf8 } from "../../lib/bytes.ts";

/** Where the corpus lives. */
export const MESSAGES_DIR = new URL("../testdata/messages/", import.meta.url);

/** One corpus message. */
export interface CorpusMessage {
  /** The file name without `.eml`. */
  readonly name: string;
  /** The raw message. */
  readonly bytes: Uint8Array;
}

let corpusPromise: Promise<CorpusMessage[]> | undefined;
/** The corpus, read once per process, sorted by name. */
export function corpus(): Promise<CorpusMessage[]> {
  corpusPromise ??= (async () => {
    const out: CorpusMessage[] = [];
    for await (const entry of Deno.readDir(MESSAGES_DIR)) {
      if (!entry.isFile || !entry.name.endsWith(".eml")) continue;
      out.push({
        name: entry.name.slice(0, -".eml".length),
        bytes: await Deno.readFile(new URL(entry.name, MESSAGES_DIR)),
      });
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  })();
  return corpusPromise;
}

/** The offset where the body starts: after the first empty line, or the end when there is none. */
export function bodyOffset(message: Uint8Array): number {
  const at = indexOf(message, utf8("\r\n\r\n"));
  return at === -1 ? message.length : at + 4;
}

function isAlnum(byte: number): boolean {
  return (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) ||
    (byte >= 0x61 && byte <= 0x7a);
}

/** Replaces one ASCII letter or digit with the next one (z → a), a change every canonicalization keeps. */
function bumped(byte: number): number {
  if (byte === 0x39) return 0x30;
  if (byte === 0x5a) return 0x41;
  if (byte === 0x7a) return 0x61;
  return byte + 1;
}

/** Changes one body byte; a body without a letter or digit gets one "X" instead. */
export function tamperBody(message: Uint8Array): Uint8Array {
  const start = bodyOffset(message);
  for (let i = start; i < message.length; i++) {
    if (isAlnum(message[i])) {
      const out = message.slice();
      out[i] = bumped(message[i]);
      return out;
    }
  }
  const head = message.subarray(0, start);
  const separator = indexOf(message, utf8("\r\n\r\n")) === -1 ? CRLF : new Uint8Array(0);
  return concat([head, separator, utf8("X"), message.subarray(start)]);
}

/** Changes the first letter or digit in the value of the From field, which every peer signs. */
export function tamperFrom(message: Uint8Array): Uint8Array {
  const end = bodyOffset(message);
  for (let i = 0; i < end - 5; i++) {
    const lineStart = i === 0 || message[i - 1] === 0x0a;
    if (!lineStart) continue;
    const name = String.fromCharCode(...message.subarray(i, i + 5)).toLowerCase();
    if (name !== "from:") continue;
    for (let j = i + 5; j < end; j++) {
      if (isAlnum(message[j])) {
        const out = message.slice();
        out[j] = bumped(message[j]);
        return out;
      }
    }
  }
  throw new Error("Message has no From field to tamper with");
}
