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

/**
 * A module of the built package by its path under dist/, for what the package does not
 * export (e.g. `importDist<typeof import("../dist/sha256.js")>("sha256.js")`).
 */
export async function importDist<T>(file: string): Promise<T> {
  return (await import(pathToFileURL(join(PACKAGE_DIR, "dist", file)).href)) as T;
}

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

/** A local HTTP server that never finishes an answer, to test timeouts and aborts. */
export interface StallingServer {
  /** Its base URL. */
  url: string;
  /** How many requests it received. */
  requests: number;
  /** Closes every connection and stops listening. */
  stop: () => Promise<void>;
}

/**
 * Starts a {@link StallingServer}: `silent` never answers; `head` sends a `200` JSON
 * answer's head and the first byte of its body, then nothing more.
 */
export async function startStallingServer(mode: "silent" | "head"): Promise<StallingServer> {
  const { createServer } = await import("node:http");
  const state = { requests: 0 };
  const server = createServer((_request, response) => {
    state.requests += 1;
    if (mode === "head") {
      response.writeHead(200, { "content-type": "application/json" });
      response.write("{");
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("the stalling server has no port");
  return {
    url: `http://127.0.0.1:${address.port}`,
    get requests() {
      return state.requests;
    },
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** `promise`, or a failure naming `what` when it does not settle within `ms` (so a hang fails instead of blocking the suite). */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
