//! Workspaces: create, list, read.

use actix_web::{HttpResponse, web};
use serde_json::Value;
use tlao_domain::WorkspaceId;

use crate::auth::Authenticated;
use crate::dto::{self, CreateWorkspaceRequest, Problem, WorkspaceList, WorkspaceView};
use crate::error::ApiError;
use crate::params::path_id;
use crate::request_id;
use crate::state::AppState;

/// Creates a workspace owned by the caller.
#[utoipa::path(
    post,
    path = "/workspaces",
    tag = "workspaces",
    request_body = CreateWorkspaceRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The workspace", body = WorkspaceView, links(
            ("GetWorkspace" = (operation_id = "get_workspace", parameters(("workspaceId" = "$response.body#/workspaceId")))),
            ("UploadArchive" = (operation_id = "upload_archive", parameters(("workspaceId" = "$response.body#/workspaceId")))),
            ("CreateTask" = (operation_id = "create_task", request_body = json!({"workspaceId": "$response.body#/workspaceId"}))),
            ("ListRuns" = (operation_id = "list_runs", parameters(("workspaceId" = "$response.body#/workspaceId")))),
        )),
        (status = 400, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn create_workspace(
    state: web::Data<AppState>,
    caller: Authenticated,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let name = dto::parse_name(&body)?;
    let workspace = state.services.workspaces.create(&caller, &name).await?;
    request_id::note_workspace(&workspace.workspace_id);
    let view = WorkspaceView::new(workspace, &state.services.core.guardrails);
    Ok(HttpResponse::Created().json(view))
}

/// The workspaces the caller belongs to, oldest first.
#[utoipa::path(
    get,
    path = "/workspaces",
    tag = "workspaces",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's workspaces", body = WorkspaceList),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_workspaces(
    state: web::Data<AppState>,
    caller: Authenticated,
) -> Result<web::Json<WorkspaceList>, ApiError> {
    let workspaces = state.services.workspaces.list(&caller).await?;
    let guardrails = &state.services.core.guardrails;
    Ok(web::Json(WorkspaceList {
        items: workspaces
            .into_iter()
            .map(|workspace| WorkspaceView::new(workspace, guardrails))
            .collect(),
    }))
}

/// One workspace the caller belongs to.
#[utoipa::path(
    get,
    path = "/workspaces/{workspaceId}",
    tag = "workspaces",
    params(("workspaceId" = String, Path, pattern = "^ws_[0-7][0-9A-HJKMNP-TV-Z]{25}$", description = "The workspace (`ws_...`)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The workspace", body = WorkspaceView),
        (status = 400, description = "The id is malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not a member", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_workspace(
    state: web::Data<AppState>,
    caller: Authenticated,
    workspace_id: web::Path<String>,
) -> Result<web::Json<WorkspaceView>, ApiError> {
    let workspace_id: WorkspaceId = path_id("workspaceId", &workspace_id)?;
    let workspace = state
        .services
        .workspaces
        .get(&caller, &workspace_id)
        .await?;
    Ok(web::Json(WorkspaceView::new(
        workspace,
        &state.services.core.guardrails,
    )))
}
