// What `npm pack` would publish: the manifest's publishing fields and the packed files.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
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
