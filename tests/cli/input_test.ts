import assert from "node:assert/strict";
import { fromLatin1, latin1 } from "../../lib/bytes.ts";
import { UsageError } from "../../lib/cli/args.ts";
import { crlfToLf, lfToCrlf, notAMessage, readMessage } from "../../lib/cli/input.ts";

Deno.test("lfToCrlf() ends every bare LF with CR; crlfToLf() takes the CR of every CRLF", () => {
  const cases: { unix: string; crlf: string; back?: string }[] = [
    { unix: "", crlf: "" },
    { unix: "a\nb\n", crlf: "a\r\nb\r\n" },
    { unix: "\n\n", crlf: "\r\n\r\n" },
    { unix: "no end", crlf: "no end" },
    // A CRLF already there stays one; a lone CR is no line end to either.
    { unix: "a\r\nb\n", crlf: "a\r\nb\r\n", back: "a\nb\n" },
    { unix: "a\rb\n", crlf: "a\rb\r\n" },
    { unix: "a\r\r\nb", crlf: "a\r\r\nb", back: "a\r\nb" },
  ];
  for (const c of cases) {
    assert.equal(latin1(lfToCrlf(fromLatin1(c.unix))), c.crlf, JSON.stringify(c.unix));
    assert.equal(latin1(crlfToLf(fromLatin1(c.crlf))), c.back ?? c.unix, JSON.stringify(c.crlf));
  }
});

Deno.test("readMessage() reads a file, making a Unix file's line ends CRLF", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cases: { text: string; unix: boolean; bytes: string }[] = [
      { text: "From: a@b\n\nhi\n", unix: true, bytes: "From: a@b\r\n\r\nhi\r\n" },
      { text: "From: a@b\r\n\r\nhi\r\n", unix: false, bytes: "From: a@b\r\n\r\nhi\r\n" },
      // One CR anywhere and the file is taken as it is.
      { text: "From: a@b\n\nhi\r\n", unix: false, bytes: "From: a@b\n\nhi\r\n" },
      { text: "From: a@b", unix: false, bytes: "From: a@b" },
    ];
    for (const [i, c] of cases.entries()) {
      const path = `${dir}/${i}.eml`;
      await Deno.writeTextFile(path, c.text);
      const m = await readMessage("sign", path);
      assert.equal(m.unixLineEnds, c.unix, JSON.stringify(c.text));
      assert.equal(latin1(m.bytes), c.bytes, JSON.stringify(c.text));
      assert.equal(latin1(m.original), c.text, JSON.stringify(c.text));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readMessage() refuses a missing, unreadable or empty file, naming it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/empty.eml`, "");
    const cases: [string, string][] = [
      [`${dir}/missing.eml`, `verify: cannot read "${dir}/missing.eml": no such file`],
      [`${dir}/empty.eml`, `verify: "${dir}/empty.eml" is empty, not a message`],
    ];
    for (const [path, message] of cases) {
      await assert.rejects(
        readMessage("verify", path),
        (e: unknown) => e instanceof UsageError && e.message === message,
        path,
      );
    }
    await assert.rejects(
      readMessage("verify", dir),
      (e: unknown) =>
        e instanceof UsageError && e.message.startsWith(`verify: cannot read "${dir}": `),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("notAMessage() names the file, or standard input for - and no path", () => {
  const cause = new SyntaxError("Message line 1 is not a header field");
  const cases: [string | undefined, string][] = [
    ["m.eml", 'sign: "m.eml" is not a message: Message line 1 is not a header field'],
    ["-", "sign: standard input is not a message: Message line 1 is not a header field"],
    [undefined, "sign: standard input is not a message: Message line 1 is not a header field"],
  ];
  for (const [path, message] of cases) {
    const e = notAMessage("sign", path, cause);
    assert.ok(e instanceof UsageError);
    assert.equal(e.message, message);
    assert.equal(e.cause, cause);
  }
});
