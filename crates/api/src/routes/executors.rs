//! The executor registry: list (any user), register and remove (administrators).

use actix_web::{HttpResponse, web};
use serde_json::Value;
use tlao_domain::{ExecutorDescriptor, ExecutorName};

use tlao_wire::executors::AvailabilityView;
use tlao_wire::presets::PresetList;

use crate::auth::Authenticated;
use crate::dto::{ExecutorList, ExecutorView, Problem, RegisterExecutorRequest};
use crate::error::ApiError;
use crate::params::path_id;
use crate::state::AppState;

/// Every registered executor, by name, with where its program was last seen available.
#[utoipa::path(
    get,
    path = "/executors",
    tag = "executors",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The registry", body = ExecutorList),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_executors(
    state: web::Data<AppState>,
    _caller: Authenticated,
) -> Result<web::Json<ExecutorList>, ApiError> {
    let executors = state.services.executors.list().await?;
    let seen = state.services.executors.availability().await?;
    let items = executors
        .iter()
        .map(|descriptor| ExecutorView {
            availability: seen.get(&descriptor.name).map(AvailabilityView::from),
            ..ExecutorView::from(descriptor)
        })
        .collect();
    Ok(web::Json(ExecutorList { items }))
}

/// The executor presets: documented records for common agent CLIs, which
/// `tlao executors add --preset NAME` registers (`POST /executors` with the record).
#[utoipa::path(
    get,
    path = "/executors/presets",
    tag = "executors",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The presets", body = PresetList),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_presets(_caller: Authenticated) -> web::Json<PresetList> {
    web::Json(PresetList {
        items: tlao_wire::presets::all(),
    })
}

/// Registers an executor (administrators only).
#[utoipa::path(
    post,
    path = "/executors",
    tag = "executors",
    request_body = RegisterExecutorRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The registered executor", body = ExecutorView, links(
            ("RemoveExecutor" = (operation_id = "remove_executor", parameters(("name" = "$response.body#/name")))),
        )),
        (status = 400, description = "Every invalid field, in `errors`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The name is taken", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn register_executor(
    state: web::Data<AppState>,
    caller: Authenticated,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let descriptor = ExecutorDescriptor::parse(&body)?;
    let registered = state
        .services
        .executors
        .register(&caller, descriptor)
        .await?;
    Ok(HttpResponse::Created().json(ExecutorView::from(&registered)))
}

/// Removes an executor (administrators only). Runs queued for it stay queued.
#[utoipa::path(
    delete,
    path = "/executors/{name}",
    tag = "executors",
    params(("name" = String, Path, pattern = "^[a-z][a-z0-9-]{0,62}$", description = "The executor's name")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "The name is malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such executor", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn remove_executor(
    state: web::Data<AppState>,
    caller: Authenticated,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name: ExecutorName = path_id("name", &name)?;
    state.services.executors.remove(&caller, &name).await?;
    Ok(HttpResponse::NoContent().finish())
}
