//! Reading a run's log page by page on in-memory adapters: pages up to their limit that
//! say where the next starts and how long the log is, a long log read whole in one
//! page, the log lines alone, and membership checked on every page.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::sync::Arc;

use serde_json::json;
use tlao_adapters_local::LocalEventBus;
use tlao_domain::{EventPayload, Guardrails, LogStream, NewTask, Reported, RunId, Ulid};
use tlao_orchestrator::events::{MAX_EVENTS_PER_READ, MAX_LOG_PAGE};
use tlao_orchestrator::{Caller, CreateRun, ServiceError};

use common::World;

async fn world() -> World {
    common::world_with(
        Guardrails::default(),
        Arc::new(LocalEventBus::new()),
        json!({"name": "kiro", "kind": "kiro", "taskTypes": ["spec.generate"]}),
    )
    .await
}

impl World {
    /// A leased run that logged `lines` stdout lines (`line 0`, …) and one progress
    /// report: events 1 and 2 are its queued and running status changes, then the
    /// lines, then the progress report.
    async fn run_with_log(&self, lines: usize) -> RunId {
        let ws = self
            .services
            .workspaces
            .create(&self.admin, "w")
            .await
            .unwrap();
        let task = NewTask::parse(&json!({
            "workspaceId": ws.workspace_id, "taskType": "spec.generate", "input": {"prompt": "plan"}
        }))
        .unwrap();
        let task = self
            .services
            .tasks
            .create(&self.admin, task, None)
            .await
            .unwrap();
        let run = CreateRun {
            task_id: task.task_id,
            executor: None,
        };
        let run = self
            .services
            .runs
            .create(&self.admin, run, None)
            .await
            .unwrap();
        let lease = self
            .services
            .workers
            .lease_next(None)
            .await
            .unwrap()
            .unwrap();
        let mut events: Vec<EventPayload> = (0..lines)
            .map(|i| EventPayload::Log {
                stream: LogStream::Stdout,
                text: format!("line {i}"),
            })
            .collect();
        events.push(EventPayload::Progress {
            message: "done".into(),
            percent: Some(100),
        });
        self.services
            .workers
            .report(
                &run.run.run_id,
                &lease.lease_id,
                None,
                events.into_iter().map(Reported::Event).collect(),
            )
            .await
            .unwrap();
        run.run.run_id
    }
}

#[tokio::test]
async fn a_page_holds_up_to_its_limit_and_says_where_the_next_one_starts() {
    let w = world().await;
    let run = w.run_with_log(10).await;
    let events = &w.services.events;

    let first = events.log_page(&w.admin, &run, 0, 5).await.unwrap();
    let rest = events
        .log_page(&w.admin, &run, first.next_seq, 100)
        .await
        .unwrap();

    let seqs: Vec<u64> = first.events.iter().map(|event| event.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert_eq!((first.next_seq, first.total), (5, 13));
    assert!(first.truncated);
    assert_eq!(first.run.run_id, run);
    assert_eq!(rest.events.first().unwrap().seq, 6);
    assert_eq!((rest.next_seq, rest.total), (13, 13));
    assert!(!rest.truncated);
}

#[tokio::test]
async fn a_log_longer_than_one_table_read_is_read_whole_in_one_page() {
    let w = world().await;
    let lines = MAX_EVENTS_PER_READ * 2 + 500;
    let run = w.run_with_log(lines).await;

    let page = w
        .services
        .events
        .log_page(&w.admin, &run, 0, MAX_LOG_PAGE)
        .await
        .unwrap();

    let total = lines as u64 + 3;
    assert_eq!(page.events.len() as u64, total);
    assert!(
        page.events
            .iter()
            .zip(1..)
            .all(|(event, seq)| event.seq == seq)
    );
    assert_eq!((page.next_seq, page.total), (total, total));
    assert!(!page.truncated);
}

#[tokio::test]
async fn a_page_that_ends_exactly_at_the_last_event_is_not_truncated() {
    let w = world().await;
    let run = w.run_with_log(2).await;

    let page = w
        .services
        .events
        .log_page(&w.admin, &run, 0, 5)
        .await
        .unwrap();
    let past_the_end = w
        .services
        .events
        .log_page(&w.admin, &run, 5, 5)
        .await
        .unwrap();

    assert_eq!(page.events.len(), 5);
    assert_eq!((page.next_seq, page.total), (5, 5));
    assert!(!page.truncated);
    assert!(past_the_end.events.is_empty());
    assert_eq!((past_the_end.next_seq, past_the_end.total), (5, 5));
    assert!(!past_the_end.truncated);
}

#[tokio::test]
async fn the_log_lines_of_a_page_leave_out_status_and_progress_events() {
    let w = world().await;
    let run = w.run_with_log(3).await;

    let page = w
        .services
        .events
        .log_page(&w.admin, &run, 0, 100)
        .await
        .unwrap();

    assert_eq!(page.events.len(), 6);
    assert_eq!(
        page.log_lines().collect::<Vec<_>>(),
        ["line 0", "line 1", "line 2"]
    );
}

#[tokio::test]
async fn reading_a_page_needs_membership_of_an_existing_run() {
    let w = world().await;
    let run = w.run_with_log(1).await;
    let stranger = w.services.users.create(&w.admin, "stranger").await.unwrap();
    let stranger = Caller {
        user_id: stranger.user.user_id,
        admin: false,
    };
    let events = &w.services.events;

    let foreign = events.log_page(&stranger, &run, 0, 10).await;
    let unknown = events
        .log_page(&w.admin, &RunId::new(Ulid::from_parts(1, 1)), 0, 10)
        .await;

    assert!(
        matches!(foreign, Err(ServiceError::Forbidden(_))),
        "{foreign:?}"
    );
    assert!(
        matches!(unknown, Err(ServiceError::NotFound { what: "run", .. })),
        "{unknown:?}"
    );
}
