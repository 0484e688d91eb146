// Shared test plumbing: a real `tlao dev` per test file, clients for it, archives.

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

import { TlaoClient } from "@tlao/sdk";

import type { DevServer, DevServerOptions } from "../scripts/dev-server.mjs";

/** The package directory (sdk/typescript), found from this file wherever it was compiled to. */
export const PACKAGE_DIR = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, "utf8")).name === "@tlao/sdk") return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot find the @tlao/sdk package directory");
    dir = parent;
  }
})();

/** The stand-in `kiro-cli` lives here. */
export const FIXTURES = join(PACKAGE_DIR, "../../tests/fixtures");

/** A started server and an administrator's client for it. */
export interface TestServer extends DevServer {
  /** A client authenticated with the administrator's API key. */
  admin: TlaoClient;
}

/** Starts `tlao dev` with the stand-in kiro-cli on its PATH. */
export async function startServer(options: DevServerOptions = {}): Promise<TestServer> {
  const module = (await import(pathToFileURL(join(PACKAGE_DIR, "scripts/dev-server.mjs")).href)) as typeof import("../scripts/dev-server.mjs");
  const server = await module.startDevServer({ ...options, path: [FIXTURES, ...(options.path ?? [])] });
  const admin = new TlaoClient({ apiUrl: server.url, apiKey: server.adminKey });
  return Object.assign(server, { admin });
}

/** A gzip'd tarball of `files` (name → content), made with the system `tar`. */
export function tarGz(files: Record<string, string>): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), "tlao-sdk-archive-"));
  try {
    for (const [name, content] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      writeFileSync(join(dir, name), content);
    }
    return new Uint8Array(execFileSync("tar", ["-czf", "-", "-C", dir, "."]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The error `promise` rejects with; fails when it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to fail, but it succeeded");
}

/** A run id that is well formed but names no run. */
export const UNKNOWN_RUN = "run_00000000000000000000000000";
