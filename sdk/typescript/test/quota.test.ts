// 429 from a server whose daily run quota is 1.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { TlaoApiError } from "@tlao/sdk";

import { rejection, startServer, type TestServer } from "./support.js";

let server: TestServer;

before(async () => {
  server = await startServer({ env: { TLAO_GUARDRAILS__DAILY_RUN_QUOTA: "1" } });
});

after(async () => {
  await server?.stop();
});

test("429: the second run of the day, with retryAfter and the problem body", async () => {
  const client = server.admin;
  const task = await client.createTask({ workspaceId: server.workspaceId, taskType: "doc.write", input: { prompt: "quota" } });
  await client.createRun({ taskId: task.taskId, executor: "shell" });
  const error = await rejection(client.createRun({ taskId: task.taskId, executor: "shell" }));
  assert.ok(error instanceof TlaoApiError, String(error));
  assert.equal(error.status, 429);
  assert.equal(error.type, "urn:tlao:problem:quota-exceeded");
  assert.equal(error.method, "POST");
  assert.equal(error.url, `${server.url}/runs`);
  assert.match(error.requestId ?? "", /^req_/);
  assert.ok(error.retryAfter !== undefined && error.retryAfter > 0 && error.retryAfter <= 86_400, `retryAfter ${error.retryAfter}`);
  assert.equal(error.retryAfter, error.problem?.retryAfterSeconds);
});
