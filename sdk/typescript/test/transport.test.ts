// The transport under every call: token exchanges shared between concurrent calls,
// timeouts, aborts and their listeners, against a real `tlao dev` (through a wrapped
// `fetch` where a call must be slowed down) or a local server that never answers.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { getEventListeners } from "node:events";
import { after, before, test } from "node:test";

import { TlaoClient, TlaoConnectionError, type FetchLike } from "@tlao/sdk";

import { delay, rejection, startServer, startStallingServer, tarGz, within, type StallingServer, type TestServer } from "./support.js";

let server: TestServer;
const stalling: StallingServer[] = [];

before(async () => {
  server = await startServer();
});

after(async () => {
  for (const s of stalling) await s.stop();
  await server?.stop();
});

async function stallingServer(mode: "silent" | "head"): Promise<StallingServer> {
  const started = await startStallingServer(mode);
  stalling.push(started);
  return started;
}

/** A fetch that counts token exchanges and holds each one back for `ms`. */
function slowExchanges(ms: number): { fetch: FetchLike; exchanges: () => number } {
  let exchanges = 0;
  return {
    exchanges: () => exchanges,
    fetch: async (input, init) => {
      if (String(input).endsWith("/auth/token")) {
        exchanges += 1;
        await delay(ms);
      }
      return fetch(input, init);
    },
  };
}

test("aborting one call during a shared token exchange fails that call only", async () => {
  const slow = slowExchanges(300);
  const client = new TlaoClient({ apiUrl: server.url, apiKey: server.adminKey, fetch: slow.fetch });
  const controller = new AbortController();
  const started = Date.now();
  const first = rejection(client.listWorkspaces({ signal: controller.signal }));
  const second = client.listExecutors();
  setTimeout(() => controller.abort(), 50);

  const error = await first;
  assert.ok(error instanceof TlaoConnectionError, String(error));
  assert.match(error.message, /aborted/);
  assert.ok(Date.now() - started < 250, `the aborted call ended at once, not after the exchange (${Date.now() - started} ms)`);
  assert.ok((await second).some((e) => e.name === "shell"));
  assert.equal(slow.exchanges(), 1);
  assert.match(client.token ?? "", /^ey/);
});

test("aborting an event stream during a shared token exchange fails the stream only", async () => {
  const slow = slowExchanges(300);
  const client = new TlaoClient({ apiUrl: server.url, apiKey: server.adminKey, fetch: slow.fetch });
  const controller = new AbortController();
  const task = await server.admin.createTask({ workspaceId: server.workspaceId, taskType: "doc.write", input: { prompt: "abort me" } });
  const run = await server.admin.createRun({ taskId: task.taskId, executor: "shell" });
  const stream = rejection(client.streamRunEvents(run.runId, { signal: controller.signal }).next());
  const call = client.getRun(run.runId);
  setTimeout(() => controller.abort(), 50);
  assert.ok((await stream) instanceof TlaoConnectionError);
  assert.equal((await call).runId, run.runId);
  assert.equal(slow.exchanges(), 1);
});

test("a burst of 401s renews the token once, and calls whose token was replaced meanwhile just retry", async () => {
  const calls: string[] = [];
  const client = new TlaoClient({
    apiUrl: server.url,
    token: "expired.or.forged",
    apiKey: server.adminKey,
    fetch: async (input, init) => {
      calls.push(`${init?.method ?? "GET"} ${new URL(String(input)).pathname}`);
      const response = await fetch(input, init);
      // Spread the 401s out, so most arrive after the first renewal is over.
      if (response.status === 401) await delay(15 * calls.length);
      return response;
    },
  });
  const answers = await Promise.all(Array.from({ length: 20 }, () => client.listWorkspaces()));
  assert.equal(answers.length, 20);
  assert.equal(calls.filter((c) => c === "POST /auth/token").length, 1, calls.join("\n"));
  assert.equal(calls.filter((c) => c === "GET /workspaces").length, 40);
});

test("calls take their abort listener off the caller's signal when they end", async () => {
  const warnings: Error[] = [];
  const onWarning = (warning: Error): void => {
    warnings.push(warning);
  };
  process.on("warning", onWarning);
  try {
    const client = new TlaoClient({ apiUrl: server.url, apiKey: server.adminKey });
    const { signal } = new AbortController();
    const listeners = (): number => getEventListeners(signal, "abort").length;
    for (let i = 0; i < 15; i += 1) await client.listWorkspaces({ signal });
    assert.equal(listeners(), 0, "after sequential calls");
    await Promise.all(Array.from({ length: 8 }, () => client.listExecutors({ signal })));
    assert.equal(listeners(), 0, "after concurrent calls");
    await rejection(client.getRun("run_00000000000000000000000000", { signal }));
    assert.equal(listeners(), 0, "after an error answer");

    const task = await client.createTask({ workspaceId: server.workspaceId, taskType: "doc.write", input: { prompt: "listeners" } }, { signal });
    const run = await client.createRun({ taskId: task.taskId, executor: "shell" }, { signal });
    await client.waitForRun(run.runId, { signal });
    assert.equal(listeners(), 0, "after an event stream");
    let walked = 0;
    for await (const _ of client.runs({ limit: 1 }, { signal })) walked += 1;
    assert.ok(walked >= 1);
    assert.equal(listeners(), 0, "after runs()");
    const [artifact] = await client.listArtifacts(run.runId, { signal });
    assert.ok(artifact);
    await client.downloadArtifact(artifact, { signal });
    const stream = await client.downloadArtifactStream(artifact, { signal });
    await stream.cancel();
    assert.equal(listeners(), 0, "after downloads");
    await client.uploadArchive(server.workspaceId, tarGz({ "a.txt": "a\n" }), { signal });
    assert.equal(listeners(), 0, "after an upload");
    await delay(10);
  } finally {
    process.off("warning", onWarning);
  }
  assert.deepEqual(warnings.map((w) => w.name), []);
});

test("timeoutMs: a server that never answers is a TlaoConnectionError naming the timeout, after every try", async () => {
  const silent = await stallingServer("silent");
  const client = new TlaoClient({ apiUrl: silent.url, token: "t", timeoutMs: 300, retry: { attempts: 2, initialBackoffMs: 1, maxBackoffMs: 1 } });
  const started = Date.now();
  const error = await within(5000, "the call", rejection(client.listWorkspaces()));
  const elapsed = Date.now() - started;
  assert.ok(error instanceof TlaoConnectionError, String(error));
  assert.match(error.message, /timed out after 300 ms/);
  assert.equal(error.url, `${silent.url}/workspaces`);
  assert.equal(silent.requests, 2);
  assert.ok(elapsed >= 550 && elapsed < 2500, `${elapsed} ms`);
});

test("timeoutMs also bounds reading a JSON answer whose body stalls after its head", async () => {
  const stalled = await stallingServer("head");
  const client = new TlaoClient({ apiUrl: stalled.url, token: "t", timeoutMs: 300, retry: { attempts: 1, initialBackoffMs: 1, maxBackoffMs: 1 } });
  const started = Date.now();
  const error = await within(5000, "the call", rejection(client.listWorkspaces()));
  const elapsed = Date.now() - started;
  assert.ok(error instanceof TlaoConnectionError, String(error));
  assert.match(error.message, /timed out after 300 ms/);
  assert.ok(elapsed >= 280 && elapsed < 2500, `${elapsed} ms`);
});

test("a signal aborted during a call ends it at once, without retrying", async () => {
  const silent = await stallingServer("silent");
  const client = new TlaoClient({ apiUrl: silent.url, token: "t", retry: { attempts: 4, initialBackoffMs: 1, maxBackoffMs: 1 } });
  const controller = new AbortController();
  const started = Date.now();
  setTimeout(() => controller.abort(), 100);
  const error = await within(5000, "the call", rejection(client.listWorkspaces({ signal: controller.signal })));
  assert.ok(error instanceof TlaoConnectionError, String(error));
  assert.match(error.message, /aborted/);
  assert.ok(Date.now() - started < 1000, `${Date.now() - started} ms`);
  assert.equal(silent.requests, 1);
});

test("an upload slower than timeoutMs is not cut off; uploadTimeoutMs bounds it when set", async () => {
  const bytes = tarGz({ "README.md": "# slow\n", "data.txt": "x".repeat(4096) });
  const slowly = (): ReadableStream<Uint8Array> => {
    let offset = 0;
    const piece = Math.ceil(bytes.byteLength / 8);
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (offset >= bytes.byteLength) return controller.close();
        await delay(100);
        controller.enqueue(bytes.slice(offset, offset + piece));
        offset += piece;
      },
    });
  };
  const client = new TlaoClient({ apiUrl: server.url, apiKey: server.adminKey, timeoutMs: 300 });
  await client.listWorkspaces(); // the token exchange is not part of what is timed
  const archive = await within(10_000, "the upload", client.uploadArchive(server.workspaceId, slowly()));
  assert.equal(archive.sha256, createHash("sha256").update(bytes).digest("hex"));

  // Bytes too: a server slow to take them (here: a fetch that waits) does not time them out.
  const slowServer = new TlaoClient({
    apiUrl: server.url,
    apiKey: server.adminKey,
    timeoutMs: 300,
    fetch: async (input, init) => {
      if (String(input).endsWith("/archives")) await delay(600);
      return fetch(input, init);
    },
  });
  assert.equal((await slowServer.uploadArchive(server.workspaceId, bytes)).size, bytes.byteLength);

  const bounded = new TlaoClient({ apiUrl: server.url, apiKey: server.adminKey, uploadTimeoutMs: 300 });
  await bounded.listWorkspaces();
  const error = await within(10_000, "the upload", rejection(bounded.uploadArchive(server.workspaceId, slowly())));
  assert.ok(error instanceof TlaoConnectionError, String(error));
  assert.match(error.message, /timed out after 300 ms \(uploadTimeoutMs\)/);
});

test("the global fetch is called as a plain function, as browsers require (not as a method of the client)", async () => {
  const real = globalThis.fetch;
  const receivers: unknown[] = [];
  // Like a browser's fetch: "Illegal invocation" unless called on nothing or the global object.
  globalThis.fetch = function (this: unknown, input: string | URL | Request, init?: RequestInit): Promise<Response> {
    receivers.push(this);
    if (this !== undefined && this !== globalThis) throw new TypeError("Failed to execute 'fetch' on 'Window': Illegal invocation");
    return real(input, init);
  };
  try {
    const client = new TlaoClient({ apiUrl: server.url, apiKey: server.adminKey });
    assert.deepEqual(await client.health(), { status: "ok" });
    assert.ok((await client.listWorkspaces()).length > 0);
    assert.equal(receivers.length, 3, "healthz, the token exchange, workspaces");
  } finally {
    globalThis.fetch = real;
  }
});
