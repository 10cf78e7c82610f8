import assert from "node:assert/strict";
import {
  currentProgram,
  isCompiledProgram,
  selfCommand,
  SERVICE_DENO_FLAGS,
} from "../../lib/ops/self_command.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

Deno.test("SERVICE_DENO_FLAGS are exactly the flags of the start and compile tasks", async () => {
  const { tasks } = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const flags = SERVICE_DENO_FLAGS.join(" ");
  assert.equal(tasks.start, `deno run ${flags} main.ts`);
  assert.equal(tasks.compile, `deno compile ${flags} --output dist/dkimd main.ts`);
});

Deno.test("isCompiledProgram() tells a compiled main module from a source one", () => {
  const cases = [
    { url: "file:///tmp/deno-compile-dkimd/main.ts", want: true },
    { url: "file:///tmp/deno-compile-dkimd/lib/cli/main.ts", want: true },
    { url: "file:///work/main/main.ts", want: false },
    { url: "https://example.com/deno-compile-x/main.ts", want: false },
  ];
  for (const { url, want } of cases) assert.equal(isCompiledProgram(url), want, url);
});

Deno.test("selfCommand() from source passes deno.json beside the main module", () => {
  const program = {
    execPath: Deno.execPath(),
    mainModule: `file://${ROOT}main.ts`,
    configFile: `${ROOT}deno.json`,
  };
  const { command, args } = selfCommand(["serve", "-c", "/etc/dkimd/dkimd.conf"], program);
  assert.equal(command, Deno.execPath());
  assert.deepEqual(args, [
    "run",
    ...SERVICE_DENO_FLAGS,
    `--config=${ROOT}deno.json`,
    `${ROOT}main.ts`,
    "serve",
    "-c",
    "/etc/dkimd/dkimd.conf",
  ]);
  assert.equal(currentProgram().execPath, Deno.execPath());
});

Deno.test("selfCommand() runs the commands under exactly the service's permissions", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // From another directory, as a supervisor started anywhere would run it.
    const run = (args: string[]) => {
      const self = selfCommand(args, {
        execPath: Deno.execPath(),
        mainModule: `file://${ROOT}main.ts`,
        configFile: `${ROOT}deno.json`,
      });
      return new Deno.Command(self.command, {
        args: [...self.args],
        cwd: dir,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).output();
    };
    const genkey = await run(["genkey", "-s", "sel", "-d", "example.com"]);
    assert.equal(genkey.code, 0, new TextDecoder().decode(genkey.stderr));
    await Deno.writeTextFile(`${dir}/m.eml`, "From: a@example.com\r\nSubject: x\r\n\r\nhi\r\n");
    const sign = await run([
      "sign",
      "-d",
      "example.com",
      "-s",
      "sel",
      "-k",
      "sel.private",
      "m.eml",
    ]);
    assert.equal(sign.code, 0, new TextDecoder().decode(sign.stderr));
    assert.match(new TextDecoder().decode(sign.stdout), /^DKIM-Signature: v=1; a=rsa-sha256;/);
    // The YAML reader touches two environment variables of its own.
    await Deno.writeTextFile(`${dir}/dkimd.yaml`, "mode: v\nsocket: inet:8891@localhost\n");
    await Deno.writeTextFile(
      `${dir}/load.ts`,
      `import { denoLoadIo, loadConfig } from "${ROOT}lib/config/load.ts";\n` +
        `const l = await loadConfig("${dir}/dkimd.yaml", denoLoadIo(() => Promise.reject(new Error("none"))));\n` +
        `console.log(JSON.stringify(l.config.mode));\n`,
    );
    const yaml = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...SERVICE_DENO_FLAGS, `--config=${ROOT}deno.json`, `${dir}/load.ts`],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    assert.equal(yaml.code, 0, new TextDecoder().decode(yaml.stderr));
    assert.equal(new TextDecoder().decode(yaml.stdout), '{"sign":false,"verify":true}\n');
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
