/**
 * The transport under {@link TlaoClient}: URLs from the generated operation table,
 * authentication (a session token, or an API key exchanged lazily and renewed once on a
 * `401`), retries of repeatable requests, and the mapping of every failure to a
 * {@link TlaoError}.
 *
 * Retries: only requests that can be repeated without effect are retried — `GET`s,
 * `POST /auth/token` (which stores nothing) and `POST`s carrying an `Idempotency-Key` —
 * after a connection error or a `5xx`, with exponential backoff and jitter. A `4xx`
 * never is. Everything else is tried once.
 *
 * Timeouts: `timeoutMs` bounds each attempt of a call up to the end of its JSON answer
 * (up to the head of a streamed answer). An upload is not bounded while its body is
 * sent and its answer awaited, unless `uploadTimeoutMs` is set; its answer is then read
 * within `timeoutMs`. Every attempt takes its listener off the caller's signal when it
 * is over.
 *
 * @module
 */

import { Deadline, abortable, type Timeout } from "./abort.js";
import { TlaoApiError, TlaoConnectionError, TlaoError, isProblem } from "./errors.js";
import { OPERATIONS, type OperationId, type Operations, type Problem, type TokenResponse } from "./generated/api-types.js";

/** The `fetch` function the client calls (the global one unless told otherwise). */
export type FetchLike = (input: string | URL, init?: RequestInit) => Promise<Response>;

/** A request body `fetch` accepts. */
export type RequestBody = NonNullable<RequestInit["body"]>;

/** How failed repeatable requests are retried. */
export interface RetryPolicy {
  /** How many tries in all (1: no retry). */
  attempts: number;
  /** The wait before the first retry, in milliseconds; it doubles each time. */
  initialBackoffMs: number;
  /** The longest wait between tries, in milliseconds. */
  maxBackoffMs: number;
}

/** The retry policy of requests unless told otherwise: four tries, 200 ms doubling up to 2 s. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, initialBackoffMs: 200, maxBackoffMs: 2000 };

/** Options every method accepts. */
export interface CallOptions {
  /**
   * Aborts the call; it then fails with a {@link TlaoConnectionError}. Aborting one call
   * never fails another, even when they share a token exchange.
   */
  signal?: AbortSignal | undefined;
}

/** The settings of a {@link Transport}: the options of a `TlaoClient`. */
export interface TransportOptions {
  /**
   * The API's base URL, e.g. `http://127.0.0.1:7411`: an absolute `http:` or `https:` URL
   * (anything else makes the constructor throw a {@link TlaoError}).
   */
  apiUrl: string;
  /** A session token (`POST /auth/token`, or `TLAO_TOKEN`). Not renewed unless `apiKey` is given too. */
  token?: string | undefined;
  /**
   * An API key (`tlao_...`): exchanged for a session token on first use, before the
   * token expires, and once more when a call answers `401`.
   */
  apiKey?: string | undefined;
  /** The `fetch` to use; the global one by default. */
  fetch?: FetchLike | undefined;
  /** How repeatable calls are retried after connection errors and `5xx` answers. */
  retry?: RetryPolicy | undefined;
  /**
   * How long one HTTP attempt may take, in milliseconds (default 30 s): until its JSON
   * answer is read, or until the head of a streamed answer (event streams, downloads).
   * Uploads are not bounded by it while their body is sent: see `uploadTimeoutMs`.
   */
  timeoutMs?: number | undefined;
  /**
   * How long `TlaoClient.uploadArchive` may take to send the archive and get the
   * answer's head, in milliseconds. Default: no limit, so a large archive on a slow link
   * is never cut off (abort it with a `signal` instead).
   */
  uploadTimeoutMs?: number | undefined;
}

/** The default {@link TransportOptions.timeoutMs}. */
export const DEFAULT_TIMEOUT_MS = 30_000;

/** A token this close to its expiry (milliseconds) is renewed before use when a key is at hand. */
const RENEW_MARGIN_MS = 60_000;
/** How much of an unreadable error body is kept as the detail. */
const MAX_DETAIL_CHARS = 512;

/** The answer body of an operation's success status (`200` or `201`). */
export type Success<K extends OperationId> = Operations[K]["responses"][Extract<keyof Operations[K]["responses"], 200 | 201>];

/** What one request of an operation needs. */
export interface OperationRequest<K extends OperationId> {
  /** The path parameters. */
  pathParams?: Operations[K]["pathParams"];
  /** The query parameters; `undefined` values are left out. */
  query?: Operations[K]["query"] | undefined;
  /** Extra headers. */
  headers?: Record<string, string> | undefined;
  /** A JSON body, or raw bytes with their content type. */
  body?: { json: Operations[K]["requestBody"] } | { raw: RequestBody; contentType: string; replayable: boolean } | undefined;
  /** Whether the request may be repeated without effect. */
  repeatable?: boolean | undefined;
  /** Whether to send the bearer token (default true). */
  authenticated?: boolean | undefined;
  /** An upload: sending it and waiting for its answer's head is bounded by `uploadTimeoutMs`, not `timeoutMs`. */
  upload?: boolean | undefined;
  /** Aborts it. */
  signal?: AbortSignal | undefined;
}

/** How {@link Transport.attempt} sends a request. */
export interface AttemptOptions {
  /** Whether it may be sent again after a connection error or a `5xx`. */
  repeatable: boolean;
  /** The caller's signal. */
  signal?: AbortSignal | undefined;
  /** The body is a stream (sent with `duplex: "half"`). */
  streamingBody?: boolean | undefined;
  /** The limit on getting the answer's head; default `timeoutMs`, `null` for none. */
  headTimeout?: Timeout | null | undefined;
  /**
   * Whether `timeoutMs` also covers reading the answer's body: what is left of it when
   * it covered the head too, all of it otherwise. If not, the timer stops at a success
   * answer's head and the body is bounded by the caller (error answers are always read
   * within `timeoutMs`).
   */
  bodyTimeout?: boolean | undefined;
}

/**
 * One attempt's answer. {@link Exchange.release} must be called once its body is read
 * or abandoned: it stops the timer and takes the listener off the caller's signal.
 */
export interface Exchange {
  /** The answer, whatever its status. */
  response: Response;
  /** The signal the request was sent with (it aborts the body too). */
  deadline: Deadline;
  /** Idempotent. */
  release: () => void;
}

/** The HTTP plumbing of the client; see the module documentation. */
export class Transport {
  /** The API's base URL, without a trailing slash. */
  readonly apiUrl: string;
  readonly #fetch: FetchLike;
  readonly #retry: RetryPolicy;
  readonly #timeout: Timeout;
  readonly #uploadTimeout: Timeout | null;
  readonly #apiKey: string | undefined;
  #token: string | undefined;
  #tokenExpiresAt: number | undefined;
  #renewing: Promise<string> | undefined;

  /** @param options - Where the API is and how to authenticate. */
  constructor(options: TransportOptions) {
    this.apiUrl = checkApiUrl(options.apiUrl);
    const fetchFn = options.fetch ?? globalThis.fetch;
    if (typeof fetchFn !== "function") {
      throw new TlaoError("no fetch implementation: use Node 18 or later, or pass `fetch`", "GET", this.apiUrl);
    }
    // The global one is called as a plain function: browsers refuse a `fetch` called as a
    // method of anything but the window ("Illegal invocation").
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#retry = options.retry ?? DEFAULT_RETRY;
    this.#timeout = { ms: options.timeoutMs ?? DEFAULT_TIMEOUT_MS, name: "timeoutMs" };
    this.#uploadTimeout = options.uploadTimeoutMs === undefined ? null : { ms: options.uploadTimeoutMs, name: "uploadTimeoutMs" };
    this.#apiKey = options.apiKey;
    this.#token = options.token;
  }

  /** The session token in use, if one was given or obtained. */
  get token(): string | undefined {
    return this.#token;
  }

  /** The URL of an operation with its path parameters filled in and its query. */
  url<K extends OperationId>(operation: K, pathParams?: Operations[K]["pathParams"], query?: object): string {
    let path: string = OPERATIONS[operation].path;
    const params = (pathParams ?? {}) as Record<string, string>;
    path = path.replace(/\{(\w+)\}/g, (_, name: string) => {
      const value = params[name];
      if (value === undefined) throw new TlaoError(`missing path parameter ${name}`, OPERATIONS[operation].method, path);
      return encodeURIComponent(value);
    });
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null) search.set(name, String(value));
    }
    const text = search.toString();
    return `${this.apiUrl}${path}${text ? `?${text}` : ""}`;
  }

  /** Exchanges an API key for a session token (`POST /auth/token`) without keeping it. */
  async exchange(apiKey: string, signal?: AbortSignal): Promise<TokenResponse> {
    return this.call("create_token", { body: { json: { apiKey } }, repeatable: true, authenticated: false, signal });
  }

  /**
   * Exchanges the client's API key for a fresh token and keeps it. Concurrent callers
   * share one exchange, which runs without any caller's signal (bounded by `timeoutMs`
   * and the retry policy); `signal` only stops this caller's wait for it.
   */
  async renew(signal?: AbortSignal): Promise<string> {
    const apiKey = this.#apiKey;
    const url = this.url("create_token");
    if (apiKey === undefined) {
      throw new TlaoApiError({
        status: 401,
        method: "POST",
        url,
        detail: "the client has no API key to obtain a session token with",
      });
    }
    this.#renewing ??= this.exchange(apiKey)
      .then((grant) => {
        this.#token = grant.token;
        const expires = Date.parse(grant.expiresAt);
        this.#tokenExpiresAt = Number.isNaN(expires) ? undefined : expires;
        return grant.token;
      })
      .finally(() => {
        this.#renewing = undefined;
      });
    return abortable(this.#renewing, signal, () => new TlaoConnectionError("the request was aborted", "POST", url, signal?.reason));
  }

  /**
   * After a `401` to a request sent with `rejected`: when the client's token changed
   * since (another call renewed it), nothing to do, the request is sent again with the
   * new one; otherwise renews it, joining an exchange already under way.
   */
  async refresh(rejected: string | undefined, signal?: AbortSignal): Promise<void> {
    if (this.#token !== undefined && this.#token !== rejected && this.#renewing === undefined) return;
    await this.renew(signal);
  }

  /** The bearer token to send: the current one, or a new one when there is none or it expires soon. */
  async bearer(signal?: AbortSignal): Promise<string | undefined> {
    const stale = this.#tokenExpiresAt !== undefined && this.#tokenExpiresAt - RENEW_MARGIN_MS < Date.now();
    if (this.#apiKey !== undefined && (this.#token === undefined || stale)) return this.renew(signal);
    return this.#token;
  }

  /** Whether the client can obtain a new token by itself. */
  get canRenew(): boolean {
    return this.#apiKey !== undefined;
  }

  /**
   * Sends a request of `operation`, renewing the token once on a `401` when an API key is
   * at hand and retrying as the module documentation says. Returns a success answer,
   * whose {@link Exchange.release} the caller calls once it has read the body; any other
   * answer is thrown as a {@link TlaoApiError}.
   */
  async send<K extends OperationId>(operation: K, request: OperationRequest<K>): Promise<Exchange> {
    const { method } = OPERATIONS[operation];
    const url = this.url(operation, request.pathParams, request.query);
    const authenticated = request.authenticated ?? true;
    const body = request.body;
    const replayable = body === undefined || "json" in body || body.replayable;
    let renewed = false;
    for (;;) {
      const headers: Record<string, string> = { accept: "application/json", ...request.headers };
      const token = authenticated ? await this.bearer(request.signal) : undefined;
      if (token !== undefined) headers["authorization"] = `Bearer ${token}`;
      let payload: RequestBody | null = null;
      if (body !== undefined && "json" in body) {
        headers["content-type"] = "application/json";
        try {
          payload = JSON.stringify(body.json);
        } catch (error) {
          throw new TlaoError(`the request body cannot be encoded as JSON: ${String(error)}`, method, url, { cause: error });
        }
      } else if (body !== undefined) {
        headers["content-type"] = body.contentType;
        payload = body.raw;
      }
      const exchange = await this.attempt(method, url, { method, headers, body: payload }, {
        repeatable: (request.repeatable ?? method === "GET") && replayable,
        signal: request.signal,
        streamingBody: payload instanceof ReadableStream,
        headTimeout: request.upload ? this.#uploadTimeout : undefined,
        bodyTimeout: true,
      });
      const response = exchange.response;
      if (response.status === 401 && authenticated && !renewed && this.canRenew && replayable) {
        renewed = true;
        await response.body?.cancel().catch(() => undefined);
        exchange.release();
        await this.refresh(token, request.signal);
        continue;
      }
      if (!response.ok) {
        try {
          throw await apiError(response, method, url);
        } finally {
          exchange.release();
        }
      }
      return exchange;
    }
  }

  /**
   * One request with retries: sends `init`, again after a connection error or a `5xx`
   * when `repeatable`. Returns the last answer, whatever its status; see
   * {@link AttemptOptions} for what bounds it in time.
   */
  async attempt(method: string, url: string, init: RequestInit, options: AttemptOptions): Promise<Exchange> {
    const attempts = options.repeatable ? Math.max(1, this.#retry.attempts) : 1;
    const shown = redact(url);
    const headTimeout = options.headTimeout === undefined ? this.#timeout : (options.headTimeout ?? undefined);
    for (let attempt = 1; ; attempt += 1) {
      const deadline = new Deadline(options.signal);
      deadline.arm(headTimeout);
      let response: Response;
      try {
        const requestInit: RequestInit & { duplex?: "half" } = { ...init, signal: deadline.signal };
        if (options.streamingBody) requestInit.duplex = "half";
        response = await this.#fetch(url, requestInit);
      } catch (error) {
        deadline.dispose();
        if (!deadline.callerAborted && attempt < attempts) {
          await sleep(backoff(this.#retry, attempt), options.signal);
          continue;
        }
        throw new TlaoConnectionError(deadline.describe("cannot reach the API"), method, shown, error);
      }
      if (response.status >= 500 && attempt < attempts) {
        await response.body?.cancel().catch(() => undefined);
        deadline.dispose();
        await sleep(backoff(this.#retry, attempt), options.signal);
        continue;
      }
      if (options.bodyTimeout || !response.ok) {
        // The body is read within the usual limit: what is left of it, or all of it after
        // another limit (an upload's, a stream's) covered the head.
        if (headTimeout !== this.#timeout) deadline.arm(this.#timeout);
      } else {
        deadline.disarm(); // a streamed answer: the caller bounds it
      }
      return { response, deadline, release: () => deadline.dispose() };
    }
  }

  /** Sends a request of `operation` (see {@link Transport.send}) and reads its JSON answer within `timeoutMs`. */
  async call<K extends OperationId>(operation: K, request: OperationRequest<K>): Promise<Success<K>> {
    const exchange = await this.send(operation, request);
    const url = this.url(operation, request.pathParams, request.query);
    try {
      return await this.json<Success<K>>(exchange, OPERATIONS[operation].method, url);
    } finally {
      exchange.release();
    }
  }

  /** Reads a JSON success body; an unreadable one is a {@link TlaoApiError}. */
  async json<T>(exchange: Exchange, method: string, url: string): Promise<T> {
    const { response, deadline } = exchange;
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      throw new TlaoConnectionError(deadline.describe("the connection broke while reading the answer"), method, redact(url), error);
    }
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      throw new TlaoApiError({
        status: response.status,
        method,
        url: redact(url),
        requestId: response.headers.get("x-request-id") ?? undefined,
        detail: `the answer is not JSON: ${truncate(text)}`,
        cause: error,
      });
    }
  }
}

/** `apiUrl` without trailing slashes, once it is known to be an absolute `http:` or `https:` URL. */
function checkApiUrl(apiUrl: string): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(apiUrl);
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) {
    throw new TlaoError(
      `apiUrl must be an absolute http:// or https:// URL such as "http://127.0.0.1:7411", got ${JSON.stringify(apiUrl)}`,
      "GET",
      apiUrl,
    );
  }
  return apiUrl.replace(/\/+$/, "");
}

/** Builds the {@link TlaoApiError} of an error answer, from its problem body when it has one. */
export async function apiError(response: Response, method: string, url: string): Promise<TlaoApiError> {
  const requestId = response.headers.get("x-request-id") ?? undefined;
  const retryAfter = parseRetryAfter(response.headers.get("retry-after"));
  let text = "";
  try {
    text = await response.text();
  } catch {
    // the body is lost; the status still tells what happened
  }
  let problem: Problem | undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    if (isProblem(parsed)) problem = parsed;
  } catch {
    // not JSON: the text becomes the detail
  }
  return new TlaoApiError({
    status: response.status,
    method,
    url: redact(url),
    problem,
    requestId,
    retryAfter,
    detail: text ? truncate(text) : undefined,
  });
}

/** `Retry-After` in seconds: a number of seconds or an HTTP date. */
function parseRetryAfter(value: string | null): number | undefined {
  if (value === null) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

function truncate(text: string): string {
  return text.length > MAX_DETAIL_CHARS ? `${text.slice(0, MAX_DETAIL_CHARS)}…` : text;
}

/** A URL fit for error messages: presigned URLs lose their query (the signature). */
export function redact(url: string): string {
  const index = url.indexOf("?");
  if (index < 0 || !/signature|X-Amz-/i.test(url.slice(index))) return url;
  return `${url.slice(0, index)}?<redacted>`;
}

/** The wait before retry number `attempt` (from 1): exponential, capped, with full jitter on half. */
export function backoff(policy: RetryPolicy, attempt: number): number {
  const base = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * 2 ** (attempt - 1));
  return base / 2 + Math.random() * (base / 2);
}

/** Waits `ms` milliseconds, or less when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
