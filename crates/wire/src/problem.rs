//! The body of every error response (RFC 9457 `application/problem+json`).
//!
//! Clients read it leniently (a proxy's problem may lack fields): every field but
//! `status` has a default.

use serde::{Deserialize, Serialize};

use crate::names::{RunStatusName, TaskTypeName};

/// Why a worker's write under a lease was refused (`409`, type
/// `urn:tlao:problem:lease-revoked`): the lease may not write the run any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FenceReason {
    /// The lease does not hold the run: it never did, or another lease replaced it.
    LeaseSuperseded,
    /// The run has ended (`runStatus` says how); nothing is written after the end.
    RunEnded,
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldErrorView {
    /// The field's path, e.g. `input.prompt`; `body` for the document as a whole.
    pub field: String,
    /// What is wrong with it, lowercase.
    pub message: String,
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// The problem type, e.g. `urn:tlao:problem:quota-exceeded`.
    #[serde(rename = "type", default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub type_uri: String,
    /// A short summary of the problem type.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong with this request.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub detail: String,
    /// The request's id, as in its `x-request-id` header; quote it when reporting.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub request_id: String,
    /// On 400: every invalid field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldErrorView>,
    /// On 413 for a body or archive too large (also an archive's unpacked size): the
    /// limit, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// On 413 and 429 for a guardrail: which one, by the name of its setting in
    /// camelCase — `maxArchiveBytes`, `maxArchiveEntries`, `maxUnpackedBytes` (413),
    /// `dailyRunQuota`, `dailyRunQuotaPerUser`, `maxWorkspacesPerUser` (429).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// With `limit`: its value (bytes, entries, runs a day, workspaces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
    /// On 429 for a daily quota: seconds until it resets (also the `Retry-After`
    /// header); absent for `maxWorkspacesPerUser`, which time does not lift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
    /// On 422: the task type no executor serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_type: Option<TaskTypeName>,
    /// On a worker's 409 (`lease-revoked`): why the lease may not write the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<FenceReason>,
    /// On a worker's 409 (`lease-revoked`) of an ended run: its status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_status: Option<RunStatusName>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn a_problem_is_read_with_the_fields_this_api_adds_and_without_the_optional_ones() {
        let problem: Problem = serde_json::from_value(json!({
            "type": "urn:tlao:problem:no-executor", "title": "No executor", "status": 422,
            "detail": "none", "requestId": "r1", "taskType": "deploy.run", "futureField": 1
        }))
        .unwrap();
        assert_eq!(problem.request_id, "r1");
        assert_eq!(problem.task_type, Some(TaskTypeName::DeployRun));
        let bare: Problem = serde_json::from_value(json!({"status": 502})).unwrap();
        assert_eq!(bare.status, 502);
        assert!(bare.errors.is_empty());
    }
}
