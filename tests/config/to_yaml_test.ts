import assert from "node:assert/strict";
import { loadConfig } from "../../lib/config/load.ts";
import { configToYaml } from "../../lib/config/to_yaml.ts";
import { readYamlConf } from "../../lib/config/yaml_conf.ts";
import { chooseSigners } from "../../lib/policy/signers.ts";
import { KEYS_DIR } from "../helpers/dkim_fixtures.ts";
import { memoryIo } from "../helpers/memory_io.ts";

const SEED = new URL("../testdata/config/seed/", import.meta.url);
const DIR = "/etc/dkimd";

/** The seed's files under /etc/dkimd, with opendkim-genkey's committed key as its key. */
const seedFiles: Record<string, string> = {
  [`${DIR}/keys/datahunter.org/dkim.private`]: await Deno.readTextFile(
    new URL("opendkim_genkey.private", KEYS_DIR),
  ),
};
for (const name of ["opendkim.conf", "key.table", "signing.table", "TrustedHosts"]) {
  const text = await Deno.readTextFile(new URL(name, SEED));
  seedFiles[`${DIR}/${name}`] = text.replaceAll("@DIR@", DIR);
}

Deno.test("configToYaml() writes a YAML configuration that loads to the same settings and tables", async () => {
  const seed = { conf: `${DIR}/opendkim.conf` };
  const conf = await loadConfig(seed.conf, memoryIo(seedFiles));
  const text = configToYaml(conf, { comment: `Converted from ${seed.conf}` });
  assert.match(text, /^# Converted from /);
  assert.ok(
    text.includes(
      "keyTable:\n  datahunter:\n    domain: datahunter.org\n    selector: dkim\n    keyFile: ",
    ),
    text,
  );
  assert.ok(
    text.includes('signingTable:\n  - from: "*@datahunter.org"\n    key: datahunter'),
    text,
  );
  const out = `${DIR}/converted.yaml`;
  const yaml = await loadConfig(out, memoryIo({ ...seedFiles, [out]: text }));
  const strip = (c: Record<string, unknown>) => {
    const copy = { ...c };
    for (const k of ["keyTable", "signingTable", "internalHosts", "externalIgnoreList"]) {
      delete copy[k];
    }
    return copy;
  };
  assert.deepEqual(strip({ ...yaml.config }), strip({ ...conf.config }));
  assert.deepEqual(
    yaml.keyTable?.entries.map((e) => [e.name, e.domain, e.selector, e.source, e.key?.bits]),
    conf.keyTable?.entries.map((e) => [e.name, e.domain, e.selector, e.source, e.key?.bits]),
  );
  assert.deepEqual(
    yaml.signingTable?.rules.map((r) => [r.pattern, r.keyName, r.signer]),
    conf.signingTable?.rules.map((r) => [r.pattern, r.keyName, r.signer]),
  );
  assert.equal(yaml.signingTable?.patterns, true);
  assert.deepEqual(
    yaml.hosts.internal.rules.map((r) => r.text),
    conf.hosts.internal.rules.map((r) => r.text),
  );
  const a = await chooseSigners(yaml, "joe", "datahunter.org");
  assert.equal(a.signers[0].selector, "dkim");
});

/** `text` as /etc/opendkim.conf, with `files` beside it, converted by configToYaml(). */
async function converted(
  text: string,
  files: Record<string, string> = {},
  options?: Parameters<typeof configToYaml>[1],
): Promise<string> {
  const io = memoryIo({ "/etc/opendkim.conf": text, ...files });
  return configToYaml(await loadConfig("/etc/opendkim.conf", io), options);
}

Deno.test("configToYaml() writes only the settings the source set, how the daemon runs first", async () => {
  const yaml = await converted(
    "DNSTimeout 10\nX-Header yes\nSyslog yes\nUMask 007\nMode v\nSocket inet:8891@localhost\n",
  );
  assert.equal(
    yaml,
    'mode: v\nsocket: inet:8891@127.0.0.1\numask: "0007"\nsyslog: true\nsoftwareHeader: true\n' +
      "dnsTimeout: 10\n",
  );
  assert.equal(await converted("Mode v\n"), "mode: v\n");
});

Deno.test("configToYaml() writes every On-* action once any is set", async () => {
  const yaml = await converted("Mode v\nOn-BadSignature r\n");
  const { config } = readYamlConf(yaml, "dkimd.yaml");
  assert.deepEqual(
    Object.keys(config.actions).map((k) => yaml.includes(`\n  ${k}: `)),
    Object.keys(config.actions).map(() => true),
  );
  assert.equal(config.actions.badSignature, "reject");
  assert.equal(config.actions.dnsError, "tempfail");
  assert.doesNotMatch(await converted("Mode v\n"), /actions/);
});

Deno.test("configToYaml() writes each data set inline in its YAML form, or as its source", async () => {
  const files = {
    "/etc/dkimd/key.table": "k1 example.com:s1:/etc/dkimd/k1.private\n" +
      "k2 example.org:s2:/etc/dkimd/k2.private:ed25519-sha256\n",
    "/etc/dkimd/signing.table": "*@example.com k1\njoe@example.org k2:joe@example.org\n",
    "/etc/dkimd/macros": "daemon_name MSA|ORIG\nauth_authen\n",
    "/etc/dkimd/k1.private": seedFiles[`${DIR}/keys/datahunter.org/dkim.private`],
    "/etc/dkimd/k2.private": await Deno.readTextFile(new URL("ed25519.pem", KEYS_DIR)),
  };
  const conf = "Mode sv\nKeyTable /etc/dkimd/key.table\nSigningTable /etc/dkimd/signing.table\n" +
    "MacroList /etc/dkimd/macros\nInternalHosts 10.0.0.0/8, mail.example.com\n";
  const yaml = await converted(conf, files);
  assert.match(
    yaml,
    /keyTable:\n {2}k1:\n {4}domain: example\.com\n {4}selector: s1\n {4}keyFile: \/etc\/dkimd\/k1\.private\n {2}k2:\n {4}domain: example\.org\n {4}selector: s2\n {4}keyFile: \/etc\/dkimd\/k2\.private\n {4}algorithm: ed25519-sha256\n/,
  );
  // A SigningTable without refile: has no patterns, so it says so.
  assert.match(
    yaml,
    /signingTable:\n {2}patterns: false\n {2}rules:\n {4}- from: "\*@example\.com"\n {6}key: k1\n {4}- from: joe@example\.org\n {6}key: k2\n {6}signer: joe@example\.org\n/,
  );
  assert.match(
    yaml,
    /macroList:\n {2}daemon_name:\n {4}- MSA\n {4}- ORIG\n {2}auth_authen: null\n/,
  );
  assert.match(yaml, /internalHosts:\n {2}- 10\.0\.0\.0\/8\n {2}- mail\.example\.com\n/);
  const sources = await converted(conf, files, { inlineTables: false, comment: "a\nb" });
  assert.match(sources, /^# a\n# b\n/);
  assert.match(sources, /\nkeyTable: \/etc\/dkimd\/key\.table\n/);
  assert.match(sources, /\nsigningTable: \/etc\/dkimd\/signing\.table\n/);
  assert.match(sources, /\ninternalHosts: csl:10\.0\.0\.0\/8,mail\.example\.com\n/);
  // Either form reads back to the same tables.
  for (const text of [yaml, sources]) {
    const loaded = await loadConfig(
      "/etc/dkimd/dkimd.yaml",
      memoryIo({ ...files, "/etc/dkimd/dkimd.yaml": text }),
    );
    assert.deepEqual(loaded.keyTable?.entries.map((e) => [e.name, e.selector, e.key?.type]), [
      ["k1", "s1", "rsa"],
      ["k2", "s2", "ed25519"],
    ]);
    assert.deepEqual(loaded.signingTable?.rules.map((r) => [r.pattern, r.keyName, r.signer]), [
      ["*@example.com", "k1", undefined],
      ["joe@example.org", "k2", "joe@example.org"],
    ]);
  }
});

Deno.test("configToYaml() writes AuthorizedSigners as a map of logins that reads back to the same set", async () => {
  const files = {
    "/etc/dkimd/authorized_signers": "*  %\njoe@example.com  example.com, .example.com\n" +
      "bot@example.com\nJOE@example.com  example.net\n",
  };
  const conf = "Mode v\nAuthorizedSigners /etc/dkimd/authorized_signers\n" +
    "On-UnauthorizedSigner reject\n";
  const yaml = await converted(conf, files);
  assert.match(
    yaml,
    /authorizedSigners:\n {2}"\*":\n {4}- "%"\n {2}joe@example\.com:\n {4}- example\.com\n {4}- \.example\.com\n {2}bot@example\.com: \[\]\n/,
  );
  assert.match(yaml, /\nonUnauthorizedSigner: reject\n/);
  const loaded = await loadConfig(
    "/etc/dkimd/dkimd.yaml",
    memoryIo({ ...files, "/etc/dkimd/dkimd.yaml": yaml }),
  );
  assert.equal(loaded.config.onUnauthorizedSigner, "reject");
  const set = loaded.authorizedSigners!;
  assert.deepEqual(
    set.rules.map((r) => [r.login, r.grants.map((g) => g.text)]),
    [["*", ["%"]], ["joe@example.com", ["example.com", ".example.com"]], ["bot@example.com", []]],
  );
  // With --files, an inline list whose items are separated by commas stays a YAML map, since
  // csl: would read its commas as separating entries.
  const yamlSource = "mode: v\nauthorizedSigners:\n  joe: [example.com, example.net]\n";
  const asFiles = configToYaml(
    await loadConfig("/etc/dkimd/in.yaml", memoryIo({ "/etc/dkimd/in.yaml": yamlSource })),
    { inlineTables: false },
  );
  assert.match(asFiles, /authorizedSigners:\n {2}joe:\n {4}- example\.com\n {4}- example\.net\n/);
  // A refile: set keeps its file: YAML's map has no wildcard logins.
  const refile = await converted(
    "Mode v\nAuthorizedSigners refile:/etc/dkimd/authorized_signers\n",
    files,
  );
  assert.match(refile, /\nauthorizedSigners: refile:\/etc\/dkimd\/authorized_signers\n/);
});
