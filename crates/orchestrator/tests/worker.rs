//! The worker protocol's use cases on in-memory adapters with a clock the tests move:
//! leases under the concurrency limit, events and the log cap, cancellation, artifacts,
//! and the reaper racing workers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use tlao_adapters_local::LocalEventBus;
use tlao_domain::{
    ArtifactStatus, ArtifactType, EventPayload, Guardrails, LogStream, NewTask, RunErrorCode,
    RunId, RunStatus, Usage, keys,
};
use tlao_orchestrator::{Completion, CreateRun, NewArtifact, Reaper, ServiceError};
use tlao_ports::{BlobKey, Clock};

use common::World;

async fn world(guardrails: Guardrails) -> World {
    common::world_with(
        guardrails,
        Arc::new(LocalEventBus::new()),
        json!({"name": "kiro", "kind": "kiro", "taskTypes": ["spec.generate", "code.change"]}),
    )
    .await
}

impl World {
    /// Queues `n` runs in a new workspace; returns them oldest first.
    async fn queue(&self, n: usize) -> Vec<RunId> {
        let ws = self
            .services
            .workspaces
            .create(&self.admin, "w")
            .await
            .unwrap();
        let task = self
            .services
            .tasks
            .create(
                &self.admin,
                NewTask::parse(&json!({
                    "workspaceId": ws.workspace_id, "taskType": "spec.generate", "input": {"prompt": "plan"}
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

    async fn status(&self, run: &RunId) -> RunStatus {
        self.services
            .runs
            .get(&self.admin, run)
            .await
            .unwrap()
            .run
            .status
    }
}

fn log(text: &str) -> EventPayload {
    EventPayload::Log {
        stream: LogStream::Stdout,
        text: text.into(),
    }
}

#[tokio::test]
async fn leases_take_the_oldest_runs_and_never_exceed_the_workspace_limit() {
    let w = world(Guardrails {
        max_concurrent_runs: 2,
        ..Guardrails::default()
    })
    .await;
    let runs = w.queue(3).await;

    let first = w.services.workers.lease_next(None).await.unwrap().unwrap();
    let second = w.services.workers.lease_next(None).await.unwrap().unwrap();
    assert_eq!(first.run.run_id, runs[0]);
    assert_eq!(second.run.run_id, runs[1]);
    assert!(
        w.services.workers.lease_next(None).await.unwrap().is_none(),
        "the third must wait for a slot"
    );
    assert_eq!(
        w.services
            .runs
            .get(&w.admin, &runs[2])
            .await
            .unwrap()
            .queue_position,
        Some(1)
    );

    w.services
        .workers
        .complete(
            &first.run.run_id,
            &first.lease_id,
            Completion::Completed,
            Usage::Unmeasured,
        )
        .await
        .unwrap();
    let third = w.services.workers.lease_next(None).await.unwrap().unwrap();
    assert_eq!(third.run.run_id, runs[2]);
    assert_eq!(third.deadline, w.clock.now().plus_seconds(480));
    assert!(third.task_spec_key.ends_with("/taskspec.json"));
}

#[tokio::test]
async fn a_light_lease_names_what_a_launcher_needs_and_its_assignment_is_built_on_request() {
    let w = world(Guardrails::default()).await;
    let runs = w.queue(1).await;

    let lease = w.services.workers.lease(None).await.unwrap().unwrap();
    let launch = lease.launch();
    let assignment = w
        .services
        .workers
        .assignment(&launch.run_id, &launch.lease_id)
        .await
        .unwrap();

    assert_eq!(launch.run_id, runs[0]);
    assert_eq!(lease.run.status, RunStatus::Running);
    assert_eq!(lease.executor.name.as_str(), "kiro");
    assert_eq!(assignment.run, lease.run);
    assert!(assignment.task_spec_key.ends_with("/taskspec.json"));
}

#[tokio::test]
async fn a_waiting_lease_takes_a_run_queued_while_it_waits_and_gives_up_after_its_wait() {
    let w = Arc::new(world(Guardrails::default()).await);
    let nothing = w
        .services
        .workers
        .lease_wait(None, Duration::from_millis(50))
        .await
        .unwrap();
    assert!(nothing.is_none(), "nothing was queued");

    let waiting = {
        let w = w.clone();
        tokio::spawn(async move {
            w.services
                .workers
                .lease_wait(None, Duration::from_secs(30))
                .await
        })
    };
    let runs = w.queue(1).await;
    let leased = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the waiting lease takes the run before its wait ends")
        .unwrap()
        .unwrap()
        .unwrap();

    assert_eq!(leased.run.run_id, runs[0]);
}

#[tokio::test]
async fn racing_leases_hand_each_run_to_one_worker_only() {
    let w = Arc::new(
        world(Guardrails {
            max_concurrent_runs: 10,
            ..Guardrails::default()
        })
        .await,
    );
    let runs = w.queue(6).await;
    let mut workers = Vec::new();
    for _ in 0..12 {
        let w = w.clone();
        workers.push(tokio::spawn(async move {
            w.services.workers.lease_next(None).await.unwrap()
        }));
    }
    let mut leased: Vec<RunId> = Vec::new();
    for worker in workers {
        if let Some(assignment) = worker.await.unwrap() {
            leased.push(assignment.run.run_id);
        }
    }
    leased.sort();
    let mut expected = runs.clone();
    expected.sort();
    assert_eq!(leased, expected, "every run leased exactly once");
}

#[tokio::test]
async fn events_get_gap_free_sequence_numbers_and_logs_past_the_cap_are_dropped() {
    let w = world(Guardrails {
        max_log_bytes: 12,
        ..Guardrails::default()
    })
    .await;
    let run = w.queue(1).await.remove(0);
    let lease = w.services.workers.lease_next(None).await.unwrap().unwrap();

    let report = w
        .services
        .workers
        .report(
            &run,
            &lease.lease_id,
            vec![log("aaaa"), log("bbbb"), log("cccc"), log("dddd")],
        )
        .await
        .unwrap();

    assert!(!report.stop);
    // Events 1 and 2 are the queued and running status changes.
    let seqs: Vec<u64> = report.stored.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![3, 4, 5]);
    assert_eq!(
        report.stored[2].payload,
        EventPayload::Truncated { max_log_bytes: 12 }
    );
    let view = w.services.runs.get(&w.admin, &run).await.unwrap();
    assert_eq!(view.logs.as_deref(), Some("aaaa\nbbbb\n"));
    assert!(view.run.logs_truncated);
    assert_eq!(view.run.dropped_log_bytes, 10);
}

#[tokio::test]
async fn a_batch_larger_than_one_transaction_is_stored_whole_and_in_order() {
    let w = world(Guardrails::default()).await;
    let run = w.queue(1).await.remove(0);
    let lease = w.services.workers.lease_next(None).await.unwrap().unwrap();
    let lines: Vec<EventPayload> = (0..250).map(|i| log(&format!("line {i}"))).collect();

    let report = w
        .services
        .workers
        .report(&run, &lease.lease_id, lines)
        .await
        .unwrap();

    assert_eq!(report.stored.len(), 250);
    assert_eq!(report.last_seq, 252);
    let seqs: Vec<u64> = report.stored.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (3..=252).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_cancelled_run_tells_its_worker_to_stop_and_frees_the_slot() {
    let w = world(Guardrails {
        max_concurrent_runs: 1,
        ..Guardrails::default()
    })
    .await;
    let runs = w.queue(2).await;
    let lease = w.services.workers.lease_next(None).await.unwrap().unwrap();

    w.services.runs.cancel(&w.admin, &runs[0]).await.unwrap();
    let report = w
        .services
        .workers
        .report(&runs[0], &lease.lease_id, vec![log("last words")])
        .await
        .unwrap();
    assert!(report.stop);
    assert_eq!(report.status, RunStatus::Cancelled);

    // The worker's own completion does not overwrite the cancellation.
    let run = w
        .services
        .workers
        .complete(
            &runs[0],
            &lease.lease_id,
            Completion::Cancelled,
            Usage::Unmeasured,
        )
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Cancelled);
    let next = w.services.workers.lease_next(None).await.unwrap().unwrap();
    assert_eq!(next.run.run_id, runs[1]);
}

#[tokio::test]
async fn a_stale_lease_is_refused() {
    let w = world(Guardrails::default()).await;
    let run = w.queue(1).await.remove(0);
    w.services.workers.lease_next(None).await.unwrap().unwrap();
    let other = tlao_domain::LeaseId::new(tlao_domain::Ulid::from_parts(1, 1));
    assert!(matches!(
        w.services.workers.report(&run, &other, vec![]).await,
        Err(ServiceError::Conflict(_))
    ));
}

#[tokio::test]
async fn the_reaper_fails_a_silent_run_as_worker_lost_and_times_out_an_overdue_one() {
    let w = world(Guardrails {
        max_run_seconds: 60,
        ..Guardrails::default()
    })
    .await;
    let runs = w.queue(2).await;
    let silent = w.services.workers.lease_next(None).await.unwrap().unwrap();
    let talkative = w.services.workers.lease_next(None).await.unwrap().unwrap();
    let reaper = Reaper::new(
        w.services.core.clone(),
        Duration::from_secs(30),
        Duration::from_secs(5),
    );

    w.clock.advance_millis(29_000);
    w.services
        .workers
        .report(&runs[1], &talkative.lease_id, vec![])
        .await
        .unwrap();
    assert_eq!(reaper.sweep().await.unwrap(), Default::default());

    w.clock.advance_millis(2_000);
    let sweep = reaper.sweep().await.unwrap();
    assert_eq!(sweep.lost, vec![silent.run.run_id.clone()]);
    let lost = w.services.runs.get(&w.admin, &runs[0]).await.unwrap().run;
    assert_eq!(lost.status, RunStatus::Failed);
    assert_eq!(lost.error.unwrap().code, RunErrorCode::WorkerLost);

    // Keep the second alive past its deadline (60 s) plus grace (5 s).
    for _ in 0..4 {
        w.clock.advance_millis(10_000);
        w.services
            .workers
            .report(&runs[1], &talkative.lease_id, vec![])
            .await
            .unwrap();
    }
    let sweep = reaper.sweep().await.unwrap();
    assert_eq!(sweep.timed_out, vec![talkative.run.run_id.clone()]);
    assert_eq!(w.status(&runs[1]).await, RunStatus::TimedOut);
    let report = w
        .services
        .workers
        .report(&runs[1], &talkative.lease_id, vec![])
        .await
        .unwrap();
    assert!(report.stop);
}

#[tokio::test]
async fn a_reaper_racing_a_completion_yields_exactly_one_outcome() {
    for _ in 0..20 {
        let w = Arc::new(world(Guardrails::default()).await);
        let run = w.queue(1).await.remove(0);
        let lease = w.services.workers.lease_next(None).await.unwrap().unwrap();
        w.clock.advance_millis(31_000);
        let reaper = Reaper::new(
            w.services.core.clone(),
            Duration::from_secs(30),
            Duration::from_secs(5),
        );
        let completing = {
            let w = w.clone();
            let run = run.clone();
            tokio::spawn(async move {
                w.services
                    .workers
                    .complete(
                        &run,
                        &lease.lease_id,
                        Completion::Completed,
                        Usage::Unmeasured,
                    )
                    .await
                    .unwrap()
            })
        };
        let sweep = reaper.sweep().await.unwrap();
        let completed = completing.await.unwrap();
        let stored = w.services.runs.get(&w.admin, &run).await.unwrap().run;
        assert_eq!(
            completed.status, stored.status,
            "the worker is told the outcome that stands"
        );
        assert_eq!(sweep.lost.is_empty(), stored.status == RunStatus::Completed);
        let active = w
            .services
            .core
            .store
            .get_item(&keys::workspace(&stored.workspace_id))
            .await
            .unwrap()
            .unwrap()
            .n("activeRuns");
        assert_eq!(active, Some(0), "the slot is freed exactly once");
    }
}

#[tokio::test]
async fn an_uploaded_artifact_becomes_available_and_a_missing_one_upload_failed() {
    let w = world(Guardrails::default()).await;
    let run = w.queue(1).await.remove(0);
    let lease = w.services.workers.lease_next(None).await.unwrap().unwrap();
    let new = |name: &str, size| NewArtifact {
        name: tlao_domain::ArtifactName::try_from(name.to_owned()).unwrap(),
        artifact_type: ArtifactType::Plan,
        size,
        sha256: "0".repeat(64),
        content_type: "application/json".into(),
    };

    let good = w
        .services
        .workers
        .create_artifact(&run, &lease.lease_id, new("plan.json", 2))
        .await
        .unwrap();
    assert!(good.artifact.key.starts_with(&format!(
        "workspaces/{}/runs/{run}/artifacts/",
        good.artifact.workspace_id
    )));
    w.services
        .core
        .blobs
        .put(
            &BlobKey::parse(&good.artifact.key).unwrap(),
            Bytes::from_static(b"{}"),
            "application/json",
        )
        .await
        .unwrap();
    let settled = w
        .services
        .workers
        .finalize_artifact(&run, &lease.lease_id, &good.artifact.artifact_id, None)
        .await
        .unwrap();
    assert_eq!(settled.status, ArtifactStatus::Available);

    let missing = w
        .services
        .workers
        .create_artifact(&run, &lease.lease_id, new("notes.md", 10))
        .await
        .unwrap();
    let failed = w
        .services
        .workers
        .finalize_artifact(&run, &lease.lease_id, &missing.artifact.artifact_id, None)
        .await
        .unwrap();
    assert_eq!(failed.status, ArtifactStatus::UploadFailed);
    assert_eq!(failed.error.as_deref(), Some("no bytes were uploaded"));

    let listed = w
        .services
        .artifacts
        .list_for_run(&w.admin, &run)
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed[0].download.is_some());
    assert!(listed[1].download.is_none());
    // Only the available artifact counts in the workspace's storage, once, even when
    // finalized again.
    w.services
        .workers
        .finalize_artifact(&run, &lease.lease_id, &good.artifact.artifact_id, None)
        .await
        .unwrap();
    let summary = w
        .services
        .workspaces
        .summary(&w.admin, &good.artifact.workspace_id)
        .await
        .unwrap();
    assert_eq!((summary.artifact_count, summary.artifact_bytes), (1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_racing_finalizes_of_one_artifact_both_succeed_and_it_counts_once() {
    let w = world(Guardrails::default()).await;
    let run = w.queue(1).await.remove(0);
    let lease = w.services.workers.lease_next(None).await.unwrap().unwrap();
    let mut ids = Vec::new();
    for i in 0..10 {
        let slot = w
            .services
            .workers
            .create_artifact(
                &run,
                &lease.lease_id,
                NewArtifact {
                    name: tlao_domain::ArtifactName::try_from(format!("doc-{i}.md")).unwrap(),
                    artifact_type: ArtifactType::Document,
                    size: 3,
                    sha256: "0".repeat(64),
                    content_type: "text/markdown".into(),
                },
            )
            .await
            .unwrap();
        w.services
            .core
            .blobs
            .put(
                &BlobKey::parse(&slot.artifact.key).unwrap(),
                Bytes::from_static(b"abc"),
                "text/markdown",
            )
            .await
            .unwrap();
        ids.push(slot.artifact.artifact_id);
    }

    for id in &ids {
        let workers = &w.services.workers;
        let (a, b) = tokio::join!(
            workers.finalize_artifact(&run, &lease.lease_id, id, None),
            workers.finalize_artifact(&run, &lease.lease_id, id, None),
        );
        assert_eq!(a.unwrap().status, ArtifactStatus::Available);
        assert_eq!(b.unwrap().status, ArtifactStatus::Available);
    }

    let listed = w
        .services
        .artifacts
        .list_for_run(&w.admin, &run)
        .await
        .unwrap();
    let summary = w
        .services
        .workspaces
        .summary(&w.admin, &listed[0].artifact.workspace_id)
        .await
        .unwrap();
    assert_eq!((summary.artifact_count, summary.artifact_bytes), (10, 30));
}
