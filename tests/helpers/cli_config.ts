/**
 * The seed's configuration in a fresh temporary directory, for the command-line tests that read
 * one (check-config, explain, config convert): opendkim.conf signing datahunter.org with a
 * 2048-bit RSA key, and the seed's TrustedHosts as both InternalHosts and ExternalIgnoreList.
 *
 * @module
 */
import { KEYS_DIR } from "./dkim_fixtures.ts";

/**
 * Writes opendkim.conf, key.table, signing.table, TrustedHosts and dkim.private (mode 0600) to a
 * new temporary directory; resolves to the directory, which the caller removes.
 */
export async function writeCliConfig(): Promise<string> {
  const dir = await Deno.makeTempDir();
  await Deno.copyFile(new URL("rsa2048_pkcs8.pem", KEYS_DIR), `${dir}/dkim.private`);
  await Deno.chmod(`${dir}/dkim.private`, 0o600);
  await Deno.writeTextFile(
    `${dir}/key.table`,
    `datahunter datahunter.org:dkim:${dir}/dkim.private\n`,
  );
  await Deno.writeTextFile(`${dir}/signing.table`, "*@datahunter.org datahunter\n");
  await Deno.writeTextFile(`${dir}/TrustedHosts`, "127.0.0.1\nlocalhost\n10.1.0.0/16\n");
  await Deno.writeTextFile(
    `${dir}/opendkim.conf`,
    `Mode sv\nSocket inet:8891@localhost\nCanonicalization relaxed/relaxed\nKeyTable ${dir}/key.table\n` +
      `SigningTable refile:${dir}/signing.table\nInternalHosts ${dir}/TrustedHosts\n` +
      `ExternalIgnoreList ${dir}/TrustedHosts\nSoftwareHeader yes\n`,
  );
  return dir;
}
