//! Executor selection by availability (requirement 2.2): among the executors serving a
//! task type, run creation prefers one a worker reported available recently, in registry
//! order; an explicit executor wins; none seen → the first serving; the run says why.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::sync::Arc;

use serde_json::json;
use tlao_adapters_local::LocalEventBus;
use tlao_domain::{ExecutorDescriptor, Guardrails, NewTask, TaskId};
use tlao_orchestrator::{CreateRun, Sighting};

use common::World;

/// A world whose registry holds, in order, `alpha` (the common world's first record),
/// then `beta` and `gamma`, all serving `code.change`; `gamma` also `doc.write`.
async fn world() -> World {
    let w = common::world_with(
        Guardrails {
            executor_seen_within_seconds: 600,
            ..Guardrails::default()
        },
        Arc::new(LocalEventBus::new()),
        json!({"name": "alpha", "kind": "command", "taskTypes": ["code.change"],
               "config": {"command": ["alpha-agent", "{prompt}"]}}),
    )
    .await;
    for record in [
        json!({"name": "beta", "kind": "command", "taskTypes": ["code.change"],
               "config": {"command": ["beta-agent", "{prompt}"]}}),
        json!({"name": "gamma", "kind": "command", "taskTypes": ["code.change", "doc.write"],
               "config": {"command": ["gamma-agent", "{prompt}"]}}),
    ] {
        w.services
            .executors
            .register(&w.admin, ExecutorDescriptor::parse(&record).unwrap())
            .await
            .unwrap();
    }
    w
}

async fn task(w: &World) -> TaskId {
    let ws = w
        .services
        .workspaces
        .create(&w.admin, "demo")
        .await
        .unwrap()
        .workspace_id;
    let body = json!({"workspaceId": ws.to_string(), "taskType": "code.change",
                      "input": {"prompt": "change it"}});
    w.services
        .tasks
        .create(&w.admin, NewTask::parse(&body).unwrap(), None)
        .await
        .unwrap()
        .task_id
}

async fn create(w: &World, task_id: &TaskId, executor: Option<&str>) -> tlao_domain::Run {
    w.services
        .runs
        .create(
            &w.admin,
            CreateRun {
                task_id: task_id.clone(),
                executor: executor.map(|e| e.parse().unwrap()),
            },
            None,
        )
        .await
        .unwrap()
        .run
}

async fn seen(w: &World, worker: &str, executor: &str, version: &str) {
    w.services
        .executors
        .record_seen(
            worker,
            &[Sighting {
                executor: executor.parse().unwrap(),
                version: Some(version.into()),
            }],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn none_seen_available_keeps_the_first_serving_and_says_so() {
    let w = world().await;
    let task = task(&w).await;
    let run = create(&w, &task, None).await;
    assert_eq!(run.executor.as_str(), "alpha");
    let reason = run.selection.expect("a reason");
    assert!(
        reason.contains("first registered executor serving code.change"),
        "{reason}"
    );
    assert!(
        reason.contains("none serving it was seen available within 600 s"),
        "{reason}"
    );
    // The reason is kept with the run.
    let read = w.services.runs.get(&w.admin, &run.run_id).await.unwrap();
    assert_eq!(read.run.selection.as_deref(), Some(reason.as_str()));
}

#[tokio::test]
async fn an_executor_seen_available_is_preferred_in_registry_order() {
    let w = world().await;
    let task = task(&w).await;
    seen(&w, "host-a-1", "gamma", "gamma 2.0").await;
    w.clock.advance_millis(1000);
    seen(&w, "host-b-2", "gamma", "gamma 2.1").await;
    seen(&w, "host-a-1", "beta", "beta 1.0").await;

    let run = create(&w, &task, None).await;
    assert_eq!(
        run.executor.as_str(),
        "beta",
        "beta comes before gamma in the registry"
    );
    let reason = run.selection.unwrap();
    assert!(
        reason.contains("beta serves code.change and was seen available by 1 worker"),
        "{reason}"
    );
    assert!(reason.contains("version beta 1.0"), "{reason}");
    assert!(
        reason.contains("skipped, not seen available: alpha"),
        "{reason}"
    );

    let seen = w.services.executors.availability().await.unwrap();
    let gamma = &seen[&"gamma".parse().unwrap()];
    assert_eq!(gamma.workers, 2);
    assert_eq!(gamma.version.as_deref(), Some("gamma 2.1"));
    assert!(!seen.contains_key(&"alpha".parse().unwrap()));
}

#[tokio::test]
async fn a_sighting_older_than_the_window_no_longer_counts() {
    let w = world().await;
    let task = task(&w).await;
    seen(&w, "host-a-1", "gamma", "gamma 2.0").await;
    w.clock.advance_millis(601_000);

    let run = create(&w, &task, None).await;
    assert_eq!(run.executor.as_str(), "alpha");
    let seen = w.services.executors.availability().await.unwrap();
    let gamma = &seen[&"gamma".parse().unwrap()];
    assert_eq!(gamma.workers, 0, "still known, no longer within the window");

    // A fresh report brings it back.
    seen_again(&w).await;
    let run = create(&w, &task, None).await;
    assert_eq!(run.executor.as_str(), "gamma");
}

async fn seen_again(w: &World) {
    // A new version is written at once, whatever the throttle says.
    seen(w, "host-a-1", "gamma", "gamma 2.2").await;
}

#[tokio::test]
async fn an_explicit_executor_wins_over_availability() {
    let w = world().await;
    let task = task(&w).await;
    seen(&w, "host-a-1", "beta", "beta 1.0").await;
    let run = create(&w, &task, Some("gamma")).await;
    assert_eq!(run.executor.as_str(), "gamma");
    assert_eq!(run.selection.as_deref(), Some("gamma was requested"));
}

#[tokio::test]
async fn sightings_of_unregistered_executors_are_ignored() {
    let w = world().await;
    seen(&w, "host-a-1", "nobody", "1").await;
    assert!(
        w.services
            .executors
            .availability()
            .await
            .unwrap()
            .is_empty()
    );
}
