/**
 * A throwaway TLS certificate for the test database servers, so tests can ask a back end to
 * require TLS (the clients do not verify the chain, as libpq's sslmode=require does not).
 *
 * @module
 */
import { openssl } from "./openssl.ts";

/** Where the certificate and its key were written. */
export interface SelfSignedCert {
  /** The PEM certificate. */
  readonly certFile: string;
  /** The PEM private key (mode 0600, owned by `uid` when given). */
  readonly keyFile: string;
}

/**
 * Writes a self-signed P-256 certificate for 127.0.0.1 into `dir` (EC: generated in
 * milliseconds, where RSA would cost a loaded CI machine seconds), owned by `uid`:`gid` so a
 * server that checks its key's owner and mode (PostgreSQL does) accepts it.
 */
export async function writeSelfSignedCert(
  dir: string,
  owner?: { uid: number; gid: number },
): Promise<SelfSignedCert> {
  const certFile = `${dir}/server.crt`;
  const keyFile = `${dir}/server.key`;
  const run = await openssl([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    keyFile,
    "-out",
    certFile,
    "-days",
    "2",
    "-subj",
    "/CN=127.0.0.1",
  ]);
  if (run.code !== 0) throw new Error(`openssl req failed: ${run.text}`);
  await Deno.chmod(keyFile, 0o600);
  if (owner) {
    await Deno.chown(keyFile, owner.uid, owner.gid);
    await Deno.chown(certFile, owner.uid, owner.gid);
  }
  return { certFile, keyFile };
}
