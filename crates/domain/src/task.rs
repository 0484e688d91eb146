//! Tasks: an intent (a TaskSpec) in a workspace; runs execute them.

use serde::{Deserialize, Serialize};

use crate::id::{RunId, TaskId, UserId, WorkspaceId};
use crate::keys;
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
    /// The blob key of its TaskSpec for workers to download (requirement 5.1), written
    /// with the task ([`keys::blob::task_spec`]) and shared
    /// by all its runs. `None` for a task stored before the TaskSpec moved to its task:
    /// each of its runs is given a copy of its own when it is queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_key: Option<String>,
}

impl Task {
    /// The blob key of the TaskSpec the worker of `run` (a run of this task) downloads:
    /// the task's own, or, for a task stored before TaskSpecs moved to tasks, the run's
    /// copy ([`keys::blob::run_task_spec`]).
    pub fn spec_key_of(&self, run: &RunId) -> String {
        match &self.spec_key {
            Some(key) => key.clone(),
            None => keys::blob::run_task_spec(&self.workspace_id, run),
        }
    }
}
