/**
 * Readers of Authentication-Results take dkimd's folded field: Mail::AuthenticationResults (which
 * libmail-dkim-perl depends on, and Mail::DKIM-based milters use) reads every result and property
 * back, and OpenDKIM's own parser recognises its authserv-id in it, removing it as forged
 * (RFC 8601 §5). Folds fall between properties, as CRLF and a tab (RFC 5322 §2.2.3).
 */
import assert from "node:assert/strict";
import { formatAuthResults } from "../../lib/dkim/auth_results.ts";
import type { Verdict } from "../../lib/dkim/result.ts";
import { PEER_PROGRAMS, PEER_TIMEOUT_MS } from "../helpers/peers.ts";

const verdicts = [
  {
    result: "pass",
    domain: "example.com",
    identity: "@example.com",
    selector: "outside",
    algorithm: "rsa-sha256",
    b: "nS+SOrUWxyz",
    key: { type: "rsa", bits: 2048, testing: false },
  },
  {
    result: "fail",
    reason: `signature expired ${"x".repeat(70)}`,
    domain: `${"d".repeat(60)}.example`,
    selector: "s",
  },
] as unknown as Verdict[];

async function run(args: string[], stdin: string, cwd?: string): Promise<string> {
  const child = new Deno.Command(args[0], {
    args: args.slice(1),
    cwd,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(PEER_TIMEOUT_MS),
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(stdin));
  await writer.close();
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  return text;
}

Deno.test("Mail::AuthenticationResults reads every result and property of dkimd's folded field", async () => {
  const value = formatAuthResults("mx.example.org", verdicts);
  assert.ok(value.split("\r\n").length > 3, value);
  const script = `
    use strict; use Mail::AuthenticationResults::Parser;
    local $/; my $p = Mail::AuthenticationResults::Parser->new()->parse(<STDIN>);
    print "id=", $p->value->value, "\\n";
    for my $e (@{$p->search({ key => 'dkim' })->children}) {
      print "dkim=", $e->value;
      for my $c (@{$e->children}) {
        print " ", (ref($c) =~ /Comment/ ? "(" . $c->value . ")" : $c->key . "=" . $c->value);
      }
      print "\\n";
    }`;
  const got = await run([PEER_PROGRAMS.perl, "-e", script], value);
  assert.equal(
    got,
    "id=mx.example.org\n" +
      "dkim=pass (2048-bit key) header.d=example.com header.i=@example.com header.s=outside " +
      "header.a=rsa-sha256 header.b=nS+SOrUW\n" +
      `dkim=fail reason=signature expired ${"x".repeat(70)} header.d=${"d".repeat(60)}.example ` +
      "header.s=s\n",
  );
});

Deno.test("OpenDKIM's parser finds its authserv-id in dkimd's folded field and removes it as forged", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dkimd-ar-" });
  try {
    const field = `Authentication-Results: ${formatAuthResults("mx.example.org", verdicts)}\r\n`;
    const message = "From: a@example.com\r\nTo: b@example.org\r\nSubject: x\r\n\r\nhi\r\n";
    await Deno.writeTextFile(`${dir}/folded.eml`, field + message);
    await Deno.writeTextFile(
      `${dir}/other.eml`,
      field.replace("mx.example.org", "mx.other") + message,
    );
    await Deno.writeTextFile(
      `${dir}/opendkim.conf`,
      "Mode v\nAuthservID mx.example.org\nSyslog no\n",
    );
    const test = (file: string) =>
      run([PEER_PROGRAMS.opendkim, "-x", "opendkim.conf", "-vv", "-t", file], "", dir);
    const removed = /CHGHEADER: hname='Authentication-Results' idx=1 hvalue='\(null\)'/;
    assert.match(await test("folded.eml"), removed);
    // Control: the same field from another host stays.
    assert.doesNotMatch(await test("other.eml"), removed);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
