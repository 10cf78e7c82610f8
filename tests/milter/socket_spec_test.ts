import assert from "node:assert/strict";
import {
  formatSocketSpec,
  parseSocketSpec,
  type SocketSpec,
  SocketSpecError,
} from "../../lib/milter/socket_spec.ts";

const good: Array<[string, SocketSpec]> = [
  ["inet:8891@localhost", { kind: "inet", host: "127.0.0.1", port: 8891 }],
  ["inet:8891@LocalHost", { kind: "inet", host: "127.0.0.1", port: 8891 }],
  ["inet:8891@127.0.0.1", { kind: "inet", host: "127.0.0.1", port: 8891 }],
  ["inet:8891@[192.0.2.1]", { kind: "inet", host: "192.0.2.1", port: 8891 }],
  ["inet:8891@mail.example.org", { kind: "inet", host: "mail.example.org", port: 8891 }],
  ["inet:8891", { kind: "inet", host: "0.0.0.0", port: 8891 }],
  ["inet:0@127.0.0.1", { kind: "inet", host: "127.0.0.1", port: 0 }],
  ["inet:65535@localhost", { kind: "inet", host: "127.0.0.1", port: 65535 }],
  ["inet6:8891@[::1]", { kind: "inet", host: "::1", port: 8891 }],
  ["inet6:8891@::1", { kind: "inet", host: "::1", port: 8891 }],
  ["inet6:8891@[2001:db8::25]", { kind: "inet", host: "2001:db8::25", port: 8891 }],
  ["inet6:8891@[::ffff:192.0.2.1]", { kind: "inet", host: "::ffff:192.0.2.1", port: 8891 }],
  ["inet6:8891@[fe80::1%eth0]", { kind: "inet", host: "fe80::1%eth0", port: 8891 }],
  ["inet6:8891@localhost", { kind: "inet", host: "::1", port: 8891 }],
  ["inet6:8891", { kind: "inet", host: "::", port: 8891 }],
  ["INET:25@localhost", { kind: "inet", host: "127.0.0.1", port: 25 }],
  ["local:/var/spool/postfix/opendkim/opendkim.sock", {
    kind: "unix",
    path: "/var/spool/postfix/opendkim/opendkim.sock",
  }],
  ["unix:/run/dkimd/dkimd.sock", { kind: "unix", path: "/run/dkimd/dkimd.sock" }],
  ["local:relative/dkimd.sock", { kind: "unix", path: "relative/dkimd.sock" }],
  ["/run/dkimd.sock", { kind: "unix", path: "/run/dkimd.sock" }],
  ["  inet:8891@localhost  ", { kind: "inet", host: "127.0.0.1", port: 8891 }],
];

Deno.test("parseSocketSpec() reads every OpenDKIM Socket form", () => {
  for (const [text, want] of good) assert.deepEqual(parseSocketSpec(text), want, text);
});

const bad: Array<[string, RegExp]> = [
  ["", /expected "inet:PORT@HOST"/],
  ["8891", /expected "inet:PORT@HOST"/],
  ["tcp:8891@localhost", /unknown socket type "tcp"/],
  ["inet:@localhost", /port "" is not a number/],
  ["inet:port@localhost", /port "port"/],
  ["inet:65536@localhost", /port "65536"/],
  ["inet:-1@localhost", /port "-1"/],
  ["inet:8891@", /host is empty/],
  ["inet:8891@[]", /host is empty/],
  ["inet:8891@256.1.1.1", /"256.1.1.1" is not a valid IPv4 address/],
  ["inet:8891@1.2.3", /"1.2.3" is not a valid IPv4 address/],
  ["inet6:8891@[::1::2]", /"::1::2" is not an IP address or host name/],
  ["inet6:8891@[1:2:3:4:5:6:7:8:9]", /is not an IP address/],
  ["inet:8891@bad_host!", /"bad_host!" is not an IP address or host name/],
  ["inet:8891@[mail.example.org]", /is not an IP address/],
  ["local:", /path is empty/],
  ["unix:/a\0b", /NUL/],
];

Deno.test("parseSocketSpec() throws SocketSpecError naming the value", () => {
  for (const [text, pattern] of bad) {
    assert.throws(() => parseSocketSpec(text), (error: unknown) => {
      assert.ok(error instanceof SocketSpecError, text);
      assert.ok(error instanceof SyntaxError);
      assert.equal(error.name, "SocketSpecError");
      assert.equal(error.value, text);
      assert.ok(error.message.startsWith(`Cannot parse socket "${text}": `), error.message);
      assert.match(error.message, pattern);
      return true;
    });
  }
});

Deno.test("formatSocketSpec() writes what parseSocketSpec() reads back", () => {
  for (const [, spec] of good) {
    assert.deepEqual(parseSocketSpec(formatSocketSpec(spec)), spec, formatSocketSpec(spec));
  }
  assert.equal(
    formatSocketSpec({ kind: "inet", host: "127.0.0.1", port: 8891 }),
    "inet:8891@127.0.0.1",
  );
  assert.equal(formatSocketSpec({ kind: "inet", host: "::1", port: 1 }), "inet6:1@[::1]");
  assert.equal(formatSocketSpec({ kind: "unix", path: "/x.sock" }), "local:/x.sock");
});
