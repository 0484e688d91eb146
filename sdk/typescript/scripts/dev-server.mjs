// Starts a throw-away `tlao dev` server for the type check and the tests, and stops it
// (with every worker process it started) again. Plain Node, no dependencies.

import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

/** The tlao binary: `TLAO_BIN`, else the workspace's debug build. */
export function tlaoBin() {
  return process.env.TLAO_BIN ?? resolve(here, "../../../target/debug/tlao");
}

/**
 * Starts `tlao dev` on a free port with a fresh data directory.
 *
 * @param {{ env?: Record<string, string>, path?: string[], timeoutMs?: number, addr?: string }} [options]
 *   extra environment (e.g. guardrails), directories put first on PATH, how long to
 *   wait for "Ready:", and where to listen (default `127.0.0.1:0`, a free port).
 * @returns {Promise<{ url: string, adminKey: string, workspaceId: string, dataDir: string, pid: number, output: () => string, stop: () => Promise<void> }>}
 */
export async function startDevServer(options = {}) {
  const bin = tlaoBin();
  const root = mkdtempSync(join(tmpdir(), "tlao-sdk-ts-"));
  const dataDir = join(root, "data");
  const pathPrefix = (options.path ?? []).join(":");
  const env = {
    ...process.env,
    XDG_CONFIG_HOME: join(root, "config"),
    XDG_DATA_HOME: join(root, "share"),
    NO_COLOR: "1",
    ...(pathPrefix ? { PATH: `${pathPrefix}:${process.env.PATH ?? ""}` } : {}),
    ...(options.env ?? {}),
  };
  delete env.TLAO_TOKEN;
  delete env.TLAO_API_URL;
  const child = spawn(bin, ["dev", "--addr", options.addr ?? "127.0.0.1:0", "--data-dir", dataDir, "--no-login"], {
    env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => {
    output += chunk;
  });
  const exited = new Promise((resolveExit) => child.once("exit", (code, signal) => resolveExit({ code, signal })));
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {
        // already gone
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }, 5000);
      await exited;
      clearTimeout(timer);
    }
    // Worker processes are in the same group; make sure none outlives the server.
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // the group is empty
    }
    rmSync(root, { recursive: true, force: true });
  };
  const url = await new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`tlao dev (${bin}) printed no "Ready:" line within ${options.timeoutMs ?? 20000} ms:\n${output}`));
    }, options.timeoutMs ?? 20000);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${bin}: ${error.message} (set TLAO_BIN to the tlao binary)`));
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`tlao dev exited (${code ?? signal}) before it was ready:\n${output}`));
    });
    child.stdout.on("data", (chunk) => {
      output += chunk;
      const match = /Ready: (http:\/\/\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolveUrl(match[1]);
      }
    });
  }).catch(async (error) => {
    await stop();
    throw error;
  });
  const workspaceId = /workspace:\s+(ws_\S+)/.exec(output)?.[1] ?? "";
  const adminKey = readFileSync(join(dataDir, "admin.key"), "utf8").trim();
  return { url, adminKey, workspaceId, dataDir, pid: child.pid, output: () => output, stop };
}
