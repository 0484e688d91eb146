// The type generator: the committed file matches the server, and the check fails (and
// tsc with it) when the API changes under the SDK.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";

import { PACKAGE_DIR, startServer, type TestServer } from "./support.js";

const run = promisify(execFile);
const GENERATOR = join(PACKAGE_DIR, "scripts/generate-types.mjs");

let server: TestServer;
let spec: { paths: Record<string, unknown>; components: { schemas: Record<string, { properties?: Record<string, unknown>; required?: string[] }> } };
const scratch = mkdtempSync(join(tmpdir(), "tlao-sdk-generate-"));

before(async () => {
  server = await startServer();
  spec = (await (await fetch(`${server.url}/openapi.json`)).json()) as typeof spec;
});

after(async () => {
  await server?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

/** Runs the generator's check against `document`; returns its exit code and stderr. */
async function check(document: unknown): Promise<{ code: number; stderr: string }> {
  const file = join(scratch, `openapi-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(document));
  try {
    await run(process.execPath, [GENERATOR, "--check", "--file", file]);
    return { code: 0, stderr: "" };
  } catch (error) {
    const failed = error as { code: number; stderr: string };
    return { code: failed.code, stderr: failed.stderr };
  }
}

test("the committed types match the running server's /openapi.json", async () => {
  const result = await check(spec);
  assert.equal(result.code, 0, result.stderr);
});

test("a renamed field fails the check, and the regenerated types fail tsc", async () => {
  const changed = structuredClone(spec);
  // The client checks downloads against `sha256`; the server now calls it `digest`.
  const artifact = changed.components.schemas["ArtifactView"]!;
  artifact.properties!["digest"] = artifact.properties!["sha256"];
  delete artifact.properties!["sha256"];
  artifact.required = artifact.required!.map((name) => (name === "sha256" ? "digest" : name));
  const result = await check(changed);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /does not match the server's \/openapi\.json/);

  // Regenerate into a copy of the sources: the hand-written client no longer compiles.
  const copy = join(scratch, "package");
  for (const entry of ["src", "scripts", "tsconfig.json", "package.json"]) cpSync(join(PACKAGE_DIR, entry), join(copy, entry), { recursive: true });
  const file = join(scratch, "changed.json");
  writeFileSync(file, JSON.stringify(changed));
  await run(process.execPath, [join(copy, "scripts/generate-types.mjs"), "--write", "--file", file]);
  assert.match(readFileSync(join(copy, "src/generated/api-types.ts"), "utf8"), /\bdigest: string;/);
  const tsc = join(PACKAGE_DIR, "node_modules/typescript/bin/tsc");
  const compiled = await run(process.execPath, [tsc, "-p", join(copy, "tsconfig.json"), "--noEmit", "--typeRoots", join(PACKAGE_DIR, "node_modules/@types")]).then(
    () => ({ code: 0, stdout: "" }),
    (error: { code: number; stdout: string }) => error,
  );
  assert.notEqual(compiled.code, 0, "tsc accepted a client whose API changed");
  assert.match(compiled.stdout, /client\.ts.*'sha256'/);
});

test("a removed public operation fails the check", async () => {
  const changed = structuredClone(spec);
  delete changed.paths["/runs/{runId}/cancel"];
  assert.equal((await check(changed)).code, 1);
});

test("internal routes do not reach the generated types", () => {
  const generated = readFileSync(join(PACKAGE_DIR, "src/generated/api-types.ts"), "utf8");
  assert.ok(!generated.includes("/worker/"), "worker routes");
  assert.ok(!generated.includes("/blobs/"), "blob routes");
  assert.ok(!/\binterface LeaseRequest\b/.test(generated), "worker-only schemas");
  assert.match(generated, /\binterface RunView\b/);
});
