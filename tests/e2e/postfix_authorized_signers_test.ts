/**
 * AuthorizedSigners behind a real Postfix with SMTP AUTH: Postfix authenticates the client over
 * a Dovecot authentication server (tests/helpers/dovecot_auth.ts, standing in for Dovecot) and
 * passes the login to dkimd as `{auth_authen}` with the seed's `milter_mail_macros`; dkimd signs
 * the login's own domain and refuses another's From with On-UnauthorizedSigner reject, which
 * Postfix answers at end of DATA.
 */
import assert from "node:assert/strict";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import { splitMessage } from "../../lib/dkim/header.ts";
import { KEYS_DIR } from "../helpers/dkim_fixtures.ts";
import { startDkimd } from "../helpers/dkimd_process.ts";
import { startDovecotAuth } from "../helpers/dovecot_auth.ts";
import { startPostfix } from "../helpers/postfix.ts";

const DELIVERY_TIMEOUT_MS = 15_000;

function message(from: string, subject: string): Uint8Array {
  return fromLatin1(
    `From: <${from}>\r\nTo: Bob <bob@example.org>\r\nSubject: ${subject}\r\n` +
      `Date: Fri, 27 Nov 2026 12:00:00 +0000\r\nMessage-ID: <${subject}@example.com>\r\n` +
      `\r\nHello Bob.\r\n`,
  );
}

Deno.test("Postfix with SASL + dkimd AuthorizedSigners: a login's own domain is signed, another domain's From is refused", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.chmod(dir, 0o755);
  await Deno.copyFile(new URL("ed25519.pem", KEYS_DIR), `${dir}/ed.private`);
  await Deno.chmod(`${dir}/ed.private`, 0o600);
  // A shared host: example.com and example.net each with its own d=; the client, ::1, is not
  // internal (InternalHosts lists 127.0.0.1 alone), so only its login makes its mail ours to sign.
  await Deno.writeTextFile(
    `${dir}/key.table`,
    `com example.com:ed:${dir}/ed.private\nnet example.net:ed:${dir}/ed.private\n`,
  );
  await Deno.writeTextFile(`${dir}/signing.table`, "*@example.com com\n*@example.net net\n");
  await Deno.writeTextFile(`${dir}/authorized_signers`, "*  %\n");
  const auth = startDovecotAuth({ "joe@example.com": "secret" });
  const dkimd = await startDkimd(
    dir,
    (socket) =>
      `Mode sv\nSocket ${socket}\nSyslog no\nKeyTable ${dir}/key.table\n` +
      `SigningTable refile:${dir}/signing.table\nInternalHosts 127.0.0.1\n` +
      `AuthorizedSigners ${dir}/authorized_signers\nOn-UnauthorizedSigner reject\n`,
  );
  let postfix;
  try {
    postfix = await startPostfix({
      smtpdMilters: `inet:127.0.0.1:${dkimd.port}`,
      mainCf: {
        smtpd_sasl_auth_enable: "yes",
        smtpd_sasl_type: "dovecot",
        smtpd_sasl_path: `inet:127.0.0.1:${auth.port}`,
      },
    });
    const send = (from: string, subject: string) =>
      postfix!.sendSmtp({
        from,
        to: "bob@example.org",
        data: message(from, subject),
        sourceAddress: "::1",
        auth: { user: "joe@example.com", password: "secret" },
      });
    const own = await send("joe@example.com", "own");
    assert.ok(own.accepted, `${own.stage}: ${own.reply.code} ${own.reply.lines.join(" ")}`);
    const other = await send("ceo@example.net", "other");
    assert.equal(other.stage, "message");
    assert.equal(other.reply.code, 550, other.reply.lines.join(" "));
    assert.match(other.reply.lines.join(" "), /5\.7\.1 From address not authorized for this login/);
    assert.deepEqual(auth.logins, ["joe@example.com", "joe@example.com"]);

    const [delivered] = await postfix.waitForMessages(1, DELIVERY_TIMEOUT_MS);
    const signatures = splitMessage(delivered.data).fields
      .filter((f) => f.name.toLowerCase() === "dkim-signature")
      .map((f) => latin1(f.raw));
    assert.equal(signatures.length, 1);
    assert.match(signatures[0], /\bd=example\.com;/);
    assert.match(
      dkimd.log(),
      /[0-9A-F]+: login 'joe@example\.com' may not sign for From 'ceo@example\.net' \(AuthorizedSigners "\*" at .*authorized_signers:1 allows only %\); not signing \(On-UnauthorizedSigner reject\)/,
    );
  } finally {
    await postfix?.stop();
    await dkimd.stop();
    await auth.close();
    await Deno.remove(dir, { recursive: true });
  }
});
