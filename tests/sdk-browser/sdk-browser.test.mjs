// @tlao/sdk's runtime-neutral build (sdk/typescript/dist/index.js, what the package's
// "browser" and "default" exports name) loaded as ES modules into headless Chromium, running
// a whole flow against a real `tlao dev`: API key → token, workspace, archive upload,
// task, createRun(taskId), live events, verified artifact downloads.
//
// The page and the API share one origin (site.mjs proxies /api to tlao dev, whose public
// URL is set to it, so presigned download URLs are on that origin too). The flow runs
// twice: on http://127.0.0.1 (a secure context, with Web Crypto's digest) and on
// http://sdk.test, mapped to 127.0.0.1 (not a secure context: no crypto.subtle, no
// crypto.randomUUID), where downloads go cross-origin to 127.0.0.1 with CORS, as from an
// S3 bucket.
//
// - TLAO_BIN: the tlao binary (default: target/debug/tlao). CHROMIUM: the browser
//   (default /usr/bin/chromium). The SDK must be built (npm run build in sdk/typescript).
// - SDK_BROWSER_DEBUG=1 prints what each flow saw and what its page requested.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

import { startDevServer } from "../../sdk/typescript/scripts/dev-server.mjs";
import { SDK_DIST, startSite } from "./site.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const FIXTURES = path.resolve(here, "../fixtures");
/** The host the insecure-context page is served from; Chromium resolves it to 127.0.0.1. */
const INSECURE_HOST = "sdk.test";
const TEST_TIMEOUT_MS = 90_000;

let site;
let tlao;
let browser;

/** A port no one listens on right now. */
async function freePort() {
  const probe = createServer();
  await new Promise((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/**
 * `tlao dev` announcing the site's /api as its public URL. Its port is picked first (the
 * site proxies to it), so a port taken in between is retried with another.
 */
async function startTlaoBehind(site) {
  for (let attempt = 1; ; attempt += 1) {
    const port = await freePort();
    try {
      const server = await startDevServer({
        addr: `127.0.0.1:${port}`,
        path: [FIXTURES],
        env: { TLAO_SERVER__PUBLIC_URL: `${site.url}/api` },
        timeoutMs: 30_000,
      });
      site.setApi(`http://127.0.0.1:${port}`);
      return server;
    } catch (error) {
      if (attempt >= 3) throw error;
    }
  }
}

/** A gzip'd tarball of `files` (name → content), made with the system `tar`. */
function tarGz(files) {
  const dir = mkdtempSync(path.join(tmpdir(), "tlao-sdk-browser-"));
  try {
    for (const [name, content] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      writeFileSync(path.join(dir, name), content);
    }
    return new Uint8Array(execFileSync("tar", ["-czf", "-", "-C", dir, "."]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

before(async () => {
  assert.ok(existsSync(path.join(SDK_DIST, "index.js")), `build the SDK first: no ${SDK_DIST}/index.js`);
  site = await startSite({ corsBlobs: true });
  tlao = await startTlaoBehind(site);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    timeout: 30_000,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--host-resolver-rules=MAP ${INSECURE_HOST} 127.0.0.1`,
    ],
  });
});

after(async () => {
  await browser?.close();
  await tlao?.stop();
  await site?.stop();
});

/**
 * Opens the test page at `origin`, runs the flow in it against the API at `origin`/api,
 * and returns what the flow saw, with what the page requested and complained about.
 */
async function flowIn(origin, archive) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  const requested = [];
  const pageErrors = [];
  const consoleErrors = [];
  page.on("request", (request) => requested.push(request.url()));
  page.on("pageerror", (error) => pageErrors.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push(message.text());
  });
  try {
    await page.goto(`${origin}/`, { waitUntil: "load" });
    await page.waitForFunction(() => window.tlao !== undefined);
    const seen = await page.evaluate(
      (params) => window.tlao.runFlow(params),
      { apiUrl: `${origin}/api`, apiKey: tlao.adminKey, archive: Array.from(archive) },
    );
    if (process.env.SDK_BROWSER_DEBUG) console.log(JSON.stringify({ seen, requested, consoleErrors }, null, 1));
    return { seen, requested, pageErrors, consoleErrors };
  } finally {
    await context.close();
  }
}

/** What both runs of the flow must show, secure context or not. */
function checkFlow({ seen, requested, pageErrors, consoleErrors }, origin, archive) {
  assert.deepEqual(pageErrors, []);
  // The page logs the failed requests the flow makes on purpose (a stream upload, a 404), nothing else.
  for (const message of consoleErrors) assert.match(message, /^Failed to load resource\b/);
  assert.match(seen.idempotencyKey, /^tlao-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.deepEqual(seen.health, { status: "ok" });
  assert.match(seen.tokenUser, /^usr_/);
  assert.equal(seen.workspaceListed, true);

  const sha256 = createHash("sha256").update(archive).digest("hex");
  assert.deepEqual(seen.archives, [
    { size: archive.byteLength, sha256 },
    { size: archive.byteLength, sha256 },
  ]);
  // Chromium streams a request body only over HTTP/2: a typed error, as the README says.
  assert.equal(seen.streamUpload.connection, true, JSON.stringify(seen.streamUpload));

  // A bare task id: the first executor registered for doc.write, kiro (the stand-in).
  assert.equal(seen.run.executor, "kiro");
  assert.equal(seen.run.status, "queued");
  assert.equal(seen.events.at(-1), "end:completed", seen.events.join(" "));
  assert.ok(seen.events.includes("status:running"), seen.events.join(" "));
  assert.equal(seen.finished.status, "completed");
  assert.ok(seen.downloads.length > 0);
  assert.deepEqual(seen.downloads.map((d) => d.artifactId), seen.finished.artifactIds);
  for (const download of seen.downloads) {
    assert.equal(download.received, download.size, download.name);
    assert.match(download.sha256, /^[0-9a-f]{64}$/);
    if (seen.webCryptoDigest) assert.equal(download.webCryptoSha256, download.sha256, download.name);
  }
  const guide = seen.downloads.find((d) => d.name === "guide.md");
  assert.ok(guide, seen.downloads.map((d) => d.name).join(", "));
  assert.match(guide.text, /^# Guide\n/);

  assert.ok(seen.downloadUrl.startsWith(`${site.url}/api/blobs/`), seen.downloadUrl);
  assert.equal(seen.tampered.integrity, true, JSON.stringify(seen.tampered));
  assert.equal(seen.tampered.tlao, true);
  assert.equal(seen.tampered.expected, "0".repeat(64));
  assert.equal(seen.tampered.actual, seen.downloads[0].sha256);
  assert.equal(seen.streamed, seen.downloads[0].size);

  assert.equal(seen.refusedNumber.tlao, true);
  assert.equal(seen.refusedNumber.api, false);
  assert.equal(seen.refusedNumber.message, "createRun takes a task id (a string) or { taskId, executor? }, got number 42");
  assert.equal(seen.notFound.api, true);
  assert.equal(seen.notFound.status, 404);

  // The page loaded the runtime-neutral build, never the Node entry, and talked to its
  // own origin only (downloads: the blob URLs the server gave).
  const sdkFiles = requested.filter((url) => url.startsWith(`${origin}/sdk/`)).map((url) => url.slice(`${origin}/sdk/`.length));
  assert.ok(sdkFiles.includes("index.js") && sdkFiles.includes("sha256.js"), sdkFiles.join(", "));
  assert.ok(!sdkFiles.includes("node.js"), sdkFiles.join(", "));
  const elsewhere = requested.filter((url) => !url.startsWith(`${origin}/`) && !url.startsWith(`${site.url}/api/blobs/`));
  assert.deepEqual(elsewhere, []);
}

test("in a secure context: the whole flow, with downloads checked by the SDK and by Web Crypto", { timeout: TEST_TIMEOUT_MS }, async () => {
  const archive = tarGz({ "README.md": "# from a browser\n", "src/lib.js": "export const answer = 42;\n" });
  const result = await flowIn(site.url, archive);
  assert.equal(result.seen.secureContext, true);
  assert.equal(result.seen.webCryptoDigest, true);
  checkFlow(result, site.url, archive);
  assert.ok(result.requested.every((url) => url.startsWith(`${site.url}/`)), "one origin for everything");
});

test("outside a secure context (no crypto.subtle): the same flow, downloads checked by the SDK's own SHA-256", { timeout: TEST_TIMEOUT_MS }, async () => {
  const origin = `http://${INSECURE_HOST}:${site.port}`;
  const archive = tarGz({ "notes.md": "insecure but working\n" });
  const result = await flowIn(origin, archive);
  assert.equal(result.seen.secureContext, false);
  assert.equal(result.seen.webCryptoDigest, false);
  checkFlow(result, origin, archive);
});
