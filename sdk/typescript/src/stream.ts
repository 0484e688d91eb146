/**
 * A run's events as an async iterator over `GET /runs/{runId}/events`, resuming after
 * dropped connections.
 *
 * It yields every event exactly once and in order, then the terminal {@link EndEvent},
 * then ends. A connection that drops, stalls (no byte, not even a keep-alive comment,
 * for {@link StreamOptions.stallTimeoutMs}) or is refused with a `5xx` or `429` is
 * reopened after a backoff with jitter, resuming with `Last-Event-ID` set to the last
 * sequence number received; events the server sends again anyway are skipped. Any
 * other `4xx` (bad token, no access, no such run) ends the iterator with a
 * {@link TlaoApiError} at once; a `401` is first answered by renewing the token once,
 * and a renewal that cannot reach the API counts as a failed attempt. Failures are
 * counted while no event arrives; after {@link StreamOptions.reconnect}`.attempts` in a
 * row the iterator gives up with a {@link TlaoConnectionError} whose `cause` is the
 * last failure. Each connection takes its listener off `signal` when it is over.
 *
 * @module
 */

import { TlaoApiError, TlaoConnectionError } from "./errors.js";
import { END_EVENT, isRunEventType, type EndEvent, type RunEvent, type RunStreamEvent } from "./events.js";
import type { StreamEnd } from "./generated/api-types.js";
import { apiError, backoff, sleep, type Exchange, type RetryPolicy, type Transport } from "./http.js";
import { SseParser } from "./sse.js";

/** The result of reading a byte stream. */
type ReadResult = Awaited<ReturnType<ReadableStreamDefaultReader<Uint8Array>["read"]>>;

/** Options of {@link TlaoClient.streamRunEvents}. */
export interface StreamOptions {
  /** Start after this sequence number (0, the default: from the first event). */
  after?: number | undefined;
  /** Stops the stream; the iterator then throws a {@link TlaoConnectionError}. */
  signal?: AbortSignal | undefined;
  /**
   * How reconnections are paced: `attempts` failures in a row (without an event in
   * between) end the stream. Default: 10 attempts, 250 ms doubling up to 5 s.
   */
  reconnect?: RetryPolicy | undefined;
  /** How long a connection may stay silent before it is presumed dead (default 45 s; the server sends a keep-alive every 15 s). */
  stallTimeoutMs?: number | undefined;
  /** Called before each reconnection with the sequence number it resumes after (for logging and tests). */
  onReconnect?: ((lastSeq: number, cause: unknown) => void) | undefined;
}

/** The reconnection policy unless told otherwise. */
export const DEFAULT_RECONNECT: RetryPolicy = { attempts: 10, initialBackoffMs: 250, maxBackoffMs: 5000 };

/** The default {@link StreamOptions.stallTimeoutMs}. */
export const DEFAULT_STALL_TIMEOUT_MS = 45_000;

/** Thrown inside the loop when a connection went silent for too long. */
class Stalled extends Error {}

/** Streams the events of `runId`; see the module documentation. */
export async function* streamRunEvents(
  transport: Transport,
  runId: string,
  options: StreamOptions = {},
): AsyncGenerator<RunStreamEvent, void, undefined> {
  const policy = options.reconnect ?? DEFAULT_RECONNECT;
  const stallMs = options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
  const signal = options.signal;
  const url = transport.url("stream_run_events", { runId });
  let lastSeq = options.after ?? 0;
  let failures = 0;
  let renewed = false;
  const parser = new SseParser();

  const aborted = (cause: unknown): TlaoConnectionError =>
    new TlaoConnectionError("the event stream was aborted", "GET", url, signal?.reason ?? cause);

  for (;;) {
    if (signal?.aborted) throw aborted(undefined);
    let failure: unknown;
    let exchange: Exchange | undefined;
    let sent: string | undefined;
    try {
      sent = await transport.bearer(signal);
      const headers: Record<string, string> = { accept: "text/event-stream", "cache-control": "no-cache" };
      if (sent !== undefined) headers["authorization"] = `Bearer ${sent}`;
      if (lastSeq > 0) headers["last-event-id"] = String(lastSeq);
      exchange = await transport.attempt("GET", url, { method: "GET", headers }, {
        repeatable: false,
        signal,
        headTimeout: { ms: stallMs, name: "stallTimeoutMs" },
      });
    } catch (error) {
      if (signal?.aborted) throw aborted(error);
      if (error instanceof TlaoApiError) throw error; // the token exchange was refused
      failure = error;
    }

    if (exchange !== undefined) {
      const response = exchange.response;
      try {
        if (response.status === 401 && !renewed && transport.canRenew) {
          renewed = true;
          await response.body?.cancel().catch(() => undefined);
          try {
            await transport.refresh(sent, signal);
            continue;
          } catch (error) {
            if (signal?.aborted) throw aborted(error);
            if (error instanceof TlaoApiError) throw error; // the token exchange was refused
            renewed = false; // it could not be done: try again on the next attempt
            failure = error;
          }
        } else if (!response.ok) {
          const error = await apiError(response, "GET", url);
          if (response.status < 500 && response.status !== 429) throw error;
          failure = error;
        } else if (response.body === null) {
          failure = new Error("the event stream has no body");
        } else {
          renewed = false;
          parser.reset();
          const reader = response.body.getReader();
          try {
            for (;;) {
              const chunk = await readWithin(reader, stallMs);
              if (chunk.done) {
                failure = new Error(`the server closed the stream after event ${lastSeq} without an end event`);
                break;
              }
              for (const message of parser.push(chunk.value)) {
                if (message.event === END_EVENT) {
                  const end = parseData<StreamEnd>(message.data, url, response);
                  const event: EndEvent = { type: "end", status: end.status, lastSeq: end.lastSeq };
                  yield event;
                  return;
                }
                if (!isRunEventType(message.event)) continue; // a kind of event this SDK does not know
                const event = parseData<RunEvent>(message.data, url, response);
                if (typeof event.seq !== "number") {
                  throw malformed(url, response, `event without a sequence number: ${message.data.slice(0, 200)}`);
                }
                if (event.seq <= lastSeq) continue; // sent again after a resume
                lastSeq = event.seq;
                failures = 0;
                yield event;
              }
            }
          } catch (error) {
            if (error instanceof TlaoApiError) throw error;
            if (signal?.aborted) throw aborted(error);
            failure = error;
          } finally {
            reader.cancel().catch(() => undefined);
          }
        }
      } finally {
        exchange.release();
      }
    }

    failures += 1;
    if (failures >= policy.attempts) {
      const why = failure instanceof Stalled ? "the event stream stalled" : "the event stream kept failing";
      throw new TlaoConnectionError(`${why} (${failures} attempts in a row, last event ${lastSeq})`, "GET", url, failure);
    }
    options.onReconnect?.(lastSeq, failure);
    await sleep(backoff(policy, failures), signal);
  }
}

/** Reads the next chunk, failing with {@link Stalled} when none comes within `ms`. */
async function readWithin(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  ms: number,
): Promise<ReadResult> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Stalled(`no data for ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([reader.read(), stalled]);
  } finally {
    clearTimeout(timer);
  }
}

function parseData<T>(data: string, url: string, response: Response): T {
  try {
    return JSON.parse(data) as T;
  } catch (error) {
    throw malformed(url, response, `event data is not JSON: ${data.slice(0, 200)}`, error);
  }
}

function malformed(url: string, response: Response, detail: string, cause?: unknown): TlaoApiError {
  return new TlaoApiError({
    status: response.status,
    method: "GET",
    url,
    requestId: response.headers.get("x-request-id") ?? undefined,
    detail,
    cause: cause ?? new Error(detail),
  });
}
