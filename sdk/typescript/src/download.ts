/**
 * Reading artifact bytes from their presigned URL, checking them against the size and
 * SHA-256 their metadata carries.
 *
 * @module
 */

import { TlaoConnectionError, TlaoIntegrityError } from "./errors.js";
import { Sha256 } from "./sha256.js";

/** The result of reading a byte stream. */
type ReadResult = Awaited<ReturnType<ReadableStreamDefaultReader<Uint8Array>["read"]>>;

/** What a download is checked against. */
export interface Expected {
  /** The size in bytes, when known. */
  size?: number | undefined;
  /** The lower-case hex SHA-256, when known. */
  sha256?: string | undefined;
}

/**
 * Passes `body` through, counting and hashing it; when it ends, errors the stream with a
 * {@link TlaoIntegrityError} if it does not match `expected`. A broken connection
 * errors it with a {@link TlaoConnectionError}. `onEnd` is called once, when the stream
 * closes, errors or is cancelled.
 */
export function verifying(
  body: ReadableStream<Uint8Array>,
  expected: Expected,
  url: string,
  onEnd: () => void = () => undefined,
): ReadableStream<Uint8Array> {
  const hash = new Sha256();
  let size = 0;
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let chunk: ReadResult;
      try {
        chunk = await reader.read();
      } catch (error) {
        onEnd();
        controller.error(new TlaoConnectionError("the download broke off", "GET", url, error));
        return;
      }
      if (chunk.done) {
        onEnd();
        const mismatch = check(expected, size, hash.hex(), url);
        if (mismatch) controller.error(mismatch);
        else controller.close();
        return;
      }
      size += chunk.value.byteLength;
      hash.update(chunk.value);
      if (expected.size !== undefined && size > expected.size) {
        onEnd();
        controller.error(new TlaoIntegrityError("size", String(expected.size), `more than ${expected.size}`, url));
        await reader.cancel().catch(() => undefined);
        return;
      }
      controller.enqueue(chunk.value);
    },
    async cancel(reason) {
      onEnd();
      await reader.cancel(reason).catch(() => undefined);
    },
  });
}

function check(expected: Expected, size: number, sha256: string, url: string): TlaoIntegrityError | undefined {
  if (expected.size !== undefined && size !== expected.size) {
    return new TlaoIntegrityError("size", String(expected.size), String(size), url);
  }
  if (expected.sha256 !== undefined && sha256 !== expected.sha256.toLowerCase()) {
    return new TlaoIntegrityError("sha256", expected.sha256, sha256, url);
  }
  return undefined;
}

/** Reads a whole stream into one byte array. */
export async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  const reader = stream.getReader();
  for (;;) {
    const chunk = await reader.read();
    if (chunk.done) break;
    chunks.push(chunk.value);
    length += chunk.value.byteLength;
  }
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

/** A web stream over an async iterable of byte chunks (e.g. a Node `Readable`). */
export function toWebStream(source: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const iterator = source[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await iterator.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      } catch (error) {
        controller.error(error);
      }
    },
    async cancel() {
      await iterator.return?.();
    },
  });
}
