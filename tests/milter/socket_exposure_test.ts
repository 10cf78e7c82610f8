/**
 * socketExposure(): which milter sockets can be reached from beyond this host, the forms of
 * smfi_setconn's syntax each, since the milter protocol has no authentication.
 */
import assert from "node:assert/strict";
import { socketExposure, socketExposureWarning } from "../../lib/milter/socket_exposure.ts";
import { parseSocketSpec } from "../../lib/milter/socket_spec.ts";

Deno.test("socketExposure() names what a socket beyond loopback listens on, and nothing for loopback", () => {
  const cases: [string, string | undefined][] = [
    // Every interface: inet:PORT with no host, and the any-addresses.
    ["inet:8891", "every IPv4 interface"],
    ["inet:8891@0.0.0.0", "every IPv4 interface"],
    ["inet6:8891", "every interface"],
    ["inet6:8891@[::]", "every interface"],
    ["inet6:8891@::", "every interface"],
    ["inet6:8891@[0:0:0:0:0:0:0:0]", "every interface"],
    ["inet6:8891@[::ffff:0.0.0.0]", "every IPv4 interface"],
    // One address that is not loopback.
    ["inet:8891@192.0.2.1", "the address 192.0.2.1"],
    ["inet:8891@10.0.0.1", "the address 10.0.0.1"],
    ["inet6:8891@[2001:db8::1]", "the address 2001:db8::1"],
    ["inet6:8891@[fe80::1%eth0]", "the address fe80::1%eth0"],
    ["inet:8891@mx.example.com", 'the host name "mx.example.com"'],
    // Loopback and unix sockets: nothing to say.
    ["inet:8891@localhost", undefined],
    ["inet:8891@127.0.0.1", undefined],
    ["inet:8891@127.1.2.3", undefined],
    ["inet6:8891@[::1]", undefined],
    ["inet6:8891@localhost", undefined],
    ["inet6:8891@[::ffff:127.0.0.1]", undefined],
    ["inet6:8891@[0:0:0:0:0:0:0:1]", undefined],
    ["inet:8891@localhost.", undefined],
    ["inet:8891@mx.localhost", undefined],
    ["local:/run/dkimd/dkimd.sock", undefined],
    ["unix:/var/spool/postfix/opendkim/opendkim.sock", undefined],
    ["/run/dkimd.sock", undefined],
  ];
  for (const [spec, want] of cases) assert.equal(socketExposure(parseSocketSpec(spec)), want, spec);
});

Deno.test("socketExposureWarning() names the setting, what it listens on, the danger and the fix", () => {
  const w = socketExposureWarning(parseSocketSpec("inet:8891"), '"Socket" at /etc/opendkim.conf:9');
  assert.equal(
    w,
    '"Socket" at /etc/opendkim.conf:9 inet:8891@0.0.0.0 listens on every IPv4 interface: the ' +
      "milter protocol has no authentication, so any host that reaches the socket can have mail " +
      "signed by claiming an internal client address; bind 127.0.0.1 (inet:8891@127.0.0.1) or a " +
      "unix socket (local:/run/dkimd/dkimd.sock), or firewall the port so only the MTA reaches it",
  );
  assert.equal(socketExposureWarning(parseSocketSpec("inet:8891@localhost"), "-p"), undefined);
  assert.equal(socketExposureWarning(parseSocketSpec("local:/x.sock"), "-p"), undefined);
});
