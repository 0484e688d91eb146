//! Probes, the OpenAPI document, and the root redirect; none needs a token.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use tlao_ports::StorageFault;

use crate::dto::{Health, Problem};
use crate::error::ApiError;
use crate::state::AppState;

/// Redirects to the web console.
#[utoipa::path(
    get,
    path = "/",
    tag = "meta",
    responses((status = 307, description = "Redirect to `/console`", headers(("Location" = String))))
)]
pub(crate) async fn root() -> HttpResponse {
    HttpResponse::TemporaryRedirect()
        .insert_header((header::LOCATION, "/console"))
        .finish()
}

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "meta",
    responses((status = 200, description = "The process is alive", body = Health))
)]
pub(crate) async fn healthz() -> web::Json<Health> {
    web::Json(Health::ok())
}

/// Readiness: the table and the blob store answer.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "meta",
    responses(
        (status = 200, description = "Storage is reachable", body = Health),
        (status = 503, description = "The table or the blob store is not reachable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn readyz(state: web::Data<AppState>) -> Result<web::Json<Health>, ApiError> {
    let core = &state.services.core;
    core.store
        .ping()
        .await
        .map_err(|cause| not_ready("the table is not reachable", cause.into()))?;
    core.blobs
        .ping()
        .await
        .map_err(|cause| not_ready("the blob store is not reachable", cause.into()))?;
    Ok(web::Json(Health::ok()))
}

/// A failed probe: the storage fault when it is one an operator must fix (a full or
/// read-only disk), else `otherwise`; the cause itself goes to the log only.
fn not_ready(otherwise: &str, cause: anyhow::Error) -> ApiError {
    let detail = match StorageFault::find(cause.as_ref()) {
        Some(fault) => format!("not ready: {fault}"),
        None => otherwise.to_owned(),
    };
    ApiError::Unavailable { detail, cause }
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI document of this API", content_type = "application/json", body = Object))
)]
pub(crate) async fn openapi_json(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.openapi_json.clone())
}
