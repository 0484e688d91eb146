//! Wiring: the configuration, the dependencies, and the actix server that serves the
//! route table over them.

use std::fmt;
use std::io;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, middleware, web};
use tlao_orchestrator::{Maintenance, Services};
use tlao_ports::PresignedGateway;

use crate::auth::TokenAuthority;
use crate::console::{self, ConsoleKeys};
use crate::error;
use crate::request_id;
use crate::routes;
use crate::state::AppState;

/// How long an issued token stays valid unless configured otherwise.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);

/// How long a worker may stay silent unless configured otherwise (the reaper's default).
pub const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest JSON request body accepted unless configured otherwise (1 MiB).
pub const DEFAULT_MAX_JSON_BYTES: usize = 1024 * 1024;

/// How the API behaves. There is no `Default`: the signing secret must be chosen.
#[derive(Clone)]
pub struct ApiConfig {
    /// The HS256 secret tokens are signed with; must not be empty.
    pub jwt_secret: Vec<u8>,
    /// How long a token from `POST /auth/token` is valid (12 hours by default).
    pub token_ttl: Duration,
    /// The largest JSON request body accepted, in bytes (1 MiB by default); larger → 413.
    pub max_json_bytes: usize,
    /// The token workers authenticate with on `/worker/*`; `None` refuses every worker.
    pub worker_token: Option<String>,
    /// A static token that may run `POST /admin/maintenance` besides administrators (a
    /// scheduler cannot exchange an API key for a token first); `None`: administrators
    /// only.
    pub maintenance_token: Option<String>,
    /// Whether creating a run also starts its worker, through the maintenance's
    /// dispatch, before answering: for a server whose loops are off (AWS Lambda), where
    /// nothing else would until the next maintenance pass. `false` by default.
    pub dispatch_on_create: bool,
    /// How long the reaper lets a running run's worker stay silent (30 s by default);
    /// leases announce a heartbeat interval derived from it.
    pub heartbeat_timeout: Duration,
    /// Whether the agents this server starts itself (`launcher.kind = "process"`) are
    /// sandboxed, as the composition root found it; `None` when it starts none. The
    /// dashboard shows it (a notice when they are not).
    pub agents: Option<AgentSandbox>,
}

/// What the dashboard says about the sandbox of the agents this server starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentSandbox {
    /// Sandboxed; the line says how (e.g. Landlock's ABI).
    Sandboxed(String),
    /// Not sandboxed; the line says why and what that means.
    NotSandboxed(String),
}

impl ApiConfig {
    /// The defaults, with `jwt_secret` as the token signing secret.
    pub fn new(jwt_secret: impl Into<Vec<u8>>) -> Self {
        ApiConfig {
            jwt_secret: jwt_secret.into(),
            token_ttl: DEFAULT_TOKEN_TTL,
            max_json_bytes: DEFAULT_MAX_JSON_BYTES,
            worker_token: None,
            maintenance_token: None,
            dispatch_on_create: false,
            heartbeat_timeout: DEFAULT_HEARTBEAT_TIMEOUT,
            agents: None,
        }
    }
}

impl fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret stays out of logs.
        f.debug_struct("ApiConfig")
            .field("jwt_secret", &"<redacted>")
            .field("token_ttl", &self.token_ttl)
            .field("max_json_bytes", &self.max_json_bytes)
            .field(
                "worker_token",
                &self.worker_token.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "maintenance_token",
                &self.maintenance_token.as_ref().map(|_| "<redacted>"),
            )
            .field("dispatch_on_create", &self.dispatch_on_create)
            .field("heartbeat_timeout", &self.heartbeat_timeout)
            .field("agents", &self.agents)
            .finish()
    }
}

/// What the API runs on.
#[derive(Clone)]
pub struct AppDeps {
    /// The use cases.
    pub services: Arc<Services>,
    /// Serves presigned blob URLs at `/blobs/*` when the blob store cannot serve them
    /// itself (local files); `None` (S3) leaves `/blobs/*` unrouted.
    pub presigned: Option<Arc<dyn PresignedGateway>>,
    /// Runs the maintenance passes of `POST /admin/maintenance`; `None` leaves that
    /// route unrouted.
    pub maintenance: Option<Arc<Maintenance>>,
}

/// Builds the API on `listener` and starts serving. The returned [`Server`] is a future
/// that completes when the server stops; its [`Server::handle`] stops it.
///
/// Errors: `InvalidInput` when `config.jwt_secret` is empty (anyone could forge tokens);
/// whatever binding the listener fails with.
pub fn build(config: ApiConfig, deps: AppDeps, listener: TcpListener) -> io::Result<Server> {
    let tokens = TokenAuthority::new(&config.jwt_secret, config.token_ttl).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the JWT secret is empty: anyone could forge tokens",
        )
    })?;
    let mounts = routes::Mounts {
        presigned_gateway: deps.presigned.is_some(),
        maintenance: deps.maintenance.is_some(),
    };
    let state = web::Data::new(AppState::new(
        deps,
        tokens,
        config.worker_token.clone(),
        config.maintenance_token.clone(),
        config.dispatch_on_create,
        config.heartbeat_timeout,
        config.agents.clone(),
    )?);
    let max_json_bytes = config.max_json_bytes;
    let console_keys = web::Data::new(ConsoleKeys::derive(&config.jwt_secret));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(error::json_config(max_json_bytes))
            .app_data(error::path_config())
            .app_data(error::query_config())
            .configure(|cfg| routes::configure(cfg, mounts))
            .configure(|cfg| console::configure(cfg, console_keys.clone()))
            .default_service(web::to(routes::fallback::not_found))
            .wrap(middleware::from_fn(request_id::middleware))
    })
    // Event streams write one small message at a time; with Nagle's algorithm a message
    // would wait for the client's delayed ACK (up to 40 ms) whenever one is in flight.
    .tcp_nodelay(true)
    // The process decides when to stop (a graceful stop drains runs first) and stops
    // the server through its handle; actix must not act on SIGTERM/SIGINT by itself.
    .disable_signals()
    .shutdown_timeout(5)
    .listen(listener)?
    .run();
    Ok(server)
}
