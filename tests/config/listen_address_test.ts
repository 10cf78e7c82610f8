import assert from "node:assert/strict";
import { formatListenAddress, parseListenAddress } from "../../lib/config/listen_address.ts";
import { ValueError } from "../../lib/config/values.ts";

Deno.test("parseListenAddress() reads HOST:PORT and round-trips", () => {
  const cases = [
    { text: "127.0.0.1:9891", host: "127.0.0.1", port: 9891 },
    { text: " [::1]:9891 ", host: "::1", port: 9891 },
    { text: "LOCALHOST:0", host: "127.0.0.1", port: 0 },
    { text: "0.0.0.0:65535", host: "0.0.0.0", port: 65535 },
    { text: "[2001:db8::1]:80", host: "2001:db8::1", port: 80 },
  ];
  for (const { text, host, port } of cases) {
    const got = parseListenAddress(text);
    assert.deepEqual(got, { host, port }, text);
    assert.deepEqual(parseListenAddress(formatListenAddress(got)), got, text);
  }
});

Deno.test("parseListenAddress() rejects what is not an address and port", () => {
  const cases: [string, RegExp][] = [
    ["9891", /expected "HOST:PORT"/],
    ["127.0.0.1", /expected "HOST:PORT"/],
    ["::1:9891", /expected "HOST:PORT"/],
    ["127.0.0.1:65536", /port "65536"/],
    ["127.0.0.1:123456", /expected "HOST:PORT"/],
    ["metrics.example.com:9891", /not an IPv4 address/],
    ["999.0.0.1:9891", /not an IPv4 address/],
    ["[::g]:9891", /not an IPv6 address/],
    ["[127.0.0.1]:9891", /not an IPv6 address/],
    ["", /expected "HOST:PORT"/],
  ];
  for (const [text, want] of cases) {
    assert.throws(
      () => parseListenAddress(text),
      (e) => e instanceof ValueError && want.test(e.message),
      text,
    );
  }
});
