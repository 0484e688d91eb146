//! Tasks: the TaskSpec a client sends and the task it gets back.

use serde::{Deserialize, Serialize};
use tlao_domain::{
    ArchiveId, CommitId, Constraints, ExpectedOutput, SourceRevision, Task, TaskId, TaskInput,
    TaskSpec, Timestamp, WorkspaceId,
};

use crate::names::{ArtifactTypeName, TaskTypeName};

/// What the executor works on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskInputBody {
    /// The instruction to the agent; not blank (not only white space), at most 64 KiB
    /// of UTF-8, without control characters other than tab, newline and carriage return.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
        )
    )]
    pub prompt: String,
    /// An uploaded archive of the same workspace (`arc_...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, pattern = "^arc_[0-7][0-9A-HJKMNP-TV-Z]{25}$"))]
    pub archive_id: Option<ArchiveId>,
    /// The git commit the archive was packed from, when it was packed in a git
    /// repository (`tlao run` records it; `tlao apply` checks a repository against it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceRevisionBody>,
}

/// The git commit a workspace archive was packed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceRevisionBody {
    /// The full commit id checked out when the archive was packed.
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^([0-9a-f]{40}|[0-9a-f]{64})$"))]
    pub commit: CommitId,
    /// Whether the packed tree had changes the commit does not hold (uncommitted or
    /// untracked files): the archive is then the commit plus those changes.
    pub dirty: bool,
}

impl From<SourceRevision> for SourceRevisionBody {
    fn from(source: SourceRevision) -> Self {
        SourceRevisionBody {
            commit: source.commit,
            dirty: source.dirty,
        }
    }
}

/// Limits within the server's guardrails.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConstraintsBody {
    /// A run duration limit below the guardrail, in seconds (at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(format = Int64, minimum = 1, maximum = 4294967295_u64))]
    pub max_run_seconds: Option<u32>,
    /// A token budget for executors that honour one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(maximum = 9223372036854775807_u64))]
    pub token_budget: Option<u64>,
}

/// What the caller expects back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExpectedOutputBody {
    /// The artifact types wanted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifact_types: Vec<ArtifactTypeName>,
    /// A description of the expected result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A TaskSpec: what to do, with what, within which limits, and what to hand back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
        let TaskInput {
            prompt,
            archive_id,
            source,
        } = spec.input;
        TaskSpecView {
            task_type: spec.task_type.into(),
            input: TaskInputBody {
                prompt: prompt.into(),
                archive_id,
                source: source.map(Into::into),
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTaskRequest {
    /// The workspace (`ws_...`).
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^ws_[0-7][0-9A-HJKMNP-TV-Z]{25}$"))]
    pub workspace_id: WorkspaceId,
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

/// A task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TaskView {
    /// Its id (`task_...`).
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^task_[0-7][0-9A-HJKMNP-TV-Z]{25}$"))]
    pub task_id: TaskId,
    /// Its workspace.
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^ws_[0-7][0-9A-HJKMNP-TV-Z]{25}$"))]
    pub workspace_id: WorkspaceId,
    /// What kind of work.
    pub task_type: TaskTypeName,
    /// The validated TaskSpec.
    pub spec: TaskSpecView,
    /// When it was created (RFC 3339).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

impl From<Task> for TaskView {
    fn from(task: Task) -> Self {
        TaskView {
            task_id: task.task_id,
            workspace_id: task.workspace_id,
            task_type: task.spec.task_type.into(),
            created_at: task.created_at,
            spec: task.spec.into(),
        }
    }
}
