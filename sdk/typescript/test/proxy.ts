// A tiny TCP proxy for the tests: forwards connections to the server, and can cut or
// freeze them on demand, so the client's resumption is tested over real sockets.

import { connect, createServer, type Server, type Socket } from "node:net";

/** What to do with a connection's answer once this many bytes of it were forwarded. */
export interface Fault {
  /** Forward this many bytes of the answer, then act. */
  afterBytes: number;
  /** `cut`: close both sides; `freeze`: stop forwarding but keep the connection open. */
  action: "cut" | "freeze";
}

/** A proxy in front of `target`; see the module comment. */
export class FaultyProxy {
  /** The base URL to give the client. */
  url = "";
  /** How many connections the client opened. */
  connections = 0;
  /** The `Last-Event-ID` header of each connection's first request (undefined when absent). */
  lastEventIds: (string | undefined)[] = [];
  readonly #server: Server;
  readonly #faults: (Fault | undefined)[];
  readonly #open = new Set<Socket>();

  /**
   * @param target - The server's base URL.
   * @param faults - The fault of the 1st, 2nd, ... connection; later ones pass through.
   */
  constructor(target: string, faults: (Fault | undefined)[]) {
    const { hostname, port } = new URL(target);
    this.#faults = faults;
    this.#server = createServer((client) => {
      const index = this.connections;
      this.connections += 1;
      const fault = this.#faults[index];
      const upstream = connect(Number(port), hostname);
      this.#open.add(client);
      this.#open.add(upstream);
      let forwarded = 0;
      let frozen = false;
      let sawRequest = false;
      client.on("data", (chunk: Buffer) => {
        if (!sawRequest) {
          sawRequest = true;
          this.lastEventIds[index] = /\r\nlast-event-id: *([^\r\n]*)/i.exec(chunk.toString("latin1"))?.[1];
        }
        upstream.write(chunk);
      });
      upstream.on("data", (chunk: Buffer) => {
        if (frozen) return;
        if (fault === undefined || forwarded + chunk.length < fault.afterBytes) {
          forwarded += chunk.length;
          client.write(chunk);
          return;
        }
        client.write(chunk.subarray(0, fault.afterBytes - forwarded));
        forwarded = fault.afterBytes;
        if (fault.action === "cut") {
          client.destroy();
          upstream.destroy();
        } else {
          frozen = true;
        }
      });
      const close = (): void => {
        client.destroy();
        upstream.destroy();
        this.#open.delete(client);
        this.#open.delete(upstream);
      };
      client.on("error", close);
      upstream.on("error", close);
      client.on("close", close);
      upstream.on("close", close);
    });
  }

  /** Starts listening on a free port. */
  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    const address = this.#server.address();
    if (address === null || typeof address === "string") throw new Error("the proxy has no port");
    this.url = `http://127.0.0.1:${address.port}`;
    return this;
  }

  /** Cuts every open connection now. */
  cutAll(): void {
    for (const socket of this.#open) socket.destroy();
    this.#open.clear();
  }

  /** Cuts everything and stops listening. */
  async stop(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
