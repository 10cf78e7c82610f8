import assert from "node:assert/strict";
import { writeCliConfig } from "../helpers/cli_config.ts";
import { runCli } from "../helpers/run_cli.ts";

Deno.test("dkimd explain says why mail is or is not signed", async () => {
  const dir = await writeCliConfig();
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

Deno.test("dkimd explain shows the AuthorizedSigners entry that allowed or refused an --auth-user", async () => {
  const dir = await writeCliConfig();
  try {
    const conf = `${dir}/opendkim.conf`;
    await Deno.writeTextFile(`${dir}/authorized_signers`, "*  %\n");
    await Deno.writeTextFile(
      conf,
      `AuthorizedSigners ${dir}/authorized_signers\nOn-UnauthorizedSigner reject\n`,
      { append: true },
    );
    const explain = (login: string) =>
      runCli([
        "explain",
        "-x",
        conf,
        "--from",
        "joe@datahunter.org",
        "--client-ip",
        "192.0.2.9",
        "--auth-user",
        login,
      ]);
    const own = await explain("joe@datahunter.org");
    assert.equal(own.code, 0, own.stderr);
    assert.match(
      own.text,
      new RegExp(
        `- login 'joe@datahunter\\.org' may sign for From 'joe@datahunter\\.org' ` +
          `\\(AuthorizedSigners "\\*" at ${dir}/authorized_signers:1: "%"\\)`,
      ),
    );
    assert.match(own.text, /Decision: SIGN/);
    const other = await explain("ann@example.org");
    assert.equal(other.code, 1);
    assert.match(
      other.text,
      new RegExp(
        `- login 'ann@example\\.org' may not sign for From 'joe@datahunter\\.org' ` +
          `\\(AuthorizedSigners "\\*" at ${dir}/authorized_signers:1 allows only %\\)\\n` +
          `Decision: NOT SIGNED \\(On-UnauthorizedSigner reject\\)`,
      ),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
