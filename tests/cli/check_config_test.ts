import assert from "node:assert/strict";
import { KEYS_DIR } from "../helpers/dkim_fixtures.ts";
import { runCli } from "../helpers/run_cli.ts";

async function setup(): Promise<string> {
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

Deno.test("dkimd check-config prints the effective settings with their origins", async () => {
  const dir = await setup();
  try {
    const r = await runCli(["check-config", `${dir}/opendkim.conf`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.text, /: OK\n/);
    assert.match(
      r.text,
      new RegExp(`Canonicalization +relaxed/relaxed +\\(${dir}/opendkim.conf:3\\)`),
    );
    assert.match(
      r.text,
      new RegExp(`datahunter: d=datahunter.org s=dkim rsa 2048 bits \\(${dir}/dkim.private`),
    );
    assert.match(r.text, /On-\* +NoSignature accept, .*InternalError tempfail/);
    await Deno.chmod(`${dir}/dkim.private`, 0o644);
    const unsafe = await runCli(["check-config", `${dir}/opendkim.conf`]);
    assert.equal(unsafe.code, 78);
    assert.match(unsafe.stderr, /would not start/);
    assert.match(unsafe.stderr, new RegExp(`${dir}/dkim.private`));
    assert.match(unsafe.stderr, /chmod/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dkimd explain says why mail is or is not signed", async () => {
  const dir = await setup();
  try {
    const conf = `${dir}/opendkim.conf`;
    const yes = await runCli([
      "explain",
      "-x",
      conf,
      "--from",
      "Joe <joe@datahunter.org>",
      "--client-ip",
      "10.1.2.3",
    ]);
    assert.equal(yes.code, 0, yes.stderr);
    assert.match(
      yes.text,
      /\[10\.1\.2\.3\] is internal \(InternalHosts "10\.1\.0\.0\/16" at .*TrustedHosts:3\)/,
    );
    assert.match(
      yes.text,
      /SigningTable entry "\*@datahunter\.org" at .*signing\.table:1 names key "datahunter"/,
    );
    assert.match(yes.text, /Decision: SIGN\n {2}d=datahunter\.org s=dkim a=rsa-sha256/);
    assert.match(yes.text, /DNS record: dkim\._domainkey\.datahunter\.org/);

    const other = await runCli(["explain", "-x", conf, "--from", "joe@example.org"]);
    assert.match(other.text, /no signing table match for 'joe@example\.org'/);
    // The seed lists TrustedHosts as ExternalIgnoreList too: such hosts are not verified.
    assert.match(
      other.text,
      /\[127\.0\.0\.1\] is in ExternalIgnoreList \("127\.0\.0\.1"\); not verifying/,
    );
    assert.match(other.text, /Decision: LEAVE ALONE/);
    assert.equal(other.code, 1);

    const outside = await runCli([
      "explain",
      "-x",
      conf,
      "--from",
      "joe@datahunter.org",
      "--client-ip",
      "192.0.2.9",
    ]);
    assert.match(
      outside.text,
      /\[192\.0\.2\.9\] not internal\n {2}- not authenticated\n {2}- external host \[192\.0\.2\.9\] tried to send mail as datahunter\.org/,
    );

    const authed = await runCli([
      "explain",
      "-x",
      conf,
      "--from",
      "joe@datahunter.org",
      "--client-ip",
      "192.0.2.9",
      "--auth-user",
      "joe",
    ]);
    assert.match(authed.text, /authenticated \(auth_type PLAIN\)/);
    assert.match(authed.text, /Decision: SIGN/);

    const missing = await runCli(["explain", "-x", conf]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--from is required/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dkimd config convert prints the configuration as YAML that loads to the same settings", async () => {
  const dir = await setup();
  try {
    const r = await runCli(["config", "convert", `${dir}/opendkim.conf`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.text, /^# dkimd configuration converted from /);
    assert.match(
      r.text,
      /keyTable:\n {2}datahunter:\n {4}domain: datahunter\.org\n {4}selector: dkim/,
    );
    await Deno.writeTextFile(`${dir}/dkimd.yaml`, r.text);
    const a = await runCli(["check-config", `${dir}/opendkim.conf`]);
    const b = await runCli(["check-config", `${dir}/dkimd.yaml`]);
    assert.equal(b.code, 0, b.stderr);
    // The same effective settings, whatever the origins say.
    const strip = (t: string) =>
      t.split("\n").slice(1).map((l) => l.replace(/\s+\(.*\)$/, "")).join("\n");
    assert.equal(strip(b.text), strip(a.text));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
