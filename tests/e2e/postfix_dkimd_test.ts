/**
 * dkimd behind a real Postfix, set up as the seed sets up OpenDKIM: `smtpd_milters`,
 * `non_smtpd_milters = $smtpd_milters`, `milter_default_action = accept`, `milter_protocol = 6`,
 * the seed's `milter_mail_macros`; dkimd started with `-x CONFIG -f` on a TCP socket or on a
 * unix socket in a directory under Postfix's queue (group postfix, mode 0770, UMask 000). Keys
 * come from a real DNS server (knot on 127.0.0.1), and what Postfix delivers is checked with
 * dkimd, Mail::DKIM and dkimpy.
 */
import assert from "node:assert/strict";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import { verifyMessage } from "../../lib/dkim/verify.ts";
import { parseNameserverList } from "../../lib/dns/nameserver.ts";
import { StubResolver } from "../../lib/dns/stub.ts";
import { splitMessage } from "../../lib/dkim/header.ts";
import { parseSignature } from "../../lib/dkim/signature.ts";
import { type DnsServer, startDnsServer } from "../helpers/dns_server.ts";
import { type DkimdProcess, startDkimd } from "../helpers/dkimd_process.ts";
import { assertFoldedField, unfold } from "../helpers/folding.ts";
import {
  generateTestKey,
  signAllWithDkimpy,
  type TestKey,
  verifyAllWithDkimpy,
  verifyAllWithMailDkim,
} from "../helpers/peers.ts";
import { type PostfixInstance, startPostfix } from "../helpers/postfix.ts";

const DELIVERY_TIMEOUT_MS = 15_000;
const DOMAIN = "example.com";

interface World {
  readonly dir: string;
  readonly dns: DnsServer;
  readonly rsa: TestKey;
  readonly ed: TestKey;
  readonly foreign: TestKey;
}

/** Keys for example.com (RSA and Ed25519) and for an outside domain, published in knot. */
async function world(): Promise<World> {
  const dir = await Deno.makeTempDir();
  await Deno.chmod(dir, 0o755);
  const rsa = await generateTestKey("rsa-sha256");
  const ed = await generateTestKey("ed25519-sha256");
  const foreign = await generateTestKey("rsa-sha256");
  for (const [name, key] of [["rsa", rsa], ["ed", ed]] as const) {
    await Deno.writeTextFile(`${dir}/${name}.private`, key.privatePem, { mode: 0o600 });
    await Deno.chmod(`${dir}/${name}.private`, 0o600);
  }
  await Deno.writeTextFile(
    `${dir}/key.table`,
    `rsa ${DOMAIN}:rsa:${dir}/rsa.private\ned ${DOMAIN}:ed:${dir}/ed.private\n`,
  );
  await Deno.writeTextFile(`${dir}/signing.table`, `*@${DOMAIN} rsa\n*@${DOMAIN} ed\n`);
  // The seed lists "localhost" too, which dkimd reads as all of 127.0.0.0/8 and ::1
  // (OpenDKIM#175); here ::1 must stand for an outside client, so only 127.0.0.1 is.
  await Deno.writeTextFile(`${dir}/TrustedHosts`, "127.0.0.1\n");
  const dns = await startDnsServer({
    zone: DOMAIN,
    records: {
      [`rsa._domainkey.${DOMAIN}`]: [rsa.record],
      [`ed._domainkey.${DOMAIN}`]: [ed.record],
      [`outside._domainkey.${DOMAIN}`]: [foreign.record],
    },
  });
  return { dir, dns, rsa, ed, foreign };
}

/** The seed's opendkim.conf, pointed at the test's files. */
function seedConfig(w: World, extra = "") {
  return (socket: string) =>
    `AutoRestart Yes\nAutoRestartRate 10/1h\nUMask 000\nSyslog no\nSyslogSuccess Yes\nLogWhy Yes\n` +
    `SoftwareHeader Yes\nCanonicalization relaxed/relaxed\nKeyTable ${w.dir}/key.table\n` +
    `SigningTable refile:${w.dir}/signing.table\nMultipleSignatures yes\n` +
    `ExternalIgnoreList ${w.dir}/TrustedHosts\nInternalHosts ${w.dir}/TrustedHosts\nMode sv\n` +
    `SignatureAlgorithm rsa-sha256\nNameservers 127.0.0.1@${w.dns.port}\nSocket ${socket}\n${extra}`;
}

function message(from: string, subject: string, extra = ""): Uint8Array {
  return fromLatin1(
    `From: Alice <${from}>\r\nTo: Bob <bob@example.org>\r\nSubject: ${subject}\r\n` +
      `Date: Fri, 27 Nov 2026 12:00:00 +0000\r\nMessage-ID: <${
        subject.replace(/\W/g, "")
      }@example.com>\r\n` +
      `${extra}\r\nHello Bob,\r\n\r\nsee you at noon.  \r\n`,
  );
}

function records(w: World): Record<string, string> {
  return {
    [`rsa._domainkey.${DOMAIN}`]: w.rsa.record,
    [`ed._domainkey.${DOMAIN}`]: w.ed.record,
  };
}

async function dkimdVerdicts(w: World, bytes: Uint8Array) {
  const resolver = new StubResolver({ nameservers: parseNameserverList(w.dns.nameserver) });
  return await verifyMessage(bytes, { resolver });
}

function fieldsNamed(bytes: Uint8Array, name: string): string[] {
  return splitMessage(bytes).fields.filter((f) => f.name.toLowerCase() === name.toLowerCase())
    .map((f) => latin1(f.raw));
}

async function setup(
  options: { unix?: boolean; extra?: string } = {},
): Promise<{ w: World; postfix: PostfixInstance; dkimd: DkimdProcess; close(): Promise<void> }> {
  const w = await world();
  let postfix: PostfixInstance | undefined;
  let dkimd: DkimdProcess | undefined;
  try {
    if (options.unix) {
      // The seed's unix-socket layout: a directory under Postfix's queue, group postfix, 0770.
      postfix = await startPostfix({
        socketDirectories: [{ name: "opendkim", group: "postfix", mode: 0o770 }],
        smtpdMilters: (p) => `unix:${p.queueDirectory}/opendkim/opendkim.sock`,
      });
      dkimd = await startDkimd(w.dir, seedConfig(w, options.extra), {
        socket: `local:${postfix.queueDirectory}/opendkim/opendkim.sock`,
      });
    } else {
      dkimd = await startDkimd(w.dir, seedConfig(w, options.extra));
      postfix = await startPostfix({ smtpdMilters: `inet:127.0.0.1:${dkimd.port}` });
    }
  } catch (e) {
    await postfix?.stop();
    await dkimd?.stop();
    await w.dns.close();
    await Deno.remove(w.dir, { recursive: true });
    throw e;
  }
  const p = postfix;
  const d = dkimd;
  return {
    w,
    postfix: p,
    dkimd: d,
    async close() {
      await p.stop();
      await d.stop();
      await w.dns.close();
      await Deno.remove(w.dir, { recursive: true });
    },
  };
}

Deno.test("Postfix + dkimd: outbound mail over SMTP and through sendmail comes out signed, and Mail::DKIM, dkimpy and dkimd verify it", async () => {
  const { w, postfix, dkimd, close } = await setup();
  try {
    const smtp = await postfix.sendSmtp({
      from: `alice@${DOMAIN}`,
      to: "bob@example.org",
      data: message(`alice@${DOMAIN}`, "over smtp"),
    });
    assert.equal(smtp.reply.code, 250, smtp.reply.lines.join(" "));
    await postfix.sendmail({
      from: `alice@${DOMAIN}`,
      to: "bob@example.org",
      data: message(`alice@${DOMAIN}`, "via sendmail"),
    });
    const delivered = (await postfix.waitForMessages(2, DELIVERY_TIMEOUT_MS)).map((m) => m.data);
    for (const bytes of delivered) {
      assert.equal(fieldsNamed(bytes, "DKIM-Signature").length, 2);
      assert.match(fieldsNamed(bytes, "DKIM-Filter")[0], /^DKIM-Filter: dkimd \S+ \S+ [0-9A-F]+$/);
      const ours = await dkimdVerdicts(w, bytes);
      assert.deepEqual(ours.map((v) => [v.selector, v.result]), [["rsa", "pass"], ["ed", "pass"]]);
      // The default list, as `dkimd sign` signs it: the fields of it the message has, From
      // oversigned, not the Received fields Postfix adds (which the verdicts above survive).
      assert.ok(fieldsNamed(bytes, "Received").length > 0, "Postfix added Received");
      for (const f of splitMessage(bytes).fields.filter((f) => f.name === "DKIM-Signature")) {
        assert.deepEqual(parseSignature(f).headers.map((n) => n.toLowerCase()), [
          "from",
          "from",
          "subject",
          "date",
          "message-id",
          "to",
        ]);
      }
    }
    const keys = { records: records(w) };
    const perl = await verifyAllWithMailDkim(delivered, keys);
    const py = await verifyAllWithDkimpy(delivered, keys);
    for (let i = 0; i < delivered.length; i++) {
      assert.equal(perl[i][0].result, "pass", JSON.stringify(perl[i]));
      assert.deepEqual(py[i].map((v) => v.result), ["pass", "pass"], JSON.stringify(py[i]));
    }
    assert.match(dkimd.log(), /[0-9A-F]+: DKIM-Signature field added \(s=rsa, d=example\.com\)/);
    assert.match(dkimd.log(), /[0-9A-F]+: DKIM-Signature field added \(s=ed, d=example\.com\)/);
  } finally {
    await close();
  }
});

Deno.test("Postfix + dkimd: inbound mail gets Authentication-Results: pass, fail for a tampered copy, forged results removed", async () => {
  const { w, postfix, dkimd, close } = await setup({ extra: "AlwaysAddARHeader yes\n" });
  try {
    // Mail from outside (::1 is not in InternalHosts), signed by an outside signer.
    const [signed] = await signAllWithDkimpy([message(`carol@${DOMAIN}`, "inbound signed")], {
      domain: DOMAIN,
      selector: "outside",
      keyPem: w.foreign.privatePem,
      algorithm: "rsa-sha256",
      canonicalization: "relaxed/relaxed",
    });
    const tampered = fromLatin1(latin1(signed).replace("see you at noon", "see you at nine"));
    const forged = fromLatin1(
      "Authentication-Results: mx.postfix.test; dkim=pass header.d=bank.example\r\n" +
        latin1(message("x@bank.example", "forged")),
    );
    for (
      const data of [signed, tampered, message("dave@example.org", "inbound unsigned"), forged]
    ) {
      const r = await postfix.sendSmtp({
        from: "someone@example.org",
        to: "bob@example.org",
        data,
        sourceAddress: "::1",
      });
      assert.equal(r.reply.code, 250, r.reply.lines.join(" "));
    }
    const got = await postfix.waitForMessages(4, DELIVERY_TIMEOUT_MS);
    // The signed message and its tampered copy share a Subject and may reach the sink in either
    // order: each is found by its body.
    const bySubject = (s: string) =>
      got.find((m) =>
        latin1(m.data).includes(`Subject: ${s}`) && !latin1(m.data).includes("see you at nine")
      )!.data;
    const ar = (s: string) => fieldsNamed(bySubject(s), "Authentication-Results");
    const tamperedAr = got.find((m) => latin1(m.data).includes("see you at nine"))!.data;
    // As delivered, each of dkimd's fields has lines of at most 78 characters where a property
    // does not fill one (RFC 5322 §2.1.1): folded by dkimd, kept so by Postfix.
    const delivered = [
      ...["inbound signed", "inbound unsigned", "forged"].flatMap(ar),
      ...fieldsNamed(tamperedAr, "Authentication-Results"),
    ];
    assert.equal(delivered.length, 4, delivered.join("\n"));
    for (const field of delivered) assertFoldedField(field);
    // Unfolded (RFC 5322 §2.2.3), the result starts a line and its properties read in order;
    // the signed result is long enough to need a second fold.
    assert.match(
      unfold(ar("inbound signed")[0]),
      /^Authentication-Results: mx\.postfix\.test;\tdkim=pass\s\(2048-bit key\)\sheader\.d=example\.com\sheader\.i=@example\.com\sheader\.s=outside/,
    );
    assert.ok(ar("inbound signed")[0].split("\r\n").length > 2, ar("inbound signed")[0]);
    assert.match(ar("inbound signed")[0].replace(/\r\n\t/g, " "), /dkim=pass/);
    // The message's own signature still verifies after Postfix and dkimd handled it.
    const [v] = await dkimdVerdicts(w, bySubject("inbound signed"));
    assert.equal(v.result, "pass");
    assert.match(ar("inbound signed")[0], /header\.s=outside/);
    assert.match(
      ar("inbound unsigned")[0],
      /^Authentication-Results: mx\.postfix\.test; dkim=none$/,
    );
    assert.match(
      unfold(fieldsNamed(tamperedAr, "Authentication-Results")[0]),
      /dkim=fail\s\(2048-bit key\)\sreason="body hash did not verify"/,
    );
    // The forged field claiming our authserv-id is gone; ours says none.
    assert.deepEqual(ar("forged"), ["Authentication-Results: mx.postfix.test; dkim=none"]);
    assert.match(
      dkimd.log(),
      /removed 1 Authentication-Results field\(s\) claiming to be from "mx\.postfix\.test"/,
    );
    assert.match(dkimd.log(), /\[::1\] not internal/);
    assert.match(dkimd.log(), /DKIM verification successful/);
  } finally {
    await close();
  }
});

Deno.test("Postfix + dkimd over a unix socket in the Postfix spool (seed layout): mail is signed", async () => {
  const { w, postfix, close } = await setup({ unix: true });
  try {
    const info = await Deno.stat(`${postfix.queueDirectory}/opendkim/opendkim.sock`);
    assert.ok(info.isSocket);
    assert.equal(info.mode! & 0o777, 0o777); // UMask 000, as the seed sets it
    const r = await postfix.sendSmtp({
      from: `alice@${DOMAIN}`,
      to: "bob@example.org",
      data: message(`alice@${DOMAIN}`, "unix socket"),
    });
    assert.equal(r.reply.code, 250);
    const [m] = await postfix.waitForMessages(1, DELIVERY_TIMEOUT_MS);
    const verdicts = await dkimdVerdicts(w, m.data);
    assert.deepEqual(verdicts.map((v) => v.result), ["pass", "pass"]);
  } finally {
    await close();
  }
});

Deno.test("Postfix + dkimd: with dkimd killed, mail is still delivered (milter_default_action = accept); signing resumes when it is back", async () => {
  const { w, postfix, dkimd, close } = await setup();
  let second: DkimdProcess | undefined;
  try {
    dkimd.signal("SIGKILL");
    await dkimd.status;
    const r = await postfix.sendSmtp({
      from: `alice@${DOMAIN}`,
      to: "bob@example.org",
      data: message(`alice@${DOMAIN}`, "while down"),
    });
    assert.equal(r.reply.code, 250);
    const [down] = await postfix.waitForMessages(1, DELIVERY_TIMEOUT_MS);
    assert.deepEqual(fieldsNamed(down.data, "DKIM-Signature"), []);
    await postfix.waitForLog(
      /connect to Milter service inet:127\.0\.0\.1:\d+: Connection refused/,
      DELIVERY_TIMEOUT_MS,
    );

    // Back on the same port: signing resumes.
    second = await startDkimd(w.dir, seedConfig(w), { socket: dkimd.socket });
    const again = await postfix.sendSmtp({
      from: `alice@${DOMAIN}`,
      to: "bob@example.org",
      data: message(`alice@${DOMAIN}`, "back up"),
    });
    assert.equal(again.reply.code, 250);
    const all = await postfix.waitForMessages(2, DELIVERY_TIMEOUT_MS);
    const back = all.find((m) => latin1(m.data).includes("Subject: back up"))!;
    const verdicts = await dkimdVerdicts(w, back.data);
    assert.deepEqual(verdicts.map((v) => v.result), ["pass", "pass"]);
  } finally {
    await second?.stop();
    await close();
  }
});
