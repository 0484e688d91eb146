//! Shipping a run's events to the API: numbered batches, resends, heartbeats, the stop
//! signal, and the contact watchdog.
//!
//! The executor's [`EventSink`] only appends to a bounded buffer, so it never blocks. A
//! background task sends the oldest buffered events in batches of at most [`MAX_BATCH`],
//! no later than `batch_interval` after the first of a batch was emitted (0 by default:
//! at once when no request is in flight; what arrives while one is goes in the next
//! batch, so a quiet agent's line reaches the API in one round trip and a burst still
//! coalesces), one request at a time, in order, and forgets them
//! only once the API has answered. A batch that was not answered (the API unreachable, a
//! `5xx`, no answer in time) is sent again with backoff, from the same number: events
//! are numbered per lease (1, 2, ...) and the API skips what it already applied, so
//! each event is stored once even when only an answer was lost. When nothing was sent
//! for `heartbeat_interval`, an empty batch is the heartbeat.
//!
//! The buffer holds at most [`ShipperConfig::max_events`] events and
//! [`ShipperConfig::max_bytes`] bytes of text — by default [`MAX_BUFFERED_EVENTS`]
//! and [`MAX_BUFFERED_BYTES`], so a chatty agent (1,000 lines a second, up to ~280 bytes
//! each) waits out a one-minute outage without loss. Past that, new events are dropped
//! and counted, and a `dropped` event takes their place in the sequence: the run records
//! how many events and log bytes are missing, and where — never a quiet gap.
//!
//! What the API says steers the run loop through a [`watch`] channel: a `409` means the
//! lease may not write the run any more (it ended — its status is given — or another
//! lease holds it), so the worker stops and sends nothing more. And when the API has not
//! answered for longer than the heartbeat timeout it announced, the server has failed the
//! run as `worker_lost`: [`Control::OutOfContact`] tells the run loop to stop the agent
//! and end without writing anything.
//!
//! The sink also keeps the executor's output lines, so a transcript exists even when the
//! execution future was dropped at the deadline.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rand::Rng;
use tlao_domain::{EventPayload, EventSink, LeaseId, LogStream, RunId, RunStatus, WorkspaceId};
use tlao_sdk::wire::FenceReason;
use tlao_sdk::worker::{AvailabilityReport, EventBatch, WorkerEvent};
use tlao_sdk::{RetryPolicy, WorkerClient, WorkerClientError};
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::process::MAX_TRANSCRIPT_BYTES;

/// The most events sent in one request.
pub const MAX_BATCH: usize = 50;

/// How often a run's heartbeats repeat the worker's availability report.
pub const AVAILABILITY_EVERY: Duration = Duration::from_secs(60);

/// How many events wait for the API, by default, before new ones are dropped: a minute
/// of 1,000 lines a second, with room to spare.
pub const MAX_BUFFERED_EVENTS: usize = 100_000;
/// How many bytes of text wait for the API, by default, before new events are dropped:
/// 16 MiB, a minute of 1,000 lines a second of up to ~280 bytes.
pub const MAX_BUFFERED_BYTES: usize = 16 * 1024 * 1024;
/// The pause before a batch is sent again the first time; it doubles up to
/// [`MAX_RESEND_DELAY`].
const FIRST_RESEND_DELAY: Duration = Duration::from_millis(250);
/// The longest pause between two attempts at a batch.
const MAX_RESEND_DELAY: Duration = Duration::from_secs(5);
/// The longest one request may take when the API announced no heartbeat timeout.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the last events are tried when the API announced no heartbeat timeout
/// (with one, the contact timeout bounds it).
const FINISH_TIMEOUT: Duration = Duration::from_secs(30);

/// What the API said about the run, as far as the run loop cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Keep going.
    Running,
    /// Stop the executor: the run is now in this status (cancelled, or ended elsewhere).
    Stop(RunStatus),
    /// The lease is gone: stop and say nothing more.
    LeaseLost,
    /// The API has not answered for longer than its heartbeat timeout: it has failed
    /// the run. Stop the executor and write nothing more.
    OutOfContact,
}

/// How a shipper sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShipperConfig {
    /// The longest an event waits for others before it is sent while no request is in
    /// flight (0: at once).
    pub batch_interval: Duration,
    /// How long without a request before an empty batch is sent.
    pub heartbeat_interval: Duration,
    /// How long the API may go unanswered before the worker gives up on the run (the
    /// heartbeat timeout the server announced); `None`: never.
    pub contact_timeout: Option<Duration>,
    /// Whether the API takes numbered batches (`firstSeq`, `dropped` events).
    pub numbered: bool,
    /// The most events buffered.
    pub max_events: usize,
    /// The most bytes of text buffered.
    pub max_bytes: usize,
}

impl ShipperConfig {
    /// A configuration with the default buffer.
    pub fn new(batch_interval: Duration, heartbeat_interval: Duration) -> ShipperConfig {
        ShipperConfig {
            batch_interval,
            heartbeat_interval,
            contact_timeout: None,
            numbered: true,
            max_events: MAX_BUFFERED_EVENTS,
            max_bytes: MAX_BUFFERED_BYTES,
        }
    }
}

/// A buffered event and its number.
#[derive(Debug, Clone)]
struct Numbered {
    seq: u64,
    event: WorkerEvent,
    /// Bytes of text it holds, for the buffer's bound.
    size: usize,
    /// When it was emitted.
    at: Instant,
}

/// The events not yet answered, and what was dropped since it was last declared.
#[derive(Debug)]
struct Buffer {
    events: VecDeque<Numbered>,
    /// The number of the next event.
    next_seq: u64,
    /// Bytes of text in `events`.
    bytes: usize,
    /// Events dropped and not yet declared, and their log bytes.
    dropped: (u64, u64),
    /// No more events are taken (the run is over for this worker).
    closed: bool,
}

impl Buffer {
    fn push(&mut self, event: WorkerEvent, size: usize) {
        self.events.push_back(Numbered {
            seq: self.next_seq,
            event,
            size,
            at: Instant::now(),
        });
        self.next_seq += 1;
        self.bytes += size;
    }

    /// Puts a `dropped` event for what was dropped since the last one, if anything.
    fn declare_drops(&mut self) {
        let (lines, bytes) = std::mem::take(&mut self.dropped);
        if lines > 0 {
            self.push(WorkerEvent::Dropped { lines, bytes }, 0);
        }
    }

    /// Forgets the first `n` events (the API answered them).
    fn acknowledge(&mut self, n: usize) {
        for numbered in self.events.drain(..n.min(self.events.len())) {
            self.bytes -= numbered.size;
        }
    }
}

/// The sink half: what the executor emits into.
struct Shared {
    buffer: Mutex<Buffer>,
    /// Wakes the shipping task when an event arrives.
    arrived: Notify,
    /// The longest an event waits for others from now on, when longer than the
    /// configured batch interval: see [`ChannelSink::linger`].
    linger: Mutex<Duration>,
    max_events: usize,
    max_bytes: usize,
    transcript: Mutex<String>,
    /// When a request that the API answered was sent, the latest.
    last_contact: Mutex<Instant>,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing here is left half-changed by a panic: take the data as it is.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The bytes of text an event holds, and the log bytes it adds to a run's log.
fn sizes(event: &WorkerEvent) -> (usize, u64) {
    match event {
        WorkerEvent::Log { text, .. } => (text.len() + 1, text.len() as u64 + 1),
        WorkerEvent::Progress { message, .. } => (message.len(), 0),
        WorkerEvent::Dropped { .. } => (0, 0),
        WorkerEvent::Message { text } => (text.len(), 0),
        WorkerEvent::ToolCall { call } => (
            call.title.len() + call.paths.iter().map(String::len).sum::<usize>(),
            0,
        ),
        WorkerEvent::Plan { entries } => (entries.iter().map(|e| e.content.len()).sum(), 0),
        WorkerEvent::Usage { .. } => (0, 0),
    }
}

/// The executor-facing [`EventSink`] of a run.
#[derive(Clone)]
pub struct ChannelSink {
    shared: Arc<Shared>,
}

impl EventSink for ChannelSink {
    fn emit(&self, event: EventPayload) {
        self.emit_all([event]);
    }
}

impl ChannelSink {
    /// Emits `events` together: the shipper is woken once they are all buffered, so
    /// they leave in one batch when no report is in flight.
    pub fn emit_all(&self, events: impl IntoIterator<Item = EventPayload>) {
        let mut buffered = Vec::new();
        for event in events {
            if let EventPayload::Log {
                stream: LogStream::Stdout | LogStream::Stderr,
                text,
            } = &event
            {
                let mut transcript = locked(&self.shared.transcript);
                if transcript.len() + text.len() < MAX_TRANSCRIPT_BYTES {
                    transcript.push_str(text);
                    transcript.push('\n');
                }
            }
            buffered.extend(WorkerEvent::from_payload(event));
        }
        if buffered.is_empty() {
            return;
        }
        {
            let mut buffer = locked(&self.shared.buffer);
            if buffer.closed {
                return;
            }
            for event in buffered {
                let (size, log_bytes) = sizes(&event);
                let full = buffer.events.len() >= self.shared.max_events
                    || buffer.bytes + size > self.shared.max_bytes;
                if full {
                    buffer.dropped.0 += 1;
                    buffer.dropped.1 += log_bytes;
                    continue;
                }
                buffer.declare_drops();
                buffer.push(event, size);
            }
        }
        self.shared.arrived.notify_one();
    }

    /// Emits a line from the worker itself, as one line of text (it may quote file
    /// names or an agent's output, which must not forge other lines or escapes).
    pub fn system(&self, text: impl Into<String>) {
        self.system_lines([text.into()]);
    }

    /// Emits lines from the worker itself ([`ChannelSink::system`]) in one batch.
    pub fn system_lines(&self, lines: impl IntoIterator<Item = String>) {
        self.emit_all(lines.into_iter().map(|text| EventPayload::Log {
            stream: LogStream::System,
            text: crate::ansi::one_line(&text),
        }));
    }

    /// From now on, lets each event wait up to `window` for others before it leaves
    /// (the configured batch interval, when longer, still holds), and
    /// [`EventShipper::finish`] sends what waits at once. For a run's last steps —
    /// the patch, the uploads — whose lines no one needs to the millisecond: they leave
    /// in one report with the finish instead of one report each, and a slow upload's
    /// lines still within `window`. A heartbeat due sooner takes them along: lingering
    /// never delays the worker's next contact with the server.
    pub fn linger(&self, window: Duration) {
        *locked(&self.shared.linger) = window;
    }

    /// The executor's output lines emitted so far.
    pub fn transcript(&self) -> String {
        locked(&self.shared.transcript).clone()
    }
}

/// The background task shipping a run's events, and its handles.
pub struct EventShipper {
    sink: ChannelSink,
    control: watch::Receiver<Control>,
    contact_timeout: Option<Duration>,
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
        config: ShipperConfig,
    ) -> EventShipper {
        EventShipper::start_reporting(client, workspace_id, run_id, lease_id, config, None)
    }

    /// Starts shipping like [`EventShipper::start`], reporting `availability` (what the
    /// worker found of its executors' programs) with the first batch and then at most
    /// every [`AVAILABILITY_EVERY`].
    pub fn start_reporting(
        client: WorkerClient,
        workspace_id: WorkspaceId,
        run_id: RunId,
        lease_id: LeaseId,
        config: ShipperConfig,
        availability: Option<AvailabilityReport>,
    ) -> EventShipper {
        let shared = Arc::new(Shared {
            buffer: Mutex::new(Buffer {
                events: VecDeque::new(),
                next_seq: 1,
                bytes: 0,
                dropped: (0, 0),
                closed: false,
            }),
            arrived: Notify::new(),
            linger: Mutex::new(Duration::ZERO),
            max_events: config.max_events.max(1),
            max_bytes: config.max_bytes,
            transcript: Mutex::new(String::new()),
            last_contact: Mutex::new(Instant::now()),
        });
        let (control_tx, control) = watch::channel(Control::Running);
        let (finish, finish_rx) = oneshot::channel();
        // The shipper paces its own attempts; one request is one attempt.
        let client = client.with_retry(RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        });
        let task = Ship {
            availability,
            availability_sent: None,
            client,
            workspace_id,
            run_id,
            lease_id,
            shared: shared.clone(),
            control: control_tx,
            config,
            failures: 0,
        };
        EventShipper {
            sink: ChannelSink { shared },
            control,
            contact_timeout: config.contact_timeout,
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

    /// The latest stop signal; [`Control::OutOfContact`] as soon as the API has been
    /// silent for longer than the contact timeout, even before the shipping task
    /// noticed (after the process was stopped, say).
    pub fn current(&self) -> Control {
        let control = *self.control.borrow();
        if control == Control::Running && out_of_contact(&self.sink.shared, self.contact_timeout) {
            return Control::OutOfContact;
        }
        control
    }

    /// Sends every event emitted so far (retrying until the API answers, the lease is
    /// refused, or the contact timeout passes), then stops the task.
    pub async fn finish(mut self) -> Control {
        if let Some(finish) = self.finish.take() {
            let _ = finish.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.current()
    }
}

impl Drop for EventShipper {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Whether the API has been silent for longer than `timeout`.
fn out_of_contact(shared: &Shared, timeout: Option<Duration>) -> bool {
    timeout.is_some_and(|timeout| locked(&shared.last_contact).elapsed() > timeout)
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

/// How a request went.
enum Sent {
    /// Answered: these events are stored.
    Delivered,
    /// Refused for good (a `4xx` other than `409`): these events cannot be delivered.
    Refused(WorkerClientError),
    /// Not answered; send them again.
    Failed(String),
    /// The lease may not write the run any more.
    Fenced(Control),
}

struct Ship {
    /// What this worker found of its executors' programs, sent with the first batch and
    /// then at most every [`AVAILABILITY_EVERY`].
    availability: Option<AvailabilityReport>,
    /// When the availability was last sent.
    availability_sent: Option<Instant>,
    client: WorkerClient,
    workspace_id: WorkspaceId,
    run_id: RunId,
    lease_id: LeaseId,
    shared: Arc<Shared>,
    control: watch::Sender<Control>,
    config: ShipperConfig,
    /// Attempts in a row that were not answered.
    failures: u32,
}

/// When the next report is due, at `now`: a resend when one is waiting; at once when
/// events wait and `send_now` (finishing, or a full batch); when the oldest waiting event
/// has waited `window` (the batch interval, or a run's linger), but never later than the
/// next heartbeat, which they then are — the server hears from the worker every
/// `heartbeat` whatever waits; with nothing waiting, that heartbeat.
fn report_due(
    now: Instant,
    resend_at: Option<Instant>,
    oldest: Option<Instant>,
    send_now: bool,
    last_sent: Instant,
    window: Duration,
    heartbeat: Duration,
) -> Instant {
    match (resend_at, oldest) {
        (Some(at), _) => at,
        (None, Some(_)) if send_now => now,
        (None, Some(oldest)) => (oldest + window).min(last_sent + heartbeat),
        (None, None) => last_sent + heartbeat,
    }
}

impl Ship {
    async fn run(mut self, finish: oneshot::Receiver<()>) {
        tokio::pin!(finish);
        let mut finishing: Option<Instant> = None;
        let mut last_sent = Instant::now();
        let mut resend_at: Option<Instant> = None;
        loop {
            if out_of_contact(&self.shared, self.config.contact_timeout) {
                self.give_up(Control::OutOfContact);
                return;
            }
            let now = Instant::now();
            if let Some(finish_by) = finishing {
                locked(&self.shared.buffer).declare_drops();
                if now >= finish_by {
                    tracing::warn!(
                        workspace_id = %self.workspace_id, run_id = %self.run_id,
                        operation = "report_events", pending = locked(&self.shared.buffer).events.len(),
                        "the last events could not be delivered in time"
                    );
                    return;
                }
            }
            let (queued, oldest) = {
                let buffer = locked(&self.shared.buffer);
                (buffer.events.len(), buffer.events.front().map(|e| e.at))
            };
            if finishing.is_some() && queued == 0 {
                return;
            }
            let due = report_due(
                now,
                resend_at,
                oldest,
                finishing.is_some() || queued >= MAX_BATCH,
                last_sent,
                self.config.batch_interval.max(*locked(&self.shared.linger)),
                self.config.heartbeat_interval,
            );
            if due > now {
                let mut wake = match self.contact_deadline() {
                    Some(deadline) => due.min(deadline),
                    None => due,
                };
                if let Some(finish_by) = finishing {
                    wake = wake.min(finish_by);
                }
                tokio::select! {
                    () = self.shared.arrived.notified() => {}
                    () = tokio::time::sleep_until(wake) => {}
                    _ = &mut finish, if finishing.is_none() => {
                        finishing = Some(Instant::now() + self.config.contact_timeout.unwrap_or(FINISH_TIMEOUT));
                    }
                }
                continue;
            }
            let batch: Vec<Numbered> = locked(&self.shared.buffer)
                .events
                .iter()
                .take(MAX_BATCH)
                .cloned()
                .collect();
            last_sent = Instant::now();
            match self.send(&batch).await {
                Sent::Delivered => {
                    resend_at = None;
                    self.failures = 0;
                    let mut buffer = locked(&self.shared.buffer);
                    buffer.acknowledge(batch.len());
                    buffer.declare_drops();
                }
                Sent::Refused(error) => {
                    // Sending it again cannot help: count its events as dropped, so
                    // the next batch declares them.
                    resend_at = None;
                    let (lines, bytes) = batch
                        .iter()
                        .filter(|n| !matches!(n.event, WorkerEvent::Dropped { .. }))
                        .fold((0, 0), |(lines, bytes), n| {
                            (lines + 1, bytes + sizes(&n.event).1)
                        });
                    tracing::warn!(
                        workspace_id = %self.workspace_id, run_id = %self.run_id,
                        operation = "report_events", %error, lines,
                        "the API refused a batch of events; they are declared dropped"
                    );
                    let mut buffer = locked(&self.shared.buffer);
                    buffer.acknowledge(batch.len());
                    buffer.dropped.0 += lines;
                    buffer.dropped.1 += bytes;
                    buffer.declare_drops();
                }
                Sent::Failed(error) => {
                    self.failures = self.failures.saturating_add(1);
                    let delay = resend_delay(self.failures);
                    resend_at = Some(Instant::now() + delay);
                    tracing::warn!(
                        workspace_id = %self.workspace_id, run_id = %self.run_id,
                        operation = "report_events", %error, attempt = self.failures,
                        pending = queued, ?delay,
                        "events could not be delivered; they are kept and sent again"
                    );
                }
                Sent::Fenced(control) => {
                    self.give_up(control);
                    return;
                }
            }
        }
    }

    /// When the contact timeout passes, if there is one.
    fn contact_deadline(&self) -> Option<Instant> {
        let timeout = self.config.contact_timeout?;
        Some(*locked(&self.shared.last_contact) + timeout + Duration::from_millis(1))
    }

    /// Stops for good: takes no more events and says why.
    fn give_up(&self, why: Control) {
        let mut buffer = locked(&self.shared.buffer);
        buffer.closed = true;
        if why == Control::OutOfContact {
            tracing::warn!(
                workspace_id = %self.workspace_id, run_id = %self.run_id,
                operation = "report_events", pending = buffer.events.len(),
                timeout = ?self.config.contact_timeout,
                "the API has not answered for longer than its heartbeat timeout; giving up on the run"
            );
        }
        buffer.events.clear();
        buffer.bytes = 0;
        drop(buffer);
        // A stop that named the run's status is kept over a later, vaguer one.
        self.control.send_if_modified(|current| {
            if *current == Control::Running || why == Control::OutOfContact {
                *current = why;
                true
            } else {
                false
            }
        });
    }

    /// Sends one batch (empty: a heartbeat) and publishes what the answer says.
    async fn send(&mut self, batch: &[Numbered]) -> Sent {
        let first_seq = batch
            .first()
            .map_or(locked(&self.shared.buffer).next_seq, |n| n.seq);
        let events = batch
            .iter()
            .map(|n| match &n.event {
                WorkerEvent::Dropped { lines, bytes } if !self.config.numbered => {
                    WorkerEvent::Log {
                        stream: LogStream::System.into(),
                        text: format!(
                            "the worker dropped {lines} events ({bytes} log bytes) here that it could not deliver"
                        ),
                    }
                }
                event => event.clone(),
            })
            .collect();
        let availability = self
            .availability
            .as_ref()
            .filter(|_| {
                self.availability_sent
                    .is_none_or(|at| at.elapsed() >= AVAILABILITY_EVERY)
            })
            .cloned();
        if availability.is_some() {
            self.availability_sent = Some(Instant::now());
        }
        let request = EventBatch {
            lease_id: self.lease_id.clone(),
            first_seq: self.config.numbered.then_some(first_seq),
            events,
            availability,
        };
        let sent_at = Instant::now();
        let budget = match self.contact_deadline() {
            Some(deadline) => deadline
                .saturating_duration_since(sent_at)
                .min(CALL_TIMEOUT),
            None => CALL_TIMEOUT,
        };
        let answer = tokio::time::timeout(budget, self.client.report(&self.run_id, &request)).await;
        match answer {
            Err(_) => Sent::Failed(format!("no answer within {budget:?}")),
            Ok(Ok(report)) => {
                {
                    // The API heard from this worker no earlier than the request left.
                    let mut last = locked(&self.shared.last_contact);
                    *last = (*last).max(sent_at);
                }
                if report.stop {
                    self.control.send_if_modified(|current| {
                        let changed = *current == Control::Running;
                        if changed {
                            *current = Control::Stop(report.status.into());
                        }
                        changed
                    });
                }
                Sent::Delivered
            }
            Ok(Err(error)) if error.is_lease_lost() => Sent::Fenced(fenced(&error)),
            Ok(Err(error @ WorkerClientError::Api { status, .. }))
                if (400..500).contains(&status) && status != 429 && status != 408 =>
            {
                Sent::Refused(error)
            }
            Ok(Err(error)) => Sent::Failed(error.to_string()),
        }
    }
}

/// What a `409` means for the run loop: the run ended (and how), or the lease is gone.
fn fenced(error: &WorkerClientError) -> Control {
    let problem = match error {
        WorkerClientError::LeaseLost { problem, .. } => problem.as_deref(),
        _ => None,
    };
    match problem.map(|p| (p.reason, p.run_status)) {
        Some((Some(FenceReason::RunEnded), Some(status))) => Control::Stop(status.into()),
        _ => Control::LeaseLost,
    }
}

/// The pause before attempt `failures + 1` at a batch: doubling from
/// [`FIRST_RESEND_DELAY`] up to [`MAX_RESEND_DELAY`], each drawn between half and all
/// of it.
fn resend_delay(failures: u32) -> Duration {
    let full = FIRST_RESEND_DELAY
        .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1)))
        .min(MAX_RESEND_DELAY);
    let half = full / 2;
    half + Duration::from_millis(rand::thread_rng().gen_range(0..=half.as_millis() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_events_leave_after_their_window_but_never_after_the_next_heartbeat() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let heartbeat = ms(200);
        // A run's last lines linger 500 ms, but a heartbeat is due 200 ms after the
        // last report: they leave with it.
        assert_eq!(
            report_due(t0, None, Some(t0 + ms(150)), false, t0, ms(500), heartbeat),
            t0 + ms(200)
        );
        // Within the heartbeat, the window holds.
        assert_eq!(
            report_due(t0, None, Some(t0 + ms(10)), false, t0, ms(100), heartbeat),
            t0 + ms(110)
        );
        // No window: at once when they arrived; finishing or a full batch: now.
        assert_eq!(
            report_due(t0, None, Some(t0), false, t0, Duration::ZERO, heartbeat),
            t0
        );
        let now = t0 + ms(50);
        assert_eq!(
            report_due(now, None, Some(t0), true, t0, ms(500), heartbeat),
            now
        );
        // A resend waits for its back-off; nothing waiting: the heartbeat.
        assert_eq!(
            report_due(
                t0,
                Some(t0 + ms(250)),
                Some(t0),
                true,
                t0,
                ms(500),
                heartbeat
            ),
            t0 + ms(250)
        );
        assert_eq!(
            report_due(t0, None, None, false, t0, ms(500), heartbeat),
            t0 + heartbeat
        );
    }

    #[test]
    fn resends_back_off_from_a_quarter_second_to_five_seconds() {
        for failures in 1..20 {
            let delay = resend_delay(failures);
            let full = (FIRST_RESEND_DELAY * 2u32.pow(failures.min(10) - 1)).min(MAX_RESEND_DELAY);
            assert!(
                delay >= full / 2 && delay <= full,
                "{delay:?} after {failures}"
            );
        }
    }

    #[test]
    fn a_full_buffer_drops_new_events_and_declares_them_in_their_place() {
        let shared = Arc::new(Shared {
            buffer: Mutex::new(Buffer {
                events: VecDeque::new(),
                next_seq: 1,
                bytes: 0,
                dropped: (0, 0),
                closed: false,
            }),
            arrived: Notify::new(),
            linger: Mutex::new(Duration::ZERO),
            max_events: 2,
            max_bytes: 1 << 20,
            transcript: Mutex::new(String::new()),
            last_contact: Mutex::new(Instant::now()),
        });
        let sink = ChannelSink {
            shared: shared.clone(),
        };
        for text in ["a", "b", "ccc", "dd"] {
            sink.emit(EventPayload::Log {
                stream: LogStream::Stdout,
                text: text.into(),
            });
        }
        assert_eq!(locked(&shared.buffer).dropped, (2, 7));
        locked(&shared.buffer).acknowledge(2);
        sink.system("e");

        let buffer = locked(&shared.buffer);
        let numbered: Vec<(u64, WorkerEvent)> = buffer
            .events
            .iter()
            .map(|n| (n.seq, n.event.clone()))
            .collect();
        assert_eq!(
            numbered,
            [
                (3, WorkerEvent::Dropped { lines: 2, bytes: 7 }),
                (
                    4,
                    WorkerEvent::Log {
                        stream: LogStream::System.into(),
                        text: "e".into()
                    }
                ),
            ]
        );
        assert_eq!(buffer.dropped, (0, 0));
    }
}
