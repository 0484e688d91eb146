/**
 * The entry point of `@tlao/sdk` in Node (the `"node"` export condition): the same API
 * as the runtime-neutral entry (`index.ts`), plus what Node 18 lacks as a global. Node 18
 * has Web Crypto only as `node:crypto`'s `webcrypto`, not as `globalThis.crypto`
 * (Node 19 and later have both), so it is handed to the client for idempotency keys
 * here. Nothing else differs: the core never imports a `node:` module, and this is the
 * only file that does.
 *
 * @packageDocumentation
 */

import { webcrypto } from "node:crypto";

import { setRandomSource } from "./random.js";

setRandomSource((bytes) => webcrypto.getRandomValues(bytes));

export * from "./index.js";
