// streamRunEvents against a real `tlao dev`, through a proxy that cuts and freezes the
// connection: every event arrives exactly once, in order, and the iterator ends on `end`.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { TlaoApiError, TlaoClient, TlaoConnectionError, type FetchLike, type RunEvent, type RunStreamEvent } from "@tlao/sdk";

import { FaultyProxy } from "./proxy.js";
import { UNKNOWN_RUN, rejection, startServer, type TestServer } from "./support.js";

let server: TestServer;
let token: string;
const proxies: FaultyProxy[] = [];

before(async () => {
  server = await startServer();
  token = await server.admin.authenticate();
});

after(async () => {
  for (const proxy of proxies) await proxy.stop();
  await server?.stop();
});

async function proxy(faults: ConstructorParameters<typeof FaultyProxy>[1]): Promise<FaultyProxy> {
  const started = await new FaultyProxy(server.url, faults).start();
  proxies.push(started);
  return started;
}

/** A client that reaches the server only through `through` (with a token, so only event streams use it). */
function clientVia(through: FaultyProxy): TlaoClient {
  return new TlaoClient({ apiUrl: through.url, token });
}

/** Runs the stand-in kiro with `prompt` and returns the run id. */
async function kiroRun(prompt: string): Promise<string> {
  const task = await server.admin.createTask({ workspaceId: server.workspaceId, taskType: "doc.write", input: { prompt } });
  return (await server.admin.createRun({ taskId: task.taskId, executor: "kiro" })).runId;
}

async function collect(stream: AsyncIterable<RunStreamEvent>): Promise<RunStreamEvent[]> {
  const events: RunStreamEvent[] = [];
  for await (const event of stream) events.push(event);
  return events;
}

/** Asserts events 1..n, each once and in order, then one `end` with lastSeq n. */
function assertComplete(events: RunStreamEvent[], status: string): RunEvent[] {
  const last = events.at(-1);
  assert.ok(last && last.type === "end", `the last item is the end event, got ${JSON.stringify(last)}`);
  assert.equal(last.status, status);
  const stored = events.slice(0, -1) as RunEvent[];
  assert.ok(stored.every((e) => e.type !== ("end" as string)), "one end event only");
  assert.deepEqual(
    stored.map((e) => e.seq),
    Array.from({ length: last.lastSeq }, (_, i) => i + 1),
  );
  return stored;
}

test("a finished run's events survive two cuts mid-stream: each once, in order, ending on end", async () => {
  const runId = await kiroRun("lines:200 doc");
  await server.admin.waitForRun(runId);
  const cutting = await proxy([
    { afterBytes: 3000, action: "cut" },
    { afterBytes: 5001, action: "cut" },
  ]);
  const reconnects: number[] = [];
  const events = await collect(
    clientVia(cutting).streamRunEvents(runId, {
      reconnect: { attempts: 5, initialBackoffMs: 10, maxBackoffMs: 50 },
      onReconnect: (lastSeq) => reconnects.push(lastSeq),
    }),
  );
  const stored = assertComplete(events, "completed");
  assert.ok(stored.length > 200, `${stored.length} events`);
  const lines = stored.flatMap((e) => (e.type === "log" && /^line \d+$/.test(e.text) ? [e.text] : []));
  assert.deepEqual(lines, Array.from({ length: 200 }, (_, i) => `line ${i + 1}`));

  assert.equal(cutting.connections, 3);
  assert.equal(reconnects.length, 2);
  assert.ok(reconnects[0]! > 0 && reconnects[1]! > reconnects[0]!, `resumed after ${reconnects.join(", ")}`);
  assert.deepEqual(cutting.lastEventIds, [undefined, String(reconnects[0]), String(reconnects[1])]);
});

test("a live run's stream resumes after a cut and ends with the run's final status", async () => {
  const runId = await kiroRun("hang");
  const cutting = await proxy([]);
  const events: RunStreamEvent[] = [];
  let cut = false;
  for await (const event of clientVia(cutting).streamRunEvents(runId, { reconnect: { attempts: 5, initialBackoffMs: 10, maxBackoffMs: 50 } })) {
    events.push(event);
    if (!cut && event.type === "status" && event.status === "running") {
      cut = true;
      cutting.cutAll();
      await server.admin.cancelRun(runId);
    }
  }
  assertComplete(events, "cancelled");
  assert.ok(cut);
  assert.equal(cutting.connections, 2);
  assert.equal((await server.admin.getRun(runId)).status, "cancelled");
});

test("a stalled connection is abandoned after stallTimeoutMs and resumed", async () => {
  const runId = await kiroRun("lines:20 doc");
  await server.admin.waitForRun(runId);
  const freezing = await proxy([{ afterBytes: 1500, action: "freeze" }]);
  const causes: unknown[] = [];
  const started = Date.now();
  const events = await collect(
    clientVia(freezing).streamRunEvents(runId, {
      stallTimeoutMs: 1000,
      reconnect: { attempts: 5, initialBackoffMs: 10, maxBackoffMs: 10 },
      onReconnect: (_, cause) => causes.push(cause),
    }),
  );
  assertComplete(events, "completed");
  assert.ok(freezing.connections >= 2);
  assert.ok(causes[0] instanceof Error && /no data for 1000 ms/.test(causes[0].message), String(causes[0]));
  assert.ok(Date.now() - started >= 1000);
});

test("`after` starts after a sequence number", async () => {
  const runId = await kiroRun("lines:5 doc");
  const all = await collect(server.admin.streamRunEvents(runId));
  const end = all.at(-1);
  assert.ok(end?.type === "end");
  const tail = await collect(server.admin.streamRunEvents(runId, { after: 3 }));
  assert.deepEqual(
    tail.map((e) => (e.type === "end" ? "end" : e.seq)),
    [...Array.from({ length: end.lastSeq - 3 }, (_, i) => i + 4), "end"],
  );
});

test("404 ends the stream at once with a TlaoApiError, without reconnecting", async () => {
  const counting = await proxy([]);
  const error = await rejection(collect(clientVia(counting).streamRunEvents(UNKNOWN_RUN)));
  assert.ok(error instanceof TlaoApiError, String(error));
  assert.equal(error.status, 404);
  assert.equal(counting.connections, 1);
});

test("a stream that keeps failing gives up with a TlaoConnectionError", async () => {
  const runId = await kiroRun("lines:50 doc");
  await server.admin.waitForRun(runId);
  // 100 bytes end inside the HTTP head: no event gets through, so every attempt is a failure.
  const cutting = await proxy(Array.from({ length: 10 }, () => ({ afterBytes: 100, action: "cut" as const })));
  const error = await rejection(
    collect(clientVia(cutting).streamRunEvents(runId, { reconnect: { attempts: 3, initialBackoffMs: 1, maxBackoffMs: 5 } })),
  );
  assert.ok(error instanceof TlaoConnectionError, String(error));
  assert.match(error.message, /3 attempts/);
  assert.equal(error.method, "GET");
  assert.ok(error.url.endsWith(`/runs/${runId}/events`));
  assert.equal(cutting.connections, 3);
});

test("aborting the signal ends the stream with a TlaoConnectionError", async () => {
  const runId = await kiroRun("hang");
  const controller = new AbortController();
  const seen: RunStreamEvent[] = [];
  const error = await rejection(
    (async () => {
      for await (const event of server.admin.streamRunEvents(runId, { signal: controller.signal })) {
        seen.push(event);
        if (event.type === "status" && event.status === "running") controller.abort();
      }
    })(),
  );
  assert.ok(error instanceof TlaoConnectionError, String(error));
  assert.ok(seen.length >= 2);
  await server.admin.cancelRun(runId);
});

/** A fetch whose first event stream breaks off after `cutAfter` bytes; later ones go to the server without `Last-Event-ID`, so it sends every event again. */
function replaying(cutAfter: number): { fetch: FetchLike; strippedIds: string[] } {
  const strippedIds: string[] = [];
  let streams = 0;
  return {
    strippedIds,
    fetch: async (input, init) => {
      if (!String(input).endsWith("/events")) return fetch(input, init);
      streams += 1;
      if (streams > 1) {
        const headers = new Headers(init?.headers);
        strippedIds.push(headers.get("last-event-id") ?? "");
        headers.delete("last-event-id");
        return fetch(input, { ...init, headers });
      }
      const real = await fetch(input, init);
      const reader = real.body!.getReader();
      let forwarded = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          const chunk = await reader.read();
          if (chunk.done) return controller.close();
          const room = cutAfter - forwarded;
          controller.enqueue(chunk.value.subarray(0, room));
          forwarded += Math.min(room, chunk.value.byteLength);
          if (forwarded >= cutAfter) {
            await reader.cancel();
            controller.error(new TypeError("terminated"));
          }
        },
      });
      return new Response(body, { status: real.status, headers: real.headers });
    },
  };
}

test("events the server sends again after a resume are skipped", async () => {
  const runId = await kiroRun("lines:50 doc");
  await server.admin.waitForRun(runId);
  const replay = replaying(2000);
  const reconnects: number[] = [];
  const events = await collect(
    new TlaoClient({ apiUrl: server.url, token, fetch: replay.fetch }).streamRunEvents(runId, {
      reconnect: { attempts: 3, initialBackoffMs: 1, maxBackoffMs: 5 },
      onReconnect: (lastSeq) => reconnects.push(lastSeq),
    }),
  );
  assertComplete(events, "completed");
  assert.equal(reconnects.length, 1);
  assert.ok(reconnects[0]! > 0, "some events arrived before the cut, so the server sent them twice");
  assert.deepEqual(replay.strippedIds, [String(reconnects[0])]);
});

test("a token renewal that cannot reach the API is retried like a dropped connection", async () => {
  const runId = await kiroRun("lines:3 doc");
  await server.admin.waitForRun(runId);
  let exchanges = 0;
  const causes: unknown[] = [];
  const client = new TlaoClient({
    apiUrl: server.url,
    token: "expired.or.forged",
    apiKey: server.adminKey,
    retry: { attempts: 1, initialBackoffMs: 1, maxBackoffMs: 1 },
    fetch: async (input, init) => {
      if (String(input).endsWith("/auth/token")) {
        exchanges += 1;
        if (exchanges === 1) throw new TypeError("fetch failed");
      }
      return fetch(input, init);
    },
  });
  const events = await collect(
    client.streamRunEvents(runId, {
      reconnect: { attempts: 3, initialBackoffMs: 1, maxBackoffMs: 5 },
      onReconnect: (_, cause) => causes.push(cause),
    }),
  );
  assertComplete(events, "completed");
  assert.equal(exchanges, 2);
  assert.equal(causes.length, 1);
  assert.ok(causes[0] instanceof TlaoConnectionError, String(causes[0]));
});
