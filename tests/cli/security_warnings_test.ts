/**
 * What `dkimd check-config` warns about beyond the loader: a Socket beyond loopback, and a setup
 * signing for several domains without AuthorizedSigners; configurations loaded in memory, and
 * the command itself once.
 */
import assert from "node:assert/strict";
import { securityWarnings, signingDomainsOf } from "../../lib/cli/security_warnings.ts";
import { writeCliConfig } from "../helpers/cli_config.ts";
import { exampleSigning, MEMORY_CONF, memoryRuntime } from "../helpers/memory_runtime.ts";
import { runCli } from "../helpers/run_cli.ts";

async function warningsOf(conf: string, files: Record<string, string> = {}): Promise<string[]> {
  const signing = await exampleSigning();
  const { loaded } = await memoryRuntime(conf.replace("@SIGNING@", signing.conf), {
    files: { ...signing.files, ...files },
  });
  return securityWarnings(loaded);
}

Deno.test("securityWarnings() warns about a Socket beyond loopback, naming its line and the fix", async () => {
  for (const socket of ["inet:8891", "inet6:8891", "inet:8891@192.0.2.1"]) {
    const [w, ...rest] = await warningsOf(`Mode v\nSocket ${socket}\n`);
    assert.deepEqual(rest, [], socket);
    assert.match(w, new RegExp(`^"Socket" at ${MEMORY_CONF}:2 inet6?:8891@`), socket);
    assert.match(w, /bind 127\.0\.0\.1 \(inet:8891@127\.0\.0\.1\) or a unix socket/, socket);
  }
  for (const socket of ["inet:8891@localhost", "inet6:8891@[::1]", "local:/run/dkimd.sock"]) {
    assert.deepEqual(await warningsOf(`Mode v\nSocket ${socket}\n`), [], socket);
  }
});

// A shared host: example.com and example.net, each with its own d=.
const SHARED = {
  "/etc/dkimd/shared.keys": "com example.com:rsa:/etc/dkimd/keys/rsa.pem\n" +
    "net example.net:rsa:/etc/dkimd/keys/rsa.pem\n" +
    "own %:rsa:/etc/dkimd/keys/rsa.pem\n",
  "/etc/dkimd/shared.signers": "*@example.com com\n*@example.net net\n",
  "/etc/dkimd/any.signers": "* own\n",
};
const SHARED_CONF = "Mode sv\nKeyTable /etc/dkimd/shared.keys\n" +
  "SigningTable refile:/etc/dkimd/shared.signers\n";

Deno.test("securityWarnings() warns when the SigningTable signs for more than one domain and AuthorizedSigners is unset", async () => {
  const [w, ...rest] = await warningsOf(SHARED_CONF, SHARED);
  assert.deepEqual(rest, []);
  assert.equal(
    w,
    `"SigningTable" at ${MEMORY_CONF}:3 signs for 2 domains (example.com, example.net) and ` +
      `"AuthorizedSigners" is not set: any authenticated client gets a signature for any of ` +
      `them, whatever it logged in as; set AuthorizedSigners to say which login may sign for ` +
      `which From (README, "Who may sign for whom")`,
  );
  // A "%" key for every sender: no counting the domains.
  const [any] = await warningsOf(
    "Mode sv\nKeyTable /etc/dkimd/shared.keys\nSigningTable refile:/etc/dkimd/any.signers\n",
    SHARED,
  );
  assert.match(any, /^"SigningTable" at .*:3 signs for any sender domain and "AuthorizedSigners"/);
  // The single key's Domain list counts too.
  const [single] = await warningsOf(
    "Mode sv\nDomain csl:example.com,example.org\nSelector rsa\nKeyFile /etc/dkimd/keys/rsa.pem\n",
  );
  assert.match(single, /^"Domain" at .*:2 signs for 2 domains \(example\.com, example\.org\)/);
});

Deno.test("securityWarnings() is quiet with AuthorizedSigners, one signing domain, or no signing", async () => {
  const quiet = [
    `${SHARED_CONF}AuthorizedSigners csl:*=%\n`,
    // example.com's two keys, and a second From domain signed with example.com's d=.
    "Mode sv\n@SIGNING@",
    "Mode sv\n@SIGNING@SigningTable csl:example.com=rsa,example.net=rsa\n",
    "Mode v\nKeyTable /etc/dkimd/shared.keys\nSigningTable refile:/etc/dkimd/shared.signers\n",
  ];
  for (const conf of quiet) assert.deepEqual(await warningsOf(conf, SHARED), [], conf);
});

Deno.test("signingDomainsOf() counts each fixed key's d= and the From domain of a %-key's pattern", async () => {
  const signing = await exampleSigning();
  const { loaded } = await memoryRuntime(
    "Mode sv\nKeyTable /etc/dkimd/shared.keys\nSigningTable /etc/dkimd/exact.signers\n",
    {
      files: {
        ...signing.files,
        ...SHARED,
        "/etc/dkimd/exact.signers": "a@example.com net\n.example.org own\nExample.COM com\n",
      },
    },
  );
  const { domains, open } = signingDomainsOf(loaded);
  assert.deepEqual([...domains].sort(), ["example.com", "example.net", "example.org"]);
  assert.equal(open, false);
});

Deno.test("dkimd check-config prints the security warnings with the loader's", async () => {
  const dir = await writeCliConfig();
  try {
    const conf = `${dir}/opendkim.conf`;
    const text = await Deno.readTextFile(conf);
    await Deno.writeTextFile(conf, text.replace("Socket inet:8891@localhost", "Socket inet:8891"));
    const r = await runCli(["check-config", conf]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.text,
      /\n1 warning\(s\):\n {2}"Socket" at .*opendkim\.conf:2 inet:8891@0\.0\.0\.0 listens on every IPv4 interface: /,
    );
    await Deno.writeTextFile(conf, `AuthorizedSigners csl:*=%\nOn-UnauthorizedSigner t\n`, {
      append: true,
    });
    const set = await runCli(["check-config", conf]);
    assert.match(
      set.text,
      /\n {2}AuthorizedSigners +1 entry; otherwise On-UnauthorizedSigner tempfail +\(.*opendkim\.conf:9\)\n/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
