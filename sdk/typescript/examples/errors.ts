import { TlaoApiError, TlaoClient, TlaoConnectionError } from "@tlao/sdk";

const client = new TlaoClient({
  apiUrl: process.env.TLAO_API_URL ?? "http://127.0.0.1:7411",
  apiKey: process.env.TLAO_API_KEY,
});

const [workspace] = await client.listWorkspaces();
try {
  await client.createTask({
    workspaceId: workspace?.workspaceId ?? "ws_missing",
    taskType: "doc.write",
    input: { prompt: "   " }, // blank: refused
  });
} catch (error) {
  if (error instanceof TlaoApiError) {
    console.log(`${error.status} ${error.title} (${error.type})`);
    for (const field of error.errors) console.log(`  ${field.field}: ${field.message}`);
    console.log(`request id: ${error.requestId}`);
  } else if (error instanceof TlaoConnectionError) {
    console.log(`cannot reach ${error.url}: ${error.message}`);
  } else {
    throw error;
  }
}
