/**
 * RSA signatures on other threads. Deno's WebCrypto (and node:crypto) computes an RSA signature
 * synchronously on the calling thread: an RSA-2048 signature costs about 1.7 ms of CPU, during
 * which the milter's event loop would serve no other connection, and a second core would sit
 * idle. {@link SigningThreads} sends each RSA signature to a worker thread (sign_worker.ts)
 * instead, so the main thread keeps reading, canonicalizing and hashing other messages.
 *
 * Ed25519 signatures (about 0.05 ms) stay on the calling thread: the hop to a thread and back
 * costs about as much. A thread that is still starting, has failed, or does not answer within
 * {@link SIGN_THREAD_TIMEOUT_MS} is never waited for: the signature is then made on the calling
 * thread, so signing works wherever threads do not (a `deno compile` binary without the worker
 * file included, say).
 *
 * The threads are Web Workers (node:worker_threads costs five times more CPU per message here).
 * A Web Worker keeps a Deno process alive until it is terminated, so threads start only when
 * asked for ({@link SigningThreads.start} or the first RSA signature) and a program that is done
 * calls {@link SigningThreads.close} or exits with `Deno.exit`, as dkimd's main does.
 *
 * @module
 */
import type { SigningKey } from "./keys.ts";
import { parsePem } from "./pem.ts";
import type { SignWorkerAnswer, SignWorkerRequest } from "./sign_worker.ts";

/**
 * Signing threads by default: one fewer than the cores (the main thread has the rest of the
 * work), at least one, at most four (a signature a thread per core is the most that helps).
 */
export const SIGNING_THREADS_DEFAULT = Math.max(
  1,
  Math.min(4, (globalThis.navigator?.hardwareConcurrency ?? 2) - 1),
);

/**
 * Longest wait for a thread's signature before it is made on the calling thread instead and the
 * threads are given up: far above any real signature time (milliseconds), well below the MTA's
 * end-of-message timeout.
 */
export const SIGN_THREAD_TIMEOUT_MS = 10_000;

/** Options of {@link SigningThreads}. */
export interface SigningThreadsOptions {
  /** Threads to run; default {@link SIGNING_THREADS_DEFAULT}. */
  readonly threads?: number;
  /** See {@link SIGN_THREAD_TIMEOUT_MS}. */
  readonly timeoutMs?: number;
}

interface Pending {
  readonly key: SigningKey;
  readonly data: Uint8Array;
  readonly resolve: (signature: Uint8Array) => void;
  readonly reject: (error: unknown) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

interface Thread {
  readonly worker: Worker;
  readonly pending: Map<number, Pending>;
  readonly keys: Set<number>;
  online: boolean;
  // Called when the thread is up, or has failed.
  readonly settled: (() => void)[];
}

/**
 * A small pool of signing threads, started on the first RSA signature.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SigningThreads } from "./sign_threads.ts";
 * import { generateSigningKey, importPublicKey } from "./keys.ts";
 * const threads = new SigningThreads({ threads: 1 });
 * assert.equal(await threads.start(), true);
 * const key = threads.offload(await generateSigningKey("rsa", 2048));
 * const data = new TextEncoder().encode("header hash input");
 * const signatures = await Promise.all([key.sign(data), key.sign(data), key.sign(data)]);
 * const pub = await importPublicKey("rsa", key.publicKey);
 * for (const s of signatures) assert.equal(await pub.verify("sha256", data, s), true);
 * assert.deepEqual(threads.counts, { threaded: 3, local: 0 });
 * threads.close();
 * ```
 */
export class SigningThreads {
  readonly #count: number;
  readonly #timeoutMs: number;
  #threads?: Thread[];
  #broken = false;
  #seq = 0;
  #nextKeyId = 1;
  readonly #keyIds = new WeakMap<SigningKey, Promise<{ id: number; pkcs8: Uint8Array }>>();
  readonly #offloaded = new WeakMap<SigningKey, SigningKey>();

  /** Makes the pool; no thread starts before the first RSA signature. */
  constructor(options: SigningThreadsOptions = {}) {
    const count = options.threads ?? SIGNING_THREADS_DEFAULT;
    if (!Number.isInteger(count) || count < 1 || count > 64) {
      throw new RangeError(`Invalid signing thread count ${count}: expected 1 to 64`);
    }
    this.#count = count;
    this.#timeoutMs = options.timeoutMs ?? SIGN_THREAD_TIMEOUT_MS;
  }

  /** Signatures made so far on the threads and on the calling thread. */
  readonly counts = { threaded: 0, local: 0 };

  /**
   * Starts the threads now rather than at the first RSA signature; resolves to true once they
   * are all up, false when they cannot run here (signatures are then made on the calling thread).
   */
  start(): Promise<boolean> {
    const threads = this.#start();
    return Promise.all(
      threads.map((t) =>
        t.online || this.#broken
          ? Promise.resolve()
          : new Promise<void>((resolve) => t.settled.push(resolve))
      ),
    ).then(() => !this.#broken && threads.length > 0);
  }

  /** True once the threads have failed and every signature is made on the calling thread. */
  get broken(): boolean {
    return this.#broken;
  }

  /**
   * `key` with its RSA signatures made on the threads; an Ed25519 key is returned as it is.
   * The same key gives the same wrapper.
   */
  offload(key: SigningKey): SigningKey {
    if (key.type !== "rsa") return key;
    let wrapped = this.#offloaded.get(key);
    if (!wrapped) {
      wrapped = {
        type: key.type,
        bits: key.bits,
        publicKey: key.publicKey,
        spki: key.spki,
        sign: (data) => this.#sign(key, data),
        toPem: () => key.toPem(),
      };
      this.#offloaded.set(key, wrapped);
    }
    return wrapped;
  }

  /** Stops the threads; signatures asked for later are made on the calling thread. */
  close(): void {
    this.#giveUp();
  }

  #start(): Thread[] {
    if (this.#threads) return this.#threads;
    const threads: Thread[] = [];
    this.#threads = threads;
    try {
      for (let i = 0; i < this.#count; i++) {
        const worker = new Worker(new URL("./sign_worker.ts", import.meta.url).href, {
          type: "module",
          name: `dkimd signing thread ${i + 1}`,
        });
        const thread: Thread = {
          worker,
          pending: new Map(),
          keys: new Set(),
          online: false,
          settled: [],
        };
        worker.onmessage = (event: MessageEvent<SignWorkerAnswer>) => {
          if (event.data.kind === "ready") {
            thread.online = true;
            for (const f of thread.settled.splice(0)) f();
          } else this.#answered(thread, event.data);
        };
        // An error inside a worker would otherwise be raised again in this thread.
        worker.onerror = (event) => {
          event.preventDefault();
          this.#giveUp();
        };
        worker.onmessageerror = () => this.#giveUp();
        threads.push(thread);
      }
    } catch {
      // No threads here (permissions, a compiled binary without the worker): sign locally.
      this.#giveUp();
    }
    return threads;
  }

  #keyId(key: SigningKey): Promise<{ id: number; pkcs8: Uint8Array }> {
    let entry = this.#keyIds.get(key);
    if (!entry) {
      const id = this.#nextKeyId++;
      entry = key.toPem().then((pem) => ({ id, pkcs8: parsePem(pem)[0].der }));
      this.#keyIds.set(key, entry);
    }
    return entry;
  }

  #local(key: SigningKey, data: Uint8Array): Promise<Uint8Array> {
    this.counts.local++;
    return key.sign(data);
  }

  async #sign(key: SigningKey, data: Uint8Array): Promise<Uint8Array> {
    if (this.#broken) return await this.#local(key, data);
    const threads = this.#start();
    // The least busy thread that is up; while they start, the caller signs.
    let thread: Thread | undefined;
    for (const t of threads) {
      if (t.online && (!thread || t.pending.size < thread.pending.size)) thread = t;
    }
    if (!thread || this.#broken) return await this.#local(key, data);
    const { id, pkcs8 } = await this.#keyId(key);
    if (this.#broken) return await this.#local(key, data);
    if (!thread.keys.has(id)) {
      thread.keys.add(id);
      thread.worker.postMessage({ kind: "key", id, pkcs8 } satisfies SignWorkerRequest);
    }
    const seq = this.#seq++;
    const target = thread;
    return await new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => this.#giveUp(), this.#timeoutMs);
      target.pending.set(seq, { key, data, resolve, reject, timer });
      target.worker.postMessage({ kind: "sign", seq, id, data } satisfies SignWorkerRequest);
    });
  }

  #answered(thread: Thread, answer: Exclude<SignWorkerAnswer, { kind: "ready" }>): void {
    const pending = thread.pending.get(answer.seq);
    if (!pending) return;
    this.#settle(thread, answer.seq, pending);
    if (answer.kind === "signed") {
      this.counts.threaded++;
      pending.resolve(answer.signature);
    } else this.#signLocally(pending);
  }

  #settle(thread: Thread, seq: number, pending: Pending): void {
    clearTimeout(pending.timer);
    thread.pending.delete(seq);
  }

  // The calling thread's answer is the one that counts: a thread's failure is retried here,
  // which gives the real error if there is one.
  #signLocally(pending: Pending): void {
    this.#local(pending.key, pending.data).then(pending.resolve, pending.reject);
  }

  #giveUp(): void {
    if (this.#broken) return;
    this.#broken = true;
    for (const thread of this.#threads ?? []) {
      for (const [seq, pending] of [...thread.pending]) {
        this.#settle(thread, seq, pending);
        this.#signLocally(pending);
      }
      for (const f of thread.settled.splice(0)) f();
      thread.worker.terminate();
    }
  }
}

let shared: SigningThreads | undefined;

/**
 * The process's shared pool, made on first use: every filter of a process signs through the
 * same threads, however many configurations it loads.
 */
export function sharedSigningThreads(): SigningThreads {
  shared ??= new SigningThreads();
  return shared;
}
