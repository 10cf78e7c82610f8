/**
 * The rotation's "Prove" step: before dkimd signs with a new key (or forgets an old one), every
 * server a receiver might ask must already give the record the step expects. Each of the zone's
 * authoritative servers is asked directly, without recursion, so a lagging secondary is seen
 * (a receiver's resolver may pick any of them); and so are the resolvers dkimd itself uses, so
 * a negative answer cached there cannot make dkimd's own verification of its mail fail.
 *
 * A server that has not caught up makes the proof wait; a server that serves something else
 * at the name (another key, several records, a record a verifier refuses) makes it wrong, with
 * what differs. Pure: the servers are passed in as resolvers.
 *
 * @module
 */

import { equals } from "../bytes.ts";
import type { SigningKey } from "../crypto/private_key.ts";
import { KeyError } from "../crypto/key_error.ts";
import { importPublicKey } from "../crypto/public_key.ts";
import { readKeyRecord } from "../dkim/key_record.ts";
import { DnsError } from "../dns/resolver.ts";
import type { TtlTxtResolver, TxtAnswer } from "../dns/stub.ts";

/** What the record at the selector's name must be for the step to go on. */
export type Expectation =
  /** The public half of `privateKey` (before activation). */
  | { readonly kind: "key"; readonly privateKey: SigningKey }
  /** A revoked key, `p=` empty (RFC 6376 §3.6.1), before the old key file is deleted. */
  | { readonly kind: "revoked" }
  /** No TXT record at all, after the record is deleted. */
  | { readonly kind: "absent" };

/** One server to ask. */
export interface ProofServer {
  /** How to name it in messages: `127.0.0.1@53 (ns1.example.com)`. */
  readonly label: string;
  /** An authoritative server of the zone (asked without recursion), or a resolver dkimd uses. */
  readonly role: "authoritative" | "resolver";
  /** Asks it: a resolver set up for this one server. */
  readonly resolver: TtlTxtResolver;
}

/** What one server said, judged. */
export interface ServerVerdict {
  /** The server's label. */
  readonly server: string;
  /** Its role. */
  readonly role: ProofServer["role"];
  /** `agrees`: serves what is expected; `lags`: not yet; `wrong`: serves something else. */
  readonly state: "agrees" | "lags" | "wrong";
  /** What it serves, in words. */
  readonly detail: string;
}

/** The outcome of {@link prove}. */
export type Proof =
  /** Every server agrees: the step may go on. */
  | { readonly status: "proven"; readonly servers: readonly ServerVerdict[] }
  /** Some servers lag (and none is wrong): try again later. */
  | {
    readonly status: "waiting";
    readonly lagging: readonly ServerVerdict[];
    readonly servers: readonly ServerVerdict[];
  }
  /** Some server serves another record: an error until someone fixes the zone. */
  | {
    readonly status: "wrong";
    readonly wrong: readonly ServerVerdict[];
    readonly servers: readonly ServerVerdict[];
  };

type Judgement = Pick<ServerVerdict, "state" | "detail">;

/** Judges one record's text against a key: the testkey match (same type, same SPKI). */
async function judgeKey(text: string, privateKey: SigningKey): Promise<Judgement> {
  const reading = readKeyRecord(text);
  if (reading.publicKey?.length === 0) {
    return { state: "wrong", detail: "serves a revoked key (p= empty) instead of the new key" };
  }
  if (reading.record === undefined) {
    return {
      state: "wrong",
      detail: `serves a record verifiers refuse: ${reading.problems[0].message}`,
    };
  }
  const { keyType, publicKey } = reading.record;
  if (keyType !== privateKey.type) {
    return {
      state: "wrong",
      detail: `serves ${keyType === "rsa" ? "an RSA" : "an Ed25519"} key, the new key is ${
        privateKey.type === "rsa" ? "RSA" : "Ed25519"
      }`,
    };
  }
  try {
    const published = await importPublicKey(keyType, publicKey);
    if (!equals(published.spki, privateKey.spki)) {
      return { state: "wrong", detail: "serves a key that is not the public half of the new key" };
    }
  } catch (error) {
    if (!(error instanceof KeyError)) throw error;
    return { state: "wrong", detail: `serves an unusable key: ${error.message}` };
  }
  return { state: "agrees", detail: "serves the new key" };
}

async function judge(name: string, answer: TxtAnswer, expect: Expectation): Promise<Judgement> {
  if (answer.type !== "records") {
    const none = answer.type === "nxdomain" ? "no such name" : "no TXT record";
    return expect.kind === "absent"
      ? { state: "agrees", detail: `serves ${none} at ${name}` }
      : { state: "lags", detail: `serves ${none} at ${name} yet` };
  }
  if (expect.kind === "absent") {
    return {
      state: "lags",
      detail: `still serves ${answer.records.length} TXT record(s) at ${name}`,
    };
  }
  if (answer.records.length !== 1) {
    return {
      state: "wrong",
      detail:
        `serves ${answer.records.length} TXT records at ${name}; a DKIM key needs exactly one`,
    };
  }
  const [text] = answer.records;
  if (expect.kind === "key") return await judgeKey(text, expect.privateKey);
  const reading = readKeyRecord(text);
  if (reading.publicKey?.length === 0) return { state: "agrees", detail: "serves the revoked key" };
  // The key it still serves is the one being revoked: the update has not reached it.
  return { state: "lags", detail: "still serves the key, not yet the revoked record" };
}

/**
 * Asks every server in `servers` for the TXT records at `name` (in parallel) and judges each
 * answer against `expect`. A server that fails to answer (timeout, SERVFAIL, REFUSED) lags: the
 * proof waits for it rather than deciding without it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { prove } from "./proof.ts";
 * const answering = (records: string[]) => ({
 *   resolveTxt: () => Promise.resolve(records),
 *   resolveTxtWithTtl: () => Promise.resolve({ type: "records" as const, records, ttl: 60 }),
 * });
 * const servers = [
 *   { label: "ns1", role: "authoritative" as const, resolver: answering(["v=DKIM1; p="]) },
 *   { label: "ns2", role: "authoritative" as const, resolver: answering(["v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="]) },
 * ];
 * const proof = await prove("s._domainkey.example.com", { kind: "revoked" }, servers);
 * assert.equal(proof.status, "waiting");
 * ```
 */
export async function prove(
  name: string,
  expect: Expectation,
  servers: readonly ProofServer[],
  signal?: AbortSignal,
): Promise<Proof> {
  if (servers.length === 0) throw new RangeError(`Cannot prove ${name}: no server to ask`);
  const verdicts = await Promise.all(servers.map(async (server): Promise<ServerVerdict> => {
    let judgement: Judgement;
    try {
      judgement = await judge(
        name,
        await server.resolver.resolveTxtWithTtl(name, signal ? { signal } : undefined),
        expect,
      );
    } catch (error) {
      if (!(error instanceof DnsError)) throw error;
      judgement = { state: "lags", detail: `cannot be asked: ${error.code}` };
    }
    return { server: server.label, role: server.role, ...judgement };
  }));
  const wrong = verdicts.filter((v) => v.state === "wrong");
  if (wrong.length > 0) return { status: "wrong", wrong, servers: verdicts };
  const lagging = verdicts.filter((v) => v.state === "lags");
  if (lagging.length > 0) return { status: "waiting", lagging, servers: verdicts };
  return { status: "proven", servers: verdicts };
}

/**
 * One line about a proof that is not yet proven: who lags or who is wrong, and what each serves.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeProof } from "./proof.ts";
 * const v = { server: "127.0.0.1@53", role: "authoritative" as const, state: "lags" as const, detail: "serves no TXT record at s._domainkey.example.com yet" };
 * assert.equal(
 *   describeProof({ status: "waiting", lagging: [v], servers: [v] }),
 *   "waiting for 1 of 1 servers: 127.0.0.1@53 (authoritative) serves no TXT record at s._domainkey.example.com yet",
 * );
 * ```
 */
export function describeProof(proof: Proof): string {
  const list = (vs: readonly ServerVerdict[]) =>
    vs.map((v) => `${v.server} (${v.role}) ${v.detail}`).join("; ");
  switch (proof.status) {
    case "proven":
      return `all ${proof.servers.length} servers agree`;
    case "waiting":
      return `waiting for ${proof.lagging.length} of ${proof.servers.length} servers: ${
        list(proof.lagging)
      }`;
    case "wrong":
      return `wrong record on ${proof.wrong.length} of ${proof.servers.length} servers: ${
        list(proof.wrong)
      }`;
  }
}
