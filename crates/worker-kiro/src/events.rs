//! Shipping a run's events to the API: small batches, heartbeats, and the stop signal.
//!
//! The executor's [`EventSink`] only puts events on a bounded channel, so it never
//! blocks; a background task sends them in batches of at most [`MAX_BATCH`] events,
//! no later than `batch_interval` after the first of a batch was emitted (so a line
//! reaches the API within ~100 ms), one request at a time, in order. When nothing was
//! sent for `heartbeat_interval`, an empty batch is the heartbeat. Each answer may say
//! `stop` (the run was cancelled or ended elsewhere) and a `409` says the lease is
//! gone: both are published on a [`watch`] channel the run loop selects on.
//!
//! If the API cannot keep up and the channel fills, events are dropped and counted,
//! and a line saying how many is sent with the next batch. The sink also keeps the
//! executor's output lines, so a transcript exists even when the execution future was
//! dropped at the deadline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tlao_domain::{EventPayload, EventSink, LeaseId, LogStream, RunId, RunStatus, WorkspaceId};
use tlao_sdk::WorkerClient;
use tlao_sdk::worker::{EventBatch, WorkerEvent};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::process::MAX_TRANSCRIPT_BYTES;

/// The most events sent in one request.
pub const MAX_BATCH: usize = 50;
/// How many events may wait for the API before new ones are dropped.
const CHANNEL_CAPACITY: usize = 8192;

/// What the API said about the run, as far as the run loop cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Keep going.
    Running,
    /// Stop the executor: the run is now in this status (cancelled, or ended elsewhere).
    Stop(RunStatus),
    /// The lease is gone: stop and say nothing more.
    LeaseLost,
}

/// The sink half: what the executor emits into.
struct Shared {
    tx: mpsc::Sender<EventPayload>,
    dropped: AtomicU64,
    transcript: Mutex<String>,
}

/// The executor-facing [`EventSink`] of a run.
#[derive(Clone)]
pub struct ChannelSink {
    shared: Arc<Shared>,
}

impl EventSink for ChannelSink {
    fn emit(&self, event: EventPayload) {
        if let EventPayload::Log {
            stream: LogStream::Stdout | LogStream::Stderr,
            text,
        } = &event
        {
            let mut transcript = self
                .shared
                .transcript
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if transcript.len() + text.len() < MAX_TRANSCRIPT_BYTES {
                transcript.push_str(text);
                transcript.push('\n');
            }
        }
        if self.shared.tx.try_send(event).is_err() {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl ChannelSink {
    /// Emits a line from the worker itself, as one line of text (it may quote file
    /// names or an agent's output, which must not forge other lines or escapes).
    pub fn system(&self, text: impl Into<String>) {
        self.emit(EventPayload::Log {
            stream: LogStream::System,
            text: crate::ansi::one_line(&text.into()),
        });
    }

    /// The executor's output lines emitted so far.
    pub fn transcript(&self) -> String {
        self.shared
            .transcript
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// The background task shipping a run's events, and its handles.
pub struct EventShipper {
    sink: ChannelSink,
    control: watch::Receiver<Control>,
    finish: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl EventShipper {
    /// Starts shipping the events of `run_id` (of `workspace_id`) under `lease_id`.
    pub fn start(
        client: WorkerClient,
        workspace_id: WorkspaceId,
        run_id: RunId,
        lease_id: LeaseId,
        batch_interval: Duration,
        heartbeat_interval: Duration,
    ) -> EventShipper {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let shared = Arc::new(Shared {
            tx,
            dropped: AtomicU64::new(0),
            transcript: Mutex::new(String::new()),
        });
        let (control_tx, control) = watch::channel(Control::Running);
        let (finish, finish_rx) = oneshot::channel();
        let task = Ship {
            client,
            workspace_id,
            run_id,
            lease_id,
            rx,
            shared: shared.clone(),
            control: control_tx,
            batch_interval,
            heartbeat_interval,
            lease_lost: false,
        };
        EventShipper {
            sink: ChannelSink { shared },
            control,
            finish: Some(finish),
            task: Some(tokio::spawn(task.run(finish_rx))),
        }
    }

    /// The sink to give the executor.
    pub fn sink(&self) -> &ChannelSink {
        &self.sink
    }

    /// A receiver of the API's stop signals.
    pub fn control(&self) -> watch::Receiver<Control> {
        self.control.clone()
    }

    /// The latest stop signal.
    pub fn current(&self) -> Control {
        *self.control.borrow()
    }

    /// Sends every event emitted so far, then stops the task.
    pub async fn finish(mut self) -> Control {
        if let Some(finish) = self.finish.take() {
            let _ = finish.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        *self.control.borrow()
    }
}

impl Drop for EventShipper {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Waits until `control` says to stop; returns what it says.
pub async fn stopped(control: &mut watch::Receiver<Control>) -> Control {
    loop {
        let current = *control.borrow_and_update();
        if current != Control::Running {
            return current;
        }
        if control.changed().await.is_err() {
            // The shipper is gone; there will be no signal.
            std::future::pending::<()>().await;
        }
    }
}

struct Ship {
    client: WorkerClient,
    workspace_id: WorkspaceId,
    run_id: RunId,
    lease_id: LeaseId,
    rx: mpsc::Receiver<EventPayload>,
    shared: Arc<Shared>,
    control: watch::Sender<Control>,
    batch_interval: Duration,
    heartbeat_interval: Duration,
    lease_lost: bool,
}

impl Ship {
    async fn run(mut self, finish: oneshot::Receiver<()>) {
        tokio::pin!(finish);
        let mut finishing = false;
        let mut pending: Vec<EventPayload> = Vec::new();
        let mut first_at = Instant::now();
        let mut last_sent = Instant::now();
        loop {
            if finishing {
                while let Ok(event) = self.rx.try_recv() {
                    pending.push(event);
                }
                while !pending.is_empty() || self.shared.dropped.load(Ordering::Relaxed) > 0 {
                    let rest = pending.split_off(pending.len().min(MAX_BATCH));
                    let batch = std::mem::replace(&mut pending, rest);
                    if !self.send(batch).await {
                        // The API is unreachable even after retries: do not hold the
                        // run's completion hostage to the rest of its logs.
                        tracing::warn!(
                            workspace_id = %self.workspace_id, run_id = %self.run_id,
                            operation = "report_events", lost = pending.len(),
                            "the last events could not be sent"
                        );
                        return;
                    }
                }
                return;
            }
            if pending.is_empty() {
                tokio::select! {
                    event = self.rx.recv() => {
                        if let Some(event) = event {
                            pending.push(event);
                            first_at = Instant::now();
                        }
                    }
                    () = tokio::time::sleep_until(last_sent + self.heartbeat_interval) => {
                        self.send(Vec::new()).await;
                        last_sent = Instant::now();
                    }
                    _ = &mut finish => finishing = true,
                }
                continue;
            }
            let due = pending.len() >= MAX_BATCH
                || tokio::select! {
                    event = self.rx.recv() => {
                        if let Some(event) = event {
                            pending.push(event);
                        }
                        pending.len() >= MAX_BATCH
                    }
                    () = tokio::time::sleep_until(first_at + self.batch_interval) => true,
                    _ = &mut finish => { finishing = true; false }
                };
            if due {
                let rest = pending.split_off(pending.len().min(MAX_BATCH));
                let batch = std::mem::replace(&mut pending, rest);
                self.send(batch).await;
                last_sent = Instant::now();
                // Whatever is left keeps its (past) due time and goes out next.
            }
        }
    }

    /// Sends one batch (empty: a heartbeat) and publishes what the answer says; `false`
    /// when the batch could not be delivered (and is lost).
    async fn send(&mut self, mut events: Vec<EventPayload>) -> bool {
        let dropped = self.shared.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            events.push(EventPayload::Log {
                stream: LogStream::System,
                text: format!("{dropped} events were dropped because the API could not keep up"),
            });
        }
        if self.lease_lost {
            return true;
        }
        let batch = EventBatch {
            lease_id: self.lease_id.clone(),
            events: events
                .into_iter()
                .filter_map(WorkerEvent::from_payload)
                .collect(),
        };
        match self.client.report(&self.run_id, &batch).await {
            Ok(report) => {
                if report.stop {
                    self.control
                        .send_replace(Control::Stop(report.status.into()));
                }
                true
            }
            Err(error) if error.is_lease_lost() => {
                self.lease_lost = true;
                self.control.send_replace(Control::LeaseLost);
                true
            }
            Err(error) => {
                tracing::warn!(
                    workspace_id = %self.workspace_id, run_id = %self.run_id,
                    operation = "report_events", %error, "events could not be sent; they are lost"
                );
                false
            }
        }
    }
}
