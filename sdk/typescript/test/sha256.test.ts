// The SHA-256 downloads are checked with (dist/sha256.js, plain TypeScript so the
// package runs in browsers): the FIPS 180-4 test vectors, and agreement with node:crypto
// and Web Crypto however a message is cut into chunks.

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { test } from "node:test";

import { importDist } from "./support.js";

const { Sha256 } = await importDist<typeof import("../dist/sha256.js")>("sha256.js");

const encode = (text: string): Uint8Array => new TextEncoder().encode(text);
const nodeHex = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

/** Hashes `bytes` in chunks of the given sizes, cycling through them. */
function chunked(bytes: Uint8Array, sizes: number[]): string {
  const hash = new Sha256();
  let offset = 0;
  for (let i = 0; offset < bytes.byteLength; i += 1) {
    const size = sizes[i % sizes.length]!;
    hash.update(bytes.subarray(offset, offset + size));
    offset += size;
  }
  return hash.hex();
}

test("the FIPS 180-4 / NIST test vectors", () => {
  const vectors: [string, string][] = [
    ["", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
    ["abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"],
    [
      "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    ],
    [
      "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
      "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",
    ],
  ];
  for (const [message, expected] of vectors) {
    assert.equal(new Sha256().update(encode(message)).hex(), expected, JSON.stringify(message));
    assert.equal(chunked(encode(message), [1]), expected, `${JSON.stringify(message)} byte by byte`);
  }
  // One million "a", fed in pieces that never line up with the 64-byte blocks.
  const million = new Uint8Array(1_000_000).fill(0x61);
  assert.equal(chunked(million, [1, 63, 1000, 65, 7]), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
});

test("agrees with node:crypto at every length around the padding boundaries, however chunked", () => {
  for (let length = 0; length <= 200; length += 1) {
    const bytes = new Uint8Array(randomBytes(length));
    const expected = nodeHex(bytes);
    assert.equal(new Sha256().update(bytes).hex(), expected, `length ${length}`);
    assert.equal(chunked(bytes, [1, 2, 3, 5, 8, 13]), expected, `length ${length}, small chunks`);
    assert.equal(chunked(bytes, [0, 55, 0, 64, 9]), expected, `length ${length}, empty and odd chunks`);
  }
});

test("agrees with node:crypto and Web Crypto on a few megabytes streamed in uneven chunks", async () => {
  const bytes = new Uint8Array(randomBytes(5 * 1024 * 1024 + 17));
  const expected = nodeHex(bytes);
  const sizes = Array.from({ length: 50 }, () => 1 + Math.floor(Math.random() * 100_000));
  assert.equal(chunked(bytes, sizes), expected, `chunks ${sizes.join(",")}`);
  const web = new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", bytes));
  assert.equal(Buffer.from(web).toString("hex"), expected);
  assert.deepEqual(new Sha256().update(bytes).digest(), web);
});

test("a finished hash refuses more input and a second digest", () => {
  const hash = new Sha256().update(encode("abc"));
  assert.equal(hash.digest().byteLength, 32);
  assert.throws(() => hash.update(encode("d")), /update after digest/);
  assert.throws(() => hash.digest(), /digest taken twice/);
});
