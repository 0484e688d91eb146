/**
 * `@tlao/sdk`: the TypeScript client of the TLÁO Codex API.
 *
 * This is the runtime-neutral entry point (the package's `browser` and `default`
 * exports): it and everything it loads use web platform APIs only, never a `node:`
 * module, so it runs in browsers, Deno, Bun and edge runtimes as well as in Node. Node
 * loads `node.ts`, which re-exports it.
 *
 * @packageDocumentation
 */

export {
  TlaoClient,
  newIdempotencyKey,
  type ArchiveBody,
  type DownloadOptions,
  type IdempotentCallOptions,
  type ListRunsQuery,
  type ListWorkspacesQuery,
  type TlaoClientOptions,
} from "./client.js";
export {
  MALFORMED_RESPONSE,
  TlaoApiError,
  TlaoConnectionError,
  TlaoError,
  TlaoIntegrityError,
  type TlaoApiErrorInit,
} from "./errors.js";
export {
  END_EVENT,
  RUN_EVENT_TYPES,
  type ArtifactEvent,
  type EndEvent,
  type LogEvent,
  type ProgressEvent,
  type RunEvent,
  type RunEventBase,
  type RunStreamEvent,
  type StatusEvent,
  type TruncatedEvent,
} from "./events.js";
export { DEFAULT_RETRY, type CallOptions, type FetchLike, type RetryPolicy } from "./http.js";
export { paginate, type Page } from "./pagination.js";
export { SseParser, type SseMessage } from "./sse.js";
export { DEFAULT_RECONNECT, DEFAULT_STALL_TIMEOUT_MS, type StreamOptions } from "./stream.js";
export * from "./generated/api-types.js";
