//! `POST /auth/token`: an API key in, a bearer token out.

use actix_web::web;
use serde_json::Value;

use crate::dto::{self, Problem, TokenRequest, TokenResponse};
use crate::error::ApiError;
use crate::state::AppState;

/// Exchanges an API key for a bearer token.
#[utoipa::path(
    post,
    path = "/auth/token",
    tag = "auth",
    request_body = TokenRequest,
    responses(
        (status = 200, description = "A token for the key's user", body = TokenResponse),
        (status = 400, description = "The body is not `{\"apiKey\"}`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "The API key is not valid", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn create_token(
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> Result<web::Json<TokenResponse>, ApiError> {
    let api_key = dto::parse_token_request(&body)?;
    let user = state.services.users.authenticate(&api_key).await?;
    let (token, expires_at) = state.tokens.issue(&user, state.now())?;
    Ok(web::Json(TokenResponse {
        token,
        expires_at,
        user_id: user.user_id,
    }))
}
