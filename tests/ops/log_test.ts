import assert from "node:assert/strict";
import { toBase64 } from "../../lib/bytes.ts";
import {
  createLogger,
  formatPlainLine,
  formatSyslogDatagram,
  journalStreamMatches,
  MAX_LOG_MESSAGE_LENGTH,
  sanitizeLogMessage,
} from "../../lib/ops/log.ts";

const SETTINGS = { syslog: false, syslogFacility: "mail", syslogName: "dkimd" } as const;

function capture() {
  const lines: string[] = [];
  return { lines, stderr: (b: Uint8Array) => lines.push(new TextDecoder().decode(b)) };
}

async function pkcs8Base64(algorithm: "rsa" | "ed25519"): Promise<{ priv: string; pub: string }> {
  const pair = algorithm === "rsa"
    ? await crypto.subtle.generateKey(
      {
        name: "RSASSA-PKCS1-v1_5",
        modulusLength: 1024,
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: "SHA-256",
      },
      true,
      ["sign", "verify"],
    ) as CryptoKeyPair
    : await crypto.subtle.generateKey("Ed25519", true, ["sign", "verify"]) as CryptoKeyPair;
  const priv = toBase64(new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey)));
  const pub = toBase64(new Uint8Array(await crypto.subtle.exportKey("spki", pair.publicKey)));
  return { priv, pub };
}

Deno.test("sanitizeLogMessage() redacts PEM blocks, terminated or not", () => {
  const cases = [
    {
      input: "x -----BEGIN RSA PRIVATE KEY-----\nMIIEow\nAbC=\n-----END RSA PRIVATE KEY----- y",
      want: "x [PEM block redacted] y",
    },
    {
      input: "a -----BEGIN PRIVATE KEY-----\nMC4CAQAw and the rest",
      want: "a [PEM block redacted]",
    },
    {
      input:
        "-----BEGIN PRIVATE KEY-----\nA\n-----END PRIVATE KEY-----, -----BEGIN PUBLIC KEY-----\n" +
        "B\n-----END PUBLIC KEY-----",
      want: "[PEM block redacted], [PEM block redacted]",
    },
    { input: "no key here", want: "no key here" },
  ];
  for (const { input, want } of cases) {
    assert.equal(sanitizeLogMessage(input), want, input);
  }
});

Deno.test("sanitizeLogMessage() redacts bare base64 private keys and keeps public ones", async () => {
  for (const alg of ["rsa", "ed25519"] as const) {
    const { priv, pub } = await pkcs8Base64(alg);
    const text = sanitizeLogMessage(`inline key "${priv}" for p=${pub}`);
    assert.ok(!text.includes(priv.slice(0, 40)), `${alg} private key leaked: ${text}`);
    assert.match(text, /inline key "\[private key redacted\]" for p=/);
    assert.ok(text.includes(pub), `${alg} public key was redacted`);
  }
  // A signature's b= value is random bytes, not a DER private key.
  const b = toBase64(crypto.getRandomValues(new Uint8Array(256)).map((x, i) => i === 0 ? 0x55 : x));
  assert.equal(sanitizeLogMessage(`b=${b}`), `b=${b}`);
});

Deno.test("sanitizeLogMessage() escapes control characters so a line cannot be forged", () => {
  assert.equal(
    sanitizeLogMessage("From: a\r\ndkimd[1]: DKIM verification successful\x00\x7f"),
    "From: a#015#012dkimd[1]: DKIM verification successful#000#177",
  );
  assert.equal(sanitizeLogMessage("tab\tkept, é kept"), "tab\tkept, é kept");
});

Deno.test("sanitizeLogMessage() bounds the length", () => {
  const text = sanitizeLogMessage("x".repeat(MAX_LOG_MESSAGE_LENGTH * 3));
  assert.equal(text.length, MAX_LOG_MESSAGE_LENGTH + 3);
  assert.ok(text.endsWith("..."));
});

Deno.test("formatSyslogDatagram() computes PRI from facility and severity", () => {
  const t = new Date(2024, 0, 31, 23, 59, 58);
  const cases = [
    { facility: "mail", level: "info", pri: 22 },
    { facility: "mail", level: "error", pri: 19 },
    { facility: "mail", level: "notice", pri: 21 },
    { facility: "daemon", level: "warn", pri: 28 },
    { facility: "local3", level: "debug", pri: 159 },
    { facility: "kern", level: "error", pri: 3 },
  ] as const;
  for (const { facility, level, pri } of cases) {
    assert.equal(
      formatSyslogDatagram(facility, level, "dkimd", 9, t, "m"),
      `<${pri}>Jan 31 23:59:58 dkimd[9]: m`,
    );
  }
});

Deno.test("journalStreamMatches() accepts only DEV:INODE naming standard error", () => {
  const cases = [
    { value: "64768:12345", id: { dev: 64768, ino: 12345 }, want: true },
    { value: "64768:12345", id: undefined, want: true },
    { value: "64768:12345", id: { dev: 1, ino: 12345 }, want: false },
    { value: "", id: undefined, want: false },
    { value: "x:1", id: undefined, want: false },
    { value: "1:2:3", id: undefined, want: false },
  ];
  for (const { value, id, want } of cases) {
    assert.equal(journalStreamMatches(value, id), want, value);
  }
});

Deno.test("createLogger() writes sd-daemon priority prefixes under journald", async () => {
  const out = capture();
  const log = await createLogger({ ...SETTINGS, syslog: true }, {
    env: (n) => n === "JOURNAL_STREAM" ? "8:77" : undefined,
    stderrIdentity: () => ({ dev: 8, ino: 77 }),
    stderr: out.stderr,
  });
  assert.equal(log.destination, "journal");
  log.error("e");
  log.warn("w");
  log.notice("n");
  log.info("741FA53F63: DKIM-Signature field added (s=dkim, d=example.com)");
  log.debug("not shown");
  await log.close();
  assert.deepEqual(out.lines, [
    "<3>e\n",
    "<4>w\n",
    "<5>n\n",
    "<6>741FA53F63: DKIM-Signature field added (s=dkim, d=example.com)\n",
  ]);
});

Deno.test("createLogger() ignores a JOURNAL_STREAM that is not standard error", async () => {
  const out = capture();
  const log = await createLogger(SETTINGS, {
    env: (n) => n === "JOURNAL_STREAM" ? "8:77" : undefined,
    stderrIdentity: () => ({ dev: 8, ino: 78 }),
    stderr: out.stderr,
    pid: 5,
  });
  assert.equal(log.destination, "stderr");
  log.warn("w");
  assert.deepEqual(out.lines, ["dkimd[5]: warning: w\n"]);
});

Deno.test("createLogger() writes plain lines in the foreground, debug only when asked", async () => {
  const out = capture();
  const log = await createLogger({ ...SETTINGS, syslogName: "opendkim" }, {
    env: () => undefined,
    stderr: out.stderr,
    pid: 25507,
    debug: true,
  });
  log.info("741FA53F63: DKIM-Signature field added (s=dkim, d=datahunter.org)");
  log.error("bad");
  log.debug("frame");
  log.info("key -----BEGIN PRIVATE KEY-----\nMC4CAQAw\n-----END PRIVATE KEY-----");
  assert.deepEqual(out.lines, [
    "opendkim[25507]: 741FA53F63: DKIM-Signature field added (s=dkim, d=datahunter.org)\n",
    "opendkim[25507]: error: bad\n",
    "opendkim[25507]: debug: frame\n",
    "opendkim[25507]: key [PEM block redacted]\n",
  ]);
  assert.equal(formatPlainLine("notice", "t", 1, "m"), "t[1]: m\n");
});

Deno.test("createLogger() falls back to standard error when /dev/log is missing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = capture();
    const log = await createLogger({ ...SETTINGS, syslog: true }, {
      env: () => undefined,
      stderr: out.stderr,
      devLog: `${dir}/log`,
      pid: 3,
    });
    assert.equal(log.destination, "stderr");
    log.info("one");
    log.info("two");
    await log.close();
    assert.equal(out.lines.length, 3);
    assert.match(
      out.lines[0],
      /^dkimd\[3\]: Syslog is set but .*logging to standard error instead\n$/,
    );
    assert.deepEqual(out.lines.slice(1), ["dkimd[3]: one\n", "dkimd[3]: two\n"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "createLogger() says --unstable-net is needed for syslog without it",
  ignore: typeof (Deno as { listenDatagram?: unknown }).listenDatagram === "function",
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      // A real socket file, so the only thing missing is the datagram API.
      const listener = Deno.listen({ transport: "unix", path: `${dir}/log` });
      const out = capture();
      const log = await createLogger({ ...SETTINGS, syslog: true }, {
        env: () => undefined,
        stderr: out.stderr,
        devLog: `${dir}/log`,
      });
      listener.close();
      assert.equal(log.destination, "stderr");
      assert.match(out.lines[0], /--unstable-net/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
