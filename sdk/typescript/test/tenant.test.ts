// Tenant limits and API keys against a real `tlao dev` whose users may own 3 workspaces:
// the 429 naming the limit, paging through workspaces, and keys listed, created and
// revoked (a revoked key gets no token).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { TlaoApiError, TlaoClient } from "@tlao/sdk";

import { rejection, startServer, type TestServer } from "./support.js";

const MAX_WORKSPACES = 3;

let server: TestServer;
let client: TlaoClient;

before(async () => {
  server = await startServer({ env: { TLAO_GUARDRAILS__MAX_WORKSPACES_PER_USER: String(MAX_WORKSPACES) } });
  client = server.admin;
});

after(async () => {
  await server?.stop();
});

describe("workspaces", () => {
  test("429: past the workspaces one user may own, naming the limit, without Retry-After", async () => {
    // `tlao dev` made the administrator's default workspace.
    for (let index = 1; index < MAX_WORKSPACES; index += 1) await client.createWorkspace({ name: `ws ${index}` });
    const error = await rejection(client.createWorkspace({ name: "one too many" }));
    assert.ok(error instanceof TlaoApiError, String(error));
    assert.equal(error.status, 429);
    assert.equal(error.type, "urn:tlao:problem:limit-reached");
    assert.equal(error.problem?.limit, "maxWorkspacesPerUser");
    assert.equal(error.problem?.max, MAX_WORKSPACES);
    assert.equal(error.retryAfter, undefined);
  });

  test("listWorkspacesPage pages by cursor; listWorkspaces and workspaces() follow every page", async () => {
    const first = await client.listWorkspacesPage({ limit: 2 });
    assert.equal(first.items.length, 2);
    assert.ok(typeof first.nextCursor === "string", JSON.stringify(first));
    const second = await client.listWorkspacesPage({ limit: 2, cursor: first.nextCursor });
    const paged = [...first.items, ...second.items].map((w) => w.workspaceId);
    assert.equal(paged.length, MAX_WORKSPACES);
    assert.equal(paged[0], server.workspaceId, "oldest first");

    assert.deepEqual((await client.listWorkspaces()).map((w) => w.workspaceId), paged);
    const iterated: string[] = [];
    for await (const workspace of client.workspaces()) iterated.push(workspace.workspaceId);
    assert.deepEqual(iterated, paged);
  });

  test("400: a bad page parameter, with the field named", async () => {
    const error = await rejection(client.listWorkspacesPage({ limit: 0 }));
    assert.ok(error instanceof TlaoApiError, String(error));
    assert.equal(error.status, 400);
    assert.deepEqual(error.errors.map((e) => e.field), ["limit"]);
  });
});

describe("API keys", () => {
  test("createKey, listKeys and revokeKey; a revoked key gets no token", async () => {
    const { userId } = await client.exchangeApiKey(server.adminKey);
    const created = await client.createKey(userId);
    assert.match(created.keyId, /^key_/);
    assert.match(created.apiKey, /^tlao_/);
    assert.equal(created.userId, userId);

    const listed = await client.listKeys(userId);
    assert.deepEqual(listed.map((k) => k.keyId).slice(-1), [created.keyId]);
    assert.ok(!JSON.stringify(listed).includes("tlao_"), "never the key itself");
    const withNewKey = new TlaoClient({ apiUrl: server.url, apiKey: created.apiKey });
    await withNewKey.authenticate();

    await client.revokeKey(userId, created.keyId);

    const refused = await rejection(new TlaoClient({ apiUrl: server.url, apiKey: created.apiKey }).authenticate());
    assert.ok(refused instanceof TlaoApiError, String(refused));
    assert.equal(refused.status, 401);
    assert.ok(!(await client.listKeys(userId)).some((k) => k.keyId === created.keyId));
    const again = await rejection(client.revokeKey(userId, created.keyId));
    assert.ok(again instanceof TlaoApiError && again.status === 404, String(again));
  });

  test("403: another user's keys", async () => {
    const other = await client.createUser({ name: "other" });
    const otherClient = new TlaoClient({ apiUrl: server.url, apiKey: other.apiKey });
    const { userId: adminId } = await client.exchangeApiKey(server.adminKey);
    const error = await rejection(otherClient.listKeys(adminId));
    assert.ok(error instanceof TlaoApiError && error.status === 403, String(error));
    assert.deepEqual((await otherClient.listKeys(other.userId)).map((k) => k.keyId), [other.keyId]);
  });
});
