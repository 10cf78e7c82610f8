/**
 * One message in the DKIM filter: what it gathers before end of headers (recipients, header
 * fields, sizes), what it does with the body, by mode, and what it tells the observer (the
 * metrics) when it ends.
 *
 * @module
 */
import type { SigningKey } from "../crypto/private_key.ts";
import type { HeaderField } from "../dkim/header.ts";
import type { Verdict } from "../dkim/result.ts";
import type { Signer } from "../dkim/sign.ts";
import type { Verifier } from "../dkim/verify.ts";
import type { EndOfMessage } from "../milter/filter.ts";
import type { SignerChoice } from "../policy/signers.ts";
import type { ArcWork } from "./arc_work.ts";
import type { Runtime } from "./filter_policy.ts";
import { domainClass, type TransactionReport } from "./observer.ts";
import { findSender } from "./sender.ts";

/**
 * What a transaction does with the body. It is `inactive` until end of headers decides, and
 * again once the message was answered there (left alone, refused, or accepted with nothing to
 * verify); a signer exists only when signing, and a verifier beside it only when the message is
 * also verified.
 */
export type Work =
  | { readonly mode: "inactive" }
  | {
    readonly mode: "signing";
    readonly signer: Signer;
    /** The signatures the signer makes, as chosen. */
    readonly signers: readonly SignerChoice<SigningKey>[];
    /**
     * Verification beside signing, as OpenDKIM does when the setup script calls `odkim.verify()`
     * or the message is re-signed (ResignMailTo, `odkim.resign()`): its results go into an
     * Authentication-Results field.
     */
    readonly verifier?: Verifier;
    /**
     * Re-signing: a message that arrived signed is signed only when its verification passed,
     * unless ResignAll; the new signatures cover the Authentication-Results field added.
     */
    readonly resign?: boolean;
  }
  | {
    readonly mode: "verifying";
    readonly verifier: Verifier;
    /** ARC verification and sealing beside it, with ARCMode (arc_work.ts). */
    readonly arc?: ArcWork;
  }
  | {
    /**
     * Answered at end of headers with an action only end of message can carry (quarantine, as
     * On-Security may ask): the body is ignored, and this is the answer.
     */
    readonly mode: "held";
    readonly end: EndOfMessage;
  };

const INACTIVE: Work = { mode: "inactive" };

/** The per-message state. */
export interface Transaction {
  /** The runtime in force when the message began. */
  readonly runtime: Runtime;
  /** The envelope recipients, lower-cased, without angle brackets. */
  readonly recipients: string[];
  /** The envelope recipients as RCPT TO spelled them, without angle brackets (for DELRCPT). */
  readonly envelopeRecipients: string[];
  /** The header fields, as the message has them. */
  readonly fields: HeaderField[];
  /** The header block's size so far, as MaximumHeaders counts it. */
  headerBytes: number;
  /** Which header limit the message crossed, if any. */
  oversized?: "MaximumHeaders" | "MaximumHeaderFields";
  /** What each failed key lookup said, by name, for the log. */
  readonly dnsFailures: Map<string, string>;
  /** When the work began (end of headers), for the report's duration. */
  started: number;
  /** Body bytes seen. */
  bodyBytes: number;
  /** What the body is for. */
  work: Work;
}

/** A transaction that begins now under `runtime`. */
export function newTransaction(runtime: Runtime): Transaction {
  return {
    runtime,
    recipients: [],
    envelopeRecipients: [],
    fields: [],
    headerBytes: 0,
    dnsFailures: new Map(),
    started: performance.now(),
    bodyBytes: 0,
    work: INACTIVE,
  };
}

/** How a transaction ended. */
export type TransactionEnd =
  | { readonly disposition: "signed"; readonly signers: readonly SignerChoice<SigningKey>[] }
  | {
    readonly disposition: "verified";
    readonly verdicts: readonly Verdict[];
    /** The milter action given, in words. */
    readonly action: string;
    /** The ARC chain's result (`none`, `pass`, `fail`), when ARCMode verified it. */
    readonly arc?: string;
    /** True when an ARC set was added. */
    readonly sealed?: boolean;
  }
  | {
    readonly disposition: "skipped" | "unauthorized" | "error";
    /** The milter action given, in words. */
    readonly action: string;
  };

/**
 * The observer's report of a transaction that ended as `end`: each signature made or verified
 * with its domain classed against the From domain, an unsigned message as one `none`.
 */
export function transactionReport(tx: Transaction, end: TransactionEnd): TransactionReport {
  let results: readonly string[] = [];
  let algorithms: readonly string[] = [];
  let domains: readonly (string | undefined)[] = [];
  if (end.disposition === "signed") {
    algorithms = end.signers.map((s) => s.algorithm);
    domains = end.signers.map((s) => s.domain);
  } else if (end.disposition === "verified") {
    const { verdicts } = end;
    results = verdicts.length === 0 ? ["none"] : verdicts.map((v) => v.result);
    domains = verdicts.length === 0 ? [undefined] : verdicts.map((v) => v.domain);
  }
  let author: string | undefined;
  if (domains.some((d) => d !== undefined)) author = findSender(tx.fields, ["From"])?.domain;
  return {
    disposition: end.disposition,
    results,
    algorithms,
    domainClasses: domains.map((d) => domainClass(d, author)),
    action: end.disposition === "signed" ? "accept" : end.action,
    ...(end.disposition === "verified" && end.arc !== undefined ? { arc: end.arc } : {}),
    ...(end.disposition === "verified" && end.sealed ? { sealed: true } : {}),
    milliseconds: performance.now() - tx.started,
    bodyBytes: tx.bodyBytes,
  };
}
