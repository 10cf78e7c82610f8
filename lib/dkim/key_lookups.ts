/**
 * The key lookups of one message: each key name (`selector._domainkey.domain`, RFC 6376 §3.6.2.1)
 * asked of the resolver once, however many signatures name it, the answer parsed into a
 * {@link KeyRecord}. DKIM verification and ARC verification (whose signatures use DKIM's key
 * records, RFC 8617 §4.1.2 and §4.1.3) each keep one per message.
 *
 * @module
 */
import type { DnssecStatus } from "../dns/dnssec.ts";
import { DnsError, resolveTxtChecked, type TxtResolver } from "../dns/resolver.ts";
import type { KeyRecord } from "./key_record.ts";
import { KeyRecordCache } from "./key_record_cache.ts";

/** Key records parsed, shared by every verifier: bounded in records and bytes, by digest. */
const keyRecords = new KeyRecordCache();

/**
 * Picks the key record from the TXT records at a key name: the first that parses as a DKIM key
 * record (other TXT records, such as SPF, may share the name). None → the first parse error;
 * no records at all → no key.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pickKeyRecord } from "./key_lookups.ts";
 * const record = pickKeyRecord("s._domainkey.example.com", ["v=spf1 -all", "v=DKIM1; k=ed25519; p=AAAA"]);
 * assert.equal(record.keyType, "ed25519");
 * assert.throws(() => pickKeyRecord("s._domainkey.example.com", []), { code: "nodata" });
 * ```
 */
export function pickKeyRecord(name: string, records: readonly string[]): KeyRecord {
  let firstError: unknown;
  for (const text of records) {
    try {
      return keyRecords.parse(text);
    } catch (e) {
      firstError ??= e;
    }
  }
  if (firstError) throw firstError;
  throw new DnsError("nodata", name);
}

/**
 * One message's key lookups: {@link KeyLookups.get} starts a lookup the first time a name is
 * asked for and gives the same promise after; `signal` aborts the pending ones.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KeyLookups } from "./key_lookups.ts";
 * let asked = 0;
 * const lookups = new KeyLookups({
 *   resolveTxt: () => (asked++, Promise.resolve(["v=DKIM1; k=ed25519; p=AAAA"])),
 * }, new AbortController().signal);
 * const [a, b] = await Promise.all([lookups.get("s._domainkey.a.example"), lookups.get("s._domainkey.a.example")]);
 * assert.equal(a, b);
 * assert.equal(asked, 1);
 * ```
 */
export class KeyLookups {
  readonly #resolver: TxtResolver;
  readonly #signal: AbortSignal;
  readonly #pending = new Map<string, Promise<KeyRecord>>();
  readonly #dnssec = new Map<string, DnssecStatus>();

  /** Lookups through `resolver`, aborted by `signal`. */
  constructor(resolver: TxtResolver, signal: AbortSignal) {
    this.#resolver = resolver;
    this.#signal = signal;
  }

  /** The key record at `name`, asked of the resolver once per message. */
  get(name: string): Promise<KeyRecord> {
    let pending = this.#pending.get(name);
    if (!pending) {
      pending = resolveTxtChecked(this.#resolver, name, { signal: this.#signal }).then(
        ({ records, dnssec }) => {
          if (dnssec !== undefined) this.#dnssec.set(name, dnssec);
          return pickKeyRecord(name, records);
        },
      );
      // The lookup may never be awaited (an aborted transaction, a chain failing early); never
      // leave it unhandled.
      pending.catch(() => {});
      this.#pending.set(name, pending);
    }
    return pending;
  }

  /**
   * What DNSSEC said of the record at `name`, once {@link KeyLookups.get}'s promise for it has
   * resolved; undefined when the resolver did not ask.
   */
  dnssec(name: string): DnssecStatus | undefined {
    return this.#dnssec.get(name);
  }
}
