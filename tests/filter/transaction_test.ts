/** transactionReport(): what the metrics hear of a finished message. */
import assert from "node:assert/strict";
import { fromLatin1 } from "../../lib/bytes.ts";
import type { SigningKey } from "../../lib/crypto/private_key.ts";
import type { Verdict } from "../../lib/dkim/result.ts";
import { makeField } from "../../lib/filter/mta_fields.ts";
import { newTransaction, transactionReport } from "../../lib/filter/transaction.ts";
import type { SignerChoice } from "../../lib/policy/signers.ts";
import { memoryRuntime } from "../helpers/memory_runtime.ts";

async function fromAuthor(domain: string) {
  const tx = newTransaction(await memoryRuntime("Mode sv\n"));
  tx.fields.push(makeField("From", fromLatin1(` Ann <ann@${domain}>`), true));
  tx.bodyBytes = 42;
  return tx;
}

Deno.test("transactionReport() classes each signature made against the From domain", async () => {
  const tx = await fromAuthor("mail.example.com");
  const signer = (domain: string, algorithm: "rsa-sha256" | "ed25519-sha256") =>
    ({ domain, algorithm }) as SignerChoice<SigningKey>;
  const report = transactionReport(tx, {
    disposition: "signed",
    signers: [signer("example.com", "rsa-sha256"), signer("example.org", "ed25519-sha256")],
  });
  assert.deepEqual(
    [report.disposition, report.results, report.algorithms, report.domainClasses, report.action],
    ["signed", [], ["rsa-sha256", "ed25519-sha256"], ["author", "third-party"], "accept"],
  );
  assert.equal(report.bodyBytes, 42);
  assert.ok(report.milliseconds >= 0);
});

Deno.test("transactionReport() reports an unsigned message as one none", async () => {
  const tx = await fromAuthor("example.com");
  const none = transactionReport(tx, { disposition: "verified", verdicts: [], action: "accept" });
  assert.deepEqual([none.results, none.domainClasses], [["none"], ["none"]]);
  const verdicts = [{ result: "fail", reason: "x", domain: "example.com" }] as Verdict[];
  const failed = transactionReport(tx, { disposition: "verified", verdicts, action: "reject" });
  assert.deepEqual([failed.results, failed.domainClasses, failed.action], [
    ["fail"],
    ["author"],
    "reject",
  ]);
  const skipped = transactionReport(tx, { disposition: "skipped", action: "accept" });
  assert.deepEqual([skipped.results, skipped.algorithms, skipped.domainClasses], [[], [], []]);
});
