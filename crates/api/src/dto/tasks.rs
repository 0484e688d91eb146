//! Tasks: the TaskSpec a client sends and the task it gets back.

use serde::{Deserialize, Serialize};
use tlao_domain::{Constraints, ExpectedOutput, Task, TaskInput, TaskSpec};
use utoipa::ToSchema;

use super::common::rfc3339;
use super::{ArtifactTypeName, TaskTypeName};

/// What the executor works on.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskInputBody {
    /// The instruction to the agent; not blank, at most 64 KiB.
    pub prompt: String,
    /// An uploaded archive of the same workspace (`arc_...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_id: Option<String>,
}

/// Limits within the server's guardrails.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConstraintsBody {
    /// A run duration limit below the guardrail, in seconds (at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_run_seconds: Option<u32>,
    /// A token budget for executors that honour one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_budget: Option<u64>,
}

/// What the caller expects back.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExpectedOutputBody {
    /// The artifact types wanted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifact_types: Vec<ArtifactTypeName>,
    /// A description of the expected result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A TaskSpec: what to do, with what, within which limits, and what to hand back.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskSpecView {
    /// What kind of work.
    pub task_type: TaskTypeName,
    /// The prompt and the workspace archive.
    pub input: TaskInputBody,
    /// Limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<ConstraintsBody>,
    /// What to hand back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_output: Option<ExpectedOutputBody>,
}

impl From<TaskSpec> for TaskSpecView {
    fn from(spec: TaskSpec) -> Self {
        let TaskInput { prompt, archive_id } = spec.input;
        TaskSpecView {
            task_type: spec.task_type.into(),
            input: TaskInputBody {
                prompt: prompt.into(),
                archive_id: archive_id.map(String::from),
            },
            constraints: (!spec.constraints.is_empty()).then(|| {
                let Constraints {
                    max_run_seconds,
                    token_budget,
                } = spec.constraints;
                ConstraintsBody {
                    max_run_seconds,
                    token_budget,
                }
            }),
            expected_output: spec.expected_output.map(
                |ExpectedOutput {
                     artifact_types,
                     description,
                 }| ExpectedOutputBody {
                    artifact_types: artifact_types.into_iter().map(Into::into).collect(),
                    description,
                },
            ),
        }
    }
}

/// The body of `POST /tasks`: a workspace and a TaskSpec. Every bad or missing field
/// is reported at once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateTaskRequest {
    /// The workspace (`ws_...`).
    pub workspace_id: String,
    /// The TaskSpec's fields.
    #[serde(flatten)]
    pub spec: TaskSpecView,
}

/// A task.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskView {
    /// Its id (`task_...`).
    pub task_id: String,
    /// Its workspace.
    pub workspace_id: String,
    /// What kind of work.
    pub task_type: TaskTypeName,
    /// The validated TaskSpec.
    pub spec: TaskSpecView,
    /// When it was created (RFC 3339).
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<Task> for TaskView {
    fn from(task: Task) -> Self {
        TaskView {
            task_id: task.task_id.to_string(),
            workspace_id: task.workspace_id.to_string(),
            task_type: task.spec.task_type.into(),
            created_at: rfc3339(task.created_at),
            spec: task.spec.into(),
        }
    }
}
