/**
 * FixCRLF: bare CR and bare LF in a body turned into CRLF before canonicalization, as OpenDKIM's
 * library does with DKIM_LIBFLAGS_FIXCRLF, so a message whose line ends were damaged on the way
 * (an MTA or a script writing bare LF) hashes as it was signed. Streaming: a CR at the end of a
 * chunk waits for the next chunk's first byte.
 *
 * @module
 */
import { CR, LF } from "../bytes.ts";

/**
 * Rewrites a body's bare CR and LF as CRLF, chunk by chunk.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CrlfFixer } from "./crlf_fixer.ts";
 * import { fromLatin1, latin1 } from "../bytes.ts";
 * const fixer = new CrlfFixer();
 * const out = latin1(fixer.push(fromLatin1("a\nb\r"))) + latin1(fixer.push(fromLatin1("\nc\r"))) +
 *   latin1(fixer.flush());
 * assert.equal(out, "a\r\nb\r\nc\r\n");
 * ```
 */
export class CrlfFixer {
  #pendingCr = false;

  /** The fixed bytes of `chunk` (the chunk itself when nothing needed fixing). */
  push(chunk: Uint8Array): Uint8Array {
    if (!this.#pendingCr && isClean(chunk)) return chunk;
    const out: number[] = [];
    for (const b of chunk) {
      if (this.#pendingCr) {
        this.#pendingCr = false;
        out.push(CR, LF);
        if (b === LF) continue;
      }
      if (b === CR) this.#pendingCr = true;
      else if (b === LF) out.push(CR, LF);
      else out.push(b);
    }
    return Uint8Array.from(out);
  }

  /** What is left at the end of the body: CRLF for a last bare CR, else nothing. */
  flush(): Uint8Array {
    const pending = this.#pendingCr;
    this.#pendingCr = false;
    return pending ? Uint8Array.of(CR, LF) : new Uint8Array(0);
  }
}

// Every CR followed by LF, every LF preceded by CR, and no CR last: nothing to fix.
function isClean(chunk: Uint8Array): boolean {
  for (let i = 0; i < chunk.length; i++) {
    if (chunk[i] === CR && chunk[i + 1] !== LF) return false;
    if (chunk[i] === LF && chunk[i - 1] !== CR) return false;
  }
  return true;
}
