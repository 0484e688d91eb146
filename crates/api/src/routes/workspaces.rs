//! Workspaces: create (counted against the workspaces one user may own), list (a page
//! at a time), read.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::Value;
use tlao_domain::WorkspaceId;
use tlao_domain::validation::Collector;
use tlao_orchestrator::workspaces::MAX_PAGE;
use utoipa::IntoParams;

use crate::auth::Authenticated;
use crate::dto::{self, CreateWorkspaceRequest, Problem, WorkspaceList, WorkspaceView};
use crate::error::ApiError;
use crate::params::path_id;
use crate::request_id;
use crate::state::AppState;

/// How many workspaces a page holds unless `limit` says otherwise: every workspace a
/// user may own by default, so clients that do not page see them all.
pub(crate) const DEFAULT_PAGE: usize = 100;

/// The query of `GET /workspaces`, read as text and parsed here so each bad parameter
/// is reported by name.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(rename_all = "camelCase", parameter_in = Query)]
pub(crate) struct WorkspacesQuery {
    /// How many workspaces per page, 1 to 100; 100 by default.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `nextCursor` of the previous page: the last workspace id it held.
    #[param(pattern = "^ws_[0-7][0-9A-HJKMNP-TV-Z]{25}$")]
    cursor: Option<String>,
}

impl WorkspacesQuery {
    fn parse(&self) -> Result<(usize, Option<WorkspaceId>), ApiError> {
        let mut errors = Collector::new();
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
        let cursor = match self.cursor.as_deref() {
            None => Some(None),
            Some(text) => errors
                .check("cursor", text.parse::<WorkspaceId>())
                .map(Some),
        };
        let parsed = limit.zip(cursor);
        Ok(errors.finish(parsed)?)
    }
}

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
        (status = 429, description = "The caller owns as many workspaces as one user may (`limit`: `maxWorkspacesPerUser`, `max`); no `Retry-After`, as time does not lift it", body = Problem, content_type = "application/problem+json"),
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

/// A page of the workspaces the caller belongs to, oldest first.
#[utoipa::path(
    get,
    path = "/workspaces",
    tag = "workspaces",
    params(WorkspacesQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One page of the caller's workspaces", body = WorkspaceList),
        (status = 400, description = "A bad parameter, named in `errors`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_workspaces(
    state: web::Data<AppState>,
    caller: Authenticated,
    query: web::Query<WorkspacesQuery>,
) -> Result<web::Json<WorkspaceList>, ApiError> {
    let (limit, after) = query.parse()?;
    let page = state
        .services
        .workspaces
        .page(&caller, limit, after.as_ref())
        .await?;
    let guardrails = &state.services.core.guardrails;
    Ok(web::Json(WorkspaceList {
        items: page
            .items
            .into_iter()
            .map(|workspace| WorkspaceView::new(workspace, guardrails))
            .collect(),
        next_cursor: page.next_cursor.map(String::from),
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
