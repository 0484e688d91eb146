//! The store: typed access to the single table, with retries.
//!
//! Services speak entities; the store turns them into items with the [`codec`] and calls
//! the [`Table`] port, retrying `Transient` failures with backoff (requirement 13.2).
//! Every table call of the orchestrator goes through here, once per logical operation,
//! and adapters do not retry, so a write is attempted at most
//! [`RetryPolicy::max_attempts`] times in all (3 by default) before it is
//! [`StoreError::Unavailable`]. Conditions and transactions are the services' business;
//! the store only carries them.
//!
//! The store is also where run events become visible live: a transaction that stores
//! events ([`Store::transact_events`]) announces them on the [`EventBus`] once it has
//! committed, so every writer of events publishes them the same way.

use std::sync::Arc;

use tlao_domain::{Key, RunEvent, RunId};
use tlao_ports::{Condition, Cursor, EventBus, Item, Query, Table, TableError, Update, WriteOp};

use crate::codec::{self, CodecError, Entity};
use crate::retry::RetryPolicy;

/// Why a store operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A condition did not hold; nothing was written. `op` is the failing operation.
    #[error("condition failed on operation {op}")]
    ConditionFailed {
        /// The index of the operation whose condition failed.
        op: usize,
    },
    /// The table kept failing transiently through every retry.
    #[error("the table is unavailable: {0}")]
    Unavailable(#[source] TableError),
    /// A stored item does not decode, or an entity does not encode.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// Anything else (a malformed request is a bug, reported here).
    #[error("storage error: {0}")]
    Unexpected(#[source] TableError),
}

impl From<TableError> for StoreError {
    fn from(error: TableError) -> Self {
        match error {
            TableError::ConditionFailed { op } => StoreError::ConditionFailed { op },
            TableError::Transient(_) => StoreError::Unavailable(error),
            TableError::Invalid(_) | TableError::Unexpected(_) => StoreError::Unexpected(error),
        }
    }
}

/// Typed, retried access to the table.
#[derive(Clone)]
pub struct Store {
    table: Arc<dyn Table>,
    retry: RetryPolicy,
    events: Option<Arc<dyn EventBus>>,
}

impl Store {
    /// A store over `table` with the given retry policy, announcing stored events on no
    /// bus (streams then see them by polling the table).
    pub fn new(table: Arc<dyn Table>, retry: RetryPolicy) -> Self {
        Store {
            table,
            retry,
            events: None,
        }
    }

    /// The same store, announcing the run events it stores on `bus`.
    pub fn with_event_bus(mut self, bus: Arc<dyn EventBus>) -> Self {
        self.events = Some(bus);
        self
    }

    /// The table underneath.
    pub fn table(&self) -> &Arc<dyn Table> {
        &self.table
    }

    /// Reads and decodes one entity; `Ok(None)` when absent.
    pub async fn get<E: Entity>(&self, key: &Key) -> Result<Option<E>, StoreError> {
        let item = self.get_item(key).await?;
        Ok(item.as_ref().map(codec::decode).transpose()?)
    }

    /// Reads and decodes one entity and, when `then` makes a query of its item, counts
    /// that query's range (one read where the table can, see
    /// [`Table::get_then_count`]); `Ok(None)` when the entity is absent.
    pub async fn get_then_count<E, F>(
        &self,
        key: &Key,
        then: F,
    ) -> Result<Option<(E, Option<usize>)>, StoreError>
    where
        E: Entity,
        F: Fn(&Item) -> Option<Query> + Clone + Send + 'static,
    {
        let (item, count) = self
            .retry
            .run(
                || self.table.get_then_count(key, Box::new(then.clone())),
                TableError::is_transient,
            )
            .await?;
        Ok(item
            .map(|item| codec::decode(&item).map(|entity| (entity, count)))
            .transpose()?)
    }

    /// Reads one raw item (counters, queue entries); `Ok(None)` when absent.
    pub async fn get_item(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        Ok(self
            .retry
            .run(|| self.table.get(key), TableError::is_transient)
            .await?)
    }

    /// Reads one page of entities and the cursor of the next page.
    pub async fn query<E: Entity>(
        &self,
        query: Query,
    ) -> Result<(Vec<E>, Option<Cursor>), StoreError> {
        let page = self.query_items(query).await?;
        let entities = page
            .items
            .iter()
            .map(codec::decode)
            .collect::<Result<Vec<E>, _>>()?;
        Ok((entities, page.next_cursor))
    }

    /// Reads one page of raw items.
    pub async fn query_items(&self, query: Query) -> Result<tlao_ports::Page, StoreError> {
        Ok(self
            .retry
            .run(|| self.table.query(query.clone()), TableError::is_transient)
            .await?)
    }

    /// Counts the items a query would walk, up to its limit ([`Table::count`]).
    pub async fn count(&self, query: Query) -> Result<usize, StoreError> {
        Ok(self
            .retry
            .run(|| self.table.count(query.clone()), TableError::is_transient)
            .await?)
    }

    /// Writes a new entity; `ConditionFailed` when one already exists at its key.
    pub async fn insert<E: Entity>(&self, entity: &E) -> Result<(), StoreError> {
        self.put_item(codec::encode(entity)?, Some(Condition::NotExists))
            .await
    }

    /// Writes an item if `condition` holds.
    pub async fn put_item(
        &self,
        item: Item,
        condition: Option<Condition>,
    ) -> Result<(), StoreError> {
        Ok(self
            .retry
            .run(
                || self.table.put(item.clone(), condition.clone()),
                TableError::is_transient,
            )
            .await?)
    }

    /// Changes an item if `condition` holds and returns it as it is afterwards.
    pub async fn update(
        &self,
        key: &Key,
        update: Update,
        condition: Option<Condition>,
    ) -> Result<Item, StoreError> {
        Ok(self
            .retry
            .run(
                || self.table.update(key, update.clone(), condition.clone()),
                TableError::is_transient,
            )
            .await?)
    }

    /// Removes an item if `condition` holds.
    pub async fn delete(&self, key: &Key, condition: Option<Condition>) -> Result<(), StoreError> {
        Ok(self
            .retry
            .run(
                || self.table.delete(key, condition.clone()),
                TableError::is_transient,
            )
            .await?)
    }

    /// Applies every operation or none.
    pub async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        Ok(self
            .retry
            .run(
                || self.table.transact(ops.clone()),
                TableError::is_transient,
            )
            .await?)
    }

    /// Applies every operation or none, like [`Store::transact`]; once they committed,
    /// publishes `events` — the events of `run_id` those operations stored, in sequence
    /// order — on the event bus. A failed publish is logged, not returned: the events
    /// are stored, and streams find them in the table.
    pub async fn transact_events(
        &self,
        ops: Vec<WriteOp>,
        run_id: &RunId,
        events: &[RunEvent],
    ) -> Result<(), StoreError> {
        self.transact(ops).await?;
        if let (Some(bus), false) = (&self.events, events.is_empty())
            && let Err(error) = bus.publish(run_id, events).await
        {
            tracing::warn!(
                run_id = %run_id, operation = "publish_events", error = %error,
                "stored events were not published; streams will read them from the table"
            );
        }
        Ok(())
    }

    /// Checks the table is reachable (no retry: readiness should report what it sees).
    pub async fn ping(&self) -> Result<(), StoreError> {
        Ok(self.table.ping().await?)
    }
}

/// A transaction operation that writes `entity` if `condition` holds.
pub fn put_op<E: Entity>(entity: &E, condition: Option<Condition>) -> Result<WriteOp, CodecError> {
    Ok(WriteOp::Put {
        item: codec::encode(entity)?,
        condition,
    })
}
