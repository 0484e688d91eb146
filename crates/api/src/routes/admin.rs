//! Operator routes: `POST /admin/maintenance`, one pass of what `tlao serve`'s
//! background loops do (the reaper's sweep, the queue expiry, a dispatch), for servers
//! whose loops are off because the process is frozen between requests (AWS Lambda).
//! An administrator or the maintenance token may call it; a pass is idempotent.

use actix_web::web;

use crate::auth::MaintenanceCaller;
use crate::dto::{MaintenanceReport, Problem};
use crate::error::ApiError;
use crate::state::AppState;

/// Runs one maintenance pass: fails running runs past their deadline (`timed_out`) or
/// whose worker went silent (`worker_lost`), fails queued runs waiting past
/// `guardrails.max_queue_seconds` (`queue_timeout`, quota given back), then, when the
/// server has a launcher, starts workers for queued runs. A second call right after
/// finds nothing more to do. For an administrator's token or the maintenance token
/// (`TLAO_MAINTENANCE_TOKEN`), which a scheduler can send as it is.
#[utoipa::path(
    post,
    path = "/admin/maintenance",
    tag = "admin",
    security(("bearer" = []), ("maintenance" = [])),
    responses(
        (status = 200, description = "What the pass did", body = MaintenanceReport),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The table cannot be reached now; the next pass tries again", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn run_maintenance(
    state: web::Data<AppState>,
    caller: MaintenanceCaller,
) -> Result<web::Json<MaintenanceReport>, ApiError> {
    let Some(maintenance) = &state.maintenance else {
        // The route is mounted only with maintenance; this is never reached.
        return Err(ApiError::internal(anyhow::anyhow!(
            "no maintenance is configured"
        )));
    };
    let pass = maintenance.pass().await?;
    let count = |runs: &[tlao_domain::RunId]| runs.len() as u64;
    let report = MaintenanceReport {
        timed_out: count(&pass.timed_out),
        worker_lost: count(&pass.lost),
        queue_expired: count(&pass.expired),
        dispatched: pass.dispatched as u64,
        launcher: maintenance.dispatches(),
    };
    tracing::info!(
        operation = "run_maintenance",
        by = match caller {
            MaintenanceCaller::Scheduler => "maintenance token",
            MaintenanceCaller::Administrator(_) => "administrator",
        },
        timed_out = report.timed_out,
        worker_lost = report.worker_lost,
        queue_expired = report.queue_expired,
        dispatched = report.dispatched,
        "maintenance pass"
    );
    Ok(web::Json(report))
}
