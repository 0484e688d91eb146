//! The body of every error response (RFC 9457 `application/problem+json`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::TaskTypeName;

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldErrorView {
    /// The field's path, e.g. `input.prompt`; `body` for the document as a whole.
    pub field: String,
    /// What is wrong with it, lowercase.
    pub message: String,
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// The problem type, e.g. `urn:tlao:problem:quota-exceeded`.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// A short summary of the problem type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// The request's id, as in its `x-request-id` header; quote it when reporting.
    pub request_id: String,
    /// On 400: every invalid field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldErrorView>,
    /// On 413: the limit, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// On 429: seconds until the quota resets (also the `Retry-After` header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
    /// On 422: the task type no executor serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_type: Option<TaskTypeName>,
}
