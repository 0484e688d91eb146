import { TlaoClient } from "@tlao/sdk";

const client = new TlaoClient({
  apiUrl: process.env.TLAO_API_URL ?? "http://127.0.0.1:7411",
  apiKey: process.env.TLAO_API_KEY,
});

// One page at a time ...
const page = await client.listRuns({ limit: 10 });
console.log(`first page: ${page.items.length} runs, more: ${page.nextCursor !== null && page.nextCursor !== undefined}`);

// ... or every run, newest first, fetching pages as the loop needs them.
let count = 0;
for await (const run of client.runs({ status: "completed", limit: 50 })) {
  console.log(`${run.runId} ${run.taskType} ${run.status} ${run.durationMs ?? "-"} ms`);
  count += 1;
}
console.log(`${count} completed runs`);
