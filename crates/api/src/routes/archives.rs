//! `POST /workspaces/{workspaceId}/archives`: a tar.gz streamed into the blob store.
//!
//! The body is never held whole: it is forwarded chunk by chunk (see
//! [`crate::streaming`]) to the archive service, which measures, hashes and stores it,
//! and cuts it off as soon as it passes the size guardrail — or, decompressing it on the
//! way, as soon as its entries or unpacked size pass theirs.

use actix_web::{HttpRequest, HttpResponse, web};
use tlao_domain::WorkspaceId;

use crate::auth::Authenticated;
use crate::dto::{ArchiveView, Binary, Problem};
use crate::error::ApiError;
use crate::params::{declared_length, path_id};
use crate::state::AppState;
use crate::streaming;

/// Uploads a workspace archive (a tar.gz of a repository).
#[utoipa::path(
    post,
    path = "/workspaces/{workspaceId}/archives",
    tag = "workspaces",
    params(("workspaceId" = String, Path, pattern = "^ws_[0-7][0-9A-HJKMNP-TV-Z]{25}$", description = "The workspace (`ws_...`)")),
    request_body(content = Binary, content_type = "application/gzip", description = "The raw tar.gz; `Content-Length` optional"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The stored archive", body = ArchiveView, links(
            ("CreateTask" = (operation_id = "create_task", request_body = json!({
                "workspaceId": "$request.path.workspaceId",
                "input": {"archiveId": "$response.body#/archiveId"}
            }))),
        )),
        (status = 400, description = "The body is not gzip or not a readable tar.gz (`errors` names `body`), or the id is malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not a member", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The archive passes a limit, named in `limit` with its value in `max`: its size (`maxArchiveBytes`, also `maxBytes`; declared or streamed), its entries (`maxArchiveEntries`) or its unpacked size (`maxUnpackedBytes`, also `maxBytes`), refused as it streams; nothing is stored", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn upload_archive(
    state: web::Data<AppState>,
    caller: Authenticated,
    workspace_id: web::Path<String>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let workspace_id: WorkspaceId = path_id("workspaceId", &workspace_id)?;
    let archive = state
        .services
        .archives
        .upload(
            &caller,
            &workspace_id,
            declared_length(&req),
            streaming::forward(body),
        )
        .await?;
    Ok(HttpResponse::Created().json(ArchiveView::from(archive)))
}
