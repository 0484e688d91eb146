// The test harness: a real `tlao dev` on a temporary data dir and a free port, with the
// stand-in kiro-cli first on its PATH, and a headless Chromium driven by playwright-core.
//
// - TLAO_BIN: the tlao binary (default: target/debug/tlao of this repository).
// - CHROMIUM: the browser (default: /usr/bin/chromium).
// - Screenshots go to target/console-screenshots/.

import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, mkdir } from "node:fs/promises";
import { createInterface } from "node:readline";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

export const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, "../..");
export const screenshotDir = path.join(repo, "target", "console-screenshots");
export const axePath = path.join(here, "node_modules", "axe-core", "axe.min.js");

/** A running `tlao dev`: its URL, data dir, admin key and default workspace. */
export async function startDevServer(extraEnv = {}) {
  const bin = process.env.TLAO_BIN || path.join(repo, "target", "debug", "tlao");
  const dir = await mkdtemp(path.join(tmpdir(), "tlao-console-"));
  const dataDir = path.join(dir, "data");
  const env = {
    ...process.env,
    PATH: `${path.join(repo, "tests", "fixtures")}:${process.env.PATH}`,
    TLAO_CONFIG_DIR: path.join(dir, "config"),
    TLAO_LOG: process.env.TLAO_LOG || "warn",
    ...extraEnv,
  };
  delete env.TLAO_API_URL;
  delete env.TLAO_TOKEN;
  // Its own process group, so the server, its workers and their agents stop together.
  const child = spawn(bin, ["dev", "--addr", "127.0.0.1:0", "--data-dir", dataDir], {
    env,
    detached: true,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const printed = [];
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tlao dev did not become ready:\n${printed.join("\n")}`)), 60_000);
    child.on("error", (error) => { clearTimeout(timer); reject(error); });
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`tlao dev exited with ${code}:\n${printed.join("\n")}`)); });
    createInterface({ input: child.stdout }).on("line", (line) => {
      printed.push(line);
      const match = /^Ready: (\S+)/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
  });
  const url = await ready;
  const workspace = printed.map((line) => /workspace:\s+(ws_\S+)/.exec(line)).find(Boolean)?.[1];
  const consoleLine = printed.find((line) => line.startsWith("Console: "));
  const adminKey = (await readFile(path.join(dataDir, "admin.key"), "utf8")).trim();
  return {
    url,
    dataDir,
    adminKey,
    workspace,
    consoleLine,
    async stop() {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {
        return;
      }
      const exited = new Promise((resolve) => child.once("exit", resolve));
      const timeout = new Promise((resolve) => setTimeout(() => resolve("timeout"), 5000));
      if ((await Promise.race([exited, timeout])) === "timeout") {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Headless Chromium with the flags this offline machine needs. */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** A small JSON client of the REST API (for arranging what the console should show). */
export class Api {
  constructor(url, token) {
    this.url = url;
    this.token = token;
  }

  static async login(url, apiKey) {
    const response = await fetch(`${url}/auth/token`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ apiKey }),
    });
    if (!response.ok) {
      throw new Error(`POST /auth/token: ${response.status} ${await response.text()}`);
    }
    return new Api(url, (await response.json()).token);
  }

  async call(method, route, body) {
    const response = await fetch(`${this.url}${route}`, {
      method,
      headers: {
        Authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) {
      throw new Error(`${method} ${route}: ${response.status} ${text}`);
    }
    return text ? JSON.parse(text) : null;
  }

  async waitForRun(runId, timeoutMs = 30_000) {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const run = await this.call("GET", `/runs/${runId}`);
      if (!["queued", "running"].includes(run.status)) {
        return run;
      }
      if (Date.now() > until) {
        throw new Error(`run ${runId} is still ${run.status}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Saves a full-page screenshot as target/console-screenshots/NAME.png. */
export async function screenshot(page, name) {
  await mkdir(screenshotDir, { recursive: true });
  await page.screenshot({ path: path.join(screenshotDir, `${name}.png`), fullPage: true });
}

/**
 * Runs axe-core on `url` in `auditContext` (which bypasses the page's CSP, the one
 * way to inject axe), once `ready(page)` resolved, and returns the serious and
 * critical violations, printed.
 */
export async function seriousViolations(auditContext, url, label, ready = async () => {}) {
  const page = await auditContext.newPage();
  try {
    await page.goto(url, { waitUntil: "load" });
    await ready(page);
    await page.addScriptTag({ path: axePath });
    const results = await page.evaluate(async () => {
      // eslint-disable-next-line no-undef
      return await axe.run(document, { resultTypes: ["violations"] });
    });
    if (results.passes.length === 0) {
      throw new Error(`axe checked nothing on ${url}`);
    }
    const serious = results.violations.filter((v) => ["serious", "critical"].includes(v.impact));
    for (const violation of serious) {
      console.error(`axe [${label}] ${violation.impact} ${violation.id}: ${violation.help}`);
      for (const node of violation.nodes.slice(0, 5)) {
        console.error(`    ${node.target.join(" ")} — ${node.failureSummary?.split("\n").join(" ")}`);
      }
    }
    const minor = results.violations.filter((v) => !["serious", "critical"].includes(v.impact));
    for (const violation of minor) {
      console.error(`axe [${label}] (${violation.impact}, not failing) ${violation.id}: ${violation.help}`);
    }
    return serious;
  } finally {
    await page.close();
  }
}
