// The web site the browser test loads: one origin serving the test page, the SDK's
// runtime-neutral build, and the TLÁO API under /api (a reverse proxy to `tlao dev`,
// which sends no CORS headers, as a real deployment serving an app and its API together
// would). Plain Node, no dependencies.
//
//   /            → page/ (index.html, flow.mjs)
//   /sdk/...     → sdk/typescript/dist/ (what `@tlao/sdk` resolves to in a browser)
//   /api/...     → the API, with /api stripped; streamed both ways (event streams, uploads)
//
// `corsBlobs` answers `/api/blobs/...` with `Access-Control-Allow-Origin: *`, as an S3
// bucket's CORS rule would, for pages served from another origin.

import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createServer, request as httpRequest } from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const PAGE_DIR = path.join(here, "page");
export const SDK_DIST = path.resolve(here, "../../sdk/typescript/dist");

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".map": "application/json",
};

/** Headers that describe one connection, not the message: never forwarded. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

function forwardable(headers) {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP_BY_HOP.has(name.toLowerCase())));
}

/**
 * Starts the site on a free port of 127.0.0.1. The API's address is given later with
 * `setApi` (the server is started with the site's URL as its public URL, so the site
 * has to exist first). `requests` lists every request as `METHOD /path`.
 */
export async function startSite({ corsBlobs = false } = {}) {
  let api;
  const requests = [];
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const url = new URL(req.url, "http://site");
    if (url.pathname === "/api" || url.pathname.startsWith("/api/")) {
      proxy(req, res, url).catch((error) => fail(res, 502, `proxy: ${error.message}`));
    } else if (url.pathname.startsWith("/sdk/")) {
      serveFile(res, SDK_DIST, url.pathname.slice("/sdk/".length)).catch((error) => fail(res, 500, error.message));
    } else {
      serveFile(res, PAGE_DIR, url.pathname === "/" ? "index.html" : url.pathname.slice(1)).catch((error) =>
        fail(res, 500, error.message),
      );
    }
  });

  async function proxy(req, res, url) {
    if (api === undefined) return fail(res, 503, "no API yet");
    const target = new URL(api);
    const headers = forwardable(req.headers);
    headers.host = target.host;
    const upstream = httpRequest({
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: `${url.pathname.slice("/api".length) || "/"}${url.search}`,
      headers,
    });
    upstream.on("response", (answer) => {
      const out = forwardable(answer.headers);
      if (corsBlobs && url.pathname.startsWith("/api/blobs/")) out["access-control-allow-origin"] = "*";
      res.writeHead(answer.statusCode ?? 502, out);
      answer.pipe(res);
      answer.on("error", () => res.destroy());
    });
    upstream.on("error", (error) => (res.headersSent ? res.destroy() : fail(res, 502, `proxy: ${error.message}`)));
    // The browser went away (a cancelled download, a closed event stream): so does the upstream request.
    res.on("close", () => upstream.destroy());
    req.pipe(upstream);
  }

  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    setApi(url) {
      api = url;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Serves `relative` from `root`, refusing anything outside it. */
async function serveFile(res, root, relative) {
  const file = path.resolve(root, decodeURIComponent(relative));
  if (file !== root && !file.startsWith(`${root}${path.sep}`)) return fail(res, 403, "outside the site");
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) return fail(res, 404, `no ${relative}`);
  res.writeHead(200, {
    "content-type": TYPES[path.extname(file)] ?? "application/octet-stream",
    "content-length": info.size,
    "cache-control": "no-store",
  });
  createReadStream(file).pipe(res);
}

function fail(res, status, message) {
  if (res.headersSent) return res.destroy();
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8" });
  res.end(message);
}
