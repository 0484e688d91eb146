//! The worker protocol (`/worker/*`): how the execution plane leases runs, streams
//! events (its heartbeat), stores artifacts and completes runs. Authenticated with the
//! worker token, not a user's token. The wire types live in `tlao_wire::worker`, shared
//! with the worker, so both sides parse the same shapes.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::Value;
use tlao_domain::{ArtifactId, LeaseId, Reported, RunId};
use tlao_orchestrator::{Assignment as DomainAssignment, Completion, NewArtifact, Sighting};
use tlao_ports::PresignedUrl;
use tlao_wire::worker::{
    ArchiveDownload, ArtifactRequest, ArtifactUploadSlot, Assignment, AvailabilityReport,
    CompleteRequest, CompletionStatus, EventBatch, EventReport, FinalizeRequest, LeaseRequest,
    SignedUrl,
};
use tlao_wire::{ArtifactView, ExecutorView, RunView};

use crate::auth::WorkerAuthenticated;
use crate::dto::Problem;
use crate::error::ApiError;
use crate::params::{object_body, path_id};
use crate::request_id;
use crate::state::AppState;

/// The longest a lease request waits for a run.
pub(crate) const MAX_WAIT_SECONDS: u32 = tlao_wire::worker::MAX_LEASE_WAIT_SECONDS;

fn signed(url: PresignedUrl) -> SignedUrl {
    SignedUrl {
        url: url.url,
        method: url.method,
        expires_at: url.expires_at,
        headers: url.headers,
    }
}

fn assignment(a: DomainAssignment, state: &AppState) -> Assignment {
    assignment_view(
        a,
        state.now(),
        state.heartbeat_interval_ms,
        state.heartbeat_timeout_ms,
    )
}

/// The heartbeat interval and timeout a server with `heartbeat_timeout` announces in
/// its assignments, in milliseconds: `(interval, timeout)`.
pub(crate) fn announced_heartbeat_ms(heartbeat_timeout: std::time::Duration) -> (u64, u64) {
    let millis = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    (
        millis(tlao_wire::worker::heartbeat_interval(heartbeat_timeout)),
        millis(heartbeat_timeout),
    )
}

/// The wire form of an assignment: what a lease or `GET .../assignment` answers, and
/// what a [`crate::Handovers`] document carries.
pub(crate) fn assignment_view(
    a: DomainAssignment,
    now: tlao_domain::Timestamp,
    heartbeat_interval_ms: u64,
    heartbeat_timeout_ms: u64,
) -> Assignment {
    Assignment {
        run: RunView::new(a.run, None, None, now),
        lease_id: a.lease_id,
        executor: ExecutorView::from(&a.executor),
        task_spec_key: a.task_spec_key,
        task_spec_url: signed(a.task_spec_url),
        archive: a.archive.map(|d| ArchiveDownload {
            archive: d.archive.into(),
            url: signed(d.url),
        }),
        deadline: a.deadline,
        heartbeat_interval_ms: Some(heartbeat_interval_ms),
        heartbeat_timeout_ms: Some(heartbeat_timeout_ms),
        numbered_events: true,
    }
}

/// Leases the oldest runnable run, waiting up to `waitSeconds` for one.
#[utoipa::path(
    post,
    path = "/worker/lease",
    tag = "worker",
    request_body = LeaseRequest,
    security(("worker" = [])),
    responses(
        (status = 200, description = "A run to execute", body = Assignment, links(
            ("GetAssignment" = (operation_id = "get_assignment", parameters(
                ("runId" = "$response.body#/run/runId"), ("leaseId" = "$response.body#/leaseId")))),
            ("PostEvents" = (operation_id = "post_events", parameters(("runId" = "$response.body#/run/runId")),
                request_body = json!({"leaseId": "$response.body#/leaseId"}))),
            ("CreateArtifact" = (operation_id = "create_artifact", parameters(("runId" = "$response.body#/run/runId")),
                request_body = json!({"leaseId": "$response.body#/leaseId"}))),
            ("Complete" = (operation_id = "complete", parameters(("runId" = "$response.body#/run/runId")),
                request_body = json!({"leaseId": "$response.body#/leaseId"}))),
        )),
        (status = 204, description = "Nothing was leasable within `waitSeconds`"),
        (status = 400, description = "A malformed field, or `waitSeconds` over 30", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid worker token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn lease(
    state: web::Data<AppState>,
    _worker: WorkerAuthenticated,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let request: LeaseRequest = object_body(body.into_inner())?;
    if request.wait_seconds > MAX_WAIT_SECONDS {
        return Err(ApiError::invalid(
            "waitSeconds",
            format!("must be between 0 and {MAX_WAIT_SECONDS}"),
        ));
    }
    let wait = Duration::from_secs(u64::from(request.wait_seconds));
    record_availability(&state, request.availability.as_ref()).await?;
    match state
        .services
        .workers
        .lease_wait(request.executors.as_deref(), wait)
        .await?
    {
        Some(leased) => {
            request_id::note_workspace(&leased.run.workspace_id);
            request_id::note_run(&leased.run.run_id);
            Ok(HttpResponse::Ok().json(assignment(leased, &state)))
        }
        None => Ok(HttpResponse::NoContent().finish()),
    }
}

fn invalid_availability() -> ApiError {
    ApiError::invalid(
        "availability",
        "worker must be 1 to 64 letters, digits, '-', '_' or '.'; at most 100 executors; program up to 1024 and version up to 200 characters",
    )
}

/// Keeps what a worker reported found (requirement 2.2). A store failure is logged, not
/// answered: availability only steers run creation, the lease or heartbeat matters more.
async fn record_availability(
    state: &AppState,
    report: Option<&AvailabilityReport>,
) -> Result<(), ApiError> {
    let Some(report) = report else {
        return Ok(());
    };
    if !report.is_valid() {
        return Err(invalid_availability());
    }
    let sightings: Vec<Sighting> = report
        .executors
        .iter()
        .filter(|probe| probe.found)
        .map(|probe| Sighting {
            executor: probe.name.clone(),
            version: probe.version.clone(),
        })
        .collect();
    if let Err(error) = state
        .services
        .executors
        .record_seen(&report.worker, &sightings)
        .await
    {
        tracing::warn!(operation = "record_availability", %error, "cannot record executor availability");
    }
    Ok(())
}

/// The query of the assignment route.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(rename_all = "camelCase", parameter_in = Query)]
pub(crate) struct LeaseQuery {
    /// The lease the dispatcher took for this worker (`lease_...`).
    #[param(pattern = "^lease_[0-7][0-9A-HJKMNP-TV-Z]{25}$")]
    lease_id: String,
}

/// The assignment of a run the dispatcher leased for this worker.
#[utoipa::path(
    get,
    path = "/worker/runs/{runId}/assignment",
    tag = "worker",
    params(("runId" = String, Path, pattern = "^run_[0-7][0-9A-HJKMNP-TV-Z]{25}$", description = "The run (`run_...`)"), LeaseQuery),
    security(("worker" = [])),
    responses(
        (status = 200, description = "The run to execute", body = Assignment),
        (status = 400, description = "The run id or `leaseId` is malformed or missing", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid worker token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The lease does not hold the run (any more)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_assignment(
    state: web::Data<AppState>,
    _worker: WorkerAuthenticated,
    run_id: web::Path<String>,
    query: web::Query<LeaseQuery>,
) -> Result<web::Json<Assignment>, ApiError> {
    let run_id: RunId = path_id("runId", &run_id)?;
    let lease_id: LeaseId = query
        .lease_id
        .parse()
        .map_err(|e: tlao_domain::IdError| ApiError::invalid("leaseId", e.to_string()))?;
    request_id::note_run(&run_id);
    let leased = state
        .services
        .workers
        .assignment(&run_id, &lease_id)
        .await?;
    Ok(web::Json(assignment(leased, &state)))
}

/// Stores a batch of events (log lines past the log cap are counted, not kept) and
/// records the heartbeat. A numbered batch (`firstSeq`) sent again is stored once;
/// `dropped` events add to the run's dropped log bytes and say so in its log. Once the
/// run has ended nothing is stored: `409` (`lease-revoked`).
#[utoipa::path(
    post,
    path = "/worker/runs/{runId}/events",
    tag = "worker",
    params(("runId" = String, Path, pattern = "^run_[0-7][0-9A-HJKMNP-TV-Z]{25}$", description = "The run (`run_...`)")),
    request_body = EventBatch,
    security(("worker" = [])),
    responses(
        (status = 200, description = "Stored; what the run's status is now", body = EventReport),
        (status = 400, description = "The run id or the batch is malformed, or `firstSeq` is past the next number the run expects", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid worker token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The lease may not write the run (it ended, or another lease holds it): nothing was stored; stop", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn post_events(
    state: web::Data<AppState>,
    _worker: WorkerAuthenticated,
    run_id: web::Path<String>,
    body: web::Json<Value>,
) -> Result<web::Json<EventReport>, ApiError> {
    let run_id: RunId = path_id("runId", &run_id)?;
    request_id::note_run(&run_id);
    let batch: EventBatch = object_body(body.into_inner())?;
    if batch.availability.as_ref().is_some_and(|a| !a.is_valid()) {
        return Err(invalid_availability());
    }
    let items = batch.events.into_iter().map(Reported::from).collect();
    let report = state
        .services
        .workers
        .report(&run_id, &batch.lease_id, batch.first_seq, items)
        .await?;
    record_availability(&state, batch.availability.as_ref()).await?;
    Ok(web::Json(EventReport {
        status: report.status.into(),
        stop: report.stop,
        deadline: report.deadline,
        last_seq: report.last_seq,
    }))
}

/// Registers an artifact about to be uploaded and returns a presigned PUT for it.
#[utoipa::path(
    post,
    path = "/worker/runs/{runId}/artifacts",
    tag = "worker",
    params(("runId" = String, Path, pattern = "^run_[0-7][0-9A-HJKMNP-TV-Z]{25}$", description = "The run (`run_...`)")),
    request_body = ArtifactRequest,
    security(("worker" = [])),
    responses(
        (status = 201, description = "The pending artifact and where to upload it", body = ArtifactUploadSlot, links(
            ("FinalizeArtifact" = (operation_id = "finalize_artifact", parameters(
                ("runId" = "$request.path.runId"), ("artifactId" = "$response.body#/artifact/artifactId")),
                request_body = json!({"leaseId": "$request.body#/leaseId"}))),
        )),
        (status = 400, description = "The run id or a field is malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid worker token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The lease may not write the run (it ended, or another lease holds it): nothing was stored", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn create_artifact(
    state: web::Data<AppState>,
    _worker: WorkerAuthenticated,
    run_id: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let run_id: RunId = path_id("runId", &run_id)?;
    request_id::note_run(&run_id);
    let request: ArtifactRequest = object_body(body.into_inner())?;
    if request.sha256.len() != 64 || !request.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::invalid("sha256", "must be 64 hex characters"));
    }
    let slot = state
        .services
        .workers
        .create_artifact(
            &run_id,
            &request.lease_id,
            NewArtifact {
                name: request.name,
                artifact_type: request.artifact_type.into(),
                size: request.size,
                sha256: request.sha256.to_ascii_lowercase(),
                content_type: request.content_type,
            },
        )
        .await?;
    Ok(HttpResponse::Created().json(ArtifactUploadSlot {
        artifact: ArtifactView::new(slot.artifact, None),
        upload: signed(slot.upload),
    }))
}

/// Settles an artifact after its upload: `available`, or `upload_failed` with why.
/// Refused once the run has ended: the run's end settled its pending artifacts, and an
/// upload that came after (an S3 URL cannot be revoked) never makes one available.
#[utoipa::path(
    post,
    path = "/worker/runs/{runId}/artifacts/{artifactId}/finalize",
    tag = "worker",
    params(
        ("runId" = String, Path, pattern = "^run_[0-7][0-9A-HJKMNP-TV-Z]{25}$", description = "The run (`run_...`)"),
        ("artifactId" = String, Path, pattern = "^art_[0-7][0-9A-HJKMNP-TV-Z]{25}$", description = "The artifact (`art_...`)"),
    ),
    request_body = FinalizeRequest,
    security(("worker" = [])),
    responses(
        (status = 200, description = "The settled artifact", body = ArtifactView),
        (status = 400, description = "An id or a field is malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid worker token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run or artifact", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The lease may not write the run (it ended, or another lease holds it): the artifact does not become available", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn finalize_artifact(
    state: web::Data<AppState>,
    _worker: WorkerAuthenticated,
    path: web::Path<(String, String)>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (run_id, artifact_id) = path.into_inner();
    let run_id: RunId = path_id("runId", &run_id)?;
    let artifact_id: ArtifactId = path_id("artifactId", &artifact_id)?;
    request_id::note_run(&run_id);
    let request: FinalizeRequest = object_body(body.into_inner())?;
    let artifact = state
        .services
        .workers
        .finalize_artifact(&run_id, &request.lease_id, &artifact_id, request.error)
        .await?;
    Ok(HttpResponse::Ok().json(ArtifactView::new(artifact, None)))
}

/// Ends the run as the worker saw it end. When it already ended (cancelled, or failed
/// by the reaper) that outcome stands and is returned to the run's own lease, and
/// nothing is written; another lease is refused (`409`).
#[utoipa::path(
    post,
    path = "/worker/runs/{runId}/complete",
    tag = "worker",
    params(("runId" = String, Path, pattern = "^run_[0-7][0-9A-HJKMNP-TV-Z]{25}$", description = "The run (`run_...`)")),
    request_body = CompleteRequest,
    security(("worker" = [])),
    responses(
        (status = 200, description = "The run as it ended", body = RunView),
        (status = 400, description = "The run id or a field is malformed, or `failed` without an `error`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid worker token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The lease does not hold the run", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn complete(
    state: web::Data<AppState>,
    _worker: WorkerAuthenticated,
    run_id: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let run_id: RunId = path_id("runId", &run_id)?;
    request_id::note_run(&run_id);
    let request: CompleteRequest = object_body(body.into_inner())?;
    let completion = match (request.status, request.error) {
        (CompletionStatus::Completed, _) => Completion::Completed,
        (CompletionStatus::Failed, Some(error)) => Completion::Failed(error.into()),
        (CompletionStatus::Failed, None) => {
            return Err(ApiError::invalid(
                "error",
                "is required when status is failed",
            ));
        }
        (CompletionStatus::TimedOut, _) => Completion::TimedOut,
        (CompletionStatus::Cancelled, _) => Completion::Cancelled,
    };
    let run = state
        .services
        .workers
        .complete(&run_id, &request.lease_id, completion, request.usage.into())
        .await?;
    request_id::note_workspace(&run.workspace_id);
    Ok(HttpResponse::Ok().json(RunView::new(run, None, None, state.now())))
}
