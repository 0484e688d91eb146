//! Runs: the request that queues one and the view of its state.

use serde::{Deserialize, Serialize};
use tlao_domain::{
    ArtifactId, Cost, LogText, Run, RunError, RunId, TaskId, Timestamp, Usage, WorkspaceId,
};

use crate::names::{RunErrorCodeName, RunStatusName, TaskTypeName};

/// The body of `POST /runs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateRunRequest {
    /// The task to run (`task_...`).
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^task_[0-7][0-9A-HJKMNP-TV-Z]{25}$"))]
    pub task_id: TaskId,
    /// The executor to use; without it, the first registered one serving the task's
    /// type is chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z][a-z0-9-]{0,62}$"))]
    pub executor: Option<String>,
}

/// What went wrong with a failed run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RunErrorView {
    /// The machine-readable reason.
    pub code: RunErrorCodeName,
    /// The explanation (e.g. the tail of the executor's stderr).
    pub message: String,
    /// The executor's exit code, when it exited.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::de::whole_or_null"
    )]
    pub exit_code: Option<i32>,
}

impl From<RunError> for RunErrorView {
    fn from(error: RunError) -> Self {
        RunErrorView {
            code: error.code.into(),
            message: error.message,
            exit_code: error.exit_code,
        }
    }
}

impl From<RunErrorView> for RunError {
    fn from(error: RunErrorView) -> Self {
        RunError {
            code: error.code.into(),
            message: error.message,
            exit_code: error.exit_code,
        }
    }
}

/// What running the agent cost, when the agent reports it; never a fake zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum UsageView {
    /// The executor did not report usage.
    #[default]
    Unmeasured,
    /// The executor reported usage: whatever it reports, nothing made up.
    #[serde(rename_all = "camelCase")]
    Reported {
        /// The credits charged, as printed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credits: Option<String>,
        /// The whole usage line.
        summary: String,
        /// Input (prompt) tokens.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "crate::de::whole_or_null"
        )]
        input_tokens: Option<u64>,
        /// Output (completion) tokens.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "crate::de::whole_or_null"
        )]
        output_tokens: Option<u64>,
        /// Input tokens served from a cache.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "crate::de::whole_or_null"
        )]
        cached_tokens: Option<u64>,
        /// What it cost.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cost: Option<CostView>,
    },
}

/// An amount of money, as the agent reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CostView {
    /// The amount: a decimal number as text (`0.0123`), never rounded through a float.
    pub amount: String,
    /// Its ISO 4217 currency (`USD`).
    pub currency: String,
}

impl From<Usage> for UsageView {
    fn from(usage: Usage) -> Self {
        match usage {
            Usage::Unmeasured => UsageView::Unmeasured,
            Usage::Reported {
                credits,
                summary,
                input_tokens,
                output_tokens,
                cached_tokens,
                cost,
            } => UsageView::Reported {
                credits,
                summary,
                input_tokens,
                output_tokens,
                cached_tokens,
                cost: cost.map(|cost| CostView {
                    amount: cost.amount,
                    currency: cost.currency,
                }),
            },
        }
    }
}

impl From<UsageView> for Usage {
    fn from(usage: UsageView) -> Self {
        match usage {
            UsageView::Unmeasured => Usage::Unmeasured,
            UsageView::Reported {
                credits,
                summary,
                input_tokens,
                output_tokens,
                cached_tokens,
                cost,
            } => Usage::Reported {
                credits,
                summary,
                input_tokens,
                output_tokens,
                cached_tokens,
                cost: cost.map(|cost| Cost {
                    amount: cost.amount,
                    currency: cost.currency,
                }),
            },
        }
    }
}

/// A run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RunView {
    /// Its id (`run_...`); ids sort by creation time.
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^run_[0-7][0-9A-HJKMNP-TV-Z]{25}$"))]
    pub run_id: RunId,
    /// The task it executes.
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^task_[0-7][0-9A-HJKMNP-TV-Z]{25}$"))]
    pub task_id: TaskId,
    /// The task's workspace.
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^ws_[0-7][0-9A-HJKMNP-TV-Z]{25}$"))]
    pub workspace_id: WorkspaceId,
    /// The task's type.
    pub task_type: TaskTypeName,
    /// The executor chosen for it.
    pub executor: String,
    /// Why that executor: requested, seen available on a worker, or the first serving
    /// the task type when none was seen (absent on runs from before reasons were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<String>,
    /// Where it is in its life.
    pub status: RunStatusName,
    /// Its 1-based position in its workspace's queue; only while queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<u32>,
    /// When it was queued (RFC 3339).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// When a worker started it.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub started_at: Option<Timestamp>,
    /// When it reached a terminal status.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub finished_at: Option<Timestamp>,
    /// When it must be over; set when it starts.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub deadline: Option<Timestamp>,
    /// The longest it may run once started, in seconds.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub max_run_seconds: u32,
    /// How long it ran (or has been running), in milliseconds; null until it starts.
    #[serde(default)]
    pub duration_ms: Option<i64>,
    /// Its kept log text, one line per log event. Present when one run is read
    /// (`GET /runs/{runId}`); left out of lists and of other answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub logs: Option<LogText>,
    /// Whether the log cap was reached.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub logs_truncated: bool,
    /// Log bytes dropped past the log cap.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub dropped_log_bytes: u64,
    /// Why it failed, when it did.
    #[serde(default)]
    pub error: Option<RunErrorView>,
    /// What it cost, when the executor reports it.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub usage: UsageView,
    /// The artifacts it produced, in order.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<crate::artifacts::ArtifactIdText>, required = true))]
    pub artifact_ids: Vec<ArtifactId>,
}

impl RunView {
    /// The view of a run as it is at `now` (for the duration of a running run), with its
    /// queue position while queued and its log text when one run is read.
    pub fn new(
        run: Run,
        queue_position: Option<u32>,
        logs: Option<LogText>,
        now: Timestamp,
    ) -> Self {
        RunView {
            duration_ms: run.duration_millis(now),
            run_id: run.run_id,
            task_id: run.task_id,
            workspace_id: run.workspace_id,
            task_type: run.task_type.into(),
            executor: run.executor.to_string(),
            selection: run.selection.clone(),
            status: run.status.into(),
            queue_position,
            created_at: run.created_at,
            started_at: run.started_at,
            finished_at: run.finished_at,
            deadline: run.deadline,
            max_run_seconds: run.max_run_seconds,
            logs,
            logs_truncated: run.logs_truncated,
            dropped_log_bytes: run.dropped_log_bytes,
            error: run.error.map(Into::into),
            usage: run.usage.into(),
            artifact_ids: run.artifact_ids,
        }
    }
}

/// One page of runs, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RunList {
    /// The runs.
    pub items: Vec<RunView>,
    /// Pass as `cursor` for the next page (the last run id of this one); null on the
    /// last page.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = "^run_[0-7][0-9A-HJKMNP-TV-Z]{25}$")
    )]
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    /// A run's view read from `fields` and a run's ids, task type and executor.
    fn run_with(fields: serde_json::Value) -> RunView {
        let mut run = json!({
            "runId": "run_01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "taskId": "task_01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "workspaceId": "ws_01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "taskType": "spec.generate",
            "executor": "kiro",
        });
        for (name, value) in fields.as_object().unwrap() {
            run[name] = value.clone();
        }
        serde_json::from_value(run).unwrap()
    }

    #[test]
    fn a_run_as_a_newer_server_writes_it_is_read() {
        let run = run_with(json!({
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
        }));
        assert_eq!(run.status, RunStatusName::TimedOut);
        assert_eq!(run.error.unwrap().code, RunErrorCodeName::WorkerLost);
    }

    #[test]
    fn a_run_view_with_escaped_logs_serialises_byte_for_byte_as_with_plain_ones() {
        let run = run_with(json!({
            "status": "completed",
            "createdAt": "2026-12-04T10:00:00.000Z",
            "logs": "one\n\"two\"\n",
        }));
        let text = run.logs.clone().unwrap();
        let escaped = RunView {
            logs: Some(LogText::escaped(text.as_str())),
            ..run.clone()
        };
        assert_eq!(
            serde_json::to_vec(&escaped).unwrap(),
            serde_json::to_vec(&run).unwrap()
        );
    }
}
