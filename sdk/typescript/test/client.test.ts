// Every method of TlaoClient against a real `tlao dev`, and the typing of its errors.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";

import {
  TlaoApiError,
  TlaoClient,
  TlaoConnectionError,
  TlaoError,
  TlaoIntegrityError,
  type ArtifactView,
  type RunView,
  type WorkspaceView,
} from "@tlao/sdk";

import { UNKNOWN_RUN, rejection, startServer, tarGz, type TestServer } from "./support.js";

/** Small, so a 413 costs little; the archives of these tests are far below it. */
const MAX_ARCHIVE_BYTES = 64 * 1024;

let server: TestServer;
let client: TlaoClient;
let workspace: WorkspaceView;

before(async () => {
  server = await startServer({ env: { TLAO_GUARDRAILS__MAX_ARCHIVE_BYTES: String(MAX_ARCHIVE_BYTES) } });
  client = server.admin;
  workspace = await client.getWorkspace(server.workspaceId);
});

after(async () => {
  await server?.stop();
});

/** Creates a doc.write task and runs it with the `shell` executor to its end. */
async function finishedShellRun(prompt: string): Promise<RunView> {
  const task = await client.createTask({ workspaceId: workspace.workspaceId, taskType: "doc.write", input: { prompt } });
  const run = await client.createRun({ taskId: task.taskId, executor: "shell" });
  return client.waitForRun(run.runId);
}

function assertApiError(error: unknown, status: number, type: string): asserts error is TlaoApiError {
  assert.ok(error instanceof TlaoApiError, `expected a TlaoApiError, got ${String(error)}`);
  assert.ok(error instanceof TlaoError);
  assert.equal(error.status, status);
  assert.equal(error.type, type);
  assert.ok(error.title.length > 0);
  assert.ok(error.detail.length > 0);
  assert.match(error.requestId ?? "", /^req_/);
  assert.equal(error.problem?.requestId, error.requestId);
  assert.equal(error.problem?.status, status);
  assert.ok(error.url.startsWith(server.url), error.url);
  assert.ok(error.message.includes(String(status)));
}

describe("authentication and users", () => {
  test("exchangeApiKey returns a token for the key's user", async () => {
    const grant = await client.exchangeApiKey(server.adminKey);
    assert.match(grant.token, /^ey/);
    assert.match(grant.userId, /^usr_/);
    assert.ok(Date.parse(grant.expiresAt) > Date.now());
  });

  test("a client with an API key exchanges it lazily, once", async () => {
    const calls: string[] = [];
    const counting = new TlaoClient({
      apiUrl: server.url,
      apiKey: server.adminKey,
      fetch: (input, init) => {
        calls.push(`${init?.method ?? "GET"} ${new URL(String(input)).pathname}`);
        return fetch(input, init);
      },
    });
    assert.equal(counting.token, undefined);
    await counting.listWorkspaces();
    await counting.listExecutors();
    assert.deepEqual(calls, ["POST /auth/token", "GET /workspaces", "GET /executors"]);
    assert.match(counting.token ?? "", /^ey/);
  });

  test("a token about to expire is renewed before use", async () => {
    const exchanges: string[] = [];
    const shortLived = new TlaoClient({
      apiUrl: server.url,
      apiKey: server.adminKey,
      fetch: async (input, init) => {
        const response = await fetch(input, init);
        if (!String(input).endsWith("/auth/token")) return response;
        // Pretend the server grants tokens that expire in 30 s, inside the renewal margin.
        const grant = (await response.json()) as { token: string; expiresAt: string };
        exchanges.push(grant.token);
        return Response.json({ ...grant, expiresAt: new Date(Date.now() + 30_000).toISOString() });
      },
    });
    await shortLived.listWorkspaces();
    await shortLived.listWorkspaces();
    assert.equal(exchanges.length, 2);
    assert.equal(shortLived.token, exchanges[1]);
  });

  test("a rejected token is renewed with the API key once, on a 401", async () => {
    const calls: string[] = [];
    const renewing = new TlaoClient({
      apiUrl: server.url,
      token: "expired.or.forged",
      apiKey: server.adminKey,
      fetch: (input, init) => {
        calls.push(`${init?.method ?? "GET"} ${new URL(String(input)).pathname}`);
        return fetch(input, init);
      },
    });
    const workspaces = await renewing.listWorkspaces();
    assert.ok(workspaces.some((w) => w.workspaceId === server.workspaceId));
    assert.deepEqual(calls, ["GET /workspaces", "POST /auth/token", "GET /workspaces"]);
  });

  test("401: a bad token without a key to renew it", async () => {
    const stranger = new TlaoClient({ apiUrl: server.url, token: "not-a-jwt" });
    const error = await rejection(stranger.listWorkspaces());
    assertApiError(error, 401, "urn:tlao:problem:unauthenticated");
    assert.equal(error.method, "GET");
    assert.equal(error.url, `${server.url}/workspaces`);
  });

  test("401: a wrong API key fails the exchange with a typed error", async () => {
    const wrongKey = new TlaoClient({ apiUrl: server.url, apiKey: "tlao_wrong" });
    const error = await rejection(wrongKey.getRun(UNKNOWN_RUN));
    assertApiError(error, 401, "urn:tlao:problem:unauthenticated");
    assert.equal(error.method, "POST");
    assert.ok(error.url.endsWith("/auth/token"));
  });

  test("createUser makes a user who can sign in; 403 for a non-administrator; 403 outside one's workspaces", async () => {
    const created = await client.createUser({ name: "second user" });
    assert.match(created.userId, /^usr_/);
    const second = new TlaoClient({ apiUrl: server.url, apiKey: created.apiKey });
    const own = await second.createWorkspace({ name: "second's workspace" });
    assert.deepEqual((await second.listWorkspaces()).map((w) => w.workspaceId), [own.workspaceId]);

    assertApiError(await rejection(second.createUser({ name: "third" })), 403, "urn:tlao:problem:forbidden");
    assertApiError(await rejection(second.getWorkspace(server.workspaceId)), 403, "urn:tlao:problem:forbidden");
    assertApiError(await rejection(client.getWorkspace(own.workspaceId)), 403, "urn:tlao:problem:forbidden");
    const run = await finishedShellRun("visible to its workspace only");
    assertApiError(await rejection(second.getRun(run.runId)), 403, "urn:tlao:problem:forbidden");
    const stream = second.streamRunEvents(run.runId);
    assertApiError(await rejection(stream.next()), 403, "urn:tlao:problem:forbidden");
  });

  test("health and ready answer ok without credentials", async () => {
    const anonymous = new TlaoClient({ apiUrl: server.url });
    assert.deepEqual(await anonymous.health(), { status: "ok" });
    assert.deepEqual(await anonymous.ready(), { status: "ok" });
  });
});

describe("workspaces and archives", () => {
  test("createWorkspace, getWorkspace and listWorkspaces agree", async () => {
    const created = await client.createWorkspace({ name: "sdk test" });
    assert.match(created.workspaceId, /^ws_/);
    assert.equal(created.name, "sdk test");
    assert.equal(created.limits.maxArchiveBytes, MAX_ARCHIVE_BYTES);
    assert.deepEqual(await client.getWorkspace(created.workspaceId), created);
    const all = await client.listWorkspaces();
    assert.deepEqual(all.find((w) => w.workspaceId === created.workspaceId), created);
    assert.equal(all[0]?.workspaceId, server.workspaceId, "oldest first");
  });

  test("400: a blank workspace name, with the field named", async () => {
    const error = await rejection(client.createWorkspace({ name: "" }));
    assertApiError(error, 400, "urn:tlao:problem:invalid-request");
    assert.deepEqual(error.errors.map((e) => e.field), ["name"]);
  });

  test("uploadArchive takes bytes, a Blob, a web stream and a Node stream", async () => {
    const bytes = tarGz({ "README.md": "# hello\n", "src/a.txt": "a\n" });
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    const fromBytes = await client.uploadArchive(workspace.workspaceId, bytes);
    assert.match(fromBytes.archiveId, /^arc_/);
    assert.equal(fromBytes.size, bytes.byteLength);
    assert.equal(fromBytes.sha256, sha256);
    assert.equal(fromBytes.key, `workspaces/${workspace.workspaceId}/archives/${fromBytes.archiveId}.tar.gz`);

    const half = Math.floor(bytes.byteLength / 2);
    const web = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.slice(0, half));
        controller.enqueue(bytes.slice(half));
        controller.close();
      },
    });
    const fromWeb = await client.uploadArchive(workspace.workspaceId, web);
    assert.equal(fromWeb.sha256, sha256);
    assert.notEqual(fromWeb.archiveId, fromBytes.archiveId);

    const fromNode = await client.uploadArchive(workspace.workspaceId, Readable.from([Buffer.from(bytes)]));
    assert.equal(fromNode.sha256, sha256);

    const fromBlob = await client.uploadArchive(workspace.workspaceId, new Blob([bytes.slice(0, half), bytes.slice(half)]));
    assert.equal(fromBlob.sha256, sha256);
    assert.equal(fromBlob.size, bytes.byteLength);
  });

  test("413: an archive over the workspace's limit, with maxBytes", async () => {
    const tooBig = new Uint8Array(MAX_ARCHIVE_BYTES + 1024);
    tooBig.set([0x1f, 0x8b]);
    const error = await rejection(client.uploadArchive(workspace.workspaceId, tooBig));
    assertApiError(error, 413, "urn:tlao:problem:too-large");
    assert.equal(error.problem?.maxBytes, MAX_ARCHIVE_BYTES);
  });

  test("413: also when the archive is streamed without a length", async () => {
    let sent = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 16 * MAX_ARCHIVE_BYTES) return controller.close();
        const chunk = new Uint8Array(16 * 1024);
        if (sent === 0) chunk.set([0x1f, 0x8b]);
        sent += chunk.byteLength;
        controller.enqueue(chunk);
      },
    });
    const error = await rejection(client.uploadArchive(workspace.workspaceId, endless));
    assertApiError(error, 413, "urn:tlao:problem:too-large");
    assert.equal(error.problem?.maxBytes, MAX_ARCHIVE_BYTES);
  });

  test("400: an archive that is not gzip", async () => {
    const error = await rejection(client.uploadArchive(workspace.workspaceId, new TextEncoder().encode("plain text")));
    assertApiError(error, 400, "urn:tlao:problem:invalid-request");
  });
});

describe("tasks and runs", () => {
  test("createTask and getTask; an archive goes into the task's input", async () => {
    const archive = await client.uploadArchive(workspace.workspaceId, tarGz({ "notes.md": "notes\n" }));
    const task = await client.createTask({
      workspaceId: workspace.workspaceId,
      taskType: "spec.generate",
      input: { prompt: "plan the work", archiveId: archive.archiveId },
      constraints: { maxRunSeconds: 60 },
      expectedOutput: { artifactTypes: ["plan"] },
    });
    assert.match(task.taskId, /^task_/);
    assert.equal(task.taskType, "spec.generate");
    assert.equal(task.spec.input.archiveId, archive.archiveId);
    assert.deepEqual(await client.getTask(task.taskId), task);
  });

  test("400: createTask reports every bad field at once", async () => {
    const error = await rejection(
      client.createTask({ workspaceId: workspace.workspaceId, taskType: "doc.write", input: { prompt: " " }, constraints: { maxRunSeconds: 0 } }),
    );
    assertApiError(error, 400, "urn:tlao:problem:invalid-request");
    assert.deepEqual(error.errors.map((e) => e.field).sort(), ["constraints.maxRunSeconds", "input.prompt"]);
  });

  test("400: a malformed id; 404: an unknown one", async () => {
    const malformed = await rejection(client.getRun("not-a-run-id"));
    assertApiError(malformed, 400, "urn:tlao:problem:invalid-request");
    assert.deepEqual(malformed.errors.map((e) => e.field), ["runId"]);
    assertApiError(await rejection(client.getRun(UNKNOWN_RUN)), 404, "urn:tlao:problem:not-found");
    assertApiError(await rejection(client.getTask("task_00000000000000000000000000")), 404, "urn:tlao:problem:not-found");
    assertApiError(await rejection(client.getArtifact("art_00000000000000000000000000")), 404, "urn:tlao:problem:not-found");
    assertApiError(await rejection(client.getWorkspace("ws_00000000000000000000000000")), 404, "urn:tlao:problem:not-found");
    assertApiError(await rejection(client.listArtifacts(UNKNOWN_RUN)), 404, "urn:tlao:problem:not-found");
    assertApiError(await rejection(client.cancelRun(UNKNOWN_RUN)), 404, "urn:tlao:problem:not-found");
  });

  test("createRun queues a run that completes; getRun carries its logs", async () => {
    const task = await client.createTask({ workspaceId: workspace.workspaceId, taskType: "doc.write", input: { prompt: "write hello" } });
    const run = await client.createRun({ taskId: task.taskId, executor: "shell" });
    assert.match(run.runId, /^run_/);
    assert.equal(run.status, "queued");
    assert.equal(run.executor, "shell");
    assert.equal(run.taskId, task.taskId);
    const done = await client.waitForRun(run.runId);
    assert.equal(done.status, "completed");
    assert.match(done.logs ?? "", /write hello/);
    assert.equal(done.artifactIds.length, 2);
  });

  test("createRun takes a bare task id: the first executor serving the task's type runs it", async () => {
    const task = await client.createTask({ workspaceId: workspace.workspaceId, taskType: "doc.write", input: { prompt: "write docs by id" } });
    const first = (await client.listExecutors()).find((e) => e.taskTypes.includes("doc.write"));
    assert.ok(first);
    const run = await client.createRun(task.taskId);
    assert.match(run.runId, /^run_/);
    assert.equal(run.taskId, task.taskId);
    assert.equal(run.executor, first.name);
    assert.equal(run.status, "queued");
    const done = await client.waitForRun(run.runId);
    assert.equal(done.status, "completed");
    assert.ok(done.artifactIds.length > 0);
  });

  test("createRun(taskId) sends { taskId } with a fresh Idempotency-Key, like createRun({ taskId })", async () => {
    const task = await client.createTask({ workspaceId: workspace.workspaceId, taskType: "doc.write", input: { prompt: "same body" } });
    const sent: { body: unknown; key: string | null }[] = [];
    const recording = new TlaoClient({
      apiUrl: server.url,
      apiKey: server.adminKey,
      fetch: (input, init) => {
        if (init?.method === "POST" && new URL(String(input)).pathname === "/runs") {
          sent.push({ body: JSON.parse(String(init.body)), key: new Headers(init.headers).get("idempotency-key") });
        }
        return fetch(input, init);
      },
    });
    const byId = await recording.createRun(task.taskId);
    const byRequest = await recording.createRun({ taskId: task.taskId });
    assert.notEqual(byRequest.runId, byId.runId, "two calls without a key make two runs");
    assert.deepEqual(sent.map((s) => s.body), [{ taskId: task.taskId }, { taskId: task.taskId }]);
    assert.match(sent[0]?.key ?? "", /^tlao-[0-9a-f-]{36}$/);
    assert.match(sent[1]?.key ?? "", /^tlao-[0-9a-f-]{36}$/);
    assert.notEqual(sent[0]?.key, sent[1]?.key);

    // The same key and the same body, whichever form wrote it: the first run again.
    const key = `sdk-by-id-${Date.now()}`;
    const once = await client.createRun(task.taskId, { idempotencyKey: key });
    assert.equal((await client.createRun(task.taskId, { idempotencyKey: key })).runId, once.runId);
    assert.equal((await client.createRun({ taskId: task.taskId }, { idempotencyKey: key })).runId, once.runId);
    const conflict = await rejection(client.createRun({ taskId: task.taskId, executor: "shell" }, { idempotencyKey: key }));
    assertApiError(conflict, 409, "urn:tlao:problem:conflict");
    for (const id of [byId.runId, byRequest.runId, once.runId]) await client.waitForRun(id);
  });

  test("createRun refuses anything but a task id or a request object, before sending anything", async () => {
    let requests = 0;
    const counting = new TlaoClient({
      apiUrl: server.url,
      apiKey: server.adminKey,
      fetch: (input, init) => {
        requests += 1;
        return fetch(input, init);
      },
    });
    const cases: [unknown, string][] = [
      [42, "number 42"],
      [null, "null"],
      [undefined, "undefined"],
      [true, "boolean true"],
      [["task_00000000000000000000000000"], "an array"],
      [() => "task_00000000000000000000000000", "function"],
    ];
    for (const [value, shown] of cases) {
      const error = await rejection(counting.createRun(value as string));
      assert.ok(error instanceof TlaoError, `${shown}: ${String(error)}`);
      assert.ok(!(error instanceof TlaoApiError) && !(error instanceof TlaoConnectionError), shown);
      assert.equal(error.message, `createRun takes a task id (a string) or { taskId, executor? }, got ${shown}`);
      assert.equal(error.method, "POST");
      assert.equal(error.url, `${server.url}/runs`);
    }
    assert.equal(requests, 0, "nothing was sent");
    // The types say the same: these lines compile only because each is an expected error.
    // @ts-expect-error a number is not a task id
    await rejection(counting.createRun(42));
    // @ts-expect-error an object without taskId is not a request
    await rejection(counting.createRun({ executor: "shell" }));
  });

  test("createRun: an empty task id is the server's 400, naming taskId", async () => {
    const error = await rejection(client.createRun(""));
    assertApiError(error, 400, "urn:tlao:problem:invalid-request");
    assert.deepEqual(error.errors.map((e) => e.field), ["taskId"]);
  });

  test("createRun with an idempotencyKey returns the first run again; another body is a 409", async () => {
    const task = await client.createTask({ workspaceId: workspace.workspaceId, taskType: "doc.write", input: { prompt: "once" } });
    const key = `sdk-test-${Date.now()}`;
    const first = await client.createRun({ taskId: task.taskId, executor: "shell" }, { idempotencyKey: key });
    const again = await client.createRun({ taskId: task.taskId, executor: "shell" }, { idempotencyKey: key });
    assert.equal(again.runId, first.runId);
    const conflict = await rejection(client.createRun({ taskId: task.taskId, executor: "kiro" }, { idempotencyKey: key }));
    assertApiError(conflict, 409, "urn:tlao:problem:conflict");
    const runs = await client.listRuns({ workspaceId: workspace.workspaceId, limit: 100 });
    assert.equal(runs.items.filter((r) => r.taskId === task.taskId).length, 1);
  });

  test("createRun and createTask retried after a 5xx or a lost answer send the same Idempotency-Key, and create once", async () => {
    type Failure = "502" | "lost";
    /** A client whose first POST to `path` reaches the server but whose answer is replaced by `failure`. */
    const failingOnce = (path: string, failure: Failure) => {
      const keys: string[] = [];
      const firstIds: string[] = [];
      const client = new TlaoClient({
        apiUrl: server.url,
        apiKey: server.adminKey,
        retry: { attempts: 3, initialBackoffMs: 1, maxBackoffMs: 5 },
        fetch: async (input, init) => {
          const real = await fetch(input, init);
          if (init?.method !== "POST" || new URL(String(input)).pathname !== path) return real;
          keys.push(new Headers(init.headers).get("idempotency-key") ?? "");
          if (keys.length > 1) return real;
          const created = (await real.json()) as { runId?: string; taskId?: string };
          firstIds.push(created.runId ?? created.taskId ?? "");
          if (failure === "lost") throw new TypeError("fetch failed");
          return new Response("bad gateway", { status: 502 });
        },
      });
      return { client, keys, firstIds };
    };
    for (const failure of ["502", "lost"] as const) {
      const tasks = failingOnce("/tasks", failure);
      const task = await tasks.client.createTask({ workspaceId: workspace.workspaceId, taskType: "doc.write", input: { prompt: `retried ${failure}` } });
      assert.equal(tasks.keys.length, 2, failure);
      assert.match(tasks.keys[0]!, /^tlao-/);
      assert.equal(tasks.keys[1], tasks.keys[0]);
      assert.deepEqual(tasks.firstIds, [task.taskId]);

      const runs = failingOnce("/runs", failure);
      const run = await runs.client.createRun({ taskId: task.taskId, executor: "shell" });
      assert.equal(runs.keys.length, 2, failure);
      assert.equal(runs.keys[1], runs.keys[0]);
      assert.deepEqual(runs.firstIds, [run.runId]);
      const listed = await client.listRuns({ workspaceId: workspace.workspaceId, limit: 100 });
      assert.deepEqual(listed.items.filter((r) => r.taskId === task.taskId).map((r) => r.runId), [run.runId]);
    }
  });

  test("createTask with an idempotencyKey creates one task", async () => {
    const body = { workspaceId: workspace.workspaceId, taskType: "doc.write" as const, input: { prompt: "idempotent task" } };
    const key = `sdk-task-${Date.now()}`;
    const first = await client.createTask(body, { idempotencyKey: key });
    const again = await client.createTask(body, { idempotencyKey: key });
    assert.equal(again.taskId, first.taskId);
  });

  test("422: no executor serves the task type", async () => {
    const task = await client.createTask({ workspaceId: workspace.workspaceId, taskType: "code.change", input: { prompt: "change" } });
    const error = await rejection(client.createRun({ taskId: task.taskId, executor: "shell" }));
    assertApiError(error, 422, "urn:tlao:problem:no-executor");
    assert.equal(error.problem?.taskType, "code.change");
  });

  test("cancelRun cancels a running run; cancelling it again is a 409", async () => {
    const task = await client.createTask({ workspaceId: workspace.workspaceId, taskType: "doc.write", input: { prompt: "hang" } });
    const run = await client.createRun({ taskId: task.taskId, executor: "kiro" });
    for await (const event of client.streamRunEvents(run.runId)) {
      if (event.type === "status" && event.status === "running") break;
    }
    const cancelled = await client.cancelRun(run.runId);
    assert.equal(cancelled.runId, run.runId);
    const done = await client.waitForRun(run.runId);
    assert.equal(done.status, "cancelled");
    assertApiError(await rejection(client.cancelRun(run.runId)), 409, "urn:tlao:problem:conflict");
  });

  test("listRuns pages with nextCursor; runs() walks every page newest first", async () => {
    const pageWorkspace = await client.createWorkspace({ name: "pages" });
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      const task = await client.createTask({ workspaceId: pageWorkspace.workspaceId, taskType: "doc.write", input: { prompt: `page ${i}` } });
      ids.push((await client.createRun({ taskId: task.taskId, executor: "shell" })).runId);
    }
    const newestFirst = [...ids].reverse();
    const first = await client.listRuns({ workspaceId: pageWorkspace.workspaceId, limit: 2 });
    assert.deepEqual(first.items.map((r) => r.runId), newestFirst.slice(0, 2));
    assert.ok(first.nextCursor);
    const second = await client.listRuns({ workspaceId: pageWorkspace.workspaceId, limit: 2, cursor: first.nextCursor });
    assert.deepEqual(second.items.map((r) => r.runId), newestFirst.slice(2, 4));

    const walked: string[] = [];
    for await (const run of client.runs({ workspaceId: pageWorkspace.workspaceId, limit: 2 })) walked.push(run.runId);
    assert.deepEqual(walked, newestFirst);

    for (const id of ids) await client.waitForRun(id);
    const completed: string[] = [];
    for await (const run of client.runs({ workspaceId: pageWorkspace.workspaceId, status: "completed", limit: 3 })) {
      completed.push(run.runId);
    }
    assert.deepEqual(completed, newestFirst);
  });

  test("400: listRuns with a limit out of range", async () => {
    const error = await rejection(client.listRuns({ limit: 1000 }));
    assertApiError(error, 400, "urn:tlao:problem:invalid-request");
    assert.deepEqual(error.errors.map((e) => e.field), ["limit"]);
  });
});

describe("artifacts", () => {
  let run: RunView;
  let artifacts: ArtifactView[];

  before(async () => {
    run = await finishedShellRun("an artifact body");
    artifacts = await client.listArtifacts(run.runId);
  });

  test("listArtifacts and getArtifact describe the run's artifacts", async () => {
    assert.deepEqual(artifacts.map((a) => a.artifactId), run.artifactIds);
    assert.deepEqual(artifacts.map((a) => a.name), ["prompt.txt", "transcript.txt"]);
    const first = artifacts[0];
    assert.ok(first);
    const fetched = await client.getArtifact(first.artifactId);
    assert.equal(fetched.status, "available");
    assert.equal(fetched.runId, run.runId);
    assert.match(fetched.downloadUrl ?? "", /^http/);
  });

  test("downloadArtifact returns the bytes, checked against size and sha256", async () => {
    const prompt = artifacts.find((a) => a.name === "prompt.txt");
    assert.ok(prompt);
    const bytes = await client.downloadArtifact(prompt.artifactId);
    assert.equal(bytes.byteLength, prompt.size);
    assert.equal(createHash("sha256").update(bytes).digest("hex"), prompt.sha256);
    assert.match(new TextDecoder().decode(bytes), /^an artifact body\n/);
    // From the record as well as from the id.
    assert.deepEqual(await client.downloadArtifact(prompt), bytes);
  });

  test("downloadArtifactStream returns a web stream", async () => {
    const prompt = artifacts[0];
    assert.ok(prompt);
    const stream = await client.downloadArtifactStream(prompt);
    assert.ok(stream instanceof ReadableStream);
    let size = 0;
    for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) size += chunk.byteLength;
    assert.equal(size, prompt.size);
  });

  test("a download that does not match its metadata fails with TlaoIntegrityError", async () => {
    const prompt = artifacts[0];
    assert.ok(prompt);
    const wrongHash = { ...prompt, sha256: "0".repeat(64) };
    const error = await rejection(client.downloadArtifact(wrongHash));
    assert.ok(error instanceof TlaoIntegrityError, String(error));
    assert.equal(error.expected, "0".repeat(64));
    assert.equal(error.actual, prompt.sha256);
    assert.ok(!error.url.includes("signature="), "the presigned signature is not in errors");

    const wrongSize = { ...prompt, size: prompt.size + 1 };
    const sizeError = await rejection(client.downloadArtifact(wrongSize));
    assert.ok(sizeError instanceof TlaoIntegrityError);
    assert.equal(sizeError.expected, String(prompt.size + 1));

    const unchecked = await client.downloadArtifact(wrongHash, { verify: false });
    assert.equal(unchecked.byteLength, prompt.size);
  });

  test("a record whose download URL has expired is fetched again before the download", async () => {
    const prompt = artifacts[0];
    assert.ok(prompt);
    const gets: string[] = [];
    const counting = new TlaoClient({
      apiUrl: server.url,
      apiKey: server.adminKey,
      fetch: (input, init) => {
        const path = new URL(String(input)).pathname;
        if (path.startsWith("/artifacts/")) gets.push(path);
        return fetch(input, init);
      },
    });
    const expired = {
      ...prompt,
      downloadUrl: "http://127.0.0.1:9/blobs/expired?signature=0",
      downloadUrlExpiresAt: new Date(Date.now() - 60_000).toISOString(),
    };
    const bytes = await counting.downloadArtifact(expired);
    assert.equal(bytes.byteLength, prompt.size);
    assert.deepEqual(gets, [`/artifacts/${prompt.artifactId}`]);
  });

  test("a download URL with a broken signature is a typed 403", async () => {
    const prompt = artifacts[0];
    assert.ok(prompt?.downloadUrl);
    const tampered = { ...prompt, downloadUrl: prompt.downloadUrl.replace(/signature=[0-9a-f]+/, `signature=${"0".repeat(64)}`) };
    const error = await rejection(client.downloadArtifact(tampered));
    assert.ok(error instanceof TlaoApiError, String(error));
    assert.equal(error.status, 403);
  });
});

describe("executors", () => {
  test("listExecutors has the defaults; register and remove one", async () => {
    const names = (await client.listExecutors()).map((e) => e.name);
    assert.ok(names.includes("kiro") && names.includes("shell"), names.join());

    const registered = await client.registerExecutor({
      name: "sdk-echo",
      kind: "command",
      taskTypes: ["doc.write"],
      config: { command: ["echo", "{prompt}"] },
    });
    assert.equal(registered.name, "sdk-echo");
    assert.equal(registered.kind, "command");
    assert.ok((await client.listExecutors()).some((e) => e.name === "sdk-echo"));

    const duplicate = await rejection(
      client.registerExecutor({ name: "sdk-echo", kind: "command", taskTypes: ["doc.write"], config: { command: ["echo"] } }),
    );
    assertApiError(duplicate, 409, "urn:tlao:problem:conflict");

    await client.removeExecutor("sdk-echo");
    assert.ok(!(await client.listExecutors()).some((e) => e.name === "sdk-echo"));
    assertApiError(await rejection(client.removeExecutor("sdk-echo")), 404, "urn:tlao:problem:not-found");
  });

  test("400: registerExecutor names every invalid field", async () => {
    // Invalid on purpose, past the types (a JavaScript caller has none): the server names each field.
    const invalid = { name: "Bad Name", kind: "command", taskTypes: [], config: {} } as unknown as Parameters<typeof client.registerExecutor>[0];
    const error = await rejection(client.registerExecutor(invalid));
    assertApiError(error, 400, "urn:tlao:problem:invalid-request");
    const fields = error.errors.map((e) => e.field);
    assert.ok(fields.includes("name") && fields.includes("taskTypes"), fields.join());
  });
});

describe("failures without a usable answer", () => {
  test("an unreachable API is a TlaoConnectionError with method, url and cause, after every try", async () => {
    let tries = 0;
    const nowhere = new TlaoClient({
      apiUrl: "http://127.0.0.1:9",
      token: "t",
      retry: { attempts: 3, initialBackoffMs: 1, maxBackoffMs: 1 },
      fetch: (input, init) => {
        tries += 1;
        return fetch(input, init);
      },
    });
    const error = await rejection(nowhere.getRun(UNKNOWN_RUN));
    assert.ok(error instanceof TlaoConnectionError, String(error));
    assert.equal(error.method, "GET");
    assert.equal(error.url, `http://127.0.0.1:9/runs/${UNKNOWN_RUN}`);
    assert.ok(error.cause !== undefined);
    assert.equal(tries, 3);
  });

  test("an apiUrl that is not an http(s) URL is refused at once, naming it", () => {
    for (const apiUrl of ["localhost:1234", "not a url", "ftp://example.com", ""]) {
      assert.throws(
        () => new TlaoClient({ apiUrl, token: "t" }),
        (error: unknown) => error instanceof TlaoError && !(error instanceof TlaoConnectionError) && error.message.includes(`"${apiUrl}"`),
        apiUrl,
      );
    }
    assert.equal(new TlaoClient({ apiUrl: "https://api.example.com/v1//" }).apiUrl, "https://api.example.com/v1");
  });

  test("an aborted call is a TlaoConnectionError", async () => {
    const controller = new AbortController();
    controller.abort();
    const error = await rejection(client.listWorkspaces({ signal: controller.signal }));
    assert.ok(error instanceof TlaoConnectionError, String(error));
  });

  test("a success answer that is not JSON is a TlaoApiError of type malformed-response", async () => {
    const garbled = new TlaoClient({
      apiUrl: server.url,
      apiKey: server.adminKey,
      fetch: async (input, init) => {
        const real = await fetch(input, init);
        if (!String(input).endsWith("/workspaces")) return real;
        return new Response("{not json", { status: 200, headers: real.headers });
      },
    });
    const error = await rejection(garbled.listWorkspaces());
    assert.ok(error instanceof TlaoApiError, String(error));
    assert.equal(error.type, "urn:tlao:sdk:malformed-response");
    assert.equal(error.status, 200);
    assert.equal(error.problem, undefined);
    assert.match(error.requestId ?? "", /^req_/);
    assert.ok(error.cause instanceof SyntaxError);
  });

  test("a download that breaks off is a TlaoConnectionError, checked or not", async () => {
    const run = await finishedShellRun("broken download");
    const [artifact] = await client.listArtifacts(run.runId);
    assert.ok(artifact);
    const breaking = new TlaoClient({
      apiUrl: server.url,
      apiKey: server.adminKey,
      fetch: async (input, init) => {
        if (!new URL(String(input)).pathname.startsWith("/blobs/")) return fetch(input, init);
        const body = new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(new Uint8Array([1, 2, 3]));
            controller.error(new Error("connection reset"));
          },
        });
        return new Response(body, { status: 200 });
      },
    });
    for (const verify of [true, false]) {
      const error = await rejection(breaking.downloadArtifact(artifact, { verify }));
      assert.ok(error instanceof TlaoConnectionError, String(error));
      assert.equal(error.method, "GET");
      assert.ok(error.url.includes("/blobs/") && !error.url.includes("signature="), error.url);
    }
  });

  test("GETs are retried after a 5xx; POSTs without an idempotency key are not", async () => {
    let failuresLeft = 2;
    const seen: string[] = [];
    const flaky = new TlaoClient({
      apiUrl: server.url,
      apiKey: server.adminKey,
      retry: { attempts: 4, initialBackoffMs: 1, maxBackoffMs: 5 },
      fetch: async (input, init) => {
        const path = `${init?.method ?? "GET"} ${new URL(String(input)).pathname}`;
        seen.push(path);
        if (path !== "POST /auth/token" && failuresLeft > 0) {
          failuresLeft -= 1;
          return new Response("upstream down", { status: 502 });
        }
        return fetch(input, init);
      },
    });
    assert.ok((await flaky.listWorkspaces()).length > 0);
    assert.deepEqual(seen, ["POST /auth/token", "GET /workspaces", "GET /workspaces", "GET /workspaces"]);

    failuresLeft = 1;
    const error = await rejection(flaky.createWorkspace({ name: "not retried" }));
    assert.ok(error instanceof TlaoApiError);
    assert.equal(error.status, 502);
    assert.equal(error.detail, "upstream down");
    assert.equal(error.problem, undefined);
  });
});
