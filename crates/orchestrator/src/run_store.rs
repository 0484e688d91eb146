//! How a run item is read and written, in one place.
//!
//! Every write of a run's document is conditioned on the revision it was read at
//! (`rev`, incremented by each write): optimistic concurrency, so a worker's event batch,
//! a cancel, the reaper and an artifact registration can interleave freely and none ever
//! overwrites another's change — the loser re-reads and tries again.
//!
//! A run's events are numbered by a counter on the run item (`nextSeq`). Appending events
//! advances the counter in the same transaction that stores them, conditioned on the same
//! revision, so sequence numbers are gap-free and unique however many batches race.
//! Once such a transaction commits, its events are published on the event bus
//! ([`crate::store::Store::transact_events`]); the planned write ([`RunWrite`]) carries
//! them, so no writer can store events and forget to announce them.
//!
//! The named writes of a run that race other writers ([`crate::transactions`]'s
//! `append_events`, `finish_run`, `register_artifact`, `settle_artifact`) are attempts
//! of [`retry_on_race`], which reads the run again when another write changed it first.
//!
//! Fencing rides on the same revision: a worker's write checks its lease against the
//! run it read ([`check_fence`]) and is conditioned on that revision, so a write under a
//! lease whose run has ended since (the reaper, a cancel) loses the race, is planned
//! again on the ended run, and is refused.

use std::convert::Infallible;

use tlao_domain::{
    EventPayload, Fenced, LeaseId, Run, RunEvent, RunId, Timestamp, WorkspaceId, keys,
};
use tlao_ports::{AttrValue, Condition, Update, WriteOp};

use crate::attrs::{self, NEXT_SEQ, REV};
use crate::codec::{self, Step};
use crate::context::Core;
use crate::error::ServiceError;
use crate::store::{StoreError, put_op};
use crate::transaction::Transaction;

/// The most events stored by one transaction (DynamoDB allows 100 operations).
pub const MAX_EVENTS_PER_WRITE: usize = 90;
/// How many times a write is retried after losing a race before giving up.
pub const MAX_RACES: usize = 20;

/// A run as stored, with its revision and event counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRun {
    /// The run.
    pub run: Run,
    /// Its revision.
    pub rev: i64,
    /// The last event sequence number used (0: none yet).
    pub last_seq: u64,
}

/// Reads a run with its revision; `None` when absent.
pub async fn load(
    core: &Core,
    ws: &WorkspaceId,
    run_id: &RunId,
) -> Result<Option<StoredRun>, ServiceError> {
    let Some(item) = core.store.get_item(&keys::run(ws, run_id)).await? else {
        return Ok(None);
    };
    Ok(Some(StoredRun {
        run: codec::decode(&item)?,
        rev: item.n(REV).unwrap_or(0),
        last_seq: item.n(NEXT_SEQ).unwrap_or(0).max(0) as u64,
    }))
}

/// The condition that the run item is still at `rev`.
pub fn at_revision(rev: i64) -> Condition {
    if rev == 0 {
        Condition::And(vec![Condition::Exists, Condition::AttrMissing(REV.into())])
    } else {
        Condition::equals(REV, AttrValue::N(rev))
    }
}

/// Why an attempt at a run write did not commit.
#[derive(Debug)]
pub enum WriteFailure<E = Infallible> {
    /// The run item is no longer at the revision it was read at: another write won the
    /// race. Read it again and retry.
    RunChanged,
    /// A named condition of the write did not hold.
    Refused(E),
    /// Storage failed.
    Store(StoreError),
}

impl<E> From<StoreError> for WriteFailure<E> {
    fn from(error: StoreError) -> Self {
        WriteFailure::Store(error)
    }
}

/// Why a run write retried by [`retry_on_race`] did not happen.
#[derive(Debug)]
pub enum RunWriteError<E = Infallible> {
    /// A named condition of the write did not hold.
    Refused(E),
    /// The attempt refused to write (the lease is not held, the transition is not
    /// allowed, ...), the run does not exist, it kept changing, or storage failed.
    Failed(ServiceError),
}

impl From<RunWriteError> for ServiceError {
    fn from(error: RunWriteError) -> Self {
        match error {
            RunWriteError::Refused(never) => match never {},
            RunWriteError::Failed(error) => error,
        }
    }
}

/// A planned write of a run: the transaction and the events it stores, published once
/// it commits.
#[derive(Debug)]
pub struct RunWrite<E> {
    /// The transaction; its first operation is the conditional update of the run item,
    /// whose failure is the `run_changed` given to [`write()`]. Callers may add their own.
    pub tx: Transaction<E>,
    /// The events the transaction stores, with their sequence numbers.
    pub events: Vec<RunEvent>,
}

/// A write that turns `before` into `after` (document, projections, revision) and
/// appends `events` after `before.last_seq`; when the run changed since `before` was
/// read, the transaction fails with `run_changed`. At most [`MAX_EVENTS_PER_WRITE`]
/// events.
pub fn write<E: From<StoreError>>(
    before: &StoredRun,
    after: &Run,
    events: Vec<EventPayload>,
    now: Timestamp,
    run_changed: E,
) -> Result<RunWrite<E>, StoreError> {
    let mut update = Update {
        set: codec::document_attrs(after)?,
        ..Update::default()
    }
    .add(REV, 1);
    if !events.is_empty() {
        update = update.add(NEXT_SEQ, events.len() as i64);
    }
    if before.run.lease_id.is_some() && after.lease_id.is_none() {
        update = update.remove(attrs::LEASE);
    }
    let mut tx = Transaction::new();
    tx.guarded(
        WriteOp::Update {
            key: keys::run(&after.workspace_id, &after.run_id),
            update,
            condition: Some(at_revision(before.rev)),
        },
        run_changed,
    );
    let mut stored = Vec::with_capacity(events.len());
    for (offset, payload) in events.into_iter().enumerate() {
        let event = RunEvent {
            seq: before.last_seq + offset as u64 + 1,
            at: now,
            payload,
        };
        tx.push(put_op(
            &Step {
                run_id: after.run_id.clone(),
                event: event.clone(),
            },
            Some(Condition::NotExists),
        )?);
        stored.push(event);
    }
    Ok(RunWrite { tx, events: stored })
}

/// [`write()`] for an attempt of [`retry_on_race`]: a lost race is
/// [`WriteFailure::RunChanged`].
pub fn attempt<E>(
    before: &StoredRun,
    after: &Run,
    events: Vec<EventPayload>,
    now: Timestamp,
) -> Result<RunWrite<WriteFailure<E>>, StoreError> {
    write(before, after, events, now, WriteFailure::RunChanged)
}

/// Runs `attempt` on a fresh read of the run until it is written or refused, retrying
/// lost races, and publishes the events written. `attempt` gets the stored run and
/// returns the write to apply and the result to return once it is committed (or an
/// error that ends the loop).
pub async fn retry_on_race<T, E>(
    core: &Core,
    ws: &WorkspaceId,
    run_id: &RunId,
    mut attempt: impl FnMut(StoredRun) -> Result<(RunWrite<WriteFailure<E>>, T), ServiceError>,
) -> Result<T, RunWriteError<E>> {
    retry_on_race_reading(core, ws, run_id, |stored| {
        std::future::ready(attempt(stored))
    })
    .await
}

/// [`retry_on_race`] for an attempt that reads more than the run before it plans its
/// write (the run's artifacts, say). What it reads must only change through writes of
/// the run (which move its revision), so a write planned on a stale read loses the race
/// and is planned again.
pub async fn retry_on_race_reading<T, E, F>(
    core: &Core,
    ws: &WorkspaceId,
    run_id: &RunId,
    mut attempt: impl FnMut(StoredRun) -> F,
) -> Result<T, RunWriteError<E>>
where
    F: Future<Output = Result<(RunWrite<WriteFailure<E>>, T), ServiceError>>,
{
    for _ in 0..MAX_RACES {
        let stored = load(core, ws, run_id)
            .await
            .map_err(RunWriteError::Failed)?
            .ok_or_else(|| RunWriteError::Failed(ServiceError::not_found("run", run_id)))?;
        let (write, result) = attempt(stored).await.map_err(RunWriteError::Failed)?;
        match write
            .tx
            .commit_events(&core.store, run_id, &write.events)
            .await
        {
            Ok(()) => return Ok(result),
            Err(WriteFailure::RunChanged) => continue,
            Err(WriteFailure::Refused(refusal)) => return Err(RunWriteError::Refused(refusal)),
            Err(WriteFailure::Store(error)) => return Err(RunWriteError::Failed(error.into())),
        }
    }
    Err(RunWriteError::Failed(ServiceError::Conflict(format!(
        "run {run_id} kept changing while it was being updated; try again"
    ))))
}

/// `Ok` when `lease_id` is the run's lease, whether or not the run still runs;
/// [`ServiceError::Fenced`] (`LeaseSuperseded`) otherwise. For reads: every write
/// checks [`check_fence`].
pub fn check_lease(run: &Run, lease_id: &LeaseId) -> Result<(), ServiceError> {
    match run.fence(lease_id) {
        Err(fenced @ Fenced::LeaseSuperseded) => Err(ServiceError::Fenced {
            run_id: run.run_id.clone(),
            fenced,
        }),
        Ok(()) | Err(Fenced::RunEnded(_)) => Ok(()),
    }
}

/// `Ok` when `lease_id` may write the run ([`Run::fence`]: it holds the run and the run
/// is running); [`ServiceError::Fenced`], telling the worker to stop, otherwise. Every
/// write under a lease checks it in the attempt that writes, so the check and the write
/// are one conditional transaction.
pub fn check_fence(run: &Run, lease_id: &LeaseId) -> Result<(), ServiceError> {
    run.fence(lease_id).map_err(|fenced| ServiceError::Fenced {
        run_id: run.run_id.clone(),
        fenced,
    })
}
