//! The event bus port: how stored run events reach live subscribers (SSE streams) at once.
//!
//! The table is the source of truth for a run's events; the bus is only a shortcut that
//! saves subscribers from polling it. So the contract is deliberately weak, and every
//! subscriber must be written for it:
//!
//! - **After commit, best effort.** Events are published after the transaction that
//!   stored them committed. A publish that fails, or a process that dies between commit
//!   and publish, loses nothing: subscribers find the events in the table.
//! - **Only what is published after subscribing.** A subscription receives events
//!   published after [`EventBus::subscribe`] returned, never earlier ones; subscribe
//!   *before* reading the table and the two overlap instead of leaving a gap.
//! - **In order per publish, not across publishers.** The events of one `publish` call
//!   arrive in the order given, but two concurrent publishes for the same run may
//!   interleave, so a subscriber can see sequence `91` before `90`. Subscribers drop
//!   what they already have (by sequence number) and fill gaps from the table.
//! - **Bounded, never blocking.** A publish never waits for subscribers. A subscriber
//!   that falls further behind than the adapter buffers is told so with
//!   [`RecvError::Lagged`] (the oldest events it missed are gone) and continues with
//!   newer ones; it catches up from the table.
//! - **Scoped to a deployment.** An adapter may deliver only within one process (the
//!   in-process adapter) or across processes; subscribers cannot tell, so they also
//!   poll the table when the bus has been quiet for a while.

use async_trait::async_trait;
use tlao_domain::{RunEvent, RunId};

/// Why the bus could not publish or subscribe.
#[derive(Debug, thiserror::Error)]
pub enum EventBusError {
    /// The bus cannot be reached now; a later call may succeed. Publishers log it and
    /// carry on (the events are stored); subscribers fall back to polling the table.
    #[error("the event bus is unavailable: {0}")]
    Unavailable(String),
    /// Anything else.
    #[error("event bus error: {0}")]
    Unexpected(#[source] anyhow::Error),
}

/// Why a subscription yielded no event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// The subscriber fell behind the bus's buffer and `missed` events were dropped for
    /// it; the next `recv` yields newer events. Catch up from the table.
    #[error("the subscriber fell behind; {missed} events were skipped")]
    Lagged {
        /// How many events were skipped.
        missed: u64,
    },
    /// The bus will deliver nothing more on this subscription (it shut down); rely on
    /// the table alone.
    #[error("the subscription is closed")]
    Closed,
}

/// The receiving end of [`EventBus::subscribe`]: the events of one run, as published.
/// Dropping it unsubscribes.
#[async_trait]
pub trait EventSubscription: Send {
    /// The next published event, waiting for one.
    ///
    /// Errors: `Lagged` when events were skipped because this subscriber fell behind
    /// (call again for newer ones), `Closed` when nothing more will come.
    async fn recv(&mut self) -> Result<RunEvent, RecvError>;
}

/// Delivers stored run events to live subscribers. See the module documentation for the
/// delivery contract.
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Announces `events` of `run_id`, which were just stored (in sequence order), to
    /// its current subscribers. Never waits for a subscriber to read; succeeds when
    /// there is none.
    ///
    /// Errors: `Unavailable` when the bus cannot take them now (nothing is retried: the
    /// events are in the table), `Unexpected` otherwise.
    async fn publish(&self, run_id: &RunId, events: &[RunEvent]) -> Result<(), EventBusError>;

    /// Subscribes to the events of `run_id` published from now on. Every event
    /// published after this returns is delivered (or reported as skipped with
    /// `Lagged`).
    ///
    /// Errors: `Unavailable` when the bus cannot be reached; the caller polls the table
    /// instead.
    async fn subscribe(&self, run_id: &RunId) -> Result<Box<dyn EventSubscription>, EventBusError>;
}
