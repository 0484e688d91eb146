/**
 * The errors the client throws. Every failure is a {@link TlaoError}: a
 * {@link TlaoApiError} when the server answered with an error status (or an answer the
 * client cannot read), a {@link TlaoConnectionError} when no answer arrived, and a
 * {@link TlaoIntegrityError} when downloaded bytes do not match their metadata.
 *
 * @module
 */

import type { FieldErrorView, Problem } from "./generated/api-types.js";

/** The base of every error the client throws. */
export class TlaoError extends Error {
  /** The HTTP method of the failed request. */
  readonly method: string;
  /** The URL of the failed request (presigned URLs without their query string). */
  readonly url: string;

  /**
   * @param message - What went wrong.
   * @param method - The HTTP method of the failed request.
   * @param url - The URL of the failed request.
   * @param options - The underlying cause, if any.
   */
  constructor(message: string, method: string, url: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TlaoError";
    this.method = method;
    this.url = url;
  }
}

/** What {@link TlaoApiError} is built from. */
export interface TlaoApiErrorInit {
  /** The HTTP status. */
  status: number;
  /** The HTTP method of the request. */
  method: string;
  /** The URL of the request. */
  url: string;
  /** The `application/problem+json` body, when the server sent one. */
  problem?: Problem | undefined;
  /** The `x-request-id` header, when present. */
  requestId?: string | undefined;
  /** The `Retry-After` header, in seconds, when present. */
  retryAfter?: number | undefined;
  /** A detail to use when there is no problem body. */
  detail?: string | undefined;
  /** What made the answer unreadable, for malformed bodies. */
  cause?: unknown;
}

/**
 * The server answered with an error status (`4xx`, `5xx`), or with a success status and
 * a body the client cannot read (then {@link TlaoApiError.problem} is undefined and
 * {@link TlaoApiError.type} is `urn:tlao:sdk:malformed-response`).
 */
export class TlaoApiError extends TlaoError {
  /** The HTTP status. */
  readonly status: number;
  /** The problem type, e.g. `urn:tlao:problem:quota-exceeded`. */
  readonly type: string;
  /** A short summary of the problem type. */
  readonly title: string;
  /** What went wrong with this request. */
  readonly detail: string;
  /** The request id the server logged the request under (quote it when reporting). */
  readonly requestId: string | undefined;
  /** The problem body as the server sent it, when it sent one. */
  readonly problem: Problem | undefined;
  /** On `400`: every invalid field (empty otherwise). */
  readonly errors: readonly FieldErrorView[];
  /** On `429`: seconds until the quota resets (`Retry-After`, else the problem's `retryAfterSeconds`). */
  readonly retryAfter: number | undefined;

  /** @param init - The status, request and problem body. */
  constructor(init: TlaoApiErrorInit) {
    const problem = init.problem;
    const title = problem?.title ?? `HTTP ${init.status}`;
    const detail = problem?.detail ?? init.detail ?? "the server answered without a problem body";
    const requestId = problem?.requestId ?? init.requestId;
    super(
      `${title} (HTTP ${init.status}) on ${init.method} ${init.url}: ${detail}${requestId ? ` [request ${requestId}]` : ""}`,
      init.method,
      init.url,
      init.cause === undefined ? undefined : { cause: init.cause },
    );
    this.name = "TlaoApiError";
    this.status = init.status;
    this.type = problem?.type ?? (init.cause === undefined ? `urn:tlao:sdk:http-${init.status}` : MALFORMED_RESPONSE);
    this.title = title;
    this.detail = detail;
    this.requestId = requestId;
    this.problem = problem;
    this.errors = problem?.errors ?? [];
    this.retryAfter = init.retryAfter ?? problem?.retryAfterSeconds ?? undefined;
  }
}

/** The {@link TlaoApiError.type} of an answer the client could not read. */
export const MALFORMED_RESPONSE = "urn:tlao:sdk:malformed-response";

/**
 * No answer arrived: the server could not be reached, the connection broke, the request
 * timed out or was aborted, or an event stream kept failing through every reconnection.
 */
export class TlaoConnectionError extends TlaoError {
  /**
   * @param message - What failed, e.g. `cannot reach the API`.
   * @param method - The HTTP method of the request.
   * @param url - Its URL.
   * @param cause - The underlying error (from `fetch`, a stream, or the last failed attempt).
   */
  constructor(message: string, method: string, url: string, cause: unknown) {
    super(`${message} (${method} ${url})${causeText(cause)}`, method, url, { cause });
    this.name = "TlaoConnectionError";
  }
}

/** Downloaded bytes do not match the size or SHA-256 their metadata announced. */
export class TlaoIntegrityError extends TlaoError {
  /** What the metadata announced (`size` in bytes, or a hex `sha256`). */
  readonly expected: string;
  /** What arrived. */
  readonly actual: string;

  /**
   * @param what - `size` or `sha256`.
   * @param expected - The announced value.
   * @param actual - The value of the bytes received.
   * @param url - Where they came from.
   */
  constructor(what: "size" | "sha256", expected: string, actual: string, url: string) {
    super(`downloaded bytes do not match: ${what} is ${actual}, expected ${expected} (GET ${url})`, "GET", url);
    this.name = "TlaoIntegrityError";
    this.expected = expected;
    this.actual = actual;
  }
}

function causeText(cause: unknown): string {
  if (cause instanceof Error) {
    const inner = cause.cause instanceof Error ? `: ${cause.cause.message}` : "";
    return `: ${cause.message}${inner}`;
  }
  return cause === undefined ? "" : `: ${String(cause)}`;
}

/** Whether `value` looks like a problem document (the fields every problem has). */
export function isProblem(value: unknown): value is Problem {
  if (typeof value !== "object" || value === null) return false;
  const record = value as Record<string, unknown>;
  return typeof record["status"] === "number" && typeof record["title"] === "string" && typeof record["type"] === "string";
}
