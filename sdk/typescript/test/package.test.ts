// What `npm pack` would publish: the manifest's publishing fields and the packed files;
// which entry each runtime gets, and that the runtime-neutral one imports no Node module.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";

import { PACKAGE_DIR } from "./support.js";

const run = promisify(execFile);

interface Manifest {
  license?: string;
  files?: string[];
  publishConfig?: { access?: string };
  repository?: { type?: string; url?: string; directory?: string };
  homepage?: string;
  scripts?: Record<string, string>;
}

test("package.json: public access, repository, homepage, and dist rebuilt by prepack", () => {
  const manifest = JSON.parse(readFileSync(join(PACKAGE_DIR, "package.json"), "utf8")) as Manifest;
  assert.equal(manifest.license, "Apache-2.0");
  assert.deepEqual(manifest.publishConfig, { access: "public" });
  assert.deepEqual(manifest.repository, { type: "git", url: "https://github.com/tlao/codex.git", directory: "sdk/typescript" });
  assert.match(manifest.homepage ?? "", /^https:\/\/github\.com\/tlao\/codex/);
  assert.match(manifest.scripts?.["prepack"] ?? "", /npm run build/);
  assert.equal(manifest.scripts?.["prepublishOnly"], undefined);
  assert.ok(manifest.files?.includes("LICENSE"));
});

test("npm pack ships the license, the README and the built module, and nothing else", async () => {
  const { stdout } = await run("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: PACKAGE_DIR });
  const [packed] = JSON.parse(stdout) as { files: { path: string }[] }[];
  assert.ok(packed);
  const paths = packed.files.map((f) => f.path);
  for (const path of ["LICENSE", "README.md", "package.json", "dist/index.js", "dist/index.d.ts", "dist/generated/api-types.js"]) {
    assert.ok(paths.includes(path), `${path} is packed: ${paths.join(", ")}`);
  }
  const stray = paths.filter((p) => !["LICENSE", "README.md", "package.json"].includes(p) && !p.startsWith("dist/"));
  assert.deepEqual(stray, []);
  const license = readFileSync(join(PACKAGE_DIR, "LICENSE"), "utf8");
  assert.match(license, /^\s*Apache License\s+Version 2\.0, January 2004/);
  assert.match(license, /END OF TERMS AND CONDITIONS/);
});

/** The specifiers a built module imports: static imports and re-exports, and `import("...")` with a literal. */
function importsOf(source: string): string[] {
  const found: string[] = [];
  for (const match of source.matchAll(/^\s*(?:import|export)\b[^;'"]*?\bfrom\s*["']([^"']+)["']|^\s*import\s*["']([^"']+)["']|\bimport\s*\(\s*["']([^"']+)["']\s*\)/gm)) {
    found.push((match[1] ?? match[2] ?? match[3])!);
  }
  return found;
}

/** Every module dist/`entry` loads (itself included), by path under dist/, with what each imports from outside dist/. */
function moduleGraph(entry: string): Map<string, string[]> {
  const dist = join(PACKAGE_DIR, "dist");
  const graph = new Map<string, string[]>();
  const pending = [entry];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (graph.has(file)) continue;
    const source = readFileSync(join(dist, file), "utf8");
    assert.doesNotMatch(source, /\brequire\s*\(/, `${file} calls require`);
    const external: string[] = [];
    for (const specifier of importsOf(source)) {
      if (specifier.startsWith("./") || specifier.startsWith("../")) pending.push(relative(dist, resolve(dist, dirname(file), specifier)));
      else external.push(specifier);
    }
    graph.set(file, external);
  }
  return graph;
}

test("the runtime-neutral entry (dist/index.js) and everything it loads import nothing but each other", () => {
  const graph = moduleGraph("index.js");
  // A sanity check of the scan itself: it follows the entry's re-exports.
  for (const file of ["client.js", "download.js", "sha256.js", "random.js", "http.js", "stream.js", "generated/api-types.js"]) {
    assert.ok(graph.has(file), `${file} is reached from index.js: ${[...graph.keys()].join(", ")}`);
  }
  assert.ok(!graph.has("node.js"), "the Node entry is not part of the core");
  for (const [file, external] of graph) assert.deepEqual(external, [], `${file} imports ${external.join(", ")}`);
  // Nothing under dist/ but the Node entry names a node: module at all, even in a string.
  for (const file of readdirSync(join(PACKAGE_DIR, "dist"), { recursive: true, encoding: "utf8" })) {
    if (!file.endsWith(".js") || file === "node.js") continue;
    const code = readFileSync(join(PACKAGE_DIR, "dist", file), "utf8");
    assert.doesNotMatch(code, /["']node:/, `${file} names a node: module`);
  }
});

test("the Node entry (dist/node.js) is the core plus node:crypto, and nothing else", () => {
  const graph = moduleGraph("node.js");
  assert.deepEqual(graph.get("node.js"), ["node:crypto"]);
  assert.ok(graph.has("index.js"));
  for (const [file, external] of graph) if (file !== "node.js") assert.deepEqual(external, [], `${file} imports ${external.join(", ")}`);
});

test("exports: Node resolves @tlao/sdk to the Node entry, a browser (or any other runtime) to the core", async () => {
  const resolved = async (...flags: string[]): Promise<string> => {
    const script = "process.stdout.write(import.meta.resolve('@tlao/sdk'))";
    const { stdout } = await run(process.execPath, [...flags, "--input-type=module", "-e", script], { cwd: PACKAGE_DIR });
    return relative(PACKAGE_DIR, fileURLToPath(stdout));
  };
  assert.equal(await resolved(), join("dist", "node.js"));
  assert.equal(await resolved("--conditions=browser"), join("dist", "index.js"));
  const manifest = JSON.parse(readFileSync(join(PACKAGE_DIR, "package.json"), "utf8")) as {
    exports: Record<string, Record<string, string>>;
    sideEffects: string[];
    dependencies?: object;
  };
  assert.deepEqual(manifest.exports["."], {
    types: "./dist/index.d.ts",
    browser: "./dist/index.js",
    node: "./dist/node.js",
    default: "./dist/index.js",
  });
  assert.deepEqual(manifest.sideEffects, ["./dist/node.js"], "bundlers keep the Node entry's setup");
  assert.equal(manifest.dependencies, undefined, "no runtime dependencies");
});

test("without a global crypto (as in Node 18), the Node entry still makes idempotency keys, and the core says what is missing", async () => {
  // Node 18 has no globalThis.crypto; later versions' can be deleted, which is as good.
  const core = pathToFileURL(join(PACKAGE_DIR, "dist/index.js")).href;
  const script = `
    delete globalThis.crypto;
    const results = { global: typeof globalThis.crypto };
    try { (await import(${JSON.stringify(core)})).newIdempotencyKey(); results.core = "made a key"; }
    catch (error) { results.core = error.message; }
    results.node = (await import("@tlao/sdk")).newIdempotencyKey();
    process.stdout.write(JSON.stringify(results));
  `;
  const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], { cwd: PACKAGE_DIR });
  const results = JSON.parse(stdout) as { global: string; core: string; node: string };
  assert.equal(results.global, "undefined");
  assert.match(results.core, /no Web Crypto: globalThis\.crypto\.getRandomValues is missing/);
  assert.match(results.node, /^tlao-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});
