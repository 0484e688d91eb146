//! The named multi-item writes: every transaction the services make, each an operation
//! with a name that builds its items and says which of its conditions failed with a
//! typed error (`create_run` → [`CreateRunError::QuotaExhausted`] |
//! [`CreateRunError::UserQuotaExhausted`], `create_workspace` →
//! [`CreateWorkspaceError::LimitReached`], `revoke_key` → [`RevokeKeyError::KeyGone`], ...).
//!
//! Each builds a [`crate::transaction::Transaction`], whose operations name the failure
//! their condition stands for. The writes of a run that race other writers (events,
//! artifacts, endings) are attempts of [`crate::run_store::retry_on_race`], which
//! reads the run again when another write changed it first.

pub mod artifacts;
pub mod events;
pub mod lease;
pub mod runs;
pub mod tasks;
pub mod users;
pub mod workspaces;

pub use artifacts::{SettleArtifactError, register_artifact, settle_artifact};
pub use events::{Appended, append_events};
pub use lease::{LeaseError, dequeue, lease};
pub use runs::{CreateRunError, DailyQuotas, create_run, expire_queued_run, finish_run};
pub use tasks::{CreateTaskError, create_task};
pub use users::{
    BootstrapAdminError, IssueKeyError, RevokeKeyError, adopt_legacy_key, bootstrap_admin,
    create_user, issue_key, revoke_key,
};
pub use workspaces::{CreateWorkspaceError, create_workspace, store_archive};

#[cfg(test)]
pub(crate) mod testing {
    //! What the transactions' unit tests start from: the services over an empty
    //! in-memory table, and builders of the entities they store.

    use std::sync::Arc;

    use tlao_adapters_local::{FsBlobStore, LocalEventBus, MemoryTable};
    use tlao_domain::{
        ExecutorName, Guardrails, LeaseId, Membership, Name, Role, Run, RunStatus, TaskId,
        TaskType, Transition, Usage, UserId, Workspace, WorkspaceId,
    };
    use tlao_ports::ManualClock;

    use crate::{Core, Services};

    /// Services over an empty table, and the directory their blobs live in.
    pub(crate) struct World {
        pub(crate) services: Services,
        _dir: tempfile::TempDir,
    }

    impl World {
        pub(crate) fn new(guardrails: Guardrails) -> World {
            let dir = tempfile::tempdir().expect("a temp dir");
            let clock = Arc::new(ManualClock::new(
                "2026-11-26T10:00:00Z".parse().expect("a timestamp"),
            ));
            let blobs = FsBlobStore::new(
                dir.path().to_path_buf(),
                "http://127.0.0.1:1".into(),
                b"k".repeat(32),
                clock.clone(),
            )
            .expect("a blob store");
            let services = Services::new(
                Arc::new(MemoryTable::new()),
                Arc::new(blobs),
                clock,
                guardrails,
                Arc::new(LocalEventBus::new()),
            );
            World {
                services,
                _dir: dir,
            }
        }

        pub(crate) fn core(&self) -> &Core {
            &self.services.core
        }

        /// A stored workspace owned by a fresh user.
        pub(crate) async fn workspace(&self) -> WorkspaceId {
            let core = self.core();
            let workspace = Workspace {
                workspace_id: WorkspaceId::new(core.new_ulid()),
                name: Name::try_from("demo".to_owned()).expect("a name"),
                owner: UserId::new(core.new_ulid()),
                created_at: core.now(),
            };
            let membership = Membership {
                workspace_id: workspace.workspace_id.clone(),
                user_id: workspace.owner.clone(),
                role: Role::Owner,
                created_at: core.now(),
            };
            super::create_workspace(&core.store, &workspace, &membership, 1)
                .await
                .expect("the workspace is stored");
            workspace.workspace_id
        }

        /// A new queued run in `ws` (not stored).
        pub(crate) fn run(&self, ws: &WorkspaceId) -> Run {
            let core = self.core();
            Run {
                run_id: tlao_domain::RunId::new(core.new_ulid()),
                task_id: TaskId::new(core.new_ulid()),
                workspace_id: ws.clone(),
                task_type: TaskType::SpecGenerate,
                executor: "kiro".parse::<ExecutorName>().expect("a name"),
                selection: None,
                status: RunStatus::Queued,
                created_by: UserId::new(core.new_ulid()),
                created_at: core.now(),
                started_at: None,
                finished_at: None,
                max_run_seconds: 60,
                deadline: None,
                lease_id: None,
                heartbeat_at: None,
                error: None,
                usage: Usage::Unmeasured,
                artifact_ids: Vec::new(),
                log_bytes: 0,
                dropped_log_bytes: 0,
                logs_truncated: false,
                worker_seq: 0,
                worker_dropped_lines: 0,
                worker_dropped_bytes: 0,
            }
        }

        /// `run` after its `Start` transition under a fresh lease.
        pub(crate) fn started(&self, run: &Run) -> Run {
            let core = self.core();
            let mut started = run.clone();
            started
                .apply(
                    Transition::Start {
                        lease_id: LeaseId::new(core.new_ulid()),
                        deadline: core.now().plus_seconds(60),
                    },
                    core.now(),
                )
                .expect("a queued run starts");
            started
        }
    }
}
