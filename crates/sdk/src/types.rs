//! The user-facing API's JSON bodies as [`crate::TlaoClient`] sends and reads them:
//! camelCase, one struct per shape of `CONTRACT.md`'s HTTP API.
//!
//! Ids, statuses and task types reuse the domain's types, so a value read here is
//! already valid; fields a later server may add are ignored when reading. Every struct
//! serializes back to the same camelCase JSON, which is what `tlao ... --json` prints.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tlao_domain::{
    ArchiveId, ArtifactId, ArtifactStatus, ArtifactType, RunId, RunStatus, TaskId, TaskType,
    Timestamp, Usage, UserId, WorkspaceId,
};

/// `POST /auth/token`: a bearer token for an API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenGrant {
    /// The JWT, for `Authorization: Bearer <token>`.
    pub token: String,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// Whose token it is.
    pub user_id: UserId,
}

/// The guardrails that apply to a workspace's requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceLimits {
    /// The largest archive `POST /workspaces/{id}/archives` accepts, in bytes.
    pub max_archive_bytes: u64,
}

/// A workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workspace {
    /// Its id.
    pub workspace_id: WorkspaceId,
    /// Its display name.
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// Its guardrails; absent from servers older than this client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<WorkspaceLimits>,
}

/// An uploaded workspace archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveReceipt {
    /// Its id, for a task's `input.archiveId`.
    pub archive_id: ArchiveId,
    /// The blob key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// The lower-case hex SHA-256 of its bytes.
    pub sha256: String,
}

/// What the executor works on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskInput {
    /// The instruction to the agent.
    pub prompt: String,
    /// An uploaded archive of the same workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_id: Option<ArchiveId>,
}

/// The body of `POST /tasks`: a workspace and a TaskSpec. The optional parts of a
/// TaskSpec (`constraints`, `expectedOutput`) are passed through as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewTask {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// What kind of work.
    pub task_type: TaskType,
    /// The prompt and the archive.
    pub input: TaskInput,
    /// Limits within the server's guardrails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<Value>,
    /// What the caller expects back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_output: Option<Value>,
}

/// A task's validated TaskSpec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSpec {
    /// What kind of work.
    pub task_type: TaskType,
    /// The prompt and the archive.
    pub input: TaskInput,
    /// Limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<Value>,
    /// What to hand back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_output: Option<Value>,
}

/// A task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// Its id.
    pub task_id: TaskId,
    /// Its workspace.
    pub workspace_id: WorkspaceId,
    /// What kind of work.
    pub task_type: TaskType,
    /// The validated TaskSpec.
    pub spec: TaskSpec,
    /// When it was created.
    pub created_at: Timestamp,
}

/// The body of `POST /runs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewRun {
    /// The task to run.
    pub task_id: TaskId,
    /// The executor to use; the server picks one serving the task type when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<String>,
}

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunFailure {
    /// The machine-readable reason, e.g. `executor_failed`, `worker_lost`.
    pub code: String,
    /// The explanation (e.g. the tail of the executor's stderr).
    pub message: String,
    /// The executor's exit code, when it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

/// A run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    /// Its id.
    pub run_id: RunId,
    /// The task it executes.
    pub task_id: TaskId,
    /// The task's workspace.
    pub workspace_id: WorkspaceId,
    /// The task's type.
    pub task_type: TaskType,
    /// The executor chosen for it.
    pub executor: String,
    /// Where it is in its life.
    pub status: RunStatus,
    /// Its 1-based position in its workspace's queue, while queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<u32>,
    /// When it was queued.
    pub created_at: Timestamp,
    /// When a worker started it.
    #[serde(default)]
    pub started_at: Option<Timestamp>,
    /// When it reached a final status.
    #[serde(default)]
    pub finished_at: Option<Timestamp>,
    /// When it must be over; set when it starts.
    #[serde(default)]
    pub deadline: Option<Timestamp>,
    /// The longest it may run once started, in seconds.
    #[serde(default)]
    pub max_run_seconds: u32,
    /// How long it ran (or has been running), in milliseconds.
    #[serde(default)]
    pub duration_ms: Option<i64>,
    /// Its kept log text; only when one run is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<String>,
    /// Whether the log cap was reached.
    #[serde(default)]
    pub logs_truncated: bool,
    /// Log bytes dropped past the log cap.
    #[serde(default)]
    pub dropped_log_bytes: u64,
    /// Why it failed, when it did.
    #[serde(default)]
    pub error: Option<RunFailure>,
    /// What it cost, when the executor reports it.
    #[serde(default)]
    pub usage: Usage,
    /// The artifacts it produced, in order.
    #[serde(default)]
    pub artifact_ids: Vec<ArtifactId>,
}

/// One page of `GET /runs`, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunPage {
    /// The runs.
    pub items: Vec<Run>,
    /// The cursor of the next page; `None` on the last one.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// The query of `GET /runs`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunQuery {
    /// The workspace; the caller's oldest when absent.
    pub workspace_id: Option<WorkspaceId>,
    /// Only runs with this status.
    pub status: Option<RunStatus>,
    /// Only runs on this executor.
    pub executor: Option<String>,
    /// Only runs of this task type.
    pub task_type: Option<TaskType>,
    /// How many per page, 1 to 100.
    pub limit: Option<u32>,
    /// The previous page's `nextCursor`.
    pub cursor: Option<String>,
}

/// An artifact: what a run produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// Its id.
    pub artifact_id: ArtifactId,
    /// The run that produced it.
    pub run_id: RunId,
    /// The run's workspace.
    pub workspace_id: WorkspaceId,
    /// What it is.
    pub artifact_type: ArtifactType,
    /// Its file name, relative to the run's output.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its media type.
    pub content_type: String,
    /// The lower-case hex SHA-256 of its bytes.
    pub sha256: String,
    /// Where its bytes are.
    pub status: ArtifactStatus,
    /// The blob key.
    pub key: String,
    /// When the record was created.
    pub created_at: Timestamp,
    /// A presigned GET URL, while the artifact is available.
    #[serde(default)]
    pub download_url: Option<String>,
    /// When `download_url` stops working.
    #[serde(default)]
    pub download_url_expires_at: Option<Timestamp>,
}

/// An executor registry record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Executor {
    /// Its unique name.
    pub name: String,
    /// `kiro` or `command`.
    pub kind: String,
    /// The task types it serves.
    pub task_types: Vec<TaskType>,
    /// The kind's configuration.
    #[serde(default)]
    pub config: Value,
}

/// A list answer: `{"items": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Items<T> {
    pub items: Vec<T>,
}

/// One invalid field of a request, from a `400` problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldProblem {
    /// The field's path, e.g. `input.prompt`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// An `application/problem+json` body (RFC 9457) with the fields this API adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// The problem type, e.g. `urn:tlao:problem:too-large`.
    #[serde(rename = "type", default)]
    pub type_uri: String,
    /// A short summary of the problem type.
    #[serde(default)]
    pub title: String,
    /// The HTTP status.
    #[serde(default)]
    pub status: u16,
    /// What went wrong with this request.
    #[serde(default)]
    pub detail: String,
    /// The request's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// On 400: every invalid field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
    /// On 413: the limit, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// On 429: seconds until the quota resets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
    /// Any other field.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn a_run_as_the_server_writes_it_is_read() {
        let run: Run = serde_json::from_value(json!({
            "runId": "run_01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "taskId": "task_01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "workspaceId": "ws_01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "taskType": "spec.generate",
            "executor": "kiro",
            "status": "timed_out",
            "createdAt": "2026-11-26T13:57:50.123Z",
            "startedAt": null,
            "finishedAt": null,
            "deadline": null,
            "maxRunSeconds": 480,
            "durationMs": null,
            "logsTruncated": false,
            "droppedLogBytes": 0,
            "error": {"code": "worker_lost", "message": "silent"},
            "usage": {"kind": "unmeasured"},
            "artifactIds": [],
            "somethingNew": true
        }))
        .unwrap();
        assert_eq!(run.status, RunStatus::TimedOut);
        assert_eq!(run.error.unwrap().code, "worker_lost");
    }

    #[test]
    fn a_problem_keeps_the_fields_it_does_not_name() {
        let problem: Problem = serde_json::from_value(json!({
            "type": "urn:tlao:problem:no-executor", "title": "No executor", "status": 422,
            "detail": "none", "requestId": "r1", "taskType": "deploy.run"
        }))
        .unwrap();
        assert_eq!(problem.request_id.as_deref(), Some("r1"));
        assert_eq!(problem.extra["taskType"], "deploy.run");
    }
}
