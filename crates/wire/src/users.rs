//! Tokens and users: `POST /auth/token` and `POST /users`.

use serde::{Deserialize, Serialize};
use tlao_domain::{Timestamp, UserId};

/// The body of `POST /auth/token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenRequest {
    /// An API key (`tlao_...`).
    pub api_key: String,
}

/// A bearer token for the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    /// The JWT, for `Authorization: Bearer <token>`.
    pub token: String,
    /// When it stops working (RFC 3339).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Timestamp,
    /// Whose token it is (`usr_...`).
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^usr_[0-7][0-9A-HJKMNP-TV-Z]{25}$"))]
    pub user_id: UserId,
}

/// The body of `POST /users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// A display name: 1 to 100 characters once white space around it is trimmed, no
    /// control characters.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^[\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,98}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
        )
    )]
    pub name: String,
}

/// A new user and the only copy of its API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CreatedUser {
    /// The user's id (`usr_...`).
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^usr_[0-7][0-9A-HJKMNP-TV-Z]{25}$"))]
    pub user_id: UserId,
    /// The API key; shown once, never stored in clear.
    pub api_key: String,
}
