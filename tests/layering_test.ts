/**
 * DESIGN.md's layering, enforced: a folder of lib/ is a layer, imports point inward, and only the
 * edges touch `Deno`. The checker reads every lib/ file's static imports (`import ... from`,
 * `export ... from`, and `import("...")` with a literal) and judges the graph; its own tests feed
 * it small trees that break each rule, so a broken checker cannot pass silently.
 */
import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";

const LIB = new URL("../lib/", import.meta.url).pathname;

/** Folders that must import nothing from the ones listed (DESIGN.md, "Imports point inward"). */
const FORBIDDEN: Readonly<Record<string, readonly string[]>> = {
  dkim: ["arc", "config", "filter", "milter", "ops", "cli"],
  arc: ["config", "filter", "milter", "ops", "cli"],
  crypto: ["config", "filter", "milter", "ops", "cli"],
  dns: ["config", "filter", "milter", "ops", "cli"],
  policy: ["config", "filter", "milter", "ops", "cli"],
  tables: ["config", "filter", "milter", "ops", "cli"],
  rotate: ["config", "filter", "milter", "ops", "cli"],
  lua: ["config", "filter", "milter", "ops", "cli", "tables", "rotate"],
  milter: ["config", "filter", "ops", "cli"],
};

/** The pure core: no `Deno.` at all (DESIGN.md, "Only ... touch Deno.*"). */
const PURE = [
  /^dkim\//,
  /^arc\//,
  /^policy\//,
  // lib/rotate's steps are pure; its edges find a zone's servers and write its files.
  /^rotate\/(?!zone_servers\.ts$|state_file\.ts$)/,
  /^lua\//,
  // lib/milter is pure but for the socket adapters and the MTA-side client.
  /^milter\/(?!server\.ts$|client\.ts$|unix_socket\.ts$|inherited_listener\.ts$)/,
];

/** One rule broken. */
interface Breach {
  readonly rule: string;
  readonly detail: string;
}

const IMPORT =
  /(?:^|[\s;])(?:import|export)\s[^"';]*?from\s*["']([^"']+)["']|import\s*\(\s*["']([^"']+)["']\s*\)|^\s*import\s*["']([^"']+)["']/gm;

/** The code without comments, so doc examples and prose do not count as imports or Deno use. */
function stripComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`\\])\/\/.*$/gm, "$1");
}

/** The lib-relative files `file` imports from lib (other specifiers are left out). */
function importsOf(file: string, source: string): string[] {
  const out: string[] = [];
  for (const m of stripComments(source).matchAll(IMPORT)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (!spec.startsWith(".")) continue;
    const target = normalize(join(dirname(file), spec));
    if (!target.startsWith("..")) out.push(target);
  }
  return out;
}

const folderOf = (file: string) => (file.includes("/") ? file.slice(0, file.indexOf("/")) : ".");

/** Every cycle's members, one list per strongly connected component with more than one node. */
function cycles(graph: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  let index = 0;
  const indices = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    indices.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!indices.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) {
        low.set(v, Math.min(low.get(v)!, indices.get(w)!));
      }
    }
    if (low.get(v) === indices.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || graph.get(v)?.has(v)) found.push(component.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!indices.has(v)) visit(v);
  return found;
}

/** Judges a tree of lib files (lib-relative path → source) against the layering rules. */
function checkLayering(files: ReadonlyMap<string, string>): Breach[] {
  const breaches: Breach[] = [];
  const fileGraph = new Map<string, Set<string>>();
  const folderGraph = new Map<string, Set<string>>();
  for (const [file, source] of files) {
    const from = folderOf(file);
    const edges = new Set<string>();
    for (const target of importsOf(file, source)) {
      edges.add(target);
      const to = folderOf(target);
      if (to !== from) {
        if (!folderGraph.has(from)) folderGraph.set(from, new Set());
        folderGraph.get(from)!.add(to);
      }
      if (FORBIDDEN[from]?.includes(to)) {
        breaches.push({
          rule: `${from} imports nothing from ${to}`,
          detail: `${file} → ${target}`,
        });
      }
    }
    fileGraph.set(file, edges);
    if (PURE.some((p) => p.test(file)) && /\bDeno\./.test(stripComments(source))) {
      breaches.push({ rule: "no Deno. in the pure core", detail: file });
    }
  }
  for (const c of cycles(folderGraph)) {
    breaches.push({ rule: "no import cycle between folders", detail: c.join(" ⇄ ") });
  }
  for (const c of cycles(fileGraph)) {
    breaches.push({ rule: "no import cycle between files", detail: c.join(" ⇄ ") });
  }
  return breaches;
}

async function readLib(): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) await walk(path);
      else if (entry.name.endsWith(".ts")) {
        files.set(relative(LIB, path), await Deno.readTextFile(path));
      }
    }
  };
  await walk(LIB);
  return files;
}

Deno.test("lib/ keeps DESIGN.md's layering: imports point inward, no cycles, Deno only at the edges", async () => {
  const files = await readLib();
  assert.ok(files.size > 50, `read ${files.size} files`);
  assert.ok(files.has("dkim/verify.ts") && files.has("milter/session.ts"));
  const breaches = checkLayering(files);
  assert.deepEqual(breaches, [], breaches.map((b) => `${b.rule}: ${b.detail}`).join("\n"));
});

Deno.test("checkLayering() finds each kind of breach", () => {
  const tree = (entries: Record<string, string>) => new Map(Object.entries(entries));
  const clean = tree({
    "bytes.ts": "export const CR = 13;\n",
    "dkim/a.ts": 'import { CR } from "../bytes.ts";\n/** `Deno.exit()` in prose. */\n',
    "milter/session.ts": '// import { x } from "../config/x.ts";\nexport {};\n',
    "milter/server.ts": 'import "./session.ts";\nDeno.listen({ port: 0 });\n',
    "config/load.ts": 'import { CR } from "../bytes.ts";\nawait Deno.readFile("/x");\n',
    "cli/main.ts": 'export * from "../config/load.ts";\nconst m = await import("../dkim/a.ts");\n',
  });
  assert.deepEqual(checkLayering(clean), []);

  const inward = checkLayering(tree({
    "dkim/a.ts": 'import type { Config } from "../config/schema.ts";\n',
    "config/schema.ts": "export interface Config {}\n",
  }));
  assert.deepEqual(inward, [
    { rule: "dkim imports nothing from config", detail: "dkim/a.ts → config/schema.ts" },
  ]);

  const milter = checkLayering(tree({
    "milter/session.ts": 'export { x } from "../filter/x.ts";\n',
    "filter/x.ts": "export const x = 1;\n",
  }));
  assert.equal(milter[0].rule, "milter imports nothing from filter");

  const deno = checkLayering(tree({
    "policy/p.ts": "export const cwd = () => Deno.cwd();\n",
    "milter/codec.ts": "Deno.exit(1);\n",
    "milter/client.ts": "Deno.connect({ port: 1 });\n",
  }));
  assert.deepEqual(deno.map((b) => b.detail).sort(), ["milter/codec.ts", "policy/p.ts"]);

  const loops = checkLayering(tree({
    "dkim/result.ts": 'import type { Signature } from "./signature.ts";\n',
    "dkim/signature.ts": 'import { DkimError } from "./result.ts";\n',
    "config/a.ts": 'import "../ops/b.ts";\n',
    "ops/b.ts": 'import "../config/a.ts";\n',
  }));
  assert.deepEqual(loops, [
    { rule: "no import cycle between folders", detail: "config ⇄ ops" },
    { rule: "no import cycle between files", detail: "config/a.ts ⇄ ops/b.ts" },
    { rule: "no import cycle between files", detail: "dkim/result.ts ⇄ dkim/signature.ts" },
  ]);
});
