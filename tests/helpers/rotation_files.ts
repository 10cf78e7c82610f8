/**
 * The files a `dkimd rotate` test starts from: the current key `old` of `domain` in
 * DIR/keys/old.private, a KeyTable entry `main` naming it, a SigningTable signing all of
 * `domain` with it, and the TSIG key `dkimd-rotate` (hmac-sha256, `secret`) in BIND's key-file
 * syntax, private files 0600 as dkimd requires.
 *
 * @module
 */

/** Writes DIR/keys/old.private, key.table, signing.table and update.key (see the module doc). */
export async function writeRotationFiles(
  dir: string,
  domain: string,
  oldKey: { toPem(): Promise<string> },
  secret: string,
): Promise<void> {
  await Deno.mkdir(`${dir}/keys`, { mode: 0o700 });
  await Deno.writeTextFile(`${dir}/keys/old.private`, await oldKey.toPem(), { mode: 0o600 });
  await Deno.writeTextFile(`${dir}/key.table`, `main ${domain}:old:${dir}/keys/old.private\n`);
  await Deno.writeTextFile(`${dir}/signing.table`, `*@${domain} main\n`);
  await Deno.writeTextFile(
    `${dir}/update.key`,
    `key "dkimd-rotate" {\n\talgorithm hmac-sha256;\n\tsecret "${secret}";\n};\n`,
    { mode: 0o600 },
  );
}
