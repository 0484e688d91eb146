//! The world every orchestrator test starts from: the services on an in-memory table,
//! a file blob store in a temp dir, a clock the test moves, an administrator, and a
//! `kiro` executor record.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::json;
use tlao_adapters_local::{FsBlobStore, MemoryTable};
use tlao_domain::{ExecutorDescriptor, Guardrails, Name, NewTask, RunId, WorkspaceId};
use tlao_orchestrator::{Caller, CreateRun, Services};
use tlao_ports::{EventBus, ManualClock};

/// Services, their clock and bus, and the administrator.
pub struct World {
    pub services: Services,
    pub clock: Arc<ManualClock>,
    pub bus: Arc<dyn EventBus>,
    pub admin: Caller,
    _dir: tempfile::TempDir,
}

/// A world with `guardrails`, `bus`, and the executor record `kiro` (JSON, as registered).
pub async fn world_with(
    guardrails: Guardrails,
    bus: Arc<dyn EventBus>,
    kiro: serde_json::Value,
) -> World {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new("2026-11-26T10:00:00Z".parse().unwrap()));
    let blobs = Arc::new(
        FsBlobStore::new(
            dir.path().to_path_buf(),
            "http://127.0.0.1:1".into(),
            b"k".repeat(32),
            clock.clone(),
        )
        .unwrap(),
    );
    let services = Services::new(
        Arc::new(MemoryTable::new()),
        blobs,
        clock.clone(),
        guardrails,
        bus.clone(),
    );
    let issued = services
        .users
        .bootstrap_admin(Name::try_from("admin".to_owned()).unwrap())
        .await
        .unwrap()
        .unwrap();
    services
        .executors
        .ensure(ExecutorDescriptor::parse(&kiro).unwrap())
        .await
        .unwrap();
    World {
        services,
        clock,
        bus,
        admin: Caller {
            user_id: issued.user.user_id,
            admin: true,
        },
        _dir: dir,
    }
}

impl World {
    /// Queues `n` runs of one `spec.generate` task in a new workspace; returns them
    /// oldest first.
    pub async fn queue(&self, n: usize) -> Vec<RunId> {
        let ws = self
            .services
            .workspaces
            .create(&self.admin, "w")
            .await
            .unwrap();
        self.queue_in(&ws.workspace_id, n).await
    }

    /// Queues `n` runs of one new `spec.generate` task in workspace `ws`; returns them
    /// oldest first.
    pub async fn queue_in(&self, ws: &WorkspaceId, n: usize) -> Vec<RunId> {
        let task = self
            .services
            .tasks
            .create(
                &self.admin,
                NewTask::parse(&json!({
                    "workspaceId": ws, "taskType": "spec.generate", "input": {"prompt": "plan"}
                }))
                .unwrap(),
                None,
            )
            .await
            .unwrap();
        let mut runs = Vec::new();
        for _ in 0..n {
            let view = self
                .services
                .runs
                .create(
                    &self.admin,
                    CreateRun {
                        task_id: task.task_id.clone(),
                        executor: None,
                    },
                    None,
                )
                .await
                .unwrap();
            runs.push(view.run.run_id);
        }
        runs
    }
}
