import assert from "node:assert/strict";
import { ConfigError, ConfigErrors } from "../../lib/config/config_error.ts";
import { denoLoadIo, loadConfig, type LoadIo } from "../../lib/config/load.ts";
import { configToYaml } from "../../lib/config/to_yaml.ts";
import { UserDb } from "../../lib/config/user_db.ts";
import { importPrivateKey, type SigningKey } from "../../lib/crypto/private_key.ts";
import { SourceError } from "../../lib/policy/origin.ts";
import { decide } from "../../lib/filter/decide.ts";
import { chooseSigners } from "../../lib/policy/signers.ts";
import { memoryIo } from "../helpers/memory_io.ts";
import { makeSharedTempDir } from "../helpers/shared_temp_dir.ts";

const SEED = new URL("../testdata/config/seed/", import.meta.url);
const isRoot = Deno.uid() === 0;

/** The seed key's group "opendkim": a gid of the tests' own, not the machine's. */
const OPENDKIM_GID = 64_117;

/**
 * An account database of the tests' own, so that no result depends on the machine's
 * /etc/passwd and /etc/group: root; user opendkim (the seed's UserID) and group opendkim, with
 * `members` in that group besides (its gid is `gid`); postfix, as Debian and most how-tos add it
 * to group opendkim for the socket.
 */
function accounts(members: readonly string[] = [], gid = OPENDKIM_GID): UserDb {
  return UserDb.parse(
    "root:x:0:0:root:/root:/bin/bash\n" +
      `opendkim:x:64110:${gid}::/run/opendkim:/usr/sbin/nologin\n` +
      "postfix:x:64105:64105::/var/spool/postfix:/usr/sbin/nologin\n" +
      "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    `root:x:0:\nopendkim:x:${gid}:${members.join(",")}\npostfix:x:64105:\n` +
      "nogroup:x:65534:\n",
  );
}

/** The real file system and key importer, with the account database of {@link accounts}. */
function ioWith(db: UserDb): LoadIo<SigningKey> {
  return { ...denoLoadIo(importPrivateKey), accounts: () => Promise.resolve(db) };
}

const io = ioWith(accounts());

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** Generates an RSA key as the seed does: opendkim-genkey -s SELECTOR -d DOMAIN. */
async function genkey(dir: string, selector: string, domain: string): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  // The mode outright: under umask 000 the directory would be world-writable, and unsafe.
  await Deno.chmod(dir, 0o755);
  await run("opendkim-genkey", ["-D", dir, "-s", selector, "-d", domain]);
  return `${dir}/${selector}.private`;
}

/** Generates an Ed25519 key with openssl, as PKCS#8 PEM. */
async function edkey(path: string): Promise<string> {
  await run("openssl", ["genpkey", "-algorithm", "ed25519", "-out", path]);
  await Deno.chmod(path, 0o600);
  return path;
}

/** Makes the seed's files under a fresh directory, with a real key owned as the seed says. */
async function makeSeed(): Promise<{ dir: string; conf: string; yaml: string; key: string }> {
  const dir = await Deno.makeTempDir({ prefix: "dkimd-seed-" });
  for (
    const name of ["opendkim.conf", "key.table", "signing.table", "TrustedHosts", "dkimd.yaml"]
  ) {
    const text = await Deno.readTextFile(new URL(name, SEED));
    await Deno.writeTextFile(`${dir}/${name}`, text.replaceAll("@DIR@", dir));
  }
  const key = await genkey(`${dir}/keys/datahunter.org`, "dkim", "datahunter.org");
  // chown root.opendkim dkim.private; chmod 640 dkim.private (not root: the user's own group)
  if (isRoot) await Deno.chown(key, 0, OPENDKIM_GID);
  await Deno.chmod(key, 0o640);
  return { dir, conf: `${dir}/opendkim.conf`, yaml: `${dir}/dkimd.yaml`, key };
}

async function withSeed(fn: (seed: Awaited<ReturnType<typeof makeSeed>>) => Promise<void>) {
  const seed = await makeSeed();
  try {
    await fn(seed);
  } finally {
    await Deno.remove(seed.dir, { recursive: true });
  }
}

Deno.test("loadConfig() loads the seed's opendkim.conf with its opendkim-genkey key", async () => {
  await withSeed(async (seed) => {
    const loaded = await loadConfig(seed.conf, io);
    assert.deepEqual(loaded.warnings, []);
    const { config } = loaded;
    assert.deepEqual(config.mode, { sign: true, verify: true });
    assert.deepEqual(config.socket, { kind: "inet", host: "127.0.0.1", port: 8891 });
    assert.deepEqual(config.canonicalization, { header: "relaxed", body: "relaxed" });
    assert.equal(config.umask, 0o002);
    assert.deepEqual(config.userId, { user: "opendkim", group: "opendkim" });
    assert.deepEqual(config.autoRestartRate, { count: 10, seconds: 3600 });
    assert.equal(config.autoRestart, true);
    assert.equal(config.softwareHeader, true);
    assert.equal(config.logWhy, true);
    assert.equal(config.syslogSuccess, true);
    assert.equal(loaded.keyTable?.get("datahunter")?.key?.type, "rsa");
    assert.equal(loaded.keyTable?.get("datahunter")?.key?.bits, 2048);
    assert.ok(loaded.files.includes(seed.key));
    const yes = await chooseSigners(loaded, "joe", "datahunter.org");
    assert.equal(yes.signers.length, 1);
    const s = yes.signers[0];
    assert.deepEqual([s.domain, s.selector, s.algorithm], ["datahunter.org", "dkim", "rsa-sha256"]);
    assert.equal(s.tableMatch?.rule.origin.file, `${seed.dir}/signing.table`);
    assert.equal(s.tableMatch?.rule.origin.line, 2);
    // The key really signs.
    assert.equal((await s.key.sign(new TextEncoder().encode("x"))).length, 256);
    const no = await chooseSigners(loaded, "joe", "example.org");
    assert.equal(no.reason, "no signing table match for 'joe@example.org'");
    for (
      const [host, ip] of [["localhost", "127.0.0.1"], ["localhost", "::1"], [
        undefined,
        "127.0.0.1",
      ]]
    ) {
      assert.equal((await loaded.hosts.internal.match(host, ip)).matched, true, `${host} ${ip}`);
      const ignored = await loaded.hosts.externalIgnore?.match(host, ip);
      assert.equal(ignored?.matched, true, `${host} ${ip}`);
    }
    assert.equal((await loaded.hosts.internal.match("mx.example.net", "192.0.2.1")).matched, false);
  });
});

Deno.test("loadConfig() of the seed warns about its 0640 key when group opendkim has other members", async () => {
  await withSeed(async (seed) => {
    // The key's group is opendkim (as root) or the user's own; either way the database calls it
    // opendkim, once alone and once with postfix in it.
    const gid = (await Deno.stat(seed.key)).gid ?? OPENDKIM_GID;
    // The fix hands the key to the user dkimd runs as: UserID's as root, else the caller's.
    const owner = isRoot ? "opendkim" : accounts().userName(Deno.uid() ?? 0);
    for (const file of [seed.conf, seed.yaml]) {
      const alone = await loadConfig(file, ioWith(accounts([], gid)));
      assert.deepEqual(alone.warnings, [], file);
      const shared = await loadConfig(file, ioWith(accounts(["postfix"], gid)));
      assert.equal(shared.warnings.length, 1, file);
      assert.match(
        shared.warnings[0].message,
        new RegExp(
          `^KeyTable entry "datahunter" at ${seed.dir}/key\\.table:2: file "${seed.key}" can be ` +
            `read by group opendkim, which also has "postfix" \\(owner \\S+, group opendkim, ` +
            `mode 0640\\); fix: chown ${owner} ${seed.key} && chmod 600 ${seed.key}$`,
        ),
      );
      // A warning, not a refusal: the key still signs.
      assert.equal(shared.keyTable?.get("datahunter")?.key?.type, "rsa");
    }
  });
});

Deno.test({
  name: "loadConfig() accepts the seed config exactly when opendkim -n does",
  ignore: !(await Deno.stat("/usr/sbin/opendkim").then(() => true, () => false)),
  async fn() {
    await withSeed(async (seed) => {
      await run("/usr/sbin/opendkim", ["-n", "-x", seed.conf]);
      await loadConfig(seed.conf, io);
      await Deno.writeTextFile(seed.conf, "Canonicalization relaxed/loose\n", { append: true });
      await assert.rejects(() => run("/usr/sbin/opendkim", ["-n", "-x", seed.conf]));
      await assert.rejects(
        () => loadConfig(seed.conf, io),
        /opendkim\.conf:36: unknown canonicalization "loose"/,
      );
    });
  },
});

Deno.test("loadConfig() of the seed's YAML equivalent gives an equal Config and tables", async () => {
  await withSeed(async (seed) => {
    const conf = await loadConfig(seed.conf, io);
    const yaml = await loadConfig(seed.yaml, io);
    assert.deepEqual(yaml.config, conf.config);
    assert.deepEqual(yaml.warnings, []);
    assert.deepEqual(
      yaml.keyTable?.entries.map((e) => [e.name, e.domain, e.selector, e.source, e.origin]),
      conf.keyTable?.entries.map((e) => [e.name, e.domain, e.selector, e.source, e.origin]),
    );
    assert.deepEqual(yaml.signingTable?.rules, conf.signingTable?.rules);
    assert.deepEqual(yaml.hosts.internal.rules, conf.hosts.internal.rules);
  });
});

Deno.test("loadConfig() reads MustBeSigned from a file into a lower-cased header list", async () => {
  const loaded = await loadConfig(
    "/etc/dkimd.conf",
    memoryIo({
      "/etc/dkimd.conf": "Mode v\nMustBeSigned /etc/dkimd/must-be-signed\n",
      "/etc/dkimd/must-be-signed": "Reply-To\n# the unsubscribe link\nList-Unsubscribe\n",
    }),
  );
  assert.deepEqual(loaded.headers.mustBeSigned, ["reply-to", "list-unsubscribe"]);
  const none = await loadConfig("/etc/dkimd.conf", memoryIo({ "/etc/dkimd.conf": "Mode v\n" }));
  assert.deepEqual(none.headers.mustBeSigned, []);
});

const DEBIAN = "/etc/opendkim.conf";
const haveDebian = await Deno.stat(DEBIAN).then(() => true, () => false);

Deno.test({
  name: "loadConfig() loads Debian's /etc/opendkim.conf with warnings",
  ignore: !haveDebian,
  async fn() {
    const loaded = await loadConfig(DEBIAN, io);
    assert.deepEqual(loaded.config.canonicalization, { header: "relaxed", body: "simple" });
    assert.deepEqual(loaded.headers.oversign, ["from"]);
    assert.deepEqual(loaded.config.socket, { kind: "unix", path: "/run/opendkim/opendkim.sock" });
    assert.equal(loaded.config.umask, 0o007);
    // Debian's file asks for DNSSEC with the root's trust anchor: dkimd reads it as the wish
    // to ask its resolver for DNSSEC (issue 18), no longer as a setting it ignores.
    assert.equal(loaded.config.trustAnchorFile, "/usr/share/dns/root.key");
    const messages = loaded.warnings.map((w) => w.message);
    assert.ok(!messages.some((m) => /TrustAnchorFile/.test(m)), String(messages));
    assert.ok(messages.some((m) => /no signing key is configured/.test(m)), String(messages));
  },
});

const EXAMPLES = "/usr/share/doc/opendkim/examples";
const haveExamples = await Deno.stat(EXAMPLES).then(() => true, () => false);

Deno.test({
  name:
    "loadConfig() loads OpenDKIM's example configurations, warning only about unsupported settings",
  ignore: !haveExamples,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const key = await Deno.readTextFile(await genkey(dir, "default", "localhost"));
      const simple = await loadConfig(
        `${EXAMPLES}/opendkim.conf.simple`,
        memoryIo({ "/var/db/dkim/localhost.private": key }, { fallback: io }),
      );
      // Its ReportAddress and SendReports were warnings until dkimd sent failure reports.
      assert.deepEqual(simple.warnings.map((w) => w.setting), []);
      assert.equal(simple.config.sendReports, true);
      assert.equal(simple.singleKey?.selector, "default");
      const d = await chooseSigners(simple, "root", "localhost");
      assert.equal(d.signers[0].domain, "localhost");

      const verify = await loadConfig(`${EXAMPLES}/opendkim.conf.simple-verify`, io);
      assert.deepEqual(verify.warnings.map((w) => w.setting), []);
      assert.ok(verify.config.reportAddress);
      assert.equal(verify.config.mode.sign, false);

      // The big sample is a template: its Socket is "inet:port@localhost" and its key file does
      // not exist (OpenDKIM's own `opendkim -n` refuses it for the key). Exactly those are
      // errors: the setting first, then, once the settings read, the key.
      const sample = `${EXAMPLES}/opendkim.conf.sample`;
      await assert.rejects(
        () => loadConfig(sample, io),
        /^ConfigError: Cannot parse "Socket" at \/usr\/share\/doc\/opendkim\/examples\/opendkim\.conf\.sample:\d+: "inet:port@localhost": port "port"/,
      );
      const text = (await Deno.readTextFile(sample)).replace(
        "Socket\t\t\tinet:port@localhost",
        "Socket\t\t\tinet:8891@localhost",
      );
      assert.notEqual(text, await Deno.readTextFile(sample));
      await assert.rejects(
        () => loadConfig(sample, memoryIo({ [sample]: text }, { fallback: io })),
        /^ConfigError: Cannot load the key of KeyFile "\/var\/db\/dkim\/example\.private" at .*opendkim\.conf\.sample:\d+: "\/var\/db\/dkim\/example\.private": no such file or directory$/,
      );
      const fixed = await loadConfig(
        sample,
        memoryIo({ "/var/db/dkim/example.private": key, [sample]: text }, { fallback: io }),
      );
      assert.deepEqual(fixed.warnings, []);
      assert.equal(fixed.singleKey?.selector, "my-selector-name");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

async function tempConf(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "dkimd-conf-" });
  for (const [name, text] of Object.entries(files)) {
    await Deno.mkdir(`${dir}/${name}`.replace(/\/[^/]*$/, ""), { recursive: true });
    await Deno.writeTextFile(`${dir}/${name}`, text.replaceAll("@DIR@", dir));
  }
  return dir;
}

Deno.test("loadConfig() names file:line for every mistake in data sets and keys, all at once", async () => {
  const dir = await tempConf({
    "opendkim.conf": [
      "Mode sv",
      "KeyTable @DIR@/key.table",
      "SigningTable refile:@DIR@/signing.table",
      "InternalHosts @DIR@/hosts",
      "PeerList @DIR@/missing-peers",
      "",
    ].join("\n"),
    "key.table": [
      "good example.com:rsa:@DIR@/keys/good.private",
      "garbage example.com:bad:@DIR@/keys/garbage.private",
      "absent example.com:gone:@DIR@/keys/absent.private",
      "ed example.com:ed:@DIR@/keys/ed.private:rsa-sha256",
      "",
    ].join("\n"),
    "signing.table": "*@example.com good\n*@example.com Good\n*@example.com nosuch\n",
    "hosts": "127.0.0.1\n192.0.2/24\n",
    "keys/garbage.private": "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n",
  });
  try {
    await genkey(`${dir}/keys`, "good", "example.com");
    await edkey(`${dir}/keys/ed.private`);
    await Deno.chmod(`${dir}/keys/garbage.private`, 0o600);
    await assert.rejects(() => loadConfig(`${dir}/opendkim.conf`, io), (e: unknown) => {
      assert.ok(e instanceof ConfigErrors, String(e));
      const got = e.errors.map((x) => `${x.file.replace(dir, "")}:${x.line} ${x.message}`);
      const expect: RegExp[] = [
        /^\/hosts:2 .*"InternalHosts" entry "192\.0\.2\/24"/,
        /^\/key\.table:2 Cannot load the key of KeyTable entry "garbage" at .*key\.table:2: .*garbage\.private/,
        /^\/key\.table:3 Cannot load the key of KeyTable entry "absent" at .*key\.table:3: ".*absent\.private": no such file or directory/,
        /^\/key\.table:4 Invalid algorithm for KeyTable entry "ed" at .*key\.table:4: "rsa-sha256" cannot sign with an Ed25519 key/,
        /^\/opendkim\.conf:5 Cannot read "PeerList" data set ".*missing-peers" at .*opendkim\.conf:5: no such file or directory/,
        /^\/signing\.table:2 .*key "Good" is not in the KeyTable \(KeyTable names are case-sensitive: "good"\)/,
        /^\/signing\.table:3 .*key "nosuch" is not in the KeyTable/,
      ];
      assert.equal(got.length, expect.length, got.join("\n"));
      expect.forEach((re, i) => assert.match(got[i], re));
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadConfig() signs with RSA and Ed25519 keys in one pass from an inline YAML KeyTable", async () => {
  const dir = await tempConf({
    "dkimd.yaml": [
      "multipleSignatures: true",
      "keyTable:",
      '  rsa: {domain: example.com, selector: rsa2024, keyFile: "@DIR@/keys/rsa2024.private"}',
      '  ed: {domain: example.com, selector: ed2024, keyFile: "@DIR@/keys/ed.private"}',
      "signingTable:",
      '  - {from: "*@example.com", key: rsa}',
      '  - {from: "*@example.com", key: ed, signer: "@%"}',
      "",
    ].join("\n"),
  });
  try {
    await genkey(`${dir}/keys`, "rsa2024", "example.com");
    await edkey(`${dir}/keys/ed.private`);
    const loaded = await loadConfig(`${dir}/dkimd.yaml`, io);
    const d = await chooseSigners(loaded, "joe", "example.com");
    assert.deepEqual(
      d.signers.map((s) => [s.selector, s.algorithm, s.key.type, s.identity]),
      [["rsa2024", "rsa-sha256", "rsa", undefined], [
        "ed2024",
        "ed25519-sha256",
        "ed25519",
        "@example.com",
      ]],
    );
    assert.match(d.signers[1].explanation, /dkimd\.yaml:7 \(signingTable\[1\]\)/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadConfig() reads inline base64 DER keys and defers % key paths to signing time", async () => {
  const dir = await tempConf({});
  try {
    const pem = await Deno.readTextFile(await genkey(`${dir}/gen`, "k", "example.com"));
    const der = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
    await Deno.mkdir(`${dir}/keys`);
    await genkey(`${dir}/keys`, "example.org", "example.org");
    await Deno.writeTextFile(
      `${dir}/key.table`,
      [
        `inline example.com:s1:${der}`,
        `any %:mail:${dir}/keys/%.private`,
        "",
      ].join("\n"),
    );
    await Deno.writeTextFile(
      `${dir}/opendkim.conf`,
      `KeyTable ${dir}/key.table\nSigningTable refile:${dir}/st\n`,
    );
    await Deno.writeTextFile(`${dir}/st`, "*@example.com inline\n* any\n");
    const loaded = await loadConfig(`${dir}/opendkim.conf`, io);
    assert.equal(loaded.keyTable?.get("inline")?.key?.type, "rsa");
    assert.equal(loaded.keyTable?.get("any")?.key, undefined);
    const org = await chooseSigners(loaded, "joe", "example.org");
    assert.deepEqual([org.signers[0].domain, org.signers[0].selector], ["example.org", "mail"]);
    await assert.rejects(
      () => chooseSigners(loaded, "joe", "example.net"),
      /Cannot load the key of KeyTable entry "any" at .*key\.table:2 from ".*\/keys\/example\.net\.private"/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadConfig() resolves relative paths against BaseDirectory and Include against its file", async () => {
  const dir = await tempConf({
    "opendkim.conf": "Include conf.d/signing.conf\nMode sv\n",
    "conf.d/signing.conf":
      "BaseDirectory @DIR@\nKeyTable file:tables/key.table\nSigningTable refile:tables/st\n",
    "tables/key.table": "k example.com:s:./keys/s.private\n",
    "tables/st": "* k\n",
  });
  try {
    await genkey(`${dir}/keys`, "s", "example.com");
    const loaded = await loadConfig(`${dir}/opendkim.conf`, io);
    assert.equal(loaded.keyTable?.get("k")?.key?.type, "rsa");
    assert.ok(loaded.files.includes(`${dir}/conf.d/signing.conf`));
    assert.ok(loaded.files.includes(`${dir}/tables/key.table`));
    assert.equal(loaded.origins.keyTable?.file, `${dir}/conf.d/signing.conf`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadConfig() refuses a missing configuration file naming it", async () => {
  await assert.rejects(
    () => loadConfig("/nonexistent/opendkim.conf", io),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(
        e.message,
        "Cannot read configuration at /nonexistent/opendkim.conf: no such file or directory",
      );
      return true;
    },
  );
});

/** A directory with a key and a KeyFile configuration; `prep` changes modes before loading. */
async function safetyCase(
  prep: (dir: string, key: string) => Promise<void>,
  extra = "",
): Promise<{ dir: string; result: Promise<unknown> }> {
  // Under /tmp: a private $TMPDIR (mode 0700) would end the safety walk above the key, and
  // the directory cases would pass unseen.
  const dir = await makeSharedTempDir(0o700);
  const key = await genkey(`${dir}/keys`, "mail", "example.com");
  await Deno.chmod(key, 0o640);
  await Deno.writeTextFile(
    `${dir}/opendkim.conf`,
    `Mode sv\nDomain example.com\nSelector mail\nKeyFile ${key}\n${extra}`,
  );
  await prep(dir, key);
  return { dir, result: loadConfig(`${dir}/opendkim.conf`, io) };
}

Deno.test("loadConfig() RequireSafeKeys: refuses unsafe keys with the fix, accepts 0640", async () => {
  const cases: {
    name: string;
    prep: (dir: string, key: string) => Promise<void>;
    error?: (dir: string, key: string) => RegExp;
    ignore?: boolean;
  }[] = [
    { name: "0640, own group", prep: async () => {} },
    {
      name: "0640 root:opendkim",
      ignore: !isRoot,
      prep: (_d, key) => Deno.chown(key, 0, OPENDKIM_GID),
    },
    { name: "0600", prep: (_d, key) => Deno.chmod(key, 0o600) },
    {
      name: "world-readable",
      prep: (_d, key) => Deno.chmod(key, 0o644),
      error: (_d, key) =>
        new RegExp(
          `^Unsafe key for KeyFile ".*" at .*opendkim\\.conf:4: file "${key}" can be read by every user \\(owner \\S+, group \\S+, mode 0644\\); fix: chmod 640 ${key}$`,
        ),
    },
    {
      name: "group-writable",
      prep: (_d, key) => Deno.chmod(key, 0o660),
      error: (_d, key) =>
        new RegExp(`can be written by group \\S+ .*mode 0660\\); fix: chmod 640 ${key}$`),
    },
    {
      name: "world-writable directory",
      prep: (dir) => Deno.chmod(dir, 0o777),
      error: (dir) =>
        new RegExp(
          `directory "${dir}" can be written by every user .*mode 0777\\); fix: chmod o-w ${dir}$`,
        ),
    },
    {
      name: "owned by another user",
      ignore: !isRoot,
      prep: (_d, key) => Deno.chown(key, 65534, 0),
      error: (_d, key) =>
        new RegExp(
          `file "${key}" is owned by \\S+, who is neither root nor dkimd's user .*fix: chown root ${key}$`,
        ),
    },
  ];
  for (const c of cases) {
    if (c.ignore) continue;
    const { dir, result } = await safetyCase(c.prep);
    const key = `${dir}/keys/mail.private`;
    try {
      if (c.error) {
        await assert.rejects(() => result, (e: unknown) => {
          assert.ok(e instanceof ConfigError, `${c.name}: ${e}`);
          assert.equal(e.line, 4, c.name);
          assert.match(e.message, c.error!(dir, key), c.name);
          return true;
        });
      } else {
        const loaded = (await result) as Awaited<ReturnType<typeof loadConfig>>;
        assert.equal(loaded.singleKey?.key.type, "rsa", c.name);
      }
    } finally {
      await Deno.chmod(dir, 0o700);
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("loadConfig() RequireSafeKeys no: loads an unsafe key with a warning", async () => {
  const { dir, result } = await safetyCase(
    (_d, key) => Deno.chmod(key, 0o644),
    "RequireSafeKeys no\n",
  );
  try {
    const loaded = (await result) as Awaited<ReturnType<typeof loadConfig>>;
    assert.equal(loaded.singleKey?.key.type, "rsa");
    assert.ok(
      loaded.warnings.some((w) =>
        /RequireSafeKeys is off.*can be read by every user.*fix: chmod 640/.test(w.message)
      ),
      loaded.warnings.map((w) => w.message).join("\n"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadConfig() errors are SourceErrors naming file and line", async () => {
  const dir = await tempConf({
    "opendkim.conf": "Mode sv\nKeyTable @DIR@/none\nSigningTable refile:@DIR@/none2\n",
  });
  try {
    await assert.rejects(() => loadConfig(`${dir}/opendkim.conf`, io), (e: unknown) => {
      assert.ok(e instanceof ConfigErrors);
      for (const x of e.errors) {
        assert.ok(x instanceof SourceError);
        assert.equal(x.file, `${dir}/opendkim.conf`);
      }
      assert.deepEqual(e.errors.map((x) => x.line), [2, 3]);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadConfig() in verify-only mode checks the KeyTable but reads no keys", async () => {
  const dir = await tempConf({
    "opendkim.conf": "Mode v\nKeyTable @DIR@/kt\nSigningTable refile:@DIR@/st\n",
    "kt": "k example.com:s:@DIR@/keys/absent.private\n",
    "st": "* k\n",
  });
  try {
    const loaded = await loadConfig(`${dir}/opendkim.conf`, io);
    assert.equal(loaded.keyTable?.get("k")?.key, undefined);
    // It never signs, not even mail from an internal client that the table matches.
    const decision = await decide({
      policy: loaded,
      client: { hostname: "localhost", address: "127.0.0.1" },
      macros: () => undefined,
      sender: { user: "joe", domain: "example.com", field: "From" },
      recipients: [],
    });
    assert.equal(decision.kind, "verify");
    assert.ok(loaded.warnings.some((w) => /Mode does not include "s"/.test(w.message)));
    const origin = (await loaded.hosts.internal.match(undefined, "::1")).rule?.origin;
    assert.deepEqual(origin, { file: "(OpenDKIM's default InternalHosts)", line: 0 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadConfig() reads a PEM key written inline in a YAML KeyTable", async () => {
  const dir = await tempConf({});
  try {
    const pem = await Deno.readTextFile(await genkey(`${dir}/gen`, "k", "example.com"));
    const indented = pem.trim().split("\n").map((l) => `      ${l}`).join("\n");
    await Deno.writeTextFile(
      `${dir}/dkimd.yaml`,
      [
        "keyTable:",
        "  k:",
        "    domain: example.com",
        "    selector: s",
        "    key: |",
        indented,
        'signingTable: [{from: "*", key: k}]',
        "",
      ].join("\n"),
    );
    const loaded = await loadConfig(`${dir}/dkimd.yaml`, io);
    assert.equal(loaded.keyTable?.get("k")?.key?.type, "rsa");
    assert.equal(loaded.keyTable?.get("k")?.origin.line, 3);
    const again = configToYaml(loaded);
    assert.ok(again.includes("-----BEGIN PRIVATE KEY-----"), again);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
