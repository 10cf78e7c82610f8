/**
 * `dkimd check-config` and `dkimd explain` name the selector each rotated key signs with, its
 * age (from the rotation state file's activation, else the key file's mtime) and the step of
 * the rotation in progress, read from the files `dkimd rotate` leaves.
 */
import assert from "node:assert/strict";
import { writeCliConfig } from "../helpers/cli_config.ts";
import { runCli } from "../helpers/run_cli.ts";
import { writeRotationState } from "../../lib/rotate/state_file.ts";
import { generateSigningKey } from "../../lib/crypto/private_key.ts";

const DAY = 86400;

Deno.test("dkimd check-config and explain show each key's selector, age and rotation step", async () => {
  const dir = await writeCliConfig();
  try {
    const conf = `${dir}/opendkim.conf`;
    const now = Math.floor(Date.now() / 1000);
    // Rotation off and no state file: nothing about it, as before.
    const off = await runCli(["check-config", conf]);
    assert.equal(off.code, 0, off.stderr);
    assert.doesNotMatch(off.text, /Key rotation/);
    const offExplain = await runCli(["explain", "-x", conf, "--from", "joe@datahunter.org"]);
    assert.doesNotMatch(offExplain.text, /signing for/);

    // A second domain whose key a finished rotation activated 40 days ago, and the seed's key
    // (its file 200 days old) in a rotation waiting for DNS.
    const other = await generateSigningKey("ed25519");
    await Deno.writeTextFile(`${dir}/k2.private`, await other.toPem(), { mode: 0o600 });
    await Deno.writeTextFile(
      `${dir}/key.table`,
      `datahunter datahunter.org:dkim:${dir}/dkim.private\n` +
        `second example.net:202611-ed25519:${dir}/k2.private\n`,
    );
    await Deno.writeTextFile(
      `${dir}/signing.table`,
      "*@datahunter.org datahunter\n*@example.net second\n",
    );
    await Deno.utime(`${dir}/dkim.private`, now - 200 * DAY, now - 200 * DAY);
    const base = { startedAt: now - 41 * DAY, updatedAt: now - 40 * DAY };
    await writeRotationState(`${dir}/state/rotation.json`, {
      version: 1,
      rotations: [
        {
          ...base,
          keyName: "second",
          domain: "example.net",
          keyType: "ed25519",
          oldSelector: "202605-ed25519",
          oldKeyFile: `${dir}/old.private`,
          newSelector: "202611-ed25519",
          newKeyFile: `${dir}/k2.private`,
          step: "done",
          activatedAt: now - 40 * DAY,
        },
        {
          keyName: "datahunter",
          domain: "datahunter.org",
          keyType: "rsa",
          oldSelector: "dkim",
          oldKeyFile: `${dir}/dkim.private`,
          newSelector: "202612-rsa",
          newKeyFile: `${dir}/202612-rsa.private`,
          step: "prove",
          startedAt: now - 60,
          updatedAt: now - 30,
          lastError: "the DNS server answered REFUSED",
        },
      ],
    });
    await Deno.writeTextFile(
      conf,
      (await Deno.readTextFile(conf)) +
        `RotationInterval 15552000\nRotationStateFile ${dir}/state/rotation.json\n`,
    );

    const check = await runCli(["check-config", conf]);
    assert.equal(check.code, 0, check.stderr);
    assert.match(
      check.text,
      new RegExp(
        `^ {2}Key rotation {9}RotationInterval 15552000 s, RotationOverlap 0 s, RotationRetireAfter 604800 s, RotationDeleteAfter \\d+ s; state in ${dir}/state/rotation\\.json$`,
        "m",
      ),
    );
    assert.match(
      check.text,
      /^ {4}datahunter: d=datahunter\.org s=dkim signing for 200 days \(since \S+Z, the key file's modification time\); rotation "dkim" → "202612-rsa" in progress, next step: prove, waits for DNS to serve the record \(dkimd rotate proves it\); last error: the DNS server answered REFUSED$/m,
    );
    assert.match(
      check.text,
      /^ {4}second: d=example\.net s=202611-ed25519 signing for 40 days \(since \S+Z, its rotation's activation\)$/m,
    );

    const signed = await runCli(["explain", "-x", conf, "--from", "joe@datahunter.org"]);
    assert.equal(signed.code, 0, signed.stderr);
    assert.match(
      signed.text,
      /DNS record: dkim\._domainkey\.datahunter\.org\n {2}key "datahunter": s=dkim signing for 200 days .*; rotation "dkim" → "202612-rsa" in progress, next step: prove/,
    );
    const second = await runCli(["explain", "-x", conf, "--from", "ann@example.net"]);
    assert.equal(second.code, 0, second.stderr);
    assert.match(
      second.text,
      /key "second": s=202611-ed25519 signing for 40 days \(since \S+Z, its rotation's activation\)\n/,
    );

    // A state file that cannot be read is said, not hidden.
    await Deno.writeTextFile(`${dir}/state/rotation.json`, "{");
    const broken = await runCli(["check-config", conf]);
    assert.equal(broken.code, 0, broken.stderr);
    assert.match(broken.text, /^ {4}Cannot read the rotation state file ".*": not JSON/m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
