//! The in-process event bus: one bounded `tokio::sync::broadcast` channel per run that
//! has subscribers in this process.
//!
//! A run's channel is created by its first subscriber and removed when its last
//! subscriber leaves, so an idle server holds no channel at all. Publishing to a run
//! without subscribers costs one map lookup. A broadcast send never waits: a subscriber
//! that falls more than the channel's capacity behind loses the oldest events and gets
//! [`RecvError::Lagged`] (the port's contract), and catches up from the table.
//!
//! It delivers only within this process; streams on other API instances over the same
//! table see the events by polling the table.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use tlao_domain::{RunEvent, RunId};
use tlao_ports::{EventBus, EventBusError, EventSubscription, RecvError};
use tokio::sync::broadcast;

/// How many events a run's channel buffers for its slowest subscriber by default.
pub const DEFAULT_EVENT_BUS_CAPACITY: usize = 1024;

type Channels = Arc<Mutex<HashMap<RunId, broadcast::Sender<RunEvent>>>>;

/// The [`EventBus`] port within one process.
#[derive(Debug, Clone)]
pub struct LocalEventBus {
    channels: Channels,
    capacity: usize,
}

impl Default for LocalEventBus {
    fn default() -> Self {
        LocalEventBus::new()
    }
}

impl LocalEventBus {
    /// A bus whose channels buffer [`DEFAULT_EVENT_BUS_CAPACITY`] events.
    pub fn new() -> Self {
        LocalEventBus::with_capacity(DEFAULT_EVENT_BUS_CAPACITY)
    }

    /// A bus whose channels buffer `capacity` events (at least 1) for their slowest
    /// subscriber before it lags.
    pub fn with_capacity(capacity: usize) -> Self {
        LocalEventBus {
            channels: Arc::default(),
            capacity: capacity.max(1),
        }
    }

    /// How many runs have a channel now, i.e. at least one subscriber.
    pub fn channel_count(&self) -> usize {
        lock(&self.channels).len()
    }
}

fn lock(
    channels: &Mutex<HashMap<RunId, broadcast::Sender<RunEvent>>>,
) -> MutexGuard<'_, HashMap<RunId, broadcast::Sender<RunEvent>>> {
    // The map stays consistent whatever panicked while holding it: every change is a
    // single insert or remove.
    channels.lock().unwrap_or_else(PoisonError::into_inner)
}

#[async_trait]
impl EventBus for LocalEventBus {
    async fn publish(&self, run_id: &RunId, events: &[RunEvent]) -> Result<(), EventBusError> {
        let Some(sender) = lock(&self.channels).get(run_id).cloned() else {
            return Ok(());
        };
        for event in events {
            // An error only means the last subscriber left meanwhile.
            if sender.send(event.clone()).is_err() {
                break;
            }
        }
        Ok(())
    }

    async fn subscribe(&self, run_id: &RunId) -> Result<Box<dyn EventSubscription>, EventBusError> {
        let receiver = lock(&self.channels)
            .entry(run_id.clone())
            .or_insert_with(|| broadcast::channel(self.capacity).0)
            .subscribe();
        Ok(Box::new(LocalSubscription {
            receiver: Some(receiver),
            run_id: run_id.clone(),
            channels: self.channels.clone(),
        }))
    }
}

/// One subscriber's end of a run's channel; removes the channel when it is the last.
struct LocalSubscription {
    /// Always `Some` until dropped.
    receiver: Option<broadcast::Receiver<RunEvent>>,
    run_id: RunId,
    channels: Channels,
}

#[async_trait]
impl EventSubscription for LocalSubscription {
    async fn recv(&mut self) -> Result<RunEvent, RecvError> {
        let Some(receiver) = self.receiver.as_mut() else {
            return Err(RecvError::Closed);
        };
        receiver.recv().await.map_err(|error| match error {
            broadcast::error::RecvError::Lagged(missed) => RecvError::Lagged { missed },
            broadcast::error::RecvError::Closed => RecvError::Closed,
        })
    }
}

impl Drop for LocalSubscription {
    fn drop(&mut self) {
        let mut channels = lock(&self.channels);
        // Dropped under the lock, so no subscribe can join the channel between this
        // receiver leaving and the count being read.
        drop(self.receiver.take());
        if channels
            .get(&self.run_id)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            channels.remove(&self.run_id);
        }
    }
}
