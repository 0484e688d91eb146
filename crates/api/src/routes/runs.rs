//! Runs: queue one, list a workspace's, read one, cancel one.

use std::fmt::Display;
use std::str::FromStr;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::Value;
use tlao_domain::RunId;
use tlao_domain::validation::Collector;
use tlao_orchestrator::RunFilter;
use tlao_orchestrator::runs::MAX_PAGE;
use utoipa::IntoParams;

use crate::auth::Authenticated;
use crate::dto::{self, CreateRunRequest, Problem, RunList, RunView};
use crate::error::ApiError;
use crate::params::{idempotency_key, path_id};
use crate::request_id;
use crate::state::AppState;

/// How many runs a page holds unless `limit` says otherwise.
pub(crate) const DEFAULT_PAGE: usize = 20;

/// The query of `GET /runs`. Every parameter is read as text and parsed here, so each
/// bad one is reported by name.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(rename_all = "camelCase", parameter_in = Query)]
pub(crate) struct RunsQuery {
    /// The workspace (`ws_...`); the caller's oldest workspace when absent.
    #[param(pattern = "^ws_[0-7][0-9A-HJKMNP-TV-Z]{25}$")]
    workspace_id: Option<String>,
    /// Only runs with this status.
    #[param(value_type = Option<crate::dto::RunStatusName>)]
    status: Option<String>,
    /// Only runs on this executor.
    #[param(pattern = "^[a-z][a-z0-9-]{0,62}$")]
    executor: Option<String>,
    /// Only runs of this task type.
    #[param(value_type = Option<crate::dto::TaskTypeName>)]
    task_type: Option<String>,
    /// How many runs per page, 1 to 100; 20 by default.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `nextCursor` of the previous page: the last run id it held.
    #[param(pattern = "^run_[0-7][0-9A-HJKMNP-TV-Z]{25}$")]
    cursor: Option<String>,
}

impl RunsQuery {
    fn parse(&self) -> Result<RunFilter, ApiError> {
        let mut errors = Collector::new();
        let workspace_id = optional(&mut errors, "workspaceId", self.workspace_id.as_deref());
        let status = optional(&mut errors, "status", self.status.as_deref());
        let after = optional(&mut errors, "cursor", self.cursor.as_deref());
        let limit = match self.limit.as_deref() {
            None => Some(DEFAULT_PAGE),
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => Some(n),
                _ => {
                    errors.push(
                        "limit",
                        format!("{text:?} is not a whole number between 1 and {MAX_PAGE}"),
                    );
                    None
                }
            },
        };
        let executor = optional(&mut errors, "executor", self.executor.as_deref());
        let task_type = optional(&mut errors, "taskType", self.task_type.as_deref());
        let filter = (|| {
            Some(RunFilter {
                workspace_id: workspace_id?,
                status: status?,
                executor: executor?,
                task_type: task_type?,
                limit: limit?,
                after: after?,
            })
        })();
        Ok(errors.finish(filter)?)
    }
}

/// `Some(None)` when `text` is absent, `Some(Some(value))` when it parses, `None` (with
/// the error recorded under `field`) when it does not.
fn optional<T>(errors: &mut Collector, field: &str, text: Option<&str>) -> Option<Option<T>>
where
    T: FromStr,
    T::Err: Display,
{
    match text {
        None => Some(None),
        Some(text) => errors.check(field, text.parse::<T>()).map(Some),
    }
}

/// Queues a run of a task.
#[utoipa::path(
    post,
    path = "/runs",
    tag = "runs",
    request_body = CreateRunRequest,
    params(("Idempotency-Key" = Option<String>, Header, nullable = false, pattern = "^[!-~]{1,255}$", description = "Makes a retry return the first run and create nothing; reusing it with another body is a 409")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The queued run", body = RunView, links(
            ("GetRun" = (operation_id = "get_run", parameters(("runId" = "$response.body#/runId")))),
            ("CancelRun" = (operation_id = "cancel_run", parameters(("runId" = "$response.body#/runId")))),
            ("StreamRunEvents" = (operation_id = "stream_run_events", parameters(("runId" = "$response.body#/runId")))),
            ("ListRunArtifacts" = (operation_id = "list_run_artifacts", parameters(("runId" = "$response.body#/runId")))),
        )),
        (status = 400, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not a member of the task's workspace", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The Idempotency-Key was used with another body", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No executor serves the task type (`taskType`), or the requested one does not", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The workspace used its daily quota, or the caller theirs across their workspaces (`limit`: `dailyRunQuota` or `dailyRunQuotaPerUser`, `max`, `retryAfterSeconds`, `Retry-After`)", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until the quota resets"))),
    )
)]
pub(crate) async fn create_run(
    state: web::Data<AppState>,
    caller: Authenticated,
    req: HttpRequest,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let request = dto::parse_create_run(&body)?;
    let key = idempotency_key(&req)?;
    let view = state
        .services
        .start
        .create_run(&caller, request, key)
        .await?;
    request_id::note_workspace(&view.run.workspace_id);
    request_id::note_run(&view.run.run_id);
    let answer = dto::run_view(view, state.now());
    state.dispatch_created().await;
    Ok(HttpResponse::Created().json(answer))
}

/// A page of a workspace's runs, newest first.
#[utoipa::path(
    get,
    path = "/runs",
    tag = "runs",
    params(RunsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One page of runs", body = RunList),
        (status = 400, description = "A bad parameter, named in `errors`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not a member of the workspace", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_runs(
    state: web::Data<AppState>,
    caller: Authenticated,
    query: web::Query<RunsQuery>,
) -> Result<web::Json<RunList>, ApiError> {
    let filter = query.parse()?;
    if let Some(workspace_id) = &filter.workspace_id {
        request_id::note_workspace(workspace_id);
    }
    let page = state.services.runs.list(&caller, filter).await?;
    Ok(web::Json(dto::run_list(page, state.now())))
}

/// A run of a workspace the caller belongs to.
#[utoipa::path(
    get,
    path = "/runs/{runId}",
    tag = "runs",
    params(("runId" = String, Path, pattern = "^run_[0-7][0-9A-HJKMNP-TV-Z]{25}$", description = "The run (`run_...`)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The run", body = RunView),
        (status = 400, description = "The id is malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not a member of its workspace", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_run(
    state: web::Data<AppState>,
    caller: Authenticated,
    run_id: web::Path<String>,
) -> Result<web::Json<RunView>, ApiError> {
    let run_id: RunId = path_id("runId", &run_id)?;
    let view = state.services.runs.get(&caller, &run_id).await?;
    request_id::note_workspace(&view.run.workspace_id);
    Ok(web::Json(dto::run_view(view, state.now())))
}

/// Cancels a queued or running run.
#[utoipa::path(
    post,
    path = "/runs/{runId}/cancel",
    tag = "runs",
    params(("runId" = String, Path, pattern = "^run_[0-7][0-9A-HJKMNP-TV-Z]{25}$", description = "The run (`run_...`)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The cancelled run", body = RunView),
        (status = 400, description = "The id is malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not a member of its workspace", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run is already finished", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn cancel_run(
    state: web::Data<AppState>,
    caller: Authenticated,
    run_id: web::Path<String>,
) -> Result<web::Json<RunView>, ApiError> {
    let run_id: RunId = path_id("runId", &run_id)?;
    let view = state.services.runs.cancel(&caller, &run_id).await?;
    request_id::note_workspace(&view.run.workspace_id);
    Ok(web::Json(dto::run_view(view, state.now())))
}
