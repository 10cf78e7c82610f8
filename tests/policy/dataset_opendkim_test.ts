// Differential test: OpenDKIM's own data set code (`opendkim -Q`, its query test mode) must
// read our test files the same way parseDataSetFile() and parseCommaList() do.
import assert from "node:assert/strict";
import { parseCommaList, parseDataSetFile } from "../../lib/policy/dataset.ts";

const OPENDKIM = "/usr/sbin/opendkim";
const haveOpendkim = await Deno.stat(OPENDKIM).then(() => true, () => false);

/** Runs `opendkim -Q` for one data set and query; returns the value or undefined. */
async function query(spec: string, key: string): Promise<string | undefined> {
  const cmd = new Deno.Command(OPENDKIM, {
    args: ["-Q"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(10_000),
  });
  const child = cmd.spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(`${spec}\n${key}/1\n`));
  await writer.close();
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout);
  const m = /^'(.*)'$/m.exec(text);
  if (m) return m[1];
  const all = text + new TextDecoder().decode(out.stderr);
  if (/record not found/.test(all)) return undefined;
  // A key without a value prints an empty line on success.
  return text.trim() === "" ? "" : text;
}

Deno.test({
  name: "parseDataSetFile() agrees with opendkim -Q on a tricky file",
  ignore: !haveOpendkim,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const text = [
        "# comment",
        "plain value",
        "  spaced\t\tvalue with inner  spaces   ",
        "trailing value # comment",
        "colons a:b:c",
        "crlf value\r",
        "bare",
        "dup first",
        "dup second",
        "",
      ].join("\n");
      const path = `${dir}/table`;
      await Deno.writeTextFile(path, text);
      const ours = parseDataSetFile(text, path);
      const firstByKey = new Map<string, string>();
      for (const e of ours) if (!firstByKey.has(e.key)) firstByKey.set(e.key, e.value ?? "");
      for (
        const key of [
          "plain",
          "spaced",
          "trailing",
          "colons",
          "crlf",
          "bare",
          "dup",
          "missing",
          "#",
        ]
      ) {
        assert.equal(await query(`file:${path}`, key), firstByKey.get(key), key);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "parseCommaList() agrees with opendkim -Q on csl lists",
  ignore: !haveOpendkim,
  async fn() {
    const list = "a, b=c , d = e:f,,g";
    const ours = parseCommaList(list, "X", { file: "x", line: 1 });
    for (const key of ["a", "b", "d", "g", "x"]) {
      const want = ours.find((e) => e.key === key);
      assert.equal(await query(`csl:${list}`, key), want ? (want.value ?? "") : undefined, key);
    }
  },
});
