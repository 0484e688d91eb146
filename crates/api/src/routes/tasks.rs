//! Tasks: create (with every bad field reported at once) and read.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;
use tlao_domain::{NewTask, TaskId};

use crate::auth::Authenticated;
use crate::dto::{CreateTaskRequest, Problem, TaskView};
use crate::error::ApiError;
use crate::params::{idempotency_key, path_id};
use crate::request_id;
use crate::state::AppState;

/// Creates a task: a TaskSpec in a workspace the caller belongs to.
#[utoipa::path(
    post,
    path = "/tasks",
    tag = "tasks",
    request_body = CreateTaskRequest,
    params(("Idempotency-Key" = Option<String>, Header, nullable = false, pattern = "^[!-~]{1,255}$", description = "Makes a retry return the first task and create nothing; reusing it with another body is a 409")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The task", body = TaskView, links(
            ("GetTask" = (operation_id = "get_task", parameters(("taskId" = "$response.body#/taskId")))),
            ("CreateRun" = (operation_id = "create_run", request_body = json!({"taskId": "$response.body#/taskId"}))),
        )),
        (status = 400, description = "Every invalid or missing field, in `errors`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not a member of the workspace", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workspace, or no such archive in it (`input.archiveId`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The Idempotency-Key was used with another body", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn create_task(
    state: web::Data<AppState>,
    caller: Authenticated,
    req: HttpRequest,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let task = NewTask::parse(&body)?;
    request_id::note_workspace(&task.workspace_id);
    let key = idempotency_key(&req)?;
    let task = state.services.start.create_task(&caller, task, key).await?;
    Ok(HttpResponse::Created().json(TaskView::from(task)))
}

/// A task of a workspace the caller belongs to.
#[utoipa::path(
    get,
    path = "/tasks/{taskId}",
    tag = "tasks",
    params(("taskId" = String, Path, pattern = "^task_[0-7][0-9A-HJKMNP-TV-Z]{25}$", description = "The task (`task_...`)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The task", body = TaskView),
        (status = 400, description = "The id is malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not a member of its workspace", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_task(
    state: web::Data<AppState>,
    caller: Authenticated,
    task_id: web::Path<String>,
) -> Result<web::Json<TaskView>, ApiError> {
    let task_id: TaskId = path_id("taskId", &task_id)?;
    let task = state.services.tasks.get(&caller, &task_id).await?;
    request_id::note_workspace(&task.workspace_id);
    Ok(web::Json(TaskView::from(task)))
}
