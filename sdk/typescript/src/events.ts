/**
 * The typed events of `GET /runs/{runId}/events`.
 *
 * Every type here comes from the generated OpenAPI types: the document describes each
 * stored event ({@link RunEvent}, one variant per `type`) and the terminal
 * {@link StreamEnd}, so a change to the stream's messages fails `check-types` and `tsc`.
 *
 * @module
 */

import type { RunEvent, RunStatusName, StreamEnd } from "./generated/api-types.js";

export type { RunEvent } from "./generated/api-types.js";

/** The fields every stored run event has: `seq` (from 1, gap-free per run; also the SSE `id:`) and `at`. */
export type RunEventBase = Pick<RunEvent, "seq" | "at">;

/** A line of the executor's or the worker's output, ANSI-free. */
export type LogEvent = Extract<RunEvent, { type: "log" }>;

/** A progress report. */
export type ProgressEvent = Extract<RunEvent, { type: "progress" }>;

/** The run's status changed. */
export type StatusEvent = Extract<RunEvent, { type: "status" }>;

/** An artifact was stored. */
export type ArtifactEvent = Extract<RunEvent, { type: "artifact" }>;

/** The log cap was reached; later log bytes are counted, not kept. */
export type TruncatedEvent = Extract<RunEvent, { type: "truncated" }>;

/** The terminal message: the run is over and every event up to `lastSeq` was sent. */
export interface EndEvent extends StreamEnd {
  /** The event type. */
  type: "end";
  /** The run's final status. */
  status: RunStatusName;
}

/** What {@link TlaoClient.streamRunEvents} yields: stored events, then one {@link EndEvent}. */
export type RunStreamEvent = RunEvent | EndEvent;

/** The SSE event names of stored events. */
export const RUN_EVENT_TYPES: readonly RunEvent["type"][] = Object.keys({
  log: true,
  progress: true,
  status: true,
  artifact: true,
  truncated: true,
  tool_call: true,
  plan: true,
  message: true,
  usage: true,
} satisfies Record<RunEvent["type"], true>) as RunEvent["type"][];

/** The SSE event name of the terminal message. */
export const END_EVENT = "end";

/** Whether `name` is the event name of a stored event this SDK knows. */
export function isRunEventType(name: string): name is RunEvent["type"] {
  return (RUN_EVENT_TYPES as readonly string[]).includes(name);
}
