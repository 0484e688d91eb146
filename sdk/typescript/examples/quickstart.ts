import { TlaoClient } from "@tlao/sdk";

const client = new TlaoClient({
  apiUrl: process.env.TLAO_API_URL ?? "http://127.0.0.1:7411",
  apiKey: process.env.TLAO_API_KEY, // exchanged for a session token on first use
});

const [workspace] = await client.listWorkspaces();
if (!workspace) throw new Error("no workspace yet: create one with client.createWorkspace()");

const task = await client.createTask({
  workspaceId: workspace.workspaceId,
  taskType: "doc.write",
  input: { prompt: "Hello from the TypeScript SDK" },
});
const run = await client.createRun({ taskId: task.taskId, executor: "shell" });

// Every event once, in order, across reconnections; the loop ends after `end`.
for await (const event of client.streamRunEvents(run.runId)) {
  if (event.type === "log") console.log(`[${event.stream}] ${event.text}`);
  else if (event.type === "status") console.log(`status: ${event.status}`);
  else if (event.type === "end") console.log(`finished: ${event.status}`);
}

for (const artifact of await client.listArtifacts(run.runId)) {
  const bytes = await client.downloadArtifact(artifact); // checked against size and sha256
  console.log(`${artifact.name}: ${bytes.byteLength} bytes`);
}
