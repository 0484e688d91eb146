//! Artifacts: a run's list and one artifact, each with a download URL when available.

use actix_web::web;
use tlao_domain::{ArtifactId, RunId};

use crate::auth::Authenticated;
use crate::dto::{self, ArtifactList, ArtifactView, Problem};
use crate::error::ApiError;
use crate::params::path_id;
use crate::request_id;
use crate::state::AppState;

/// The artifacts of a run, in the order they were produced.
#[utoipa::path(
    get,
    path = "/runs/{runId}/artifacts",
    tag = "artifacts",
    params(("runId" = String, Path, pattern = "^run_[0-7][0-9A-HJKMNP-TV-Z]{25}$", description = "The run (`run_...`)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The run's artifacts", body = ArtifactList, links(
            ("GetArtifact" = (operation_id = "get_artifact", parameters(("artifactId" = "$response.body#/items/0/artifactId")))),
        )),
        (status = 400, description = "The id is malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not a member of its workspace", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_run_artifacts(
    state: web::Data<AppState>,
    caller: Authenticated,
    run_id: web::Path<String>,
) -> Result<web::Json<ArtifactList>, ApiError> {
    let run_id: RunId = path_id("runId", &run_id)?;
    let views = state
        .services
        .artifacts
        .list_for_run(&caller, &run_id)
        .await?;
    Ok(web::Json(ArtifactList {
        items: views.into_iter().map(dto::artifact_view).collect(),
    }))
}

/// One artifact, with a presigned download URL when its bytes are available.
#[utoipa::path(
    get,
    path = "/artifacts/{artifactId}",
    tag = "artifacts",
    params(("artifactId" = String, Path, pattern = "^art_[0-7][0-9A-HJKMNP-TV-Z]{25}$", description = "The artifact (`art_...`)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The artifact", body = ArtifactView),
        (status = 400, description = "The id is malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not a member of its workspace", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such artifact", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_artifact(
    state: web::Data<AppState>,
    caller: Authenticated,
    artifact_id: web::Path<String>,
) -> Result<web::Json<ArtifactView>, ApiError> {
    let artifact_id: ArtifactId = path_id("artifactId", &artifact_id)?;
    let view = state.services.artifacts.get(&caller, &artifact_id).await?;
    request_id::note_workspace(&view.artifact.workspace_id);
    request_id::note_run(&view.artifact.run_id);
    Ok(web::Json(dto::artifact_view(view)))
}
