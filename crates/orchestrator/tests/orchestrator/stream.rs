//! Run streams (`StreamService`) over in-memory adapters and buses that misbehave the
//! ways the event bus contract allows: a stream yields every event exactly once and in
//! order, then the end, whether the bus delivers everything, lags, loses publishes,
//! reorders them, or cannot be reached at all.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use tlao_adapters_local::LocalEventBus;
use tlao_domain::{
    EventPayload, Guardrails, LeaseId, LogStream, NewTask, Reported, RunEvent, RunId, RunStatus,
    Usage,
};
use tlao_orchestrator::{
    Caller, Completion, CreateRun, RunStream, ServiceError, StreamItem, StreamService,
};
use tlao_ports::{EventBus, EventBusError, EventSubscription};

/// How long a test waits for the next item before failing.
const PATIENCE: Duration = Duration::from_secs(30);
/// A fast poll, so tests relying on it are quick.
const FAST_POLL: Duration = Duration::from_millis(20);

use common::World;

async fn world(bus: Arc<dyn EventBus>) -> World {
    common::world_with(
        Guardrails::default(),
        bus,
        json!({"name": "kiro", "kind": "kiro", "taskTypes": ["spec.generate"]}),
    )
    .await
}

impl World {
    /// A queued run of the administrator's, in a new workspace.
    async fn queued_run(&self) -> RunId {
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
        self.services
            .runs
            .create(
                &self.admin,
                CreateRun {
                    task_id: task.task_id,
                    executor: None,
                },
                None,
            )
            .await
            .unwrap()
            .run
            .run_id
    }

    /// A running run (events 1 and 2: queued, running) and its lease.
    async fn running_run(&self) -> (RunId, LeaseId) {
        let run_id = self.queued_run().await;
        let assignment = self
            .services
            .workers
            .lease_next(None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(assignment.run.run_id, run_id);
        (run_id, assignment.lease_id)
    }

    async fn log(&self, run: &(RunId, LeaseId), texts: std::ops::Range<u32>) {
        let events = texts
            .map(|i| {
                Reported::Event(EventPayload::Log {
                    stream: LogStream::Stdout,
                    text: format!("line {i}"),
                })
            })
            .collect();
        self.services
            .workers
            .report(&run.0, &run.1, None, events)
            .await
            .unwrap();
    }

    async fn complete(&self, run: &(RunId, LeaseId)) {
        self.services
            .workers
            .complete(&run.0, &run.1, Completion::Completed, Usage::Unmeasured)
            .await
            .unwrap();
    }

    /// A stream service on this world's bus that polls every [`FAST_POLL`].
    fn fast_streams(&self) -> StreamService {
        StreamService::new(self.services.core.clone(), self.bus.clone())
            .with_poll_interval(FAST_POLL)
    }
}

async fn next(stream: &mut RunStream) -> Option<StreamItem> {
    tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("the stream yields in time")
        .unwrap()
}

/// Reads to the end and checks the events are `after + 1 ..= N`, each once, in order,
/// then the end with `N`; returns the events and the final status.
async fn drain(stream: &mut RunStream, after: u64) -> (Vec<RunEvent>, RunStatus) {
    let mut events = Vec::new();
    loop {
        match next(stream).await.expect("an end before the stream stops") {
            StreamItem::Event(event) => {
                assert_eq!(event.seq, after + events.len() as u64 + 1, "{event:?}");
                events.push(event);
            }
            StreamItem::End { status, last_seq } => {
                assert_eq!(last_seq, after + events.len() as u64);
                assert!(next(stream).await.is_none(), "nothing follows the end");
                return (events, status);
            }
        }
    }
}

fn texts(events: &[RunEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.payload {
            EventPayload::Log { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

fn lines(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| format!("line {i}")).collect()
}

#[tokio::test]
async fn a_stream_replays_stored_events_then_follows_live_ones_to_the_end() {
    let world = world(Arc::new(LocalEventBus::new())).await;
    let run = world.running_run().await;
    world.log(&run, 0..3).await;
    let mut stream = world
        .services
        .streams
        .open(&world.admin, &run.0, 0)
        .await
        .unwrap();
    for seq in 1..=5 {
        let Some(StreamItem::Event(event)) = next(&mut stream).await else {
            panic!("event {seq} expected");
        };
        assert_eq!(event.seq, seq);
    }
    world.log(&run, 3..6).await;
    world.complete(&run).await;
    let (events, status) = drain(&mut stream, 5).await;
    assert_eq!(texts(&events), lines(3..6));
    assert_eq!(status, RunStatus::Completed);
}

#[tokio::test]
async fn a_stream_of_a_finished_run_replays_and_ends_and_one_from_its_last_event_only_ends() {
    let world = world(Arc::new(LocalEventBus::new())).await;
    let run = world.running_run().await;
    world.log(&run, 0..2).await;
    world.complete(&run).await;
    let streams = &world.services.streams;
    let mut whole = streams.open(&world.admin, &run.0, 0).await.unwrap();
    let (events, status) = drain(&mut whole, 0).await;
    assert_eq!(events.len(), 5);
    assert_eq!(status, RunStatus::Completed);
    let mut resumed = streams.open(&world.admin, &run.0, 5).await.unwrap();
    assert_eq!(drain(&mut resumed, 5).await.0, Vec::new());
}

#[tokio::test]
async fn a_stream_that_is_not_read_lags_on_the_bus_and_catches_up_from_the_table() {
    let world = world(Arc::new(LocalEventBus::with_capacity(4))).await;
    let run = world.running_run().await;
    let mut stream = world
        .services
        .streams
        .open(&world.admin, &run.0, 0)
        .await
        .unwrap();
    // One event per report: 200 publishes into a channel of 4.
    for i in 0..200 {
        world.log(&run, i..i + 1).await;
    }
    world.complete(&run).await;
    let (events, status) = drain(&mut stream, 0).await;
    assert_eq!(texts(&events), lines(0..200));
    assert_eq!(status, RunStatus::Completed);
}

/// Delivers only every other publish, as a bus may when a process dies between commit
/// and publish.
struct LossyBus {
    inner: LocalEventBus,
    publishes: Mutex<u64>,
}

#[async_trait]
impl EventBus for LossyBus {
    async fn publish(&self, run_id: &RunId, events: &[RunEvent]) -> Result<(), EventBusError> {
        let deliver = {
            let mut count = self.publishes.lock().unwrap();
            *count += 1;
            count.is_multiple_of(2)
        };
        if deliver {
            self.inner.publish(run_id, events).await
        } else {
            Ok(())
        }
    }

    async fn subscribe(&self, run_id: &RunId) -> Result<Box<dyn EventSubscription>, EventBusError> {
        self.inner.subscribe(run_id).await
    }
}

#[tokio::test]
async fn events_the_bus_loses_are_read_from_the_table() {
    let world = world(Arc::new(LossyBus {
        inner: LocalEventBus::new(),
        publishes: Mutex::new(0),
    }))
    .await;
    let run = world.running_run().await;
    let mut stream = world
        .fast_streams()
        .open(&world.admin, &run.0, 0)
        .await
        .unwrap();
    let reading = async { drain(&mut stream, 0).await };
    let writing = async {
        for i in 0..30 {
            world.log(&run, i * 3..i * 3 + 3).await;
        }
        world.complete(&run).await;
    };
    let ((events, status), ()) = tokio::join!(reading, writing);
    assert_eq!(texts(&events), lines(0..90));
    assert_eq!(status, RunStatus::Completed);
}

/// Holds every odd publish back until the next one went out, as two concurrent
/// publishers may interleave.
struct ReorderingBus {
    inner: LocalEventBus,
    held: Mutex<Option<(RunId, Vec<RunEvent>)>>,
}

#[async_trait]
impl EventBus for ReorderingBus {
    async fn publish(&self, run_id: &RunId, events: &[RunEvent]) -> Result<(), EventBusError> {
        let held = self.held.lock().unwrap().take();
        match held {
            None => {
                *self.held.lock().unwrap() = Some((run_id.clone(), events.to_vec()));
                Ok(())
            }
            Some((held_run, held_events)) => {
                self.inner.publish(run_id, events).await?;
                self.inner.publish(&held_run, &held_events).await
            }
        }
    }

    async fn subscribe(&self, run_id: &RunId) -> Result<Box<dyn EventSubscription>, EventBusError> {
        self.inner.subscribe(run_id).await
    }
}

#[tokio::test]
async fn events_the_bus_delivers_out_of_order_are_yielded_in_order() {
    let world = world(Arc::new(ReorderingBus {
        inner: LocalEventBus::new(),
        held: Mutex::new(None),
    }))
    .await;
    let run = world.running_run().await;
    let mut stream = world
        .fast_streams()
        .open(&world.admin, &run.0, 2)
        .await
        .unwrap();
    let reading = async { drain(&mut stream, 2).await };
    let writing = async {
        for i in 0..40 {
            world.log(&run, i * 2..i * 2 + 2).await;
        }
        world.complete(&run).await;
    };
    let ((events, status), ()) = tokio::join!(reading, writing);
    assert_eq!(texts(&events), lines(0..80));
    assert_eq!(status, RunStatus::Completed);
}

/// A bus that cannot be reached.
struct UnreachableBus;

#[async_trait]
impl EventBus for UnreachableBus {
    async fn publish(&self, _: &RunId, _: &[RunEvent]) -> Result<(), EventBusError> {
        Err(EventBusError::Unavailable("the broker is down".into()))
    }

    async fn subscribe(&self, _: &RunId) -> Result<Box<dyn EventSubscription>, EventBusError> {
        Err(EventBusError::Unavailable("the broker is down".into()))
    }
}

#[tokio::test]
async fn without_a_bus_writes_still_succeed_and_streams_poll_the_table() {
    let world = world(Arc::new(UnreachableBus)).await;
    let run = world.running_run().await;
    let mut stream = world
        .fast_streams()
        .open(&world.admin, &run.0, 0)
        .await
        .unwrap();
    let reading = async { drain(&mut stream, 0).await };
    let writing = async {
        for i in 0..10 {
            world.log(&run, i..i + 1).await;
        }
        world.complete(&run).await;
    };
    let ((events, status), ()) = tokio::join!(reading, writing);
    assert_eq!(texts(&events), lines(0..10));
    assert_eq!(status, RunStatus::Completed);
}

#[tokio::test]
async fn opening_a_stream_needs_membership_of_an_existing_run() {
    let world = world(Arc::new(LocalEventBus::new())).await;
    let run = world.queued_run().await;
    let stranger = world
        .services
        .users
        .create(&world.admin, "eve")
        .await
        .unwrap();
    let stranger = Caller {
        user_id: stranger.user.user_id,
        admin: false,
    };
    let streams = &world.services.streams;
    assert!(matches!(
        streams.open(&stranger, &run, 0).await,
        Err(ServiceError::Forbidden(_))
    ));
    let unknown: RunId = "run_01ARZ3NDEKTSV4RRFFQ69G5FAV".parse().unwrap();
    assert!(matches!(
        streams.open(&world.admin, &unknown, 0).await,
        Err(ServiceError::NotFound { .. })
    ));
}
