//! Operator routes: the answer of `POST /admin/maintenance`.

use serde::{Deserialize, Serialize};

/// What one maintenance pass did (`POST /admin/maintenance`): how many runs it ended
/// and how many workers it started. A second pass right after the first reports zeros.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceReport {
    /// Running runs ended as `timed_out` (past their deadline).
    pub timed_out: u64,
    /// Running runs failed as `worker_lost` (their worker silent past the heartbeat timeout).
    pub worker_lost: u64,
    /// Queued runs failed as `queue_timeout` (queued past `guardrails.max_queue_seconds`).
    pub queue_expired: u64,
    /// Workers started for queued runs by the configured launcher (always 0 without one).
    pub dispatched: u64,
    /// Whether this server starts workers itself (`launcher.kind` is not `none`).
    pub launcher: bool,
}
