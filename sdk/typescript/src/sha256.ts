/**
 * SHA-256 (FIPS 180-4) computed incrementally, in plain TypeScript: Web Crypto's
 * `crypto.subtle.digest` only hashes a whole buffer at once, and is missing outside
 * secure contexts, so a download checked with it would be held in memory a second time.
 * This one hashes a stream chunk by chunk, in any runtime.
 *
 * @module
 */

/** The round constants: the first 32 bits of the fractional parts of the cube roots of the first 64 primes. */
const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** The initial hash value: the first 32 bits of the fractional parts of the square roots of the first 8 primes. */
const INITIAL = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/**
 * An incremental SHA-256: {@link Sha256.update} with each chunk, then
 * {@link Sha256.digest} (or {@link Sha256.hex}) once.
 *
 * @example
 * ```ts
 * const hash = new Sha256();
 * for await (const chunk of stream) hash.update(chunk);
 * console.log(hash.hex());
 * ```
 */
export class Sha256 {
  readonly #state = new Int32Array(INITIAL);
  /** The message schedule, reused by every block. */
  readonly #words = new Int32Array(64);
  /** The bytes of a block not complete yet. */
  readonly #pending = new Uint8Array(64);
  #pendingLength = 0;
  /** The message length in bytes so far (exact up to 2^53 - 1, some 9 petabytes). */
  #length = 0;
  #done = false;

  /** Hashes the next `chunk` of the message. Throws once the digest was taken. */
  update(chunk: Uint8Array): this {
    if (this.#done) throw new Error("Sha256: update after digest");
    const size = chunk.byteLength;
    this.#length += size;
    let offset = 0;
    if (this.#pendingLength > 0) {
      offset = Math.min(64 - this.#pendingLength, size);
      this.#pending.set(chunk.subarray(0, offset), this.#pendingLength);
      this.#pendingLength += offset;
      if (this.#pendingLength < 64) return this;
      compress(this.#state, this.#words, this.#pending, 0);
      this.#pendingLength = 0;
    }
    // Whole blocks are hashed where they are, without a copy.
    for (; offset + 64 <= size; offset += 64) compress(this.#state, this.#words, chunk, offset);
    if (offset < size) {
      this.#pending.set(chunk.subarray(offset), 0);
      this.#pendingLength = size - offset;
    }
    return this;
  }

  /** The 32-byte digest of everything hashed. The hash cannot be updated afterwards. */
  digest(): Uint8Array {
    if (this.#done) throw new Error("Sha256: digest taken twice");
    this.#done = true;
    // Padding: 0x80, zeros up to 56 bytes into a block, then the length in bits (64-bit big-endian).
    const block = this.#pending;
    let used = this.#pendingLength;
    block[used++] = 0x80;
    if (used > 56) {
      block.fill(0, used);
      compress(this.#state, this.#words, block, 0);
      used = 0;
    }
    block.fill(0, used, 56);
    const bits = this.#length * 8;
    writeWord(block, 56, Math.floor(bits / 0x1_0000_0000));
    writeWord(block, 60, bits >>> 0);
    compress(this.#state, this.#words, block, 0);
    const out = new Uint8Array(32);
    for (let i = 0; i < 8; i += 1) writeWord(out, i * 4, this.#state[i]!);
    return out;
  }

  /** The digest as 64 lower-case hexadecimal digits. */
  hex(): string {
    let text = "";
    for (const byte of this.digest()) text += byte.toString(16).padStart(2, "0");
    return text;
  }
}

/** Writes `value` as a 32-bit big-endian word at `offset`. */
function writeWord(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value >>> 24;
  bytes[offset + 1] = value >>> 16;
  bytes[offset + 2] = value >>> 8;
  bytes[offset + 3] = value;
}

/** Hashes the 64-byte block of `data` at `offset` into `state`. */
function compress(state: Int32Array, w: Int32Array, data: Uint8Array, offset: number): void {
  for (let i = 0; i < 16; i += 1) {
    const j = offset + i * 4;
    w[i] = (data[j]! << 24) | (data[j + 1]! << 16) | (data[j + 2]! << 8) | data[j + 3]!;
  }
  for (let i = 16; i < 64; i += 1) {
    const x = w[i - 15]!;
    const y = w[i - 2]!;
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) | 0;
  }
  let a = state[0]!;
  let b = state[1]!;
  let c = state[2]!;
  let d = state[3]!;
  let e = state[4]!;
  let f = state[5]!;
  let g = state[6]!;
  let h = state[7]!;
  for (let i = 0; i < 64; i += 1) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const ch = (e & f) ^ (~e & g);
    const t1 = (h + S1 + ch + K[i]! + w[i]!) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const maj = (a & b) ^ (a & c) ^ (b & c);
    const t2 = (S0 + maj) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  state[0] = (state[0]! + a) | 0;
  state[1] = (state[1]! + b) | 0;
  state[2] = (state[2]! + c) | 0;
  state[3] = (state[3]! + d) | 0;
  state[4] = (state[4]! + e) | 0;
  state[5] = (state[5]! + f) | 0;
  state[6] = (state[6]! + g) | 0;
  state[7] = (state[7]! + h) | 0;
}
