/**
 * {@link TlaoClient}: one method per public endpoint of the TLÁO Codex API, with request
 * and answer types from the generated OpenAPI types.
 *
 * @module
 */

import { verifying, readAll, toWebStream } from "./download.js";
import { TlaoError } from "./errors.js";
import type {
  ApiKeyView,
  ArchiveView,
  ArtifactView,
  CreateRunRequest,
  CreateTaskRequest,
  CreateUserRequest,
  CreatedApiKey,
  CreatedUser,
  CreateWorkspaceRequest,
  ExecutorView,
  Health,
  Operations,
  RegisterExecutorRequest,
  RunList,
  RunView,
  TaskView,
  TokenResponse,
  WorkspaceList,
  WorkspaceView,
} from "./generated/api-types.js";
import { OPERATIONS } from "./generated/api-types.js";
import { Transport, apiError, redact, type CallOptions, type RequestBody, type TransportOptions } from "./http.js";
import { paginate } from "./pagination.js";
import { randomUuid } from "./random.js";
import { streamRunEvents, type StreamOptions } from "./stream.js";
import type { RunStreamEvent } from "./events.js";

/** How a {@link TlaoClient} reaches and authenticates with the API. */
export type TlaoClientOptions = TransportOptions;

/** Options of calls that create something and accept an `Idempotency-Key`. */
export interface IdempotentCallOptions extends CallOptions {
  /**
   * Sent as `Idempotency-Key`: the same key with the same body returns the first answer
   * again and creates nothing (another body: `409`). Without it the client makes one
   * per call, so its own retries never create twice.
   */
  idempotencyKey?: string | undefined;
}

/** Options of {@link TlaoClient.downloadArtifact} and {@link TlaoClient.downloadArtifactStream}. */
export interface DownloadOptions extends CallOptions {
  /** Check the bytes against the artifact's `size` and `sha256` (default true). */
  verify?: boolean | undefined;
}

/** The filters of {@link TlaoClient.listRuns}. */
export type ListRunsQuery = Operations["list_runs"]["query"];

/** The page of {@link TlaoClient.listWorkspacesPage}: `limit` (1 to 100) and `cursor`. */
export type ListWorkspacesQuery = Operations["list_workspaces"]["query"];

/**
 * The bytes of an archive upload: a buffer, a `Blob` (a browser `File`), a web stream, or
 * any async iterable of chunks (a Node `Readable`). Browsers send streams only over
 * HTTP/2: there, pass bytes or a `Blob`.
 */
export type ArchiveBody = Uint8Array | ArrayBuffer | Blob | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

/** A presigned URL this close (milliseconds) to its expiry is fetched again before use. */
const URL_EXPIRY_MARGIN_MS = 10_000;

/**
 * The TLÁO Codex API client. Every method throws only {@link TlaoError}s:
 * {@link TlaoApiError} for error answers (and unreadable ones), {@link TlaoConnectionError}
 * when no answer came, {@link TlaoIntegrityError} when downloaded bytes do not match.
 *
 * @example
 * ```ts
 * const client = new TlaoClient({ apiUrl: "http://127.0.0.1:7411", apiKey: process.env.TLAO_API_KEY });
 * const [workspace] = await client.listWorkspaces();
 * ```
 */
export class TlaoClient {
  readonly #http: Transport;

  /** @param options - Where the API is and how to authenticate. */
  constructor(options: TlaoClientOptions) {
    this.#http = new Transport(options);
  }

  /** The API's base URL, without a trailing slash. */
  get apiUrl(): string {
    return this.#http.apiUrl;
  }

  /** The session token in use, if one was given or obtained (to store between runs). */
  get token(): string | undefined {
    return this.#http.token;
  }

  // --- authentication and users ---------------------------------------------------

  /** `POST /auth/token`: exchanges `apiKey` for a session token. Does not change the client's token. */
  async exchangeApiKey(apiKey: string, options: CallOptions = {}): Promise<TokenResponse> {
    return this.#http.exchange(apiKey, options.signal);
  }

  /** Exchanges the client's API key for a fresh session token now, keeps it and returns it. */
  async authenticate(options: CallOptions = {}): Promise<string> {
    return this.#http.renew(options.signal);
  }

  /** `POST /users` (administrators): creates a user; the answer holds its only copy of its API key. */
  async createUser(body: CreateUserRequest, options: CallOptions = {}): Promise<CreatedUser> {
    return this.#http.call("create_user", { body: { json: body }, signal: options.signal });
  }

  /** `GET /users/{userId}/keys`: the user's API keys (ids, creation, last use; never the keys), oldest first. The user or an administrator. */
  async listKeys(userId: string, options: CallOptions = {}): Promise<ApiKeyView[]> {
    const list = await this.#http.call("list_keys", { pathParams: { userId }, signal: options.signal });
    return list.items;
  }

  /**
   * `POST /users/{userId}/keys`: issues a new API key to the user; the answer holds its
   * only copy. Rotating is creating a key, then revoking the old one. Sent once.
   */
  async createKey(userId: string, options: CallOptions = {}): Promise<CreatedApiKey> {
    return this.#http.call("create_key", { pathParams: { userId }, signal: options.signal });
  }

  /**
   * `DELETE /users/{userId}/keys/{keyId}`: revokes the key; it gets no more tokens
   * (`401`), while tokens it already got work until they expire. Sent once.
   */
  async revokeKey(userId: string, keyId: string, options: CallOptions = {}): Promise<void> {
    const exchange = await this.#http.send("revoke_key", { pathParams: { userId, keyId }, signal: options.signal });
    await exchange.response.body?.cancel().catch(() => undefined);
    exchange.release();
  }

  /** `GET /healthz`: whether the process is up. */
  async health(options: CallOptions = {}): Promise<Health> {
    return this.#http.call("healthz", { authenticated: false, signal: options.signal });
  }

  /** `GET /readyz`: whether the API can serve requests (its storage answers). */
  async ready(options: CallOptions = {}): Promise<Health> {
    return this.#http.call("readyz", { authenticated: false, signal: options.signal });
  }

  // --- workspaces -------------------------------------------------------------------

  /** `POST /workspaces`: creates a workspace; the caller becomes its member. */
  async createWorkspace(body: CreateWorkspaceRequest, options: CallOptions = {}): Promise<WorkspaceView> {
    return this.#http.call("create_workspace", { body: { json: body }, signal: options.signal });
  }

  /** `GET /workspaces`, every page: all the workspaces the caller belongs to, oldest first. */
  async listWorkspaces(options: CallOptions = {}): Promise<WorkspaceView[]> {
    const all: WorkspaceView[] = [];
    for await (const workspace of this.workspaces(options)) all.push(workspace);
    return all;
  }

  /** `GET /workspaces`: one page of the caller's workspaces, oldest first; pass `nextCursor` back as `cursor` for the next. */
  async listWorkspacesPage(query: ListWorkspacesQuery = {}, options: CallOptions = {}): Promise<WorkspaceList> {
    return this.#http.call("list_workspaces", { query, signal: options.signal });
  }

  /**
   * Every workspace the caller belongs to, oldest first, across pages (fetched as the
   * iteration needs them).
   *
   * @example
   * ```ts
   * for await (const workspace of client.workspaces()) console.log(workspace.name);
   * ```
   */
  workspaces(options: CallOptions = {}): AsyncGenerator<WorkspaceView, void, undefined> {
    return paginate((cursor) => this.listWorkspacesPage({ cursor }, options));
  }

  /** `GET /workspaces/{workspaceId}`. */
  async getWorkspace(workspaceId: string, options: CallOptions = {}): Promise<WorkspaceView> {
    return this.#http.call("get_workspace", { pathParams: { workspaceId }, signal: options.signal });
  }

  /**
   * `POST /workspaces/{workspaceId}/archives`: uploads a tar.gz of files for tasks to
   * work on (`input.archiveId`). A stream is sent as it is read and cannot be retried;
   * bytes and blobs are sent with their length. Not bounded by `timeoutMs` while the
   * archive is sent (see {@link TlaoClientOptions.uploadTimeoutMs}).
   */
  async uploadArchive(workspaceId: string, body: ArchiveBody, options: CallOptions = {}): Promise<ArchiveView> {
    let raw: RequestBody;
    let replayable = true;
    if (body instanceof Uint8Array) raw = body as Uint8Array<ArrayBuffer>;
    else if (body instanceof ArrayBuffer) raw = new Uint8Array(body);
    else if (body instanceof Blob) raw = body;
    else if (body instanceof ReadableStream) {
      raw = body;
      replayable = false;
    } else {
      raw = toWebStream(body);
      replayable = false;
    }
    return this.#http.call("upload_archive", {
      pathParams: { workspaceId },
      body: { raw, contentType: "application/gzip", replayable },
      upload: true,
      signal: options.signal,
    });
  }

  // --- tasks and runs ---------------------------------------------------------------

  /** `POST /tasks`: validates and stores a TaskSpec. Every bad field is in the `400`'s `errors`. */
  async createTask(body: CreateTaskRequest, options: IdempotentCallOptions = {}): Promise<TaskView> {
    return this.#http.call("create_task", {
      body: { json: body },
      headers: { "idempotency-key": options.idempotencyKey ?? newIdempotencyKey() },
      repeatable: true,
      signal: options.signal,
    });
  }

  /** `GET /tasks/{taskId}`. */
  async getTask(taskId: string, options: CallOptions = {}): Promise<TaskView> {
    return this.#http.call("get_task", { pathParams: { taskId }, signal: options.signal });
  }

  /**
   * `POST /runs`: queues a run of the task `taskId` with the first registered executor
   * serving its type. `422` when none does, `429` (with {@link TlaoApiError.retryAfter})
   * past the workspace's daily quota.
   *
   * @example
   * ```ts
   * const run = await client.createRun(task.taskId);
   * ```
   */
  createRun(taskId: string, options?: IdempotentCallOptions): Promise<RunView>;
  /**
   * `POST /runs`: queues a run of `request.taskId`, with `request.executor` when given
   * (else the first registered one serving the task's type). Errors as with a task id.
   *
   * @example
   * ```ts
   * const run = await client.createRun({ taskId: task.taskId, executor: "shell" });
   * ```
   */
  createRun(request: CreateRunRequest, options?: IdempotentCallOptions): Promise<RunView>;
  async createRun(target: string | CreateRunRequest, options: IdempotentCallOptions = {}): Promise<RunView> {
    let body: CreateRunRequest;
    if (typeof target === "string") body = { taskId: target };
    else if (typeof target === "object" && target !== null && !Array.isArray(target)) body = target;
    else {
      // Only reachable from JavaScript, or past the types with a cast: say so before sending anything.
      throw new TlaoError(
        `createRun takes a task id (a string) or { taskId, executor? }, got ${describe(target)}`,
        OPERATIONS.create_run.method,
        this.#http.url("create_run"),
      );
    }
    return this.#http.call("create_run", {
      body: { json: body },
      headers: { "idempotency-key": options.idempotencyKey ?? newIdempotencyKey() },
      repeatable: true,
      signal: options.signal,
    });
  }

  /** `GET /runs/{runId}`: the run, with its kept `logs`. */
  async getRun(runId: string, options: CallOptions = {}): Promise<RunView> {
    return this.#http.call("get_run", { pathParams: { runId }, signal: options.signal });
  }

  /** `GET /runs`: one page of runs, newest first; pass `nextCursor` back as `cursor` for the next. */
  async listRuns(query: ListRunsQuery = {}, options: CallOptions = {}): Promise<RunList> {
    return this.#http.call("list_runs", { query, signal: options.signal });
  }

  /**
   * Every run matching `query`, newest first, across pages (fetched as the iteration
   * needs them).
   *
   * @example
   * ```ts
   * for await (const run of client.runs({ status: "failed" })) console.log(run.runId);
   * ```
   */
  runs(query: Omit<ListRunsQuery, "cursor"> = {}, options: CallOptions = {}): AsyncGenerator<RunView, void, undefined> {
    return paginate((cursor) => this.listRuns({ ...query, cursor }, options));
  }

  /** `POST /runs/{runId}/cancel`: cancels a queued or running run; `409` when it is already over. */
  async cancelRun(runId: string, options: CallOptions = {}): Promise<RunView> {
    return this.#http.call("cancel_run", { pathParams: { runId }, signal: options.signal });
  }

  /**
   * `GET /runs/{runId}/events`: the run's events, each exactly once and in order, then
   * the terminal `end` event, after which the iteration ends. Dropped connections are
   * resumed with `Last-Event-ID`; see {@link StreamOptions}.
   *
   * @example
   * ```ts
   * for await (const event of client.streamRunEvents(run.runId)) {
   *   if (event.type === "log") console.log(event.text);
   *   if (event.type === "end") console.log("finished:", event.status);
   * }
   * ```
   */
  streamRunEvents(runId: string, options: StreamOptions = {}): AsyncGenerator<RunStreamEvent, void, undefined> {
    return streamRunEvents(this.#http, runId, options);
  }

  /** Follows the run's events until it is over, then returns the finished run. */
  async waitForRun(runId: string, options: StreamOptions = {}): Promise<RunView> {
    for await (const event of this.streamRunEvents(runId, options)) {
      if (event.type === "end") break;
    }
    return this.getRun(runId, { signal: options.signal });
  }

  // --- artifacts --------------------------------------------------------------------

  /** `GET /runs/{runId}/artifacts`: the run's artifacts, in the order they were produced. */
  async listArtifacts(runId: string, options: CallOptions = {}): Promise<ArtifactView[]> {
    const list = await this.#http.call("list_run_artifacts", { pathParams: { runId }, signal: options.signal });
    return list.items;
  }

  /** `GET /artifacts/{artifactId}`: the record, with a presigned `downloadUrl` when its bytes are available. */
  async getArtifact(artifactId: string, options: CallOptions = {}): Promise<ArtifactView> {
    return this.#http.call("get_artifact", { pathParams: { artifactId }, signal: options.signal });
  }

  /**
   * An artifact's bytes as a web stream, from its presigned URL (fetched again when the
   * one given is missing or about to expire). Unless `verify` is false, the stream
   * errors with a {@link TlaoIntegrityError} at its end if the bytes do not match the
   * artifact's `size` and `sha256`. Read it to its end or cancel it: until then it holds
   * a listener on `signal`.
   */
  async downloadArtifactStream(
    artifact: string | ArtifactView,
    options: DownloadOptions = {},
  ): Promise<ReadableStream<Uint8Array>> {
    let record = typeof artifact === "string" ? await this.getArtifact(artifact, options) : artifact;
    if (!usableUrl(record)) record = await this.getArtifact(record.artifactId, options);
    const location = record.downloadUrl;
    if (!location) {
      throw new TlaoError(
        `artifact ${record.artifactId} has no download URL (status ${record.status})`,
        "GET",
        this.#http.url("get_artifact", { artifactId: record.artifactId }),
      );
    }
    const url = location.startsWith("/") ? `${this.#http.apiUrl}${location}` : location;
    // Presigned: no Authorization header, so the token never reaches a blob store.
    const exchange = await this.#http.attempt("GET", url, { method: "GET" }, { repeatable: true, signal: options.signal });
    const response = exchange.response;
    if (!response.ok) {
      try {
        throw await apiError(response, "GET", url);
      } finally {
        exchange.release();
      }
    }
    if (response.body === null) {
      exchange.release();
      return new ReadableStream<Uint8Array>({ start: (c) => c.close() });
    }
    // Unchecked downloads still go through `verifying`, so a broken connection is typed.
    const expected = options.verify === false ? {} : { size: record.size, sha256: record.sha256 };
    return verifying(response.body, expected, redact(url), exchange.release);
  }

  /** An artifact's bytes, checked like {@link TlaoClient.downloadArtifactStream}'s. */
  async downloadArtifact(artifact: string | ArtifactView, options: DownloadOptions = {}): Promise<Uint8Array> {
    return readAll(await this.downloadArtifactStream(artifact, options));
  }

  // --- executors --------------------------------------------------------------------

  /** `GET /executors`: every registered executor. */
  async listExecutors(options: CallOptions = {}): Promise<ExecutorView[]> {
    const list = await this.#http.call("list_executors", { signal: options.signal });
    return list.items;
  }

  /** `POST /executors` (administrators): registers an executor. Every bad field is in the `400`'s `errors`. */
  async registerExecutor(body: RegisterExecutorRequest, options: CallOptions = {}): Promise<ExecutorView> {
    return this.#http.call("register_executor", { body: { json: body }, signal: options.signal });
  }

  /** `DELETE /executors/{name}` (administrators). */
  async removeExecutor(name: string, options: CallOptions = {}): Promise<void> {
    const exchange = await this.#http.send("remove_executor", { pathParams: { name }, signal: options.signal });
    await exchange.response.body?.cancel().catch(() => undefined);
    exchange.release();
  }

}

/** A fresh idempotency key: `tlao-` and a random (version 4) UUID, from Web Crypto's random values. */
export function newIdempotencyKey(): string {
  return `tlao-${randomUuid()}`;
}

/** What a value is, for error messages: its type, and the value itself when short. */
function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  const shown = typeof value === "number" || typeof value === "boolean" || typeof value === "bigint" ? ` ${String(value)}` : "";
  return `${typeof value}${shown}`;
}

function usableUrl(record: ArtifactView): boolean {
  if (!record.downloadUrl) return false;
  if (!record.downloadUrlExpiresAt) return true;
  const expires = Date.parse(record.downloadUrlExpiresAt);
  return Number.isNaN(expires) || expires - URL_EXPIRY_MARGIN_MS > Date.now();
}
