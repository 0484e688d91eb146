// The one part of `node:crypto` the Node entry (node.ts) uses, declared here so that the
// package compiles without Node's types: any other `node:` module or Node global used in
// src/ is a compile error (and test/package.test.ts checks that only dist/node.js
// imports a `node:` module).
declare module "node:crypto" {
  /** Node's Web Crypto implementation (`globalThis.crypto` from Node 19 on). */
  export const webcrypto: {
    getRandomValues<T extends ArrayBufferView | null>(array: T): T;
  };
}
