/**
 * The signing thread's program (see {@link SigningThreads} in sign_threads.ts): imports the
 * private keys it is sent once, then answers each request with an RSASSA-PKCS1-v1_5 SHA-256
 * signature (RFC 6376 §3.3.1) made by WebCrypto on this thread. Deno's WebCrypto computes a
 * signature on the calling thread, so an RSA-2048 signature (about 1.7 ms) made here leaves the
 * service's main thread free for the milter traffic of other messages.
 *
 * Messages in: `{ kind: "key", id, pkcs8 }`, then any number of `{ kind: "sign", seq, id, data }`.
 * Messages out: `{ kind: "ready" }` once, then `{ kind: "signed", seq, signature }` or
 * `{ kind: "failed", seq, message }` for each request.
 *
 * @module
 */
/** A request to the signing thread. */
export type SignWorkerRequest =
  | { readonly kind: "key"; readonly id: number; readonly pkcs8: Uint8Array }
  | { readonly kind: "sign"; readonly seq: number; readonly id: number; readonly data: Uint8Array };

/** An answer from the signing thread. */
export type SignWorkerAnswer =
  | { readonly kind: "ready" }
  | { readonly kind: "signed"; readonly seq: number; readonly signature: Uint8Array }
  | { readonly kind: "failed"; readonly seq: number; readonly message: string };

const keys = new Map<number, Promise<CryptoKey>>();

async function answer(request: SignWorkerRequest): Promise<SignWorkerAnswer | undefined> {
  if (request.kind === "key") {
    const imported = crypto.subtle.importKey(
      "pkcs8",
      new Uint8Array(request.pkcs8),
      { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
      false,
      ["sign"],
    );
    // A key that fails to import fails each request that names it, with the reason.
    imported.catch(() => {});
    keys.set(request.id, imported);
    return undefined;
  }
  try {
    const key = keys.get(request.id);
    if (!key) throw new Error(`No key ${request.id} in the signing thread`);
    const signature = await crypto.subtle.sign(
      "RSASSA-PKCS1-v1_5",
      await key,
      new Uint8Array(request.data),
    );
    return { kind: "signed", seq: request.seq, signature: new Uint8Array(signature) };
  } catch (e) {
    return {
      kind: "failed",
      seq: request.seq,
      message: e instanceof Error ? e.message : String(e),
    };
  }
}

// Only inside a worker: imported elsewhere (for its types, or by a test), it does nothing.
const WorkerScope = (globalThis as { WorkerGlobalScope?: abstract new () => unknown })
  .WorkerGlobalScope;
if (WorkerScope !== undefined && globalThis instanceof WorkerScope) {
  const scope = globalThis as unknown as {
    postMessage(message: SignWorkerAnswer): void;
    onmessage: ((event: MessageEvent<SignWorkerRequest>) => void) | null;
  };
  scope.onmessage = (event) => {
    answer(event.data).then((a) => {
      if (a) scope.postMessage(a);
    });
  };
  scope.postMessage({ kind: "ready" });
}
