// The README's examples: each ```ts block of README.md is a file of examples/, verbatim,
// and each of those files, compiled, runs against a real `tlao dev`.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";

import { PACKAGE_DIR, startServer, tarGz, type TestServer } from "./support.js";

const run = promisify(execFile);
const EXAMPLES = join(PACKAGE_DIR, "examples");
const COMPILED = join(PACKAGE_DIR, "build/examples");

let server: TestServer;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.stop();
});

/** Runs a compiled example with the server's URL and the administrator's key. */
async function example(name: string, args: string[] = []): Promise<string> {
  const { stdout } = await run(process.execPath, [join(COMPILED, `${name}.js`), ...args], {
    env: { ...process.env, TLAO_API_URL: server.url, TLAO_API_KEY: server.adminKey },
    timeout: 30_000,
  });
  return stdout;
}

test("every ```ts block of the README is an example file, and every example file is in the README", () => {
  const readme = readFileSync(join(PACKAGE_DIR, "README.md"), "utf8");
  const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
  const files = readdirSync(EXAMPLES).filter((f) => f.endsWith(".ts")).sort();
  assert.ok(files.length >= 4);
  const sources = files.map((f) => readFileSync(join(EXAMPLES, f), "utf8"));
  for (const [i, file] of files.entries()) {
    assert.ok(blocks.includes(sources[i]), `README.md does not contain examples/${file} verbatim`);
  }
  for (const block of blocks) assert.ok(sources.includes(block ?? ""), `a README block is not an example file:\n${block}`);
});

test("quickstart: runs a task, streams its events, downloads its artifacts", async () => {
  const out = await example("quickstart");
  assert.match(out, /^status: queued$/m);
  assert.match(out, /^\[stdout\] Hello from the TypeScript SDK$/m);
  assert.match(out, /^finished: completed$/m);
  assert.match(out, /^prompt\.txt: \d+ bytes$/m);
  assert.match(out, /^transcript\.txt: \d+ bytes$/m);
});

test("errors: a 400 with its field errors and request id", async () => {
  const out = await example("errors");
  assert.match(out, /^400 Invalid request \(urn:tlao:problem:invalid-request\)$/m);
  assert.match(out, /^ {2}input\.prompt: must not be blank$/m);
  assert.match(out, /^request id: req_\w+$/m);
});

test("upload-archive: uploads a file as a stream, plans with it", async () => {
  const path = join(tmpdir(), `tlao-sdk-example-${process.pid}.tar.gz`);
  writeFileSync(path, tarGz({ "README.md": "# project\n" }));
  try {
    const out = await example("upload-archive", [path]);
    assert.match(out, /^uploaded arc_\w+: \d+ bytes, sha256 [0-9a-f]{64}$/m);
    assert.match(out, /^run run_\w+ completed with [1-9]\d* artifacts$/m);
  } finally {
    rmSync(path, { force: true });
  }
});

test("list-runs: one page, then every completed run", async () => {
  await example("quickstart");
  const out = await example("list-runs");
  assert.match(out, /^first page: [1-9]\d* runs, more: false$/m);
  assert.match(out, /^run_\w+ doc\.write completed \d+ ms$/m);
  assert.match(out, /^[1-9]\d* completed runs$/m);
});
