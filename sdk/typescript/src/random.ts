/**
 * Random bytes for idempotency keys, from Web Crypto's `crypto.getRandomValues`: a
 * global in browsers (secure context or not), Deno, Bun, edge runtimes and Node 19+.
 * Node 18 has Web Crypto only in `node:crypto`, which this module does not import (it
 * must load in a browser): the package's Node entry hands it over with
 * {@link setRandomSource}.
 *
 * @module
 */

/** Fills `bytes` with cryptographically strong random values and returns it. */
export type RandomSource = (bytes: Uint8Array) => Uint8Array;

let fallback: RandomSource | undefined;

/** The source used when the runtime has no global `crypto.getRandomValues` (set by the Node entry). */
export function setRandomSource(source: RandomSource): void {
  fallback = source;
}

/** `count` random bytes. Throws when the runtime has no Web Crypto and none was set. */
export function randomBytes(count: number): Uint8Array {
  const bytes = new Uint8Array(count);
  const global = (globalThis as { crypto?: { getRandomValues?: (array: Uint8Array) => Uint8Array } }).crypto;
  if (typeof global?.getRandomValues === "function") return global.getRandomValues(bytes);
  if (fallback !== undefined) return fallback(bytes);
  throw new Error("no Web Crypto: globalThis.crypto.getRandomValues is missing (on Node 18, import @tlao/sdk through its \"node\" export)");
}

/** A random (version 4) UUID, in lower case. */
export function randomUuid(): string {
  const bytes = randomBytes(16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x40; // version 4
  bytes[8] = (bytes[8]! & 0x3f) | 0x80; // the RFC 9562 variant
  let hex = "";
  for (const byte of bytes) hex += byte.toString(16).padStart(2, "0");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
