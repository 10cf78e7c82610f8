import assert from "node:assert/strict";
import fc from "fast-check";
import { ConfigErrors } from "../../lib/config/config_error.ts";
import { readOpendkimConf } from "../../lib/config/opendkim_conf.ts";
import type { Config } from "../../lib/config/schema.ts";
import { readYamlConf, YAML_KEYS } from "../../lib/config/yaml_conf.ts";
import { SourceError } from "../../lib/policy/origin.ts";
import { assertOnlySourceErrors } from "../helpers/source_errors.ts";

const SEED = new URL("../testdata/config/seed/", import.meta.url);

Deno.test("readYamlConf() of the seed's YAML equals readOpendkimConf() of its opendkim.conf", async () => {
  const text = async (name: string) =>
    (await Deno.readTextFile(new URL(name, SEED))).replaceAll("@DIR@", "/etc/opendkim");
  const conf = readOpendkimConf(await text("opendkim.conf"), "opendkim.conf");
  const yaml = readYamlConf(await text("dkimd.yaml"), "dkimd.yaml");
  assert.deepEqual(yaml.config, conf.config);
  assert.deepEqual(yaml.warnings, []);
  assert.deepEqual(conf.warnings, []);
});

Deno.test("readYamlConf() of an empty document gives the defaults", () => {
  for (const text of ["", "# nothing\n", "---\n"]) {
    assert.deepEqual(readYamlConf(text, "d.yaml").config, readOpendkimConf("", "c").config);
  }
});

interface Case {
  yaml: string;
  get: (c: Config) => unknown;
  want: unknown;
}

const cases: Case[] = [
  { yaml: "syslog: true", get: (c) => c.syslog, want: true },
  { yaml: "syslog: yes", get: (c) => c.syslog, want: true },
  { yaml: 'syslog: "no"', get: (c) => c.syslog, want: false },
  { yaml: "dnsTimeout: 7", get: (c) => c.dnsTimeout, want: 7 },
  { yaml: "dnsTimeout: 7s", get: (c) => c.dnsTimeout, want: 7 },
  { yaml: "milterIdleTimeout: 2h", get: (c) => c.milterIdleTimeout, want: 7200 },
  { yaml: "milterShutdownTimeout: 1m", get: (c) => c.milterShutdownTimeout, want: 60 },
  { yaml: "milterMaxConnections: 64", get: (c) => c.milterMaxConnections, want: 64 },
  { yaml: "signatureTtl: 7d", get: (c) => c.signatureTtl, want: 604800 },
  { yaml: "clockDrift: 5m", get: (c) => c.clockDrift, want: 300 },
  { yaml: "maximumHeaders: 0x10000", get: (c) => c.maximumHeaders, want: 65536 },
  { yaml: "umask: 002", get: (c) => c.umask, want: 0o002 },
  { yaml: 'umask: "0027"', get: (c) => c.umask, want: 0o027 },
  { yaml: "umask: 0o22", get: (c) => c.umask, want: 0o022 },
  {
    yaml: "userId: opendkim:mail",
    get: (c) => c.userId,
    want: { user: "opendkim", group: "mail" },
  },
  { yaml: "userId: {user: opendkim}", get: (c) => c.userId, want: { user: "opendkim" } },
  {
    yaml: "canonicalization: relaxed",
    get: (c) => c.canonicalization,
    want: { header: "relaxed", body: "simple" },
  },
  {
    yaml: "canonicalization: {header: relaxed}",
    get: (c) => c.canonicalization,
    want: { header: "relaxed", body: "simple" },
  },
  {
    yaml: 'nameservers: [127.0.0.1, "[::1]:5353"]',
    get: (c) => c.nameservers?.map((n) => n.port),
    want: [53, 5353],
  },
  { yaml: "nameservers: 192.0.2.53@5353", get: (c) => c.nameservers?.[0].port, want: 5353 },
  {
    yaml: "actions: {default: r, badSignature: accept}",
    get: (c) => [c.actions.noSignature, c.actions.badSignature],
    want: ["reject", "accept"],
  },
  { yaml: "authservId: HOSTNAME", get: (c) => c.authservId, want: { kind: "hostname" } },
  { yaml: "partialBodyResult: pass", get: (c) => c.partialBodyResult, want: "pass" },
  { yaml: "strictHeaders: true", get: (c) => c.strictHeaders, want: true },
  { yaml: "requiredHeaders: yes", get: (c) => c.requiredHeaders, want: true },
  {
    yaml: "mustBeSigned: [Reply-To, List-Unsubscribe]",
    get: (c) => c.mustBeSigned,
    want: {
      kind: "inline",
      entries: [{ key: "Reply-To" }, { key: "List-Unsubscribe" }],
      patterns: false,
    },
  },
  {
    yaml: "socket: local:/run/dkimd/dkimd.sock",
    get: (c) => c.socket,
    want: { kind: "unix", path: "/run/dkimd/dkimd.sock" },
  },
  {
    yaml: "autoRestartRate: 10/1h",
    get: (c) => c.autoRestartRate,
    want: { count: 10, seconds: 3600 },
  },
  {
    yaml: "internalHosts: /etc/opendkim/TrustedHosts",
    get: (c) => c.internalHosts,
    want: { kind: "file", path: "/etc/opendkim/TrustedHosts" },
  },
  {
    yaml: 'internalHosts: [127.0.0.1, "::1", "[2001:db8::/32]", .example.com]',
    get: (c) => c.internalHosts,
    want: {
      kind: "inline",
      entries: [{ key: "127.0.0.1" }, { key: "::1" }, { key: "[2001:db8::/32]" }, {
        key: ".example.com",
      }],
      patterns: false,
    },
  },
  {
    yaml: 'testDnsData:\n  - s._domainkey.example.com: "v=DKIM1; p="',
    get: (c) => c.testDnsData,
    want: {
      kind: "inline",
      entries: [{ key: "s._domainkey.example.com", value: "v=DKIM1; p=" }],
      patterns: false,
    },
  },
  {
    yaml:
      'keyTable:\n  mail: {domain: example.com, selector: mail, keyFile: /k/mail.private}\n  ed: {domain: "%", selector: ed, key: "MC4CAQAwBQYDK2VwBCIEIA==", algorithm: ed25519-sha256}\n  old: example.org:s:/k/old.private',
    get: (c) => c.keyTable,
    want: {
      kind: "inline",
      entries: [
        { key: "mail", value: "example.com:mail:/k/mail.private" },
        { key: "ed", value: "%:ed:MC4CAQAwBQYDK2VwBCIEIA==:ed25519-sha256" },
        { key: "old", value: "example.org:s:/k/old.private" },
      ],
      patterns: false,
    },
  },
  {
    yaml:
      'keyTable: /k\nsigningTable:\n  - {from: "*@example.com", key: mail}\n  - {from: "*", key: "%", signer: "@%"}',
    get: (c) => c.signingTable,
    want: {
      kind: "inline",
      entries: [{ key: "*@example.com", value: "mail" }, { key: "*", value: "%:@%" }],
      patterns: true,
    },
  },
  {
    yaml: "keyTable: /k\nsigningTable: {patterns: false, rules: [{from: example.com, key: mail}]}",
    get: (c) => c.signingTable,
    want: { kind: "inline", entries: [{ key: "example.com", value: "mail" }], patterns: false },
  },
  {
    yaml:
      'authorizedSigners:\n  "*": "%"\n  joe@example.com: [example.com, ".example.com"]\n  bot: null',
    get: (c) => c.authorizedSigners,
    want: {
      kind: "inline",
      entries: [
        { key: "*", value: "%" },
        { key: "joe@example.com", value: "example.com, .example.com" },
        { key: "bot" },
      ],
      patterns: false,
    },
  },
  {
    yaml: 'authorizedSigners: [{"*": "%"}, {joe: "example.com, example.net"}]',
    get: (c) => c.authorizedSigners,
    want: {
      kind: "inline",
      entries: [{ key: "*", value: "%" }, { key: "joe", value: "example.com, example.net" }],
      patterns: false,
    },
  },
  {
    yaml: "authorizedSigners: refile:/etc/dkimd/authorized_signers",
    get: (c) => c.authorizedSigners,
    want: { kind: "refile", path: "/etc/dkimd/authorized_signers" },
  },
  { yaml: "onUnauthorizedSigner: reject", get: (c) => c.onUnauthorizedSigner, want: "reject" },
  {
    yaml: "macroList: {daemon_name: [MSA, ORIG], auth_authen: null}",
    get: (c) => c.macroList,
    want: {
      kind: "inline",
      entries: [{ key: "daemon_name", value: "MSA|ORIG" }, { key: "auth_authen" }],
      patterns: false,
    },
  },
];

Deno.test("readYamlConf() reads each value form", () => {
  for (const c of cases) {
    const { config } = readYamlConf(`mode: v\n${c.yaml}\n`, "d.yaml");
    assert.deepEqual(c.get(config), c.want, c.yaml);
  }
});

Deno.test("readYamlConf() records the line of each inline entry", () => {
  const { entryOrigins } = readYamlConf(
    "mode: v\ninternalHosts:\n  - 127.0.0.1\n  - localhost\n",
    "d.yaml",
  );
  assert.deepEqual(entryOrigins?.internalHosts, [
    { file: "d.yaml", line: 3, path: "internalHosts[0]" },
    { file: "d.yaml", line: 4, path: "internalHosts[1]" },
  ]);
});

const errors: [string, RegExp][] = [
  [
    "mode: v\nkeytabel: /k",
    /^Unknown setting "keytabel" at d\.yaml:2 \(keytabel\): unknown setting; did you mean "keyTable"\?$/,
  ],
  ["mode: v\nKeyTable: /k", /did you mean "keyTable"\?/],
  [
    "mode: [s]",
    /^Cannot parse "mode" at d\.yaml:1 \(mode\): expected a value for "mode", not a list$/,
  ],
  ["mode: sx", /^Cannot parse "mode" at d\.yaml:1 \(mode\): unknown mode "x"/],
  [
    "mode: v\nactions: {badSig: reject}",
    /^Unknown action "badSig" at d\.yaml:2 \(actions\.badSig\): unknown action; did you mean "badSignature"\?$/,
  ],
  [
    "mode: v\nactions:\n  noSignature: bounce",
    /^Cannot parse "actions\.noSignature" at d\.yaml:3 \(actions\.noSignature\): unknown action "bounce"/,
  ],
  [
    "mode: v\ncanonicalization:\n  header: loose",
    /^Cannot parse "canonicalization" at d\.yaml:3 \(canonicalization\): unknown canonicalization "loose"/,
  ],
  [
    "mode: v\ncanonicalization: {header: relaxed, bdy: simple}",
    /d\.yaml:2 \(canonicalization\.bdy\): unknown key "bdy"; did you mean "body"\?/,
  ],
  ["mode: v\ndnsTimeout: soon", /d\.yaml:2 \(dnsTimeout\): expected seconds/],
  [
    "mode: v\ndnsTimeout: 2h",
    /d\.yaml:2 \(dnsTimeout\): expected a number from 0 to 3600, not 7200/,
  ],
  ["mode: v\nsyslog: maybe", /d\.yaml:2 \(syslog\): expected a Boolean/],
  [
    "mode: v\nauthorizedSigners:\n  joe: {domain: example.com}",
    /d\.yaml:3 \(authorizedSigners\.joe\): expected an address or domain, or a list of them/,
  ],
  [
    "mode: v\nonUnauthorizedSigner: quarantine",
    /d\.yaml:2 \(onUnauthorizedSigner\): unknown action "quarantine" \(expected accept, reject, tempfail or discard/,
  ],
  [
    "mode: v\nkeyTable:\n  mail:\n    domain: example.com\n    selector: mail\n    keyfile: /k",
    /d\.yaml:6 \(keyTable\.mail\.keyfile\): unknown key "keyfile"; did you mean "keyFile"\?/,
  ],
  [
    "mode: v\nkeyTable:\n  mail: {domain: example.com, keyFile: /k}",
    /d\.yaml:3 \(keyTable\.mail\): "selector" is missing/,
  ],
  [
    "mode: v\nkeyTable:\n  mail: {domain: example.com, selector: s, keyFile: keys/k.private}",
    /d\.yaml:3 \(keyTable\.mail\.keyFile\): keyFile "keys\/k\.private" must start with "\/"/,
  ],
  [
    "mode: v\nkeyTable:\n  mail: {domain: example.com, selector: s, keyFile: /k, key: AAAA}",
    /give "keyFile" or "key", not both/,
  ],
  ['mode: v\nsigningTable:\n  - {from: "*"}', /d\.yaml:3 \(signingTable\[0\]\): "key" is missing/],
  [
    "mode: v\ninternalHosts: lua:/etc/hosts.lua",
    /"internalHosts" at d\.yaml:2 \(internalHosts\): data set type "lua" is not supported/,
  ],
  [
    "mode: v\nsignHeaders: ldap://x/",
    /d\.yaml:2 \(signHeaders\): a database \("dsn:" or an LDAP URI\) is supported only for/,
  ],
  ["mode: v\ninternalHosts: []", /d\.yaml:2 \(internalHosts\): the list is empty/],
  [
    "mode: v\nnameservers: [ns.example.com]",
    /d\.yaml:2 \(nameservers\): .*"ns\.example\.com" is not an IPv4 or IPv6 address/,
  ],
  ["mode: v\nsyslog: yes\nsyslog: no", /^Cannot parse YAML at d\.yaml:3: Map keys must be unique/],
  ["mode: v\nsyslog: yes\n\tlogWhy: yes", /^Cannot parse YAML at d\.yaml:3: /],
  ["- just\n- a list", /^Cannot read configuration at d\.yaml:1: the YAML document must be a map/],
  [
    "mode: sv\nsigningTable: refile:/s",
    /"SigningTable" at d\.yaml:2 \(signingTable\): requires "KeyTable"/,
  ],
  ["anchor: &a v\nmode: *a", /YAML aliases/],
];

Deno.test("readYamlConf() errors name the YAML path and line", () => {
  for (const [yaml, re] of errors) {
    assert.throws(() => readYamlConf(`${yaml}\n`, "d.yaml"), (e: unknown) => {
      const list = e instanceof ConfigErrors ? e.errors : [e];
      assert.ok(list.every((x) => x instanceof SourceError), `${yaml}: ${e}`);
      assert.ok(
        list.some((x) => re.test((x as Error).message)),
        `${yaml}\n${list.map((x) => (x as Error).message).join("\n")}`,
      );
      return true;
    });
  }
});

Deno.test("YAML_KEYS are the Config field names", () => {
  for (
    const k of ["mode", "keyTable", "signingTable", "internalHosts", "actions", "userId", "umask"]
  ) {
    assert.ok(YAML_KEYS.includes(k), k);
  }
  assert.ok(!YAML_KEYS.includes("onDefault"));
  assert.ok(!YAML_KEYS.includes("xHeader"));
});

// Every reader of configuration text either returns or throws a typed error naming a place,
// whatever the bytes.
Deno.test("readYamlConf() returns or throws a SourceError for any text", () => {
  const yamlish = fc.array(
    fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.tuple(
        fc.constantFrom(
          "mode",
          "keyTable",
          "signingTable",
          "internalHosts",
          "actions",
          "umask",
          "x",
        ),
        fc.string({ maxLength: 30 }),
      )
        .map(([k, v]) => `${k}: ${v}`),
      fc.constantFrom("  - a", "  b: [1, 2", "- x", "{", "&a x", "*a", "? k", "---"),
    ),
    { maxLength: 12 },
  );
  fc.assert(
    fc.property(
      yamlish,
      (lines) => assertOnlySourceErrors(() => readYamlConf(lines.join("\n"), "d.yaml")),
    ),
    { numRuns: 300 },
  );
});
