//! Tokens, users and their API keys: `POST /auth/token`, `POST /users` and
//! `/users/{userId}/keys`.

use serde::{Deserialize, Serialize};
use tlao_domain::{KeyId, Timestamp, UserId};

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
    /// The key's id (`key_...`), which lists and revokes it.
    // An `Option` only so answers of servers from before key ids still read.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = true, pattern = "^key_[0-7][0-9A-HJKMNP-TV-Z]{25}$"))]
    pub key_id: Option<KeyId>,
}

/// One API key of a user, as listed: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyView {
    /// Its id (`key_...`).
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^key_[0-7][0-9A-HJKMNP-TV-Z]{25}$"))]
    pub key_id: KeyId,
    /// When it was issued (RFC 3339).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// When it last got a token, to the minute (RFC 3339); null when it never did since
    /// this was recorded.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime, required = true))]
    pub last_used_at: Option<Timestamp>,
}

/// A user's API keys, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKeyList {
    /// The keys.
    pub items: Vec<ApiKeyView>,
}

/// A new API key and the only copy of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CreatedApiKey {
    /// Its id (`key_...`), which lists and revokes it.
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^key_[0-7][0-9A-HJKMNP-TV-Z]{25}$"))]
    pub key_id: KeyId,
    /// Whose key it is.
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^usr_[0-7][0-9A-HJKMNP-TV-Z]{25}$"))]
    pub user_id: UserId,
    /// The API key; shown once, never stored in clear.
    pub api_key: String,
    /// When it was issued (RFC 3339).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}
