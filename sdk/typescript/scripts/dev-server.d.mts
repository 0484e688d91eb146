/** A running `tlao dev` server started by {@link startDevServer}. */
export interface DevServer {
  /** Its base URL, `http://127.0.0.1:PORT`. */
  url: string;
  /** The administrator's API key (the content of `admin.key`). */
  adminKey: string;
  /** The default workspace it created. */
  workspaceId: string;
  /** Its data directory. */
  dataDir: string;
  /** The server's process id (also its process group). */
  pid: number;
  /** Everything it printed so far. */
  output(): string;
  /** Stops it and every process it started, and removes its directories. */
  stop(): Promise<void>;
}

/** Options of {@link startDevServer}. */
export interface DevServerOptions {
  /** Extra environment, e.g. `TLAO_GUARDRAILS__DAILY_RUN_QUOTA`. */
  env?: Record<string, string>;
  /** Directories put first on the server's PATH. */
  path?: string[];
  /** How long to wait for it to be ready. */
  timeoutMs?: number;
  /**
   * Where to listen (default `127.0.0.1:0`, a free port). `url` is the address the
   * server announces: its `server.public_url` (`TLAO_SERVER__PUBLIC_URL`) when set.
   */
  addr?: string;
}

/** The tlao binary: `TLAO_BIN`, else the repository's debug build. */
export function tlaoBin(): string;

/** Starts `tlao dev` on a free port with a fresh data directory. */
export function startDevServer(options?: DevServerOptions): Promise<DevServer>;
