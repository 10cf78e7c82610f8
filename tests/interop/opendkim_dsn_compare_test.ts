// Debian's OpenDKIM (built with OpenDBX and LDAP: `opendkim -V` lists USE_ODBX and USE_LDAP)
// and dkimd on the SAME opendkim.conf file and the same database: KeyTable and SigningTable as
// dsn:pgsql, dsn:mysql (MariaDB), dsn:sqlite3 in OpenDKIM's `%/` form, and ldap:. For a set of
// senders (the address row, the domain row, an unknown domain, a subdomain with SubDomains no
// and yes, upper case), each is asked whether it signs, with which d= and s=, and each signature
// is verified against the record of the key its row names (so a signature made with another key
// fails). OpenDKIM is run in its test mode (`opendkim -x CONF -t FILE`, which signs as the
// milter does, from the same configuration file); dkimd runs as a milter on that file.
//
// dsn:sqlite3://%/dkim.db: OpenDBX glues host and database name, so OpenDKIM opens the file
// `%dkim.db` in its working directory (BaseDirectory here). Only that file exists here, so
// dkimd signing alike proves it opens the same file from the unchanged configuration.
//
// Departures, each asserted below: see DEPARTURES (none today).
import assert from "node:assert/strict";
import { fromLatin1, fromUtf8 } from "../../lib/bytes.ts";
import { KEYS_DIR, loadKey, recordFor } from "../helpers/dkim_fixtures.ts";
import { startDkimd } from "../helpers/dkimd_process.ts";
import { generateTestKey, PEER_PROGRAMS, PEER_TIMEOUT_MS } from "../helpers/peers.ts";
import {
  BODY,
  messageHeaders,
  sendFrom,
  type Sent,
  signatures,
  tag,
  verifiedWith,
} from "../helpers/signing_client.ts";
import { startTableWorld, TABLE_BACKENDS, type TableBackendName } from "../helpers/table_world.ts";
import { verifyMessage } from "../../lib/dkim/verify.ts";
import { ZoneResolver } from "../helpers/zone_resolver.ts";

const FILE_KEY = await loadKey("rsa2048_pkcs8.pem");
const ROW_KEY = await generateTestKey("rsa-sha256");
const RECORDS = {
  "sel1._domainkey.example.com": recordFor(FILE_KEY),
  "sel2._domainkey.example.com": ROW_KEY.record,
};

const SENDERS = [
  "a@example.com", // the domain row (k1, sel1)
  "b@example.com", // the address row (k2, sel2) before the domain row
  "B@EXAMPLE.COM", // upper case: the database's comparison decides
  "a@EXAMPLE.COM", // upper-case domain, lower-case local part
  "a@unknown.example", // no row
  "a@sub.example.com", // a subdomain of a domain row
  "a@mail.parent.example", // below a ".parent.example" row
] as const;

/** What one signer did for one sender: "unsigned" or "d s verdict". */
type Outcome = string;

/** Expected outcomes (SubDomains no or yes), by back end where they differ. */
function expected(backend: TableBackendName): Record<string, Outcome> {
  // PostgreSQL's and SQLite's `=` is case-sensitive: only the domain (lowercased by both
  // signers) matches. MariaDB's default collation and LDAP's caseIgnoreMatch are not.
  const caseless = backend === "mysql" || backend === "ldap";
  return {
    "a@example.com": "example.com sel1 pass",
    "b@example.com": "example.com sel2 pass",
    "B@EXAMPLE.COM": caseless ? "example.com sel2 pass" : "example.com sel1 pass",
    "a@EXAMPLE.COM": "example.com sel1 pass",
    "a@unknown.example": "unsigned",
    // SubDomains concerns Domain, not a SigningTable: the domain row is not a parent's.
    "a@sub.example.com": "unsigned",
    // A ".parent" row is asked for every name below it (OpenDKIM's lookup order).
    "a@mail.parent.example": "example.com sel1 pass",
  };
}

/**
 * Where dkimd and OpenDKIM answer differently on the same configuration and database, by
 * "backend subdomains sender": [OpenDKIM, dkimd, why]. Empty: they agree on every row.
 */
const DEPARTURES: Record<string, readonly [Outcome, Outcome, string]> = {};

async function verifyText(message: Uint8Array): Promise<string[]> {
  const zone = new ZoneResolver(
    Object.fromEntries(Object.entries(RECORDS).map(([n, r]) => [n, [r]])),
  );
  const verdicts = await verifyMessage(message, { resolver: zone, now: () => Date.now() / 1000 });
  return verdicts.map((v) => `${v.domain} ${v.selector} ${v.result}`);
}

/** `opendkim -x conf -t message`, in `dir`: the outcome, its signature verified. */
async function openDkim(dir: string, conf: string, from: string): Promise<Outcome> {
  const head = messageHeaders(from, "compare").map(([n, v]) => `${n}:${v}\r\n`).join("");
  const original = `${head}\r\n${BODY}`;
  const file = `${dir}/message.eml`;
  await Deno.writeTextFile(file, original);
  const out = await new Deno.Command(PEER_PROGRAMS.opendkim, {
    args: ["-x", conf, "-t", file],
    cwd: dir,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(PEER_TIMEOUT_MS),
  }).output();
  const stdout = fromUtf8(out.stdout);
  const text = stdout + fromUtf8(out.stderr);
  // Test mode exits 70 (EX_SOFTWARE) silently when it does not sign; anything said is an error.
  if (out.code === 70 && text.trim() === "") return "unsigned";
  assert.equal(out.code, 0, text);
  const field = /DKIM-Signature:[\s\S]*/.exec(stdout)?.[0];
  if (!field) return "unsigned";
  const header = field.trimEnd().replace(/\r?\n/g, "\r\n") + "\r\n";
  const verdicts = await verifyText(fromLatin1(header + original));
  assert.equal(verdicts.length, 1, stdout);
  return verdicts[0];
}

async function dkimdOutcome(sent: Sent): Promise<Outcome> {
  const sigs = signatures(sent.result);
  assert.equal(sent.result.final.type, "accept", JSON.stringify(sent.result.final));
  if (sigs.length === 0) return "unsigned";
  assert.equal(sigs.length, 1);
  const verdicts = await verifiedWith(sent, RECORDS);
  assert.equal(verdicts[0].split(" ")[0], tag(sigs[0], "d"));
  return verdicts[0];
}

async function compare(backend: TableBackendName) {
  const dir = await Deno.makeTempDir({ prefix: `dkimd-compare-${backend}-` });
  const keyFile = `${dir}/k1.pem`;
  await Deno.copyFile(new URL("rsa2048_pkcs8.pem", KEYS_DIR), keyFile);
  await Deno.chmod(keyFile, 0o600);
  await using world = await startTableWorld(backend, {
    keys: [
      { id: "k1", domain: "example.com", selector: "sel1", key: keyFile },
      { id: "k2", domain: "example.com", selector: "sel2", key: ROW_KEY.privatePem },
    ],
    signing: [["example.com", "k1"], ["b@example.com", "k2"], [".parent.example", "k1"]],
  }, { dir, sqliteRelative: true });
  if (backend === "sqlite3") {
    // The one file OpenDKIM opens, and nothing under the name dkimd could fall back to.
    assert.ok((await Deno.stat(`${dir}/%dkim.db`)).isFile);
    await assert.rejects(Deno.stat(`${dir}/dkim.db`), Deno.errors.NotFound);
  }
  try {
    for (const subdomains of [false, true]) {
      const d = await startDkimd(dir, (socket) =>
        [
          "# One file for both: opendkim -x THIS -t, and dkimd -x THIS as a milter.",
          "Mode s",
          "Syslog no",
          "Background no",
          "RequireSafeKeys no",
          `BaseDirectory ${dir}`,
          `Socket ${socket}`,
          `SubDomains ${subdomains ? "yes" : "no"}`,
          `KeyTable ${world.keyTable}`,
          `SigningTable ${world.signingTable}`,
          ...world.lines,
          "",
        ].join("\n"));
      const conf = `${dir}/dkimd.conf`;
      try {
        const want = expected(backend);
        const rows: string[] = [];
        for (const [i, from] of SENDERS.entries()) {
          const theirs = await openDkim(dir, conf, from);
          const ours = await dkimdOutcome(await sendFrom(d.port, from, `C${i}`));
          const key = `${backend} ${subdomains ? "SubDomains" : "-"} ${from}`;
          rows.push(`${key}: OpenDKIM ${theirs} | dkimd ${ours}`);
          const departure = DEPARTURES[key];
          assert.equal(theirs, departure ? departure[0] : want[from], rows.join("\n"));
          assert.equal(ours, departure ? departure[1] : theirs, rows.join("\n") + "\n" + d.log());
        }
      } finally {
        await d.stop();
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

for (const backend of TABLE_BACKENDS) {
  Deno.test(`OpenDKIM and dkimd sign alike from one opendkim.conf with tables in ${backend}`, async () => {
    await compare(backend);
  });
}
