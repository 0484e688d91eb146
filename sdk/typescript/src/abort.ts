/**
 * Abort plumbing: the signal of one HTTP attempt (the caller's signal and a timer), and
 * a caller's signal raced against a promise other callers share. Both take their
 * listener off the caller's signal when they are done, so one long-lived signal can be
 * passed to any number of calls.
 *
 * @module
 */

/** A limit on how long part of a request may take, and the option it came from (for error messages). */
export interface Timeout {
  /** Milliseconds; `0`, a negative or a non-finite number means no limit. */
  ms: number;
  /** The option that set it, e.g. `timeoutMs`. */
  name: string;
}

/**
 * The signal of one HTTP attempt: it aborts when the caller's signal does, or when the
 * timer armed with {@link Deadline.arm} runs out. {@link Deadline.dispose} must be called
 * when the attempt is over, answer body included.
 */
export class Deadline {
  readonly #controller = new AbortController();
  readonly #parent: AbortSignal | undefined;
  readonly #onAbort = (): void => this.#controller.abort(this.#parent?.reason);
  #timer: ReturnType<typeof setTimeout> | undefined;
  #expired: Timeout | undefined;
  #disposed = false;

  /** @param parent - The caller's signal, if any. */
  constructor(parent?: AbortSignal) {
    this.#parent = parent;
    if (parent?.aborted) this.#controller.abort(parent.reason);
    else parent?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** The signal to give `fetch`. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Whether the caller's signal aborted. */
  get callerAborted(): boolean {
    return this.#parent?.aborted === true;
  }

  /** The timeout that aborted the signal, if one did. */
  get expired(): Timeout | undefined {
    return this.#expired;
  }

  /** (Re)starts the timer with `timeout`; `undefined` or no limit: stops it. */
  arm(timeout: Timeout | undefined): void {
    this.disarm();
    if (this.#disposed || timeout === undefined || !(timeout.ms > 0) || !Number.isFinite(timeout.ms)) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#expired = timeout;
      this.#controller.abort(new Error(`no answer within ${timeout.ms} ms (${timeout.name})`));
    }, timeout.ms);
  }

  /** Stops the timer; the caller's signal still aborts. */
  disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Stops the timer and takes the listener off the caller's signal. Idempotent. */
  dispose(): void {
    this.disarm();
    this.#disposed = true;
    this.#parent?.removeEventListener("abort", this.#onAbort);
  }

  /** Why the signal aborted, for an error message; `otherwise` when it did not. */
  describe(otherwise: string): string {
    if (this.callerAborted) return "the request was aborted";
    const expired = this.#expired;
    if (expired !== undefined) return `the request timed out after ${expired.ms} ms (${expired.name})`;
    return otherwise;
  }
}

/**
 * `promise`, or the error of `onAbort` as soon as `signal` aborts, whichever comes first.
 * The promise itself goes on (other callers may share it); its failure is handled either
 * way, and the listener comes off `signal` once either settles.
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined, onAbort: () => Error): Promise<T> {
  if (signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => reject(onAbort());
    const settle = (): void => signal.removeEventListener("abort", abort);
    promise.then(
      (value) => {
        settle();
        resolve(value);
      },
      (error: unknown) => {
        settle();
        reject(error);
      },
    );
    if (signal.aborted) abort();
    else signal.addEventListener("abort", abort, { once: true });
  });
}
