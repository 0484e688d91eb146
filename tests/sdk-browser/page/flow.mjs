// What the browser test runs in the page: a whole flow with @tlao/sdk, from an API key to
// a verified artifact download. Returns what it saw, as plain data for the test to check.

import {
  TlaoApiError,
  TlaoClient,
  TlaoConnectionError,
  TlaoError,
  TlaoIntegrityError,
  newIdempotencyKey,
} from "@tlao/sdk";

/** The lower-case hex of `bytes`. */
function hex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** What `promise` failed with, described; `"resolved"` when it did not fail. */
async function failure(promise) {
  try {
    await promise;
    return "resolved";
  } catch (error) {
    return {
      name: error?.name,
      message: String(error?.message),
      tlao: error instanceof TlaoError,
      api: error instanceof TlaoApiError,
      connection: error instanceof TlaoConnectionError,
      integrity: error instanceof TlaoIntegrityError,
      status: error?.status,
      expected: error?.expected,
      actual: error?.actual,
    };
  }
}

/**
 * @param {{ apiUrl: string, apiKey: string, archive: number[] }} params - the API (same
 *   origin as the page), the administrator's key, and a tar.gz archive's bytes.
 */
export async function runFlow({ apiUrl, apiKey, archive }) {
  const seen = {
    secureContext: window.isSecureContext,
    webCryptoDigest: typeof globalThis.crypto?.subtle?.digest === "function",
    idempotencyKey: newIdempotencyKey(),
  };

  // An API key exchanged for a session token, which a second client then uses.
  const anonymous = new TlaoClient({ apiUrl });
  seen.health = await anonymous.health();
  const grant = await anonymous.exchangeApiKey(apiKey);
  seen.tokenUser = grant.userId;
  const client = new TlaoClient({ apiUrl, token: grant.token });

  const workspace = await client.createWorkspace({ name: "from a browser" });
  seen.workspaceListed = (await client.listWorkspaces()).some((w) => w.workspaceId === workspace.workspaceId);

  // The archive as bytes, and as the File an <input type="file"> would give.
  const bytes = new Uint8Array(archive);
  const fromBytes = await client.uploadArchive(workspace.workspaceId, bytes);
  const fromFile = await client.uploadArchive(
    workspace.workspaceId,
    new File([bytes], "project.tar.gz", { type: "application/gzip" }),
  );
  seen.archives = [fromBytes, fromFile].map((a) => ({ size: a.size, sha256: a.sha256 }));
  // A stream body: Chromium sends one only over HTTP/2, and tlao dev speaks HTTP/1.1.
  const stream = new ReadableStream({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
  seen.streamUpload = await failure(client.uploadArchive(workspace.workspaceId, stream));

  const task = await client.createTask({
    workspaceId: workspace.workspaceId,
    taskType: "doc.write",
    input: { prompt: "write the docs of this project", archiveId: fromBytes.archiveId },
  });
  const run = await client.createRun(task.taskId); // a bare task id (seed R9.3)
  seen.run = { taskId: run.taskId, status: run.status, executor: run.executor };

  // The live events, over a streamed fetch, to the end.
  seen.events = [];
  for await (const event of client.streamRunEvents(run.runId)) {
    seen.events.push(event.type === "status" || event.type === "end" ? `${event.type}:${event.status}` : event.type);
  }
  const finished = await client.waitForRun(run.runId);
  seen.finished = { status: finished.status, artifactIds: finished.artifactIds };

  // Every artifact, checked by the SDK against its size and sha256 as it streams in.
  seen.downloads = [];
  for (const artifact of await client.listArtifacts(run.runId)) {
    const got = await client.downloadArtifact(artifact);
    seen.downloads.push({
      artifactId: artifact.artifactId,
      name: artifact.name,
      size: artifact.size,
      sha256: artifact.sha256,
      received: got.byteLength,
      // A second opinion where the page may use Web Crypto (secure contexts only).
      webCryptoSha256: seen.webCryptoDigest ? hex(await crypto.subtle.digest("SHA-256", got)) : null,
      text: new TextDecoder().decode(got.subarray(0, 200)),
    });
  }
  const first = await client.getArtifact(finished.artifactIds[0]);
  seen.downloadUrl = first.downloadUrl;
  seen.tampered = await failure(client.downloadArtifact({ ...first, sha256: "0".repeat(64) }));
  seen.streamed = 0;
  const body = await client.downloadArtifactStream(first);
  const reader = body.getReader();
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) seen.streamed += chunk.value.byteLength;

  seen.refusedNumber = await failure(client.createRun(42));
  seen.notFound = await failure(client.getRun("run_00000000000000000000000000"));
  return seen;
}
