//! A run's bundle: everything needed to understand and reproduce it, as one `tar.gz`
//! (see [`tlao_wire::bundles`]), with the same authorization as the run itself.

use actix_web::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use tlao_domain::RunId;
use tlao_domain::validation::Collector;
use utoipa::IntoParams;

use crate::auth::Authenticated;
use crate::dto::{Binary, Problem};
use crate::error::ApiError;
use crate::params::path_id;
use crate::request_id;
use crate::state::AppState;

/// The query of `GET /runs/{runId}/bundle`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(rename_all = "camelCase", parameter_in = Query)]
pub(crate) struct BundleQuery {
    /// `true` to put the workspace archive itself in the bundle (its record and hash
    /// are always there); `false` by default.
    #[param(value_type = Option<bool>)]
    with_archive: Option<String>,
}

impl BundleQuery {
    fn with_archive(&self) -> Result<bool, ApiError> {
        let mut errors = Collector::new();
        let value = match self.with_archive.as_deref() {
            None | Some("false") => Some(false),
            Some("true") => Some(true),
            Some(other) => {
                errors.push("withArchive", format!("{other:?} is not true or false"));
                None
            }
        };
        Ok(errors.finish(value)?)
    }
}

/// The run's bundle: a `tar.gz` whose directory, named after the run, holds
/// `manifest.json` (every other file with its size and SHA-256), `run.json`,
/// `task.json`, `executor.json`, `archive.json` (and `archive.tar.gz` with
/// `withArchive=true`), `events.jsonl`, `artifacts.json` and `artifacts/<id>/<name>`.
#[utoipa::path(
    get,
    path = "/runs/{runId}/bundle",
    tag = "runs",
    params(
        ("runId" = String, Path, pattern = "^run_[0-7][0-9A-HJKMNP-TV-Z]{25}$", description = "The run (`run_...`)"),
        BundleQuery,
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The bundle, a tar.gz", body = Binary, content_type = "application/gzip",
            headers(("Content-Disposition" = String, description = "attachment; filename=\"<runId>.bundle.tar.gz\""))),
        (status = 400, description = "The id or a parameter is malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not a member of its workspace", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_run_bundle(
    state: web::Data<AppState>,
    caller: Authenticated,
    run_id: web::Path<String>,
    query: web::Query<BundleQuery>,
) -> Result<HttpResponse, ApiError> {
    let run_id: RunId = path_id("runId", &run_id)?;
    let with_archive = query.with_archive()?;
    let record = state
        .services
        .bundles
        .record(&caller, &run_id, with_archive)
        .await?;
    request_id::note_workspace(&record.run.run.workspace_id);
    request_id::note_run(&run_id);
    let now = state.now();
    let bytes = web::block(move || crate::bundle::pack(record, now, with_archive))
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("packing the bundle: {e}")))?
        .map_err(|e| ApiError::internal(anyhow::anyhow!("packing the bundle: {e}")))?;
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/gzip"))
        .insert_header((
            CONTENT_DISPOSITION,
            format!("attachment; filename=\"{run_id}.bundle.tar.gz\""),
        ))
        .body(bytes))
}
