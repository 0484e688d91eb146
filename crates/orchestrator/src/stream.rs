//! Following a run's events as they happen: the use case behind `GET /runs/{id}/events`.
//!
//! A [`RunStream`] yields every event after a given sequence number exactly once, in
//! order, then one [`StreamItem::End`] once the run is over, and nothing more. It
//! combines three sources, because none is enough alone:
//!
//! - **The table** is the truth. The stream replays from it, and returns to it whenever
//!   it may have missed something: when the bus reports a lag, when a live event's
//!   sequence number skips ahead (a gap), and when it has fallen behind while its
//!   reader was slow.
//! - **The event bus** makes live events arrive at once. The stream subscribes *before*
//!   its first table read, so nothing committed in between is lost; events it already
//!   has (sequence number at or below the last one sent) are dropped, so nothing is
//!   sent twice at the seam.
//! - **Polling**: when the bus has been quiet for [`LIVE_POLL`], the stream reads the
//!   run item (its status and last sequence number). Events stored through another API
//!   instance never reach this process's bus; this is how they are seen.
//!
//! Memory is bounded: at most one table page is buffered per stream, and the bus
//! buffers per run, not per subscriber. A slow reader never slows a writer: the bus
//! drops what it cannot hold for it and the stream catches up from the table.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tlao_domain::{EventPayload, RunEvent, RunId, RunStatus, WorkspaceId};
use tlao_ports::{EventBus, EventSubscription, RecvError};

use crate::context::{Caller, Core};
use crate::error::ServiceError;
use crate::events::read_after;
use crate::run_store::{self, StoredRun};

/// How long the bus may stay quiet before a stream looks at the table itself.
pub const LIVE_POLL: Duration = Duration::from_millis(500);

/// How many events a stream reads from the table at once (and so buffers at most).
pub const REPLAY_PAGE: usize = 500;

/// What a [`RunStream`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    /// The next event of the run.
    Event(RunEvent),
    /// The run is over and every event up to `last_seq` was yielded; the stream ends.
    End {
        /// The run's final status.
        status: RunStatus,
        /// The run's last sequence number when it was seen to be over.
        last_seq: u64,
    },
}

/// Opens streams of run events.
pub struct StreamService {
    core: Arc<Core>,
    bus: Arc<dyn EventBus>,
    poll: Duration,
}

impl StreamService {
    /// The service over shared dependencies and the bus live events arrive on.
    pub fn new(core: Arc<Core>, bus: Arc<dyn EventBus>) -> Self {
        StreamService {
            core,
            bus,
            poll: LIVE_POLL,
        }
    }

    /// The same service polling the table every `poll` while the bus is quiet.
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// A stream of the events of `run_id` after sequence number `after` (0: from the
    /// start), for a member of the run's workspace.
    ///
    /// Errors: `NotFound` when the run does not exist, `Forbidden` when the caller is
    /// not a member of its workspace. A bus that cannot be subscribed to is not an
    /// error: the stream then polls the table.
    pub async fn open(
        &self,
        caller: &Caller,
        run_id: &RunId,
        after: u64,
    ) -> Result<RunStream, ServiceError> {
        let ws = self.core.run_workspace_for(caller, run_id).await?;
        // Subscribe first: whatever commits after this is delivered, whatever committed
        // before is in the reads below.
        let subscription = match self.bus.subscribe(run_id).await {
            Ok(subscription) => Some(subscription),
            Err(error) => {
                tracing::warn!(
                    run_id = %run_id, operation = "stream_run_events", error = %error,
                    "cannot subscribe to live events; polling the table instead"
                );
                None
            }
        };
        let stored = run_store::load(&self.core, &ws, run_id)
            .await?
            .ok_or_else(|| ServiceError::not_found("run", run_id))?;
        let mut stream = RunStream {
            core: self.core.clone(),
            ws,
            run_id: run_id.clone(),
            sent: after,
            subscription,
            pending: VecDeque::new(),
            behind: false,
            check_run: false,
            end: None,
            done: false,
            poll: self.poll,
        };
        stream.observe(&stored);
        Ok(stream)
    }
}

/// The events of one run, exactly once and in order, then the end. See the module
/// documentation.
pub struct RunStream {
    core: Arc<Core>,
    ws: WorkspaceId,
    run_id: RunId,
    /// The last sequence number yielded (or the one the stream started after).
    sent: u64,
    /// Live events; `None` when the bus cannot deliver.
    subscription: Option<Box<dyn EventSubscription>>,
    /// Events read or received, not yet yielded, in sequence order.
    pending: VecDeque<RunEvent>,
    /// Whether the table holds events after `sent` that are not in `pending`.
    behind: bool,
    /// Whether to read the run item before waiting (a terminal status went by).
    check_run: bool,
    /// The final status and last sequence number, once the run is seen to be over.
    end: Option<(RunStatus, u64)>,
    /// Whether the end was yielded.
    done: bool,
    poll: Duration,
}

impl RunStream {
    /// The run streamed.
    pub fn run_id(&self) -> &RunId {
        &self.run_id
    }

    /// The last sequence number yielded (or the one the stream started after).
    pub fn last_seq(&self) -> u64 {
        self.sent
    }

    /// The next item, waiting for it; `None` after [`StreamItem::End`].
    ///
    /// Errors: what reading the table fails with (`Unavailable` after retries). The
    /// stream may be polled again, or dropped and reopened after [`RunStream::last_seq`].
    pub async fn next(&mut self) -> Result<Option<StreamItem>, ServiceError> {
        loop {
            if self.done {
                return Ok(None);
            }
            if let Some(event) = self.pending.pop_front() {
                if event.seq <= self.sent {
                    continue;
                }
                return Ok(Some(self.yield_event(event)));
            }
            if let Some((status, last_seq)) = self.end {
                // Every event up to `last_seq` is committed: read the rest, then end.
                if self.sent >= last_seq || !self.read_table().await? {
                    self.done = true;
                    return Ok(Some(StreamItem::End { status, last_seq }));
                }
                continue;
            }
            if self.check_run {
                self.check_run = false;
                let stored = run_store::load(&self.core, &self.ws, &self.run_id)
                    .await?
                    .ok_or_else(|| ServiceError::not_found("run", &self.run_id))?;
                self.observe(&stored);
                continue;
            }
            if self.behind {
                self.read_table().await?;
                continue;
            }
            self.wait().await;
        }
    }

    fn yield_event(&mut self, event: RunEvent) -> StreamItem {
        self.sent = event.seq;
        if let EventPayload::Status { status } = &event.payload
            && status.is_terminal()
        {
            self.check_run = true;
        }
        StreamItem::Event(event)
    }

    /// Notes what the run item says: over (with its last sequence number), or with
    /// events this stream has not read.
    fn observe(&mut self, stored: &StoredRun) {
        if stored.run.status.is_terminal() {
            self.end = Some((stored.run.status, stored.last_seq));
        } else if stored.last_seq > self.sent {
            self.behind = true;
        }
    }

    /// Reads the next page after `sent` into `pending`; whether it held anything.
    async fn read_table(&mut self) -> Result<bool, ServiceError> {
        let events = read_after(&self.core, &self.run_id, self.sent, REPLAY_PAGE).await?;
        self.behind = events.len() == REPLAY_PAGE;
        let any = !events.is_empty();
        self.pending.extend(events);
        Ok(any)
    }

    /// Waits for a live event or for the bus to stay quiet for the poll interval, and
    /// notes what to do next.
    async fn wait(&mut self) {
        let quiet = tokio::time::sleep(self.poll);
        let Some(subscription) = self.subscription.as_mut() else {
            quiet.await;
            self.check_run = true;
            return;
        };
        let received = tokio::select! {
            received = subscription.recv() => Some(received),
            _ = quiet => None,
        };
        match received {
            None => self.check_run = true,
            Some(Ok(event)) if event.seq <= self.sent => {}
            Some(Ok(event)) if event.seq == self.sent + 1 => self.pending.push_back(event),
            // A gap: the events in between are committed (sequence numbers are assigned
            // in commit order), so the table has them.
            Some(Ok(_)) | Some(Err(RecvError::Lagged { .. })) => self.behind = true,
            Some(Err(RecvError::Closed)) => {
                self.subscription = None;
                self.check_run = true;
            }
        }
    }
}
