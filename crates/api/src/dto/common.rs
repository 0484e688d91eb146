//! Enumerations shared by several views, mirrored from the domain so the OpenAPI
//! document lists their values (the domain stays free of schema derives).

use serde::{Deserialize, Serialize};
use tlao_domain::{ArtifactStatus, ArtifactType, RunStatus, TaskType, Timestamp};
use utoipa::ToSchema;

/// A task type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum TaskTypeName {
    /// Generate a specification or execution plan.
    #[serde(rename = "spec.generate")]
    SpecGenerate,
    /// Change code in the workspace.
    #[serde(rename = "code.change")]
    CodeChange,
    /// Write documentation.
    #[serde(rename = "doc.write")]
    DocWrite,
    /// Deploy infrastructure.
    #[serde(rename = "deploy.run")]
    DeployRun,
}

impl From<TaskType> for TaskTypeName {
    fn from(task_type: TaskType) -> Self {
        match task_type {
            TaskType::SpecGenerate => TaskTypeName::SpecGenerate,
            TaskType::CodeChange => TaskTypeName::CodeChange,
            TaskType::DocWrite => TaskTypeName::DocWrite,
            TaskType::DeployRun => TaskTypeName::DeployRun,
        }
    }
}

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatusName {
    /// Waiting for a worker.
    Queued,
    /// A worker is executing it.
    Running,
    /// The executor finished successfully.
    Completed,
    /// The executor, the worker or the platform failed.
    Failed,
    /// It ran past its deadline.
    TimedOut,
    /// Somebody cancelled it.
    Cancelled,
}

impl From<RunStatus> for RunStatusName {
    fn from(status: RunStatus) -> Self {
        match status {
            RunStatus::Queued => RunStatusName::Queued,
            RunStatus::Running => RunStatusName::Running,
            RunStatus::Completed => RunStatusName::Completed,
            RunStatus::Failed => RunStatusName::Failed,
            RunStatus::TimedOut => RunStatusName::TimedOut,
            RunStatus::Cancelled => RunStatusName::Cancelled,
        }
    }
}

/// What an artifact is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactTypeName {
    /// An execution plan.
    Plan,
    /// A unified diff of the workspace.
    Patch,
    /// A document the agent wrote.
    Document,
    /// The agent's transcript.
    Transcript,
    /// Any other file.
    File,
}

impl From<ArtifactType> for ArtifactTypeName {
    fn from(artifact_type: ArtifactType) -> Self {
        match artifact_type {
            ArtifactType::Plan => ArtifactTypeName::Plan,
            ArtifactType::Patch => ArtifactTypeName::Patch,
            ArtifactType::Document => ArtifactTypeName::Document,
            ArtifactType::Transcript => ArtifactTypeName::Transcript,
            ArtifactType::File => ArtifactTypeName::File,
        }
    }
}

/// Where an artifact's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactStatusName {
    /// Not stored yet.
    Pending,
    /// Stored; downloadable.
    Available,
    /// Every attempt to store the bytes failed.
    UploadFailed,
}

impl From<ArtifactStatus> for ArtifactStatusName {
    fn from(status: ArtifactStatus) -> Self {
        match status {
            ArtifactStatus::Pending => ArtifactStatusName::Pending,
            ArtifactStatus::Available => ArtifactStatusName::Available,
            ArtifactStatus::UploadFailed => ArtifactStatusName::UploadFailed,
        }
    }
}

/// A timestamp as the API writes it: RFC 3339 UTC with milliseconds.
pub(crate) fn rfc3339(at: Timestamp) -> String {
    at.to_string()
}
