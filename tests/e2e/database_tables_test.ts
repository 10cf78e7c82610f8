// dkimd, started as the start task starts it, with its KeyTable, SigningTable and sets in each
// database back end (PostgreSQL, MariaDB, SQLite, LDAP), through the milter:
// - a KeyTable row naming a key file and one holding the PEM itself both sign, each with its
//   own key (each signature verifies against that key's record only);
// - the SigningTable is asked OpenDKIM's way: the full address first, then the domain;
// - a domain in no row is not signed;
// - ExemptDomains from the database: mail from such a domain is neither signed (though the
//   SigningTable has it) nor verified;
// - verifying: a signed message from outside gets dkim=pass through dkimd's own DNS lookups;
// - PostgreSQL also holds InternalHosts (which client is signed for) and PeerList (left alone).
import assert from "node:assert/strict";
import { KEYS_DIR, loadKey, recordFor } from "../helpers/dkim_fixtures.ts";
import { startDkimd } from "../helpers/dkimd_process.ts";
import { startDnsServer } from "../helpers/dns_server.ts";
import { generateTestKey } from "../helpers/peers.ts";
import {
  added,
  delivered,
  sendFrom,
  type Sent,
  signatures,
  tag,
  verifiedWith,
} from "../helpers/signing_client.ts";
import { startTableWorld, TABLE_BACKENDS, type TableBackendName } from "../helpers/table_world.ts";
import { latin1 } from "../../lib/bytes.ts";
import { splitMessage } from "../../lib/dkim/header.ts";

const FILE_KEY = await loadKey("rsa2048_pkcs8.pem");
const ROW_KEY = await generateTestKey("rsa-sha256");
/** Each selector's record: a signature made with the other key fails. */
const RECORDS = {
  "sel._domainkey.example.com": recordFor(FILE_KEY),
  "pem._domainkey.example.com": ROW_KEY.record,
};

const INTERNAL = "192.0.2.10";
const OUTSIDE = "198.51.100.7";
const PEER = "203.0.113.9";

/** The message as delivered, its fields as header pairs, to send again from elsewhere. */
function headersOf(sent: Sent): [string, string][] {
  const { fields } = splitMessage(delivered(sent));
  return fields.map((f) => {
    const raw = latin1(f.raw);
    const colon = raw.indexOf(":");
    return [raw.slice(0, colon), raw.slice(colon + 1).replace(/\r\n$/, "")];
  });
}

async function scenario(backend: TableBackendName) {
  const dir = await Deno.makeTempDir({ prefix: `dkimd-db-${backend}-` });
  const keyFile = `${dir}/key.pem`;
  await Deno.copyFile(new URL("rsa2048_pkcs8.pem", KEYS_DIR), keyFile);
  await Deno.chmod(keyFile, 0o600);
  const withHosts = backend === "pgsql";
  await using world = await startTableWorld(backend, {
    keys: [
      { id: "kfile", domain: "example.com", selector: "sel", key: keyFile },
      { id: "kpem", domain: "example.com", selector: "pem", key: ROW_KEY.privatePem },
      { id: "kexempt", domain: "exempt.example", selector: "sel", key: keyFile },
    ],
    signing: [
      ["example.com", "kfile"],
      ["alice@example.com", "kpem"],
      ["exempt.example", "kexempt"],
    ],
    sets: {
      exempt: ["exempt.example"],
      ...(withHosts ? { internal: ["192.0.2.0/24"], peers: [PEER] } : {}),
    },
  }, { dir });
  const dns = await startDnsServer({
    zone: "example.com",
    records: Object.fromEntries(Object.entries(RECORDS).map(([n, r]) => [n, [r]])),
  });
  const client = withHosts ? INTERNAL : "127.0.0.1";
  const d = await startDkimd(dir, (socket) =>
    [
      "Mode sv",
      `Socket ${socket}`,
      "Syslog no",
      "Background no",
      `Nameservers ${dns.nameserver}`,
      `KeyTable ${world.keyTable}`,
      `SigningTable ${world.signingTable}`,
      `ExemptDomains ${world.set("exempt")}`,
      ...(withHosts
        ? [`InternalHosts ${world.set("internal")}`, `PeerList ${world.set("peers")}`]
        : []),
      ...world.lines,
      "",
    ].join("\n"));
  try {
    // The domain row: signed with the key file's key, s=sel.
    const bob = await sendFrom(d.port, "bob@example.com", "S1", client);
    assert.equal(bob.result.final.type, "accept", JSON.stringify(bob.result.final));
    assert.equal(signatures(bob.result).length, 1, d.log());
    assert.deepEqual(await verifiedWith(bob, RECORDS), ["example.com sel pass"]);
    // Only that key verifies it: with pem's record under sel, it fails.
    assert.deepEqual(
      await verifiedWith(bob, { "sel._domainkey.example.com": ROW_KEY.record }),
      ["example.com sel fail"],
    );

    // The full-address row wins over the domain row: the PEM held in the row, s=pem.
    const alice = await sendFrom(d.port, "alice@example.com", "S2", client);
    assert.deepEqual(await verifiedWith(alice, RECORDS), ["example.com pem pass"]);
    assert.equal(tag(signatures(alice.result)[0], "d"), "example.com");

    // No row: accepted, not signed.
    const unknown = await sendFrom(d.port, "carol@unknown.example", "S3", client);
    assert.equal(unknown.result.final.type, "accept");
    assert.deepEqual(signatures(unknown.result), []);

    // ExemptDomains (in the database): not signed, though the SigningTable has the domain.
    const exempt = await sendFrom(d.port, "dave@exempt.example", "S4", client);
    assert.equal(exempt.result.final.type, "accept");
    assert.deepEqual(signatures(exempt.result), [], d.log());

    // Verifying: bob's signed message from outside passes (dkimd asks knot for the key).
    const inbound = await sendFrom(d.port, "bob@example.com", "V1", OUTSIDE, []);
    assert.deepEqual(signatures(inbound.result), []);
    const resent = headersOf(bob).filter(([n]) => n === "DKIM-Signature");
    const verified = await sendFrom(d.port, "bob@example.com", "S1", OUTSIDE, resent);
    assert.equal(verified.result.final.type, "accept");
    const ar = added(verified.result, "Authentication-Results").join("\n");
    assert.match(ar, /dkim=pass[^;]*header\.d=example\.com/, ar);
    // The same signature on mail From an exempt domain: not verified at all (no result).
    const exemptIn = await sendFrom(d.port, "dave@exempt.example", "S1", OUTSIDE, resent);
    assert.equal(exemptIn.result.final.type, "accept");
    assert.deepEqual(added(exemptIn.result, "Authentication-Results"), []);
    // ...while a non-exempt From with that (now broken) signature gets a verdict.
    const other = await sendFrom(d.port, "erin@other.example", "S1", OUTSIDE, resent);
    assert.match(added(other.result, "Authentication-Results").join("\n"), /dkim=fail/);

    if (withHosts) {
      // InternalHosts holds 192.0.2.0/24 only: from 127.0.0.1 (internal by default, not
      // here), bob's mail is not signed, and his signed mail is verified.
      const local = await sendFrom(d.port, "bob@example.com", "H1", "127.0.0.1");
      assert.equal(local.result.final.type, "accept");
      assert.deepEqual(signatures(local.result), []);
      const localSigned = await sendFrom(d.port, "bob@example.com", "S1", "127.0.0.1", resent);
      assert.match(added(localSigned.result, "Authentication-Results").join("\n"), /dkim=pass/);
      // A PeerList client is left alone: no change at all.
      const peer = await sendFrom(d.port, "bob@example.com", "S1", PEER, resent);
      assert.deepEqual(peer.result.modifications, []);
      assert.equal(peer.result.final.type, "accept");
    }
  } finally {
    await d.stop();
    await dns.close();
    await Deno.remove(dir, { recursive: true });
  }
}

for (const backend of TABLE_BACKENDS) {
  Deno.test(`dkimd signs and verifies through the milter with KeyTable, SigningTable and sets in ${backend}`, async () => {
    await scenario(backend);
  });
}
