/**
 * The LDAP back end under the `start` task's permissions (SERVICE_DENO_FLAGS, kept equal to
 * deno.json's by a test): a limited --allow-env, --no-prompt, no --allow-ffi. A client that read
 * an environment variable (NODE_DEBUG, LDAP*, NODE_EXTRA_CA_CERTS...) would throw NotCapable
 * here, in service, and not under `deno test --allow-all`.
 */
import assert from "node:assert/strict";
import { SERVICE_DENO_FLAGS } from "../../lib/ops/self_command.ts";
import { dkimdEnv } from "../helpers/dkimd_env.ts";
import {
  SLAPD_BIND_DN,
  SLAPD_BIND_PASSWORD,
  SLAPD_SUFFIX,
  startSlapd,
} from "../helpers/slapd_server.ts";

const CONFIG = new URL("../../deno.json", import.meta.url).pathname;
const BACKEND = new URL("../../lib/tables/ldap_backend.ts", import.meta.url).href;
const URI = new URL("../../lib/tables/ldap_uri.ts", import.meta.url).href;

const ENTRY = `dn: cn=k1,ou=keys,${SLAPD_SUFFIX}
objectClass: applicationProcess
objectClass: dkimEntry
cn: k1
dkimKeyName: k1
dkimDomain: example.org
dkimSelector: sel1
dkimKey: /keys/k1.pem
`;

Deno.test("openLdap() works under the start task's permissions: plain, StartTLS, ldaps, ldapi", async () => {
  const slapd = await startSlapd({ tls: true, ldif: ENTRY });
  const dir = await Deno.makeTempDir({ prefix: "dkimd-ldap-flags-" });
  try {
    const script = `${dir}/lookup.ts`;
    await Deno.writeTextFile(
      script,
      `import { openLdap } from ${JSON.stringify(BACKEND)};
import { parseLdapUri } from ${JSON.stringify(URI)};
const [urls, ca] = JSON.parse(await Deno.readTextFile(Deno.args[0]));
const out = [];
for (const [url, useTls] of urls) {
  const b = openLdap(
    parseLdapUri(url + "/ou=keys,${SLAPD_SUFFIX}?dkimDomain,dkimSelector,dkimKey?one?(dkimKeyName=$d)"),
    { queryTimeoutMs: 3000, connectTimeoutMs: 3000, bindDn: ${JSON.stringify(SLAPD_BIND_DN)},
      bindPassword: ${JSON.stringify(SLAPD_BIND_PASSWORD)}, useTls, tlsCa: ca },
  );
  out.push(await b.query(["k1", "*"], AbortSignal.timeout(5000)));
  await b.close();
}
console.log(JSON.stringify(out));
`,
    );
    const input = `${dir}/input.json`;
    await Deno.writeTextFile(
      input,
      JSON.stringify([
        [[slapd.url, false], [slapd.url, true], [slapd.ldapsUrl, false], [slapd.ldapiUrl, false]],
        slapd.caPem,
      ]),
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...SERVICE_DENO_FLAGS, `--config=${CONFIG}`, "--quiet", script, input],
      stdout: "piped",
      stderr: "piped",
      clearEnv: true,
      env: dkimdEnv({ NO_COLOR: "1", NODE_DEBUG: "ldapts" }),
      signal: AbortSignal.timeout(60_000),
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    const row = ["example.org", "sel1", "/keys/k1.pem"];
    assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), [
      [row, null],
      [row, null],
      [row, null],
      [row, null],
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await slapd.close();
  }
});
