/**
 * The typed events of `GET /runs/{runId}/events`.
 *
 * The OpenAPI document describes the stream only as `text/event-stream` (its data is a
 * string), so the event shapes are written here, after `crates/domain/src/event.rs`;
 * the enums they use ({@link RunStatusName}, {@link ArtifactTypeName}) and the terminal
 * {@link StreamEnd} come from the generated types.
 *
 * @module
 */

import type { ArtifactTypeName, RunStatusName, StreamEnd } from "./generated/api-types.js";

/** The fields every stored run event has. */
export interface RunEventBase {
  /** The sequence number: from 1, gap-free per run; also the SSE `id:`. */
  seq: number;
  /** When the server stored it (RFC 3339). */
  at: string;
}

/** A line of the executor's or the worker's output, ANSI-free. */
export interface LogEvent extends RunEventBase {
  /** The event type. */
  type: "log";
  /** Where the line came from: the executor's `stdout` or `stderr`, or the worker (`system`). */
  stream: "stdout" | "stderr" | "system";
  /** The text, without the trailing newline. */
  text: string;
}

/** A progress report. */
export interface ProgressEvent extends RunEventBase {
  /** The event type. */
  type: "progress";
  /** What is happening. */
  message: string;
  /** How far along, 0 to 100, when known. */
  percent?: number;
}

/** The run's status changed. */
export interface StatusEvent extends RunEventBase {
  /** The event type. */
  type: "status";
  /** The new status. */
  status: RunStatusName;
}

/** An artifact was stored. */
export interface ArtifactEvent extends RunEventBase {
  /** The event type. */
  type: "artifact";
  /** Its id (`art_...`). */
  artifactId: string;
  /** Its name. */
  name: string;
  /** What it is. */
  artifactType: ArtifactTypeName;
}

/** The log cap was reached; later log bytes are counted, not kept. */
export interface TruncatedEvent extends RunEventBase {
  /** The event type. */
  type: "truncated";
  /** The cap, in bytes. */
  maxLogBytes: number;
}

/** A stored event of a run. */
export type RunEvent = LogEvent | ProgressEvent | StatusEvent | ArtifactEvent | TruncatedEvent;

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
export const RUN_EVENT_TYPES: readonly RunEvent["type"][] = ["log", "progress", "status", "artifact", "truncated"];

/** The SSE event name of the terminal message. */
export const END_EVENT = "end";

/** Whether `name` is the event name of a stored event this SDK knows. */
export function isRunEventType(name: string): name is RunEvent["type"] {
  return (RUN_EVENT_TYPES as readonly string[]).includes(name);
}
