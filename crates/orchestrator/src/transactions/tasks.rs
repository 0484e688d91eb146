//! Creating a task: the task, its lookup item and the request's idempotency record,
//! in one transaction.

use tlao_domain::Task;
use tlao_ports::WriteOp;

use crate::codec::{Lookup, LookupOf};
use crate::store::{Store, StoreError};
use crate::transaction::Transaction;

/// Why [`create_task`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum CreateTaskError {
    /// Another request with the same idempotency key recorded its response first.
    #[error("another request with this idempotency key was recorded first")]
    IdempotencyKeyTaken,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Stores a new `task` with its lookup item, and `idempotency_record` (the record of
/// the request's idempotency key, whose condition fails when another request holds the
/// key) when given.
pub async fn create_task(
    store: &Store,
    task: &Task,
    idempotency_record: Option<WriteOp>,
) -> Result<(), CreateTaskError> {
    let mut tx = Transaction::new();
    tx.insert(task)?.insert(&Lookup {
        of: LookupOf::Task(task.task_id.clone()),
        workspace_id: task.workspace_id.clone(),
    })?;
    if let Some(record) = idempotency_record {
        tx.guarded(record, CreateTaskError::IdempotencyKeyTaken);
    }
    tx.commit(store).await
}
