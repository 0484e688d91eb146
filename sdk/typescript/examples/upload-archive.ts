import { createReadStream } from "node:fs";

import { TlaoClient } from "@tlao/sdk";

const client = new TlaoClient({
  apiUrl: process.env.TLAO_API_URL ?? "http://127.0.0.1:7411",
  apiKey: process.env.TLAO_API_KEY,
});

const archivePath = process.argv[2];
if (!archivePath) throw new Error("usage: upload-archive.js PROJECT.tar.gz");

const workspace = await client.createWorkspace({ name: "my project" });
// A Node stream, a web ReadableStream, a Buffer or a Uint8Array.
const archive = await client.uploadArchive(workspace.workspaceId, createReadStream(archivePath));
console.log(`uploaded ${archive.archiveId}: ${archive.size} bytes, sha256 ${archive.sha256}`);

const task = await client.createTask({
  workspaceId: workspace.workspaceId,
  taskType: "spec.generate",
  input: { prompt: "Plan how to add a changelog", archiveId: archive.archiveId },
});
const run = await client.createRun({ taskId: task.taskId }, { idempotencyKey: `plan-${task.taskId}` });
const finished = await client.waitForRun(run.runId);
console.log(`run ${finished.runId} ${finished.status} with ${finished.artifactIds.length} artifacts`);
