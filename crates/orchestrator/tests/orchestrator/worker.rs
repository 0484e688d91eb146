//! The worker protocol's use cases on in-memory adapters with a clock the tests move:
//! leases under the concurrency limit, events and the log cap, cancellation, artifacts,
//! and the reaper racing workers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use tlao_adapters_local::LocalEventBus;
use tlao_domain::{
    ArtifactStatus, ArtifactType, EventPayload, Fenced, Guardrails, LogStream, Reported,
    RunErrorCode, RunId, RunStatus, Usage, keys,
};
use tlao_orchestrator::{
    Backlog, Completion, NewArtifact, Reaper, ServiceError, reaper, transactions,
};
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

fn log(text: &str) -> Reported {
    Reported::Event(EventPayload::Log {
        stream: LogStream::Stdout,
        text: text.into(),
    })
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
            None,
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
async fn a_runs_log_reads_grow_while_it_runs_and_stay_whole_once_it_ended() {
    let w = world(Guardrails::default()).await;
    let run = w.queue(1).await.remove(0);
    let lease = w.services.workers.lease_next(None).await.unwrap().unwrap();
    let logs = || async { w.services.runs.get(&w.admin, &run).await.unwrap().logs };

    w.services
        .workers
        .report(&run, &lease.lease_id, None, vec![log("one")])
        .await
        .unwrap();
    assert_eq!(logs().await.as_deref(), Some("one\n"));
    w.services
        .workers
        .report(&run, &lease.lease_id, None, vec![log("two")])
        .await
        .unwrap();
    assert_eq!(logs().await.as_deref(), Some("one\ntwo\n"));
    w.services
        .workers
        .complete(
            &run,
            &lease.lease_id,
            Completion::Completed,
            tlao_domain::Usage::Unmeasured,
        )
        .await
        .unwrap();
    // Read from the table, then remembered: the same text both times.
    assert_eq!(logs().await.as_deref(), Some("one\ntwo\n"));
    assert_eq!(logs().await.as_deref(), Some("one\ntwo\n"));
}

#[tokio::test]
async fn a_batch_larger_than_one_transaction_is_stored_whole_and_in_order() {
    let w = world(Guardrails::default()).await;
    let run = w.queue(1).await.remove(0);
    let lease = w.services.workers.lease_next(None).await.unwrap().unwrap();
    let lines: Vec<Reported> = (0..250).map(|i| log(&format!("line {i}"))).collect();

    let report = w
        .services
        .workers
        .report(&run, &lease.lease_id, Some(1), lines.clone())
        .await
        .unwrap();

    assert_eq!(report.stored.len(), 250);
    assert_eq!(report.last_seq, 252);
    let seqs: Vec<u64> = report.stored.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (3..=252).collect::<Vec<_>>());
    // Sent again (its answer was lost), with ten more: only the ten are new.
    let mut again = lines;
    again.extend((250..260).map(|i| log(&format!("line {i}"))));
    let report = w
        .services
        .workers
        .report(&run, &lease.lease_id, Some(1), again)
        .await
        .unwrap();
    assert_eq!(report.stored.len(), 10);
    assert_eq!(report.last_seq, 262);
}

#[tokio::test]
async fn a_cancelled_run_refuses_its_workers_events_and_frees_the_slot() {
    let w = world(Guardrails {
        max_concurrent_runs: 1,
        ..Guardrails::default()
    })
    .await;
    let runs = w.queue(2).await;
    let lease = w.services.workers.lease_next(None).await.unwrap().unwrap();

    w.services.runs.cancel(&w.admin, &runs[0]).await.unwrap();
    let refused = w
        .services
        .workers
        .report(&runs[0], &lease.lease_id, None, vec![log("last words")])
        .await;
    assert!(
        matches!(
            refused,
            Err(ServiceError::Fenced {
                fenced: Fenced::RunEnded(RunStatus::Cancelled),
                ..
            })
        ),
        "{refused:?}"
    );

    // The worker's own completion does not overwrite the cancellation: it learns it.
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
        w.services.workers.report(&run, &other, None, vec![]).await,
        Err(ServiceError::Fenced {
            fenced: Fenced::LeaseSuperseded,
            ..
        })
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
        .report(&runs[1], &talkative.lease_id, None, vec![])
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
            .report(&runs[1], &talkative.lease_id, None, vec![])
            .await
            .unwrap();
    }
    let sweep = reaper.sweep().await.unwrap();
    assert_eq!(sweep.timed_out, vec![talkative.run.run_id.clone()]);
    assert_eq!(w.status(&runs[1]).await, RunStatus::TimedOut);
    let refused = w
        .services
        .workers
        .report(&runs[1], &talkative.lease_id, None, vec![])
        .await;
    assert!(
        matches!(
            refused,
            Err(ServiceError::Fenced {
                fenced: Fenced::RunEnded(RunStatus::TimedOut),
                ..
            })
        ),
        "{refused:?}"
    );
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
    let new = |name: &str, body: &[u8]| NewArtifact {
        name: tlao_domain::ArtifactName::try_from(name.to_owned()).unwrap(),
        artifact_type: ArtifactType::Plan,
        size: body.len() as u64,
        sha256: sha256_hex(body),
        content_type: "application/json".into(),
    };

    let good = w
        .services
        .workers
        .create_artifact(&run, &lease.lease_id, new("plan.json", b"{}"))
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
        .create_artifact(&run, &lease.lease_id, new("notes.md", b"0123456789"))
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
                    sha256: sha256_hex(b"abc"),
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

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test]
async fn stored_bytes_of_the_declared_size_but_another_hash_are_upload_failed_naming_both() {
    let w = world(Guardrails::default()).await;
    let run = w.queue(1).await.remove(0);
    let lease = w.services.workers.lease_next(None).await.unwrap().unwrap();
    let mut declared = plan("plan.json", 2);
    declared.sha256 = sha256_hex(b"{}");
    let slot = w
        .services
        .workers
        .create_artifact(&run, &lease.lease_id, declared)
        .await
        .unwrap();
    w.services
        .core
        .blobs
        .put(
            &BlobKey::parse(&slot.artifact.key).unwrap(),
            Bytes::from_static(b"[]"),
            "application/json",
        )
        .await
        .unwrap();
    let settled = w
        .services
        .workers
        .finalize_artifact(&run, &lease.lease_id, &slot.artifact.artifact_id, None)
        .await
        .unwrap();
    assert_eq!(settled.status, ArtifactStatus::UploadFailed);
    assert_eq!(
        settled.error,
        Some(format!(
            "the stored bytes have SHA-256 {}, {} was declared",
            sha256_hex(b"[]"),
            sha256_hex(b"{}")
        ))
    );
}

fn plan(name: &str, size: u64) -> NewArtifact {
    NewArtifact {
        name: tlao_domain::ArtifactName::try_from(name.to_owned()).unwrap(),
        artifact_type: ArtifactType::Plan,
        size,
        sha256: "0".repeat(64),
        content_type: "application/json".into(),
    }
}

fn is_fenced(result: &Result<impl std::fmt::Debug, ServiceError>, expected: Fenced) -> bool {
    matches!(result, Err(ServiceError::Fenced { fenced, .. }) if *fenced == expected)
}

#[tokio::test]
async fn every_write_under_the_lease_of_an_ended_run_is_refused_as_fenced_and_stores_nothing() {
    let w = world(Guardrails::default()).await;
    let run = w.queue(1).await.remove(0);
    let lease = w.services.workers.lease_next(None).await.unwrap().unwrap();
    let workers = &w.services.workers;
    let pending = workers
        .create_artifact(&run, &lease.lease_id, plan("plan.json", 2))
        .await
        .unwrap();
    w.clock.advance_millis(31_000);
    let reaper = Reaper::new(
        w.services.core.clone(),
        Duration::from_secs(30),
        Duration::from_secs(5),
    );
    assert_eq!(reaper.sweep().await.unwrap().lost, vec![run.clone()]);
    let events_before = tlao_orchestrator::events::last_seq(&w.services.core, &run)
        .await
        .unwrap();
    // The bytes arrive late, as through an upload URL that cannot be revoked (S3).
    w.services
        .core
        .blobs
        .put(
            &BlobKey::parse(&pending.artifact.key).unwrap(),
            Bytes::from_static(b"{}"),
            "application/json",
        )
        .await
        .unwrap();
    let ended = Fenced::RunEnded(RunStatus::Failed);

    let events = workers
        .report(&run, &lease.lease_id, Some(1), vec![log("late")])
        .await;
    let heartbeat = workers.report(&run, &lease.lease_id, None, vec![]).await;
    let registered = workers
        .create_artifact(&run, &lease.lease_id, plan("late.json", 2))
        .await;
    let finalized = workers
        .finalize_artifact(&run, &lease.lease_id, &pending.artifact.artifact_id, None)
        .await;
    let assignment = workers.assignment(&run, &lease.lease_id).await;

    assert!(is_fenced(&events, ended), "{events:?}");
    assert!(is_fenced(&heartbeat, ended), "{heartbeat:?}");
    assert!(is_fenced(&registered, ended), "{registered:?}");
    assert!(is_fenced(&finalized, ended), "{finalized:?}");
    assert!(is_fenced(&assignment, ended), "{assignment:?}");
    let events_after = tlao_orchestrator::events::last_seq(&w.services.core, &run)
        .await
        .unwrap();
    assert_eq!(events_after, events_before, "no event after the end");
    let artifacts = w
        .services
        .artifacts
        .list_for_run(&w.admin, &run)
        .await
        .unwrap();
    assert_eq!(artifacts.len(), 1, "no artifact registered after the end");
    let settled = &artifacts[0].artifact;
    assert_eq!(settled.status, ArtifactStatus::UploadFailed);
    assert_eq!(
        settled.error.as_deref(),
        Some("the run ended (failed) before this artifact's upload was finalized")
    );
    let summary = w
        .services
        .workspaces
        .summary(&w.admin, &settled.workspace_id)
        .await
        .unwrap();
    assert_eq!(summary.artifact_count, 0, "nothing became available");
}

#[tokio::test]
async fn completing_an_ended_run_answers_its_own_lease_with_the_outcome_and_writes_nothing() {
    let w = world(Guardrails::default()).await;
    let run = w.queue(1).await.remove(0);
    let lease = w.services.workers.lease_next(None).await.unwrap().unwrap();
    let workers = &w.services.workers;
    workers
        .complete(
            &run,
            &lease.lease_id,
            Completion::Completed,
            Usage::Unmeasured,
        )
        .await
        .unwrap();
    let events_before = tlao_orchestrator::events::last_seq(&w.services.core, &run)
        .await
        .unwrap();

    // The first answer was lost; the worker asks again, with another outcome even.
    let again = workers
        .complete(
            &run,
            &lease.lease_id,
            Completion::TimedOut,
            Usage::Unmeasured,
        )
        .await
        .unwrap();
    let other = tlao_domain::LeaseId::new(tlao_domain::Ulid::from_parts(1, 1));
    let stranger = workers
        .complete(&run, &other, Completion::Completed, Usage::Unmeasured)
        .await;

    assert_eq!(again.status, RunStatus::Completed, "the outcome stands");
    assert!(
        is_fenced(&stranger, Fenced::LeaseSuperseded),
        "{stranger:?}"
    );
    let events_after = tlao_orchestrator::events::last_seq(&w.services.core, &run)
        .await
        .unwrap();
    assert_eq!(events_after, events_before);
}

#[tokio::test]
async fn every_write_under_a_lease_that_does_not_hold_the_run_is_refused_as_superseded() {
    let w = world(Guardrails::default()).await;
    let run = w.queue(1).await.remove(0);
    let lease = w.services.workers.lease_next(None).await.unwrap().unwrap();
    let workers = &w.services.workers;
    let pending = workers
        .create_artifact(&run, &lease.lease_id, plan("plan.json", 2))
        .await
        .unwrap();
    let events_before = tlao_orchestrator::events::last_seq(&w.services.core, &run)
        .await
        .unwrap();
    let other = tlao_domain::LeaseId::new(tlao_domain::Ulid::from_parts(1, 1));
    let superseded = Fenced::LeaseSuperseded;

    let events = workers
        .report(&run, &other, Some(1), vec![log("forged")])
        .await;
    let registered = workers
        .create_artifact(&run, &other, plan("forged.json", 2))
        .await;
    let finalized = workers
        .finalize_artifact(&run, &other, &pending.artifact.artifact_id, None)
        .await;
    let completed = workers
        .complete(&run, &other, Completion::Completed, Usage::Unmeasured)
        .await;

    assert!(is_fenced(&events, superseded), "{events:?}");
    assert!(is_fenced(&registered, superseded), "{registered:?}");
    assert!(is_fenced(&finalized, superseded), "{finalized:?}");
    assert!(is_fenced(&completed, superseded), "{completed:?}");
    let events_after = tlao_orchestrator::events::last_seq(&w.services.core, &run)
        .await
        .unwrap();
    assert_eq!(events_after, events_before);
    assert_eq!(w.status(&run).await, RunStatus::Running);
    let artifacts = w
        .services
        .artifacts
        .list_for_run(&w.admin, &run)
        .await
        .unwrap();
    assert_eq!(artifacts.len(), 1);
    assert_eq!(artifacts[0].artifact.status, ArtifactStatus::Pending);
}

#[tokio::test]
async fn an_upload_is_accepted_only_while_its_artifact_is_pending_and_its_run_runs() {
    let w = world(Guardrails::default()).await;
    let run = w.queue(1).await.remove(0);
    let lease = w.services.workers.lease_next(None).await.unwrap().unwrap();
    let workers = &w.services.workers;
    let settled = workers
        .create_artifact(&run, &lease.lease_id, plan("plan.json", 2))
        .await
        .unwrap();
    let pending = workers
        .create_artifact(&run, &lease.lease_id, plan("notes.json", 2))
        .await
        .unwrap();

    workers.check_upload(&settled.artifact.key).await.unwrap();
    workers
        .finalize_artifact(
            &run,
            &lease.lease_id,
            &settled.artifact.artifact_id,
            Some("gave up".into()),
        )
        .await
        .unwrap();
    let after_finalize = workers.check_upload(&settled.artifact.key).await;
    workers.check_upload(&pending.artifact.key).await.unwrap();
    w.services.runs.cancel(&w.admin, &run).await.unwrap();
    let after_cancel = workers.check_upload(&pending.artifact.key).await;

    assert!(
        matches!(after_finalize, Err(ServiceError::Conflict(_))),
        "{after_finalize:?}"
    );
    assert!(
        is_fenced(&after_cancel, Fenced::RunEnded(RunStatus::Cancelled)),
        "{after_cancel:?}"
    );
    workers
        .check_upload("workspaces/ws/archives/not-an-artifact.tar.gz")
        .await
        .unwrap();
}

#[tokio::test]
async fn the_reaper_fails_a_run_queued_past_its_time_as_queue_timeout_and_gives_back_its_quota() {
    let w = world(Guardrails {
        max_queue_seconds: 3_600,
        max_run_seconds: 10_000,
        daily_run_quota: 3,
        ..Guardrails::default()
    })
    .await;
    let runs = w.queue(3).await;
    let leased = w.services.workers.lease_next(None).await.unwrap().unwrap();
    assert_eq!(leased.run.run_id, runs[0]);
    let ws = leased.run.workspace_id.clone();
    let reaper = Reaper::new(
        w.services.core.clone(),
        Duration::from_secs(7_200),
        Duration::from_secs(5),
    );
    w.clock.advance_millis(3_599_000);
    w.services
        .workers
        .report(&runs[0], &leased.lease_id, None, vec![])
        .await
        .unwrap();
    assert_eq!(reaper.sweep().await.unwrap(), Default::default());

    // Past the hour (and past the interval between two scans of the queues).
    w.clock
        .advance_millis(reaper::QUEUE_SCAN_INTERVAL.as_millis() as i64);
    let sweep = reaper.sweep().await.unwrap();

    assert_eq!(sweep.expired, vec![runs[1].clone(), runs[2].clone()]);
    assert!(sweep.timed_out.is_empty() && sweep.lost.is_empty());
    let expired = w.services.runs.get(&w.admin, &runs[1]).await.unwrap().run;
    assert_eq!(expired.status, RunStatus::Failed);
    let error = expired.error.unwrap();
    assert_eq!(error.code, RunErrorCode::QueueTimeout);
    assert!(error.message.contains("3600 s"), "{}", error.message);
    assert_eq!(w.status(&runs[0]).await, RunStatus::Running);
    let page = w
        .services
        .events
        .log_page(&w.admin, &runs[1], 0, 100)
        .await
        .unwrap();
    let payloads: Vec<_> = page.events.into_iter().map(|e| e.payload).collect();
    assert!(
        matches!(&payloads[..], [
            EventPayload::Status { status: RunStatus::Queued },
            EventPayload::Log { stream: LogStream::System, text },
            EventPayload::Status { status: RunStatus::Failed },
        ] if text.contains("queue_seconds")),
        "{payloads:?}"
    );
    // The queue is empty, and two of the day's three quota units are free again.
    assert!(w.services.workers.lease_next(None).await.unwrap().is_none());
    let today = w.clock.now().utc_date();
    let store = &w.services.core.store;
    assert_eq!(
        transactions::runs::runs_created_on(store, &ws, today)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        transactions::runs::runs_created_by_on(store, &w.admin.user_id, today)
            .await
            .unwrap(),
        1
    );
    let after = w.queue_in(&ws, 2).await;
    assert_eq!(after.len(), 2, "the quota units given back are usable");
    // A second sweep finds nothing more to expire.
    w.clock
        .advance_millis(reaper::QUEUE_SCAN_INTERVAL.as_millis() as i64);
    assert!(reaper.sweep().await.unwrap().expired.is_empty());
}

#[tokio::test]
async fn the_backlog_counts_the_runs_waiting_and_the_runs_running() {
    let w = world(Guardrails::default()).await;
    assert_eq!(
        Backlog::measure(&w.services.core).await.unwrap(),
        Backlog::default()
    );
    let runs = w.queue(3).await;
    w.services.workers.lease_next(None).await.unwrap().unwrap();
    w.services.runs.cancel(&w.admin, &runs[2]).await.unwrap();

    let backlog = Backlog::measure(&w.services.core).await.unwrap();

    assert_eq!(
        backlog,
        Backlog {
            queued: 1,
            running: 1
        }
    );
}
