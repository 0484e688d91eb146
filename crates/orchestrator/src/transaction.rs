//! A multi-item write being built, whose every condition names the failure it stands
//! for: the building block of the named transactions ([`crate::transactions`]).
//!
//! Each operation is added with the failure its condition stands for, so when the table
//! refuses the transaction the failure is named where the operations are written, and
//! no caller decodes which write failed by its position. An operation whose condition
//! can only fail through a bug (a fresh id already taken) is added without a name; its
//! failure is reported as the store error it is.

use tlao_domain::{RunEvent, RunId};
use tlao_ports::{Condition, WriteOp};

use crate::codec::Entity;
use crate::store::{Store, StoreError, put_op};

/// A transaction being built: its operations, each with the failure (an `E`) that its
/// condition failing stands for.
#[derive(Debug)]
pub struct Transaction<E> {
    ops: Vec<WriteOp>,
    failures: Vec<Option<E>>,
}

impl<E> Default for Transaction<E> {
    fn default() -> Self {
        Transaction {
            ops: Vec::new(),
            failures: Vec::new(),
        }
    }
}

impl<E: From<StoreError>> Transaction<E> {
    /// An empty transaction.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `op`; its condition failing means `failure`.
    pub fn guarded(&mut self, op: WriteOp, failure: E) -> &mut Self {
        self.ops.push(op);
        self.failures.push(Some(failure));
        self
    }

    /// Adds `op`, whose condition (if any) fails only through a bug; such a failure is
    /// returned as [`StoreError::ConditionFailed`].
    pub fn push(&mut self, op: WriteOp) -> &mut Self {
        self.ops.push(op);
        self.failures.push(None);
        self
    }

    /// Adds the put of a new entity (conditioned on nothing being at its key: its id is
    /// fresh, so a failure is a bug).
    pub fn insert<T: Entity>(&mut self, entity: &T) -> Result<&mut Self, StoreError> {
        Ok(self.push(put_op(entity, Some(Condition::NotExists))?))
    }

    /// Applies every operation or none: `Err` with the failure of the first operation
    /// whose condition did not hold, or with the store's error.
    pub async fn commit(self, store: &Store) -> Result<(), E> {
        let Transaction { ops, failures } = self;
        let outcome = store.transact(ops).await;
        name_failure(outcome, failures)
    }

    /// Applies every operation or none, like [`Transaction::commit`]; once they
    /// committed, `events` (the events of `run_id` they store) are published
    /// ([`Store::transact_events`]).
    pub async fn commit_events(
        self,
        store: &Store,
        run_id: &RunId,
        events: &[RunEvent],
    ) -> Result<(), E> {
        let Transaction { ops, failures } = self;
        let outcome = store.transact_events(ops, run_id, events).await;
        name_failure(outcome, failures)
    }
}

fn name_failure<E: From<StoreError>>(
    outcome: Result<(), StoreError>,
    mut failures: Vec<Option<E>>,
) -> Result<(), E> {
    match outcome {
        Ok(()) => Ok(()),
        Err(StoreError::ConditionFailed { op }) => {
            match failures.get_mut(op).and_then(Option::take) {
                Some(failure) => Err(failure),
                None => Err(StoreError::ConditionFailed { op }.into()),
            }
        }
        Err(other) => Err(other.into()),
    }
}

#[cfg(test)]
mod tests {
    use tlao_domain::{Guardrails, Key};
    use tlao_ports::Item;

    use super::*;
    use crate::transactions::testing::World;

    #[derive(Debug)]
    enum Failure {
        Taken,
        Store(StoreError),
    }

    impl From<StoreError> for Failure {
        fn from(error: StoreError) -> Self {
            Failure::Store(error)
        }
    }

    fn key(sk: &str) -> Key {
        Key {
            pk: "TEST".into(),
            sk: sk.into(),
        }
    }

    fn insert(sk: &str) -> WriteOp {
        WriteOp::Put {
            item: Item::new(key(sk)),
            condition: Some(Condition::NotExists),
        }
    }

    /// A world whose table holds the item `TEST/taken`.
    async fn world() -> World {
        let world = World::new(Guardrails::default());
        world
            .core()
            .store
            .put_item(Item::new(key("taken")), None)
            .await
            .expect("a write");
        world
    }

    #[tokio::test]
    async fn a_failed_condition_is_returned_as_the_failure_it_was_named() {
        let world = world().await;
        let mut tx = Transaction::new();
        tx.push(insert("free"))
            .guarded(insert("taken"), Failure::Taken);

        let refused = tx.commit(&world.core().store).await;

        assert!(matches!(refused, Err(Failure::Taken)), "{refused:?}");
    }

    #[tokio::test]
    async fn a_failed_condition_without_a_name_is_a_store_error() {
        let world = world().await;
        let mut tx = Transaction::new();
        tx.guarded(insert("free"), Failure::Taken)
            .push(insert("taken"));

        let refused = tx.commit(&world.core().store).await;

        assert!(
            matches!(
                refused,
                Err(Failure::Store(StoreError::ConditionFailed { op: 1 }))
            ),
            "{refused:?}"
        );
    }
}
