//! Tokens and users: `POST /auth/token` and `POST /users`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tlao_domain::ValidationErrors;
use tlao_orchestrator::IssuedUser;
use utoipa::ToSchema;

use crate::params::single_string;

/// The body of `POST /auth/token`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenRequest {
    /// An API key (`tlao_...`).
    pub api_key: String,
}

impl TokenRequest {
    /// Reads the API key out of a request body.
    pub(crate) fn parse(body: &Value) -> Result<String, ValidationErrors> {
        single_string(body, "apiKey")
    }
}

/// A bearer token for the API.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    /// The JWT, for `Authorization: Bearer <token>`.
    pub token: String,
    /// When it stops working (RFC 3339).
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// Whose token it is.
    pub user_id: String,
}

/// The body of `POST /users`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateUserRequest {
    /// A display name, 1 to 100 characters.
    pub name: String,
}

impl CreateUserRequest {
    /// Reads the name out of a request body.
    pub(crate) fn parse(body: &Value) -> Result<String, ValidationErrors> {
        single_string(body, "name")
    }
}

/// A new user and the only copy of its API key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedUser {
    /// The user's id.
    pub user_id: String,
    /// The API key; shown once, never stored in clear.
    pub api_key: String,
}

impl From<IssuedUser> for CreatedUser {
    fn from(issued: IssuedUser) -> Self {
        CreatedUser {
            user_id: issued.user.user_id.to_string(),
            api_key: issued.api_key,
        }
    }
}
