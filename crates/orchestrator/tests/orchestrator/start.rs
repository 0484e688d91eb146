//! Starting work on in-memory adapters: a task and its run in one call, once per key
//! (even with the archive uploaded again), refused before anything is created when no
//! executor fits or the key is unusable; and the keys of `POST /tasks` and `POST /runs`
//! bound to what the request means.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::json;
use tlao_adapters_local::LocalEventBus;
use tlao_domain::{
    ArchiveId, Constraints, ExecutorName, Guardrails, NewTask, Prompt, RunStatus, Task, TaskId,
    TaskInput, TaskSpec, TaskType, Ulid, WorkspaceId, keys,
};
use tlao_orchestrator::{CreateRun, RunFilter, ServiceError, StartTask, start::MAX_START_KEY};
use tlao_ports::{Direction, Query};

use common::World;

async fn world() -> World {
    common::world_with(
        Guardrails::default(),
        Arc::new(LocalEventBus::new()),
        json!({"name": "kiro", "kind": "kiro", "taskTypes": ["spec.generate", "doc.write"]}),
    )
    .await
}

impl World {
    async fn workspace_id(&self) -> WorkspaceId {
        self.services
            .workspaces
            .create(&self.admin, "w")
            .await
            .unwrap()
            .workspace_id
    }

    /// A tar.gz archive of one file holding `text`, uploaded to `ws`.
    async fn archive(&self, ws: &WorkspaceId, text: &str) -> ArchiveId {
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "note.txt", text.as_bytes())
            .unwrap();
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&tar.into_inner().unwrap()).unwrap();
        let body = Bytes::from(encoder.finish().unwrap());
        let stream = Box::pin(futures::stream::iter([Ok::<_, std::io::Error>(body)]));
        self.services
            .archives
            .upload(&self.admin, ws, None, stream)
            .await
            .unwrap()
            .archive_id
    }

    /// How many tasks `ws` holds.
    async fn task_count(&self, ws: &WorkspaceId) -> usize {
        let pk = keys::task(ws, &TaskId::new(Ulid::from_parts(0, 0))).pk;
        let prefix = keys::KeyPrefix {
            pk,
            sk_prefix: "TASK#".into(),
        };
        let (tasks, _) = self
            .services
            .core
            .store
            .query::<Task>(Query::new(prefix, Direction::Forward, 100))
            .await
            .unwrap();
        tasks.len()
    }

    /// How many runs `ws` holds.
    async fn run_count(&self, ws: &WorkspaceId) -> usize {
        let filter = RunFilter {
            workspace_id: Some(ws.clone()),
            status: None,
            executor: None,
            task_type: None,
            limit: 100,
            after: None,
        };
        let page = self.services.runs.list(&self.admin, filter).await.unwrap();
        page.items.len()
    }
}

/// A `doc.write` task with `prompt` (and `archive`) in `ws`, on `executor`.
fn request(
    ws: &WorkspaceId,
    prompt: &str,
    archive: Option<ArchiveId>,
    executor: Option<&str>,
) -> StartTask {
    StartTask {
        workspace_id: ws.clone(),
        spec: TaskSpec {
            task_type: TaskType::DocWrite,
            input: TaskInput {
                prompt: Prompt::try_from(prompt.to_owned()).unwrap(),
                archive_id: archive,
                source: None,
            },
            constraints: Constraints::default(),
            expected_output: None,
        },
        executor: executor.map(|name| name.parse::<ExecutorName>().unwrap()),
    }
}

#[tokio::test]
async fn starting_a_task_creates_it_and_queues_its_run() {
    let w = world().await;
    let ws = w.workspace_id().await;

    let started = w
        .services
        .start
        .start(&w.admin, request(&ws, "write the docs", None, None), None)
        .await
        .unwrap();

    assert_eq!(started.task.workspace_id, ws);
    assert_eq!(started.task.spec.input.prompt.as_str(), "write the docs");
    assert_eq!(started.run.run.task_id, started.task.task_id);
    assert_eq!(started.run.run.status, RunStatus::Queued);
    assert_eq!(started.run.run.executor.as_str(), "kiro");
    assert_eq!(started.run.queue_position, Some(1));
}

#[tokio::test]
async fn starting_again_with_the_same_key_returns_the_first_task_and_run_even_with_a_new_archive() {
    let w = world().await;
    let ws = w.workspace_id().await;
    let first_archive = w.archive(&ws, "repo").await;
    let second_archive = w.archive(&ws, "repo").await;

    let first = w
        .services
        .start
        .start(
            &w.admin,
            request(&ws, "write", Some(first_archive.clone()), None),
            Some("form-1"),
        )
        .await
        .unwrap();
    let again = w
        .services
        .start
        .start(
            &w.admin,
            request(&ws, "write", Some(second_archive), None),
            Some("form-1"),
        )
        .await
        .unwrap();

    assert_eq!(again, first);
    assert_eq!(first.task.spec.input.archive_id, Some(first_archive));
    assert_eq!(w.task_count(&ws).await, 1);
    assert_eq!(w.run_count(&ws).await, 1);
}

#[tokio::test]
async fn the_same_key_with_another_prompt_is_a_conflict_and_creates_nothing_more() {
    let w = world().await;
    let ws = w.workspace_id().await;
    w.services
        .start
        .start(&w.admin, request(&ws, "write", None, None), Some("form-1"))
        .await
        .unwrap();

    let other = w
        .services
        .start
        .start(
            &w.admin,
            request(&ws, "rewrite", None, None),
            Some("form-1"),
        )
        .await;

    assert!(matches!(other, Err(ServiceError::Conflict(_))), "{other:?}");
    assert_eq!(w.task_count(&ws).await, 1);
    assert_eq!(w.run_count(&ws).await, 1);
}

#[tokio::test]
async fn an_executor_that_cannot_serve_the_task_is_refused_before_anything_is_created() {
    let w = world().await;
    let ws = w.workspace_id().await;

    let refused = w
        .services
        .start
        .start(
            &w.admin,
            request(&ws, "write", None, Some("ghost")),
            Some("form-1"),
        )
        .await;

    match refused {
        Err(ServiceError::NoExecutor { message, .. }) => {
            assert!(message.contains("\"ghost\""), "{message}")
        }
        other => panic!("expected NoExecutor, got {other:?}"),
    }
    assert_eq!(w.task_count(&ws).await, 0);
    assert_eq!(w.run_count(&ws).await, 0);
}

#[tokio::test]
async fn an_unusable_key_is_refused_before_anything_is_created() {
    let w = world().await;
    let ws = w.workspace_id().await;
    let too_long = "k".repeat(MAX_START_KEY + 1);

    for key in ["", "with space", too_long.as_str()] {
        let refused = w
            .services
            .start
            .start(&w.admin, request(&ws, "write", None, None), Some(key))
            .await;
        assert!(
            matches!(refused, Err(ServiceError::Invalid(_))),
            "{key:?}: {refused:?}"
        );
    }
    assert_eq!(w.task_count(&ws).await, 0);
}

#[tokio::test]
async fn a_task_or_run_created_again_with_its_key_is_created_once_and_other_values_conflict() {
    let w = world().await;
    let ws = w.workspace_id().await;
    let body = json!({"workspaceId": ws, "taskType": "doc.write", "input": {"prompt": "write"}});
    let reordered =
        json!({"input": {"prompt": "write"}, "taskType": "doc.write", "workspaceId": ws});
    let start = &w.services.start;

    let task = start
        .create_task(&w.admin, NewTask::parse(&body).unwrap(), Some("t-1"))
        .await
        .unwrap();
    let same_task = start
        .create_task(&w.admin, NewTask::parse(&reordered).unwrap(), Some("t-1"))
        .await
        .unwrap();
    let run = CreateRun {
        task_id: task.task_id.clone(),
        executor: None,
    };
    let queued = start
        .create_run(&w.admin, run.clone(), Some("r-1"))
        .await
        .unwrap();
    let same_run = start.create_run(&w.admin, run, Some("r-1")).await.unwrap();

    assert_eq!(same_task, task);
    assert_eq!(same_run.run.run_id, queued.run.run_id);
    assert_eq!(w.task_count(&ws).await, 1);
    assert_eq!(w.run_count(&ws).await, 1);
    let other_task = json!({"workspaceId": ws, "taskType": "doc.write", "input": {"prompt": "x"}});
    assert!(matches!(
        start
            .create_task(&w.admin, NewTask::parse(&other_task).unwrap(), Some("t-1"))
            .await,
        Err(ServiceError::Conflict(_))
    ));
    let other_run = CreateRun {
        task_id: task.task_id,
        executor: Some("kiro".parse().unwrap()),
    };
    assert!(matches!(
        start.create_run(&w.admin, other_run, Some("r-1")).await,
        Err(ServiceError::Conflict(_))
    ));
}
