//! `POST /users`: administrators create users and their API keys.

use actix_web::{HttpResponse, web};
use serde_json::Value;

use crate::auth::Authenticated;
use crate::dto::{self, CreateUserRequest, CreatedUser, Problem};
use crate::error::ApiError;
use crate::state::AppState;

/// Creates a user with a fresh API key (administrators only).
#[utoipa::path(
    post,
    path = "/users",
    tag = "users",
    request_body = CreateUserRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The user and its API key, shown once", body = CreatedUser, links(
            ("CreateToken" = (operation_id = "create_token", request_body = json!({"apiKey": "$response.body#/apiKey"}))),
        )),
        (status = 400, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an administrator", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn create_user(
    state: web::Data<AppState>,
    caller: Authenticated,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let name = dto::parse_name(&body)?;
    let issued = state.services.users.create(&caller, &name).await?;
    Ok(HttpResponse::Created().json(dto::created_user(issued)))
}
