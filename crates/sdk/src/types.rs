//! The user-facing API's bodies as [`crate::TlaoClient`] sends and reads them: the wire
//! crate's shapes ([`tlao_wire`]), the same types the server writes, plus the query of
//! `GET /runs`, which travels as a query string.
//!
//! Fields a later server may add are ignored when reading. Every shape serializes back
//! to the same camelCase JSON, which is what `tlao ... --json` prints.

use tlao_domain::WorkspaceId;
pub use tlao_wire::{
    ApiKeyList, ApiKeyView, ArchiveView, ArtifactList, ArtifactView, CreateRunRequest,
    CreateTaskRequest, CreatedApiKey, ExecutorList, ExecutorView, FieldErrorView, Problem, RunList,
    RunView, TaskInputBody, TaskView, TokenResponse, WorkspaceList, WorkspaceView,
};
use tlao_wire::{RunStatusName, TaskTypeName};

/// The query of `GET /runs`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunQuery {
    /// The workspace; the caller's oldest when absent.
    pub workspace_id: Option<WorkspaceId>,
    /// Only runs with this status.
    pub status: Option<RunStatusName>,
    /// Only runs on this executor.
    pub executor: Option<String>,
    /// Only runs of this task type.
    pub task_type: Option<TaskTypeName>,
    /// How many per page, 1 to 100.
    pub limit: Option<u32>,
    /// The previous page's `nextCursor`.
    pub cursor: Option<String>,
}
