//! Users and their API keys: `POST /users` (administrators create users and their first
//! key) and `/users/{userId}/keys` (a user — or an administrator — lists, creates and
//! revokes a user's keys; a key is shown once, when created).

use actix_web::{HttpResponse, web};
use serde_json::Value;
use tlao_domain::{KeyId, UserId};

use crate::auth::Authenticated;
use crate::dto::{self, ApiKeyList, CreateUserRequest, CreatedApiKey, CreatedUser, Problem};
use crate::error::ApiError;
use crate::params::path_id;
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

/// A user's API keys, oldest first: ids, creation and last use, never the keys (the
/// user themself or an administrator).
#[utoipa::path(
    get,
    path = "/users/{userId}/keys",
    tag = "users",
    params(("userId" = String, Path, pattern = "^usr_[0-7][0-9A-HJKMNP-TV-Z]{25}$", description = "The user (`usr_...`)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user's keys", body = ApiKeyList),
        (status = 400, description = "The id is malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is neither the user nor an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_keys(
    state: web::Data<AppState>,
    caller: Authenticated,
    user_id: web::Path<String>,
) -> Result<web::Json<ApiKeyList>, ApiError> {
    let user_id: UserId = path_id("userId", &user_id)?;
    let keys = state.services.users.list_keys(&caller, &user_id).await?;
    Ok(web::Json(ApiKeyList {
        items: keys.into_iter().map(dto::api_key_view).collect(),
    }))
}

/// Issues a new API key to a user, shown once (the user themself or an administrator).
/// Their other keys stay valid: rotating is creating a key, then revoking the old one.
#[utoipa::path(
    post,
    path = "/users/{userId}/keys",
    tag = "users",
    params(("userId" = String, Path, pattern = "^usr_[0-7][0-9A-HJKMNP-TV-Z]{25}$", description = "The user (`usr_...`)")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new key, shown once", body = CreatedApiKey),
        (status = 400, description = "The id is malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is neither the user nor an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn create_key(
    state: web::Data<AppState>,
    caller: Authenticated,
    user_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user_id: UserId = path_id("userId", &user_id)?;
    let issued = state.services.users.create_key(&caller, &user_id).await?;
    Ok(HttpResponse::Created().json(dto::created_api_key(issued)))
}

/// Revokes one of a user's API keys (the user themself or an administrator): it can no
/// longer get a token (`POST /auth/token` answers 401). Tokens it got before stay valid
/// until they expire (`auth.token_ttl_seconds`).
#[utoipa::path(
    delete,
    path = "/users/{userId}/keys/{keyId}",
    tag = "users",
    params(
        ("userId" = String, Path, pattern = "^usr_[0-7][0-9A-HJKMNP-TV-Z]{25}$", description = "The user (`usr_...`)"),
        ("keyId" = String, Path, pattern = "^key_[0-7][0-9A-HJKMNP-TV-Z]{25}$", description = "The key (`key_...`)"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "An id is malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is neither the user nor an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user, or no such key of theirs", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn revoke_key(
    state: web::Data<AppState>,
    caller: Authenticated,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (user_id, key_id) = path.into_inner();
    let user_id: UserId = path_id("userId", &user_id)?;
    let key_id: KeyId = path_id("keyId", &key_id)?;
    state
        .services
        .users
        .revoke_key(&caller, &user_id, &key_id)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
