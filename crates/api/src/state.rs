//! The state every handler shares: the services, the presigned gateway, the token
//! authority and the rendered OpenAPI document.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tlao_domain::Timestamp;
use tlao_orchestrator::{Maintenance, Services};
use tlao_ports::PresignedGateway;

use crate::app::{AgentSandbox, AppDeps};
use crate::auth::TokenAuthority;

/// Shared by every worker thread of the server.
pub(crate) struct AppState {
    /// The use cases.
    pub services: Arc<Services>,
    /// Serves `/blobs/*`, when mounted.
    pub presigned: Option<Arc<dyn PresignedGateway>>,
    /// Issues and checks bearer tokens.
    pub tokens: TokenAuthority,
    /// `GET /openapi.json`, rendered once.
    pub openapi_json: Bytes,
    /// The token workers authenticate with; `None` refuses every worker.
    pub worker_token: Option<String>,
    /// The token a scheduler runs maintenance with; `None`: administrators only.
    pub maintenance_token: Option<String>,
    /// Runs `POST /admin/maintenance`, when mounted.
    pub maintenance: Option<Arc<Maintenance>>,
    /// Whether creating a run dispatches before answering ([`AppState::dispatch_created`]).
    pub dispatch_on_create: bool,
    /// The heartbeat interval leases announce, in milliseconds.
    pub heartbeat_interval_ms: u64,
    /// The heartbeat timeout leases announce (the reaper's), in milliseconds.
    pub heartbeat_timeout_ms: u64,
    /// Whether the agents this server starts are sandboxed; `None` when it starts none.
    pub agents: Option<AgentSandbox>,
}

impl AppState {
    /// The state over `deps`.
    pub fn new(
        deps: AppDeps,
        tokens: TokenAuthority,
        worker_token: Option<String>,
        maintenance_token: Option<String>,
        dispatch_on_create: bool,
        heartbeat_timeout: Duration,
        agents: Option<AgentSandbox>,
    ) -> io::Result<Self> {
        let (heartbeat_interval_ms, heartbeat_timeout_ms) =
            crate::routes::worker::announced_heartbeat_ms(heartbeat_timeout);
        let openapi_json = crate::openapi::openapi()
            .to_json()
            .map_err(io::Error::other)?;
        Ok(AppState {
            services: deps.services,
            presigned: deps.presigned,
            tokens,
            openapi_json: Bytes::from(openapi_json),
            worker_token: worker_token.filter(|token| !token.is_empty()),
            maintenance_token: maintenance_token.filter(|token| !token.is_empty()),
            maintenance: deps.maintenance,
            dispatch_on_create,
            heartbeat_interval_ms,
            heartbeat_timeout_ms,
            agents,
        })
    }

    /// After a run was created: with `dispatch_on_create`, starts workers for queued
    /// runs (the new one among them) before the answer goes out, since a server whose
    /// loops are off would otherwise leave it queued until the next maintenance pass. A
    /// failure is logged, not answered: the run exists, and the next pass dispatches it.
    pub async fn dispatch_created(&self) {
        let Some(maintenance) = self
            .maintenance
            .as_ref()
            .filter(|_| self.dispatch_on_create)
        else {
            return;
        };
        match maintenance.dispatch().await {
            Ok(started) => tracing::debug!(started, "dispatched on create"),
            Err(error) => tracing::warn!(
                %error,
                "could not dispatch the new run; the next maintenance pass will"
            ),
        }
    }

    /// Now, by the services' clock (the one quotas and expiries use).
    pub fn now(&self) -> Timestamp {
        self.services.core.now()
    }
}
