//! Artifacts: the workspace's artifacts, newest first, and downloading one.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use tlao_domain::{Artifact, ArtifactId, ArtifactStatus};
use tlao_orchestrator::ServiceError;

use super::page::{self, Ctx, Nav, PageError, time};
use super::session::ConsoleKeys;
use crate::state::AppState;

/// Artifacts per page.
const PAGE_SIZE: usize = 50;

/// `GET /console/artifacts`.
pub(crate) async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    keys: web::Data<ConsoleKeys>,
) -> HttpResponse {
    page::respond(&req, &state, &keys, async |ctx| {
        list_page(&req, &state, ctx).await
    })
    .await
}

async fn list_page(
    req: &HttpRequest,
    state: &AppState,
    ctx: &Ctx,
) -> Result<HttpResponse, PageError> {
    let ws = ctx.workspace()?;
    let cursor = serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
        .unwrap_or_default()
        .into_iter()
        .find(|(key, _)| key == "cursor")
        .and_then(|(_, value)| value.parse::<ArtifactId>().ok());
    let (artifacts, next) = state
        .services
        .artifacts
        .list_for_workspace(
            &ctx.session.caller,
            &ws.workspace_id,
            PAGE_SIZE,
            cursor.as_ref(),
        )
        .await?;
    let body = html! {
        h1 { "Artifacts" }
        p class="muted" { "What the runs of workspace " strong { (ws.name.as_str()) } " produced, newest first." }
        (artifacts_table(&artifacts))
        nav class="pager" aria-label="Pages" {
            @if cursor.is_some() {
                a href="/console/artifacts" { "← First page" }
            }
            @if let Some(next) = next {
                a href={ "/console/artifacts?cursor=" (next) } rel="next" { "Next page →" }
            }
        }
    };
    Ok(page::page(
        StatusCode::OK,
        Some(ctx),
        Nav::Artifacts,
        "Artifacts",
        body,
    ))
}

/// The workspace's artifacts, each with its run and a download link once stored.
fn artifacts_table(artifacts: &[Artifact]) -> Markup {
    html! {
        div class="table-wrap" {
            table {
                caption class="visually-hidden" { "Artifacts" }
                thead {
                    tr {
                        th scope="col" { "Name" }
                        th scope="col" { "Type" }
                        th scope="col" class="num" { "Size" }
                        th scope="col" { "Run" }
                        th scope="col" { "Created" }
                        th scope="col" { "Download" }
                    }
                }
                tbody {
                    @for artifact in artifacts {
                        tr {
                            th scope="row" { (artifact.name.as_str()) }
                            td { (artifact.artifact_type.as_str()) }
                            td class="num" { (page::bytes(artifact.size)) }
                            td { a class="mono" href={ "/console/runs/" (artifact.run_id) } { (artifact.run_id) } }
                            td { (time(artifact.created_at)) }
                            td {
                                @match artifact.status {
                                    ArtifactStatus::Available => a href={ "/console/artifacts/" (artifact.artifact_id) "/download" } download
                                        aria-label={ "Download " (artifact.name.as_str()) } { "Download" },
                                    ArtifactStatus::Pending => span class="muted" { "uploading" },
                                    ArtifactStatus::UploadFailed => span { "upload failed" },
                                }
                            }
                        }
                    }
                    @if artifacts.is_empty() {
                        tr { td colspan="6" class="empty" { "No artifacts yet. Runs store theirs here when they finish." } }
                    }
                }
            }
        }
    }
}

/// `GET /console/artifacts/{id}/download`: checks access, then `303` to a short-lived
/// presigned URL of the bytes.
pub(crate) async fn download(
    req: HttpRequest,
    state: web::Data<AppState>,
    keys: web::Data<ConsoleKeys>,
    artifact_id: web::Path<String>,
) -> HttpResponse {
    page::respond(&req, &state, &keys, async |ctx| {
        let id = artifact_id.parse::<ArtifactId>().map_err(|_| {
            PageError::NotFound(format!("{:?} is not an artifact id.", artifact_id.as_str()))
        })?;
        let view = state
            .services
            .artifacts
            .get(&ctx.session.caller, &id)
            .await
            .map_err(|error| match error {
                ServiceError::Forbidden(_) => PageError::Forbidden(
                    "This artifact belongs to a workspace you are not a member of.".into(),
                ),
                other => other.into(),
            })?;
        match view.download {
            Some(url) => Ok(page::see_other(&url.url)),
            None => Err(PageError::NotFound(format!(
                "Artifact {} has no stored bytes to download (it is {}).",
                id,
                view.artifact.status.as_str().replace('_', " ")
            ))),
        }
    })
    .await
}
