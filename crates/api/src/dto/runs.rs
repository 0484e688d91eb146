//! Runs: the request that queues one and the view of its state.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tlao_domain::validation::Collector;
use tlao_domain::{
    ExecutorName, RunError, RunErrorCode, TaskId, Timestamp, Usage, ValidationErrors,
};
use tlao_orchestrator::{CreateRun, RunPage};
use utoipa::ToSchema;

use super::common::rfc3339;
use super::{RunStatusName, TaskTypeName};

/// The body of `POST /runs`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateRunRequest {
    /// The task to run (`task_...`).
    pub task_id: String,
    /// The executor to use; without it, the first registered one serving the task's
    /// type is chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<String>,
}

impl CreateRunRequest {
    /// Parses a request body, reporting every bad or missing field.
    pub(crate) fn parse(body: &Value) -> Result<CreateRun, ValidationErrors> {
        let mut errors = Collector::new();
        let request = errors.object("", body).and_then(|map| {
            errors.reject_unknown("", map, &["taskId", "executor"]);
            let task_id = errors
                .string("", map, "taskId", true)
                .and_then(|text| errors.check("taskId", text.parse::<TaskId>()));
            let executor = match errors.string("", map, "executor", false) {
                None => Some(None),
                Some(text) => errors
                    .check("executor", text.parse::<ExecutorName>())
                    .map(Some),
            };
            Some(CreateRun {
                task_id: task_id?,
                executor: executor?,
            })
        });
        errors.finish(request)
    }
}

/// Why a run failed, for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunErrorCodeName {
    /// The executor exited with an error.
    ExecutorFailed,
    /// The executor could not be started or is not set up.
    ExecutorUnavailable,
    /// The worker stopped sending heartbeats.
    WorkerLost,
    /// The workspace archive could not be fetched or was refused.
    InvalidArchive,
    /// An artifact could not be stored.
    UploadFailed,
    /// Anything else.
    Internal,
}

impl From<RunErrorCode> for RunErrorCodeName {
    fn from(code: RunErrorCode) -> Self {
        match code {
            RunErrorCode::ExecutorFailed => RunErrorCodeName::ExecutorFailed,
            RunErrorCode::ExecutorUnavailable => RunErrorCodeName::ExecutorUnavailable,
            RunErrorCode::WorkerLost => RunErrorCodeName::WorkerLost,
            RunErrorCode::InvalidArchive => RunErrorCodeName::InvalidArchive,
            RunErrorCode::UploadFailed => RunErrorCodeName::UploadFailed,
            RunErrorCode::Internal => RunErrorCodeName::Internal,
        }
    }
}

/// What went wrong with a failed run.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunErrorView {
    /// The machine-readable reason.
    pub code: RunErrorCodeName,
    /// The explanation (e.g. the tail of the executor's stderr).
    pub message: String,
    /// The executor's exit code, when it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

/// What running the agent cost, when the agent reports it; never a fake zero.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum UsageView {
    /// The executor did not report usage.
    Unmeasured,
    /// The executor reported usage.
    Reported {
        /// The credits charged, as printed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credits: Option<String>,
        /// The whole usage line.
        summary: String,
    },
}

impl From<Usage> for UsageView {
    fn from(usage: Usage) -> Self {
        match usage {
            Usage::Unmeasured => UsageView::Unmeasured,
            Usage::Reported { credits, summary } => UsageView::Reported { credits, summary },
        }
    }
}

/// A run.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunView {
    /// Its id (`run_...`); ids sort by creation time.
    pub run_id: String,
    /// The task it executes.
    pub task_id: String,
    /// The task's workspace.
    pub workspace_id: String,
    /// The task's type.
    pub task_type: TaskTypeName,
    /// The executor chosen for it.
    pub executor: String,
    /// Where it is in its life.
    pub status: RunStatusName,
    /// Its 1-based position in its workspace's queue; only while queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<u32>,
    /// When it was queued (RFC 3339).
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When a worker started it.
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    /// When it reached a terminal status.
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
    /// When it must be over; set when it starts.
    #[schema(format = DateTime)]
    pub deadline: Option<String>,
    /// The longest it may run once started, in seconds.
    pub max_run_seconds: u32,
    /// How long it ran (or has been running), in milliseconds; null until it starts.
    pub duration_ms: Option<i64>,
    /// Its kept log text, one line per log event. Present when one run is read
    /// (`GET /runs/{runId}`); left out of lists and of other answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<String>,
    /// Whether the log cap was reached.
    pub logs_truncated: bool,
    /// Log bytes dropped past the log cap.
    pub dropped_log_bytes: u64,
    /// Why it failed, when it did.
    pub error: Option<RunErrorView>,
    /// What it cost, when the executor reports it.
    pub usage: UsageView,
    /// The artifacts it produced, in order.
    pub artifact_ids: Vec<String>,
}

impl RunView {
    /// The view of a run as it is at `now` (for the duration of a running run).
    pub fn new(view: tlao_orchestrator::RunView, now: Timestamp) -> Self {
        let tlao_orchestrator::RunView {
            run,
            queue_position,
            logs,
        } = view;
        RunView {
            duration_ms: run.duration_millis(now),
            run_id: run.run_id.to_string(),
            task_id: run.task_id.to_string(),
            workspace_id: run.workspace_id.to_string(),
            task_type: run.task_type.into(),
            executor: run.executor.to_string(),
            status: run.status.into(),
            queue_position,
            created_at: rfc3339(run.created_at),
            started_at: run.started_at.map(rfc3339),
            finished_at: run.finished_at.map(rfc3339),
            deadline: run.deadline.map(rfc3339),
            max_run_seconds: run.max_run_seconds,
            logs,
            logs_truncated: run.logs_truncated,
            dropped_log_bytes: run.dropped_log_bytes,
            error: run.error.map(Into::into),
            usage: run.usage.into(),
            artifact_ids: run.artifact_ids.iter().map(ToString::to_string).collect(),
        }
    }
}

/// One page of runs, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunList {
    /// The runs.
    pub items: Vec<RunView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl RunList {
    /// The view of a page at `now`.
    pub fn new(page: RunPage, now: Timestamp) -> Self {
        RunList {
            items: page
                .items
                .into_iter()
                .map(|view| RunView::new(view, now))
                .collect(),
            next_cursor: page.next_cursor.map(String::from),
        }
    }
}
