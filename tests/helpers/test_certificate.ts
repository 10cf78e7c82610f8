/**
 * A throwaway certificate authority and a server certificate it issued, for the test database
 * servers: tests can require TLS without checking the certificate (libpq's sslmode=require),
 * and check it against the CA (verify-full), which needs the server's address in the
 * certificate: the DSNs name 127.0.0.1, and a host name check of an address matches only an
 * IP subjectAltName, never the common name (RFC 6125 §6.2.1, Node's checkServerIdentity).
 *
 * @module
 */
import { openssl } from "./openssl.ts";

/** Where the certificates and the server's key were written. */
export interface TestCertificate {
  /** The CA certificate (PEM): what a client given it as its trust anchor accepts. */
  readonly caFile: string;
  /** The server's PEM certificate, issued by the CA for 127.0.0.1 and localhost. */
  readonly certFile: string;
  /** The server's PEM private key (mode 0600, owned by `owner` when given). */
  readonly keyFile: string;
}

/** The server certificate's names: the address the tests' DSNs use, and the loopback name. */
const SERVER_NAMES: readonly string[] = ["IP:127.0.0.1", "DNS:localhost"];

/**
 * Writes a CA and a server certificate it issued for 127.0.0.1 into `dir` (P-256 keys:
 * generated in milliseconds, where RSA would cost a loaded CI machine seconds); the server's
 * files are owned by `owner` so a server that checks its key's owner and mode (PostgreSQL
 * does) accepts them. The CA's key is deleted: nothing else is ever issued. `names` replaces the
 * subjectAltName entries (OpenSSL's `IP:...`, `DNS:...`), for a test of the client's name check.
 */
export async function writeTestCertificate(
  dir: string,
  owner?: { uid: number; gid: number },
  names: readonly string[] = SERVER_NAMES,
): Promise<TestCertificate> {
  const caFile = `${dir}/ca.crt`;
  const caKey = `${dir}/ca.key`;
  const certFile = `${dir}/server.crt`;
  const keyFile = `${dir}/server.key`;
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  const ca = await openssl([
    "req",
    "-x509",
    ...ec,
    "-keyout",
    caKey,
    "-out",
    caFile,
    "-days",
    "2",
    "-subj",
    "/CN=dkimd test CA",
  ]); // deno-fmt-ignore
  if (ca.code !== 0) throw new Error(`openssl req (CA) failed: ${ca.text}`);
  // OpenSSL 3's `req -x509 -CA` issues a certificate signed by the CA in one step.
  const server = await openssl([
    "req",
    "-x509",
    ...ec,
    "-keyout",
    keyFile,
    "-out",
    certFile,
    "-days",
    "2",
    "-subj",
    "/CN=127.0.0.1",
    "-CA",
    caFile,
    "-CAkey",
    caKey,
    "-addext",
    `subjectAltName=${names.join(",")}`,
    "-addext",
    "basicConstraints=critical,CA:FALSE",
  ]); // deno-fmt-ignore
  if (server.code !== 0) throw new Error(`openssl req (server) failed: ${server.text}`);
  await Deno.remove(caKey);
  await Deno.chmod(keyFile, 0o600);
  if (owner) {
    await Deno.chown(keyFile, owner.uid, owner.gid);
    await Deno.chown(certFile, owner.uid, owner.gid);
  }
  return { caFile, certFile, keyFile };
}
