//! Tasks: an intent (a TaskSpec) in a workspace; runs execute them.

use serde::{Deserialize, Serialize};

use crate::id::{TaskId, UserId, WorkspaceId};
use crate::task_spec::TaskSpec;
use crate::time::Timestamp;

/// A task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// Its id.
    pub task_id: TaskId,
    /// Its workspace.
    pub workspace_id: WorkspaceId,
    /// What to do; stored as a JSON document (requirement 1.5).
    pub spec: TaskSpec,
    /// Who created it.
    pub created_by: UserId,
    /// When.
    pub created_at: Timestamp,
}
