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

use tlao_domain::{EventPayload, Run, RunEvent, RunId, Timestamp, Transition, WorkspaceId, keys};
use tlao_ports::{AttrValue, Condition, Update, WriteOp};

use crate::codec::{self, Step};
use crate::context::Core;
use crate::error::ServiceError;
use crate::runs::ACTIVE_RUNS;
use crate::store::{StoreError, put_op};

/// The run item's revision attribute.
pub const REV: &str = "rev";
/// The run item's event counter: the last sequence number used.
pub const NEXT_SEQ: &str = "nextSeq";
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

/// A planned write of a run: the operations of one transaction and the events they
/// store, published once the transaction commits.
#[derive(Debug, Clone, PartialEq)]
pub struct RunWrite {
    /// The operations; the first is the conditional update of the run item. Callers
    /// may append their own.
    pub ops: Vec<WriteOp>,
    /// The events the operations store, with their sequence numbers.
    pub events: Vec<RunEvent>,
}

/// A write that turns `before` into `after` (document, projections, revision) and
/// appends `events` after `before.last_seq`. At most [`MAX_EVENTS_PER_WRITE`] events.
pub fn write(
    before: &StoredRun,
    after: &Run,
    events: Vec<EventPayload>,
    now: Timestamp,
) -> Result<RunWrite, ServiceError> {
    let mut update = Update {
        set: codec::document_attrs(after)?,
        ..Update::default()
    }
    .add(REV, 1);
    if !events.is_empty() {
        update = update.add(NEXT_SEQ, events.len() as i64);
    }
    if before.run.lease_id.is_some() && after.lease_id.is_none() {
        update = update.remove(codec::LEASE);
    }
    let mut ops = vec![WriteOp::Update {
        key: keys::run(&after.workspace_id, &after.run_id),
        update,
        condition: Some(at_revision(before.rev)),
    }];
    let mut stored = Vec::with_capacity(events.len());
    for (offset, payload) in events.into_iter().enumerate() {
        let event = RunEvent {
            seq: before.last_seq + offset as u64 + 1,
            at: now,
            payload,
        };
        ops.push(put_op(
            &Step {
                run_id: after.run_id.clone(),
                event: event.clone(),
            },
            Some(Condition::NotExists),
        )?);
        stored.push(event);
    }
    Ok(RunWrite {
        ops,
        events: stored,
    })
}

/// The extra operations that end a running run: its workspace slot is freed and it
/// leaves the active index.
pub fn release_slot_ops(run: &Run) -> Vec<WriteOp> {
    vec![
        WriteOp::Update {
            key: keys::workspace(&run.workspace_id),
            update: Update::new().add(ACTIVE_RUNS, -1),
            condition: Some(Condition::Exists),
        },
        WriteOp::Delete {
            key: keys::active_run(&run.run_id),
            condition: None,
        },
    ]
}

/// Runs `attempt` on a fresh read of the run until it is written or refused, retrying
/// lost races, and publishes the events written. `attempt` gets the stored run and
/// returns the write to apply and the result to return once it is committed (or an
/// error that ends the loop).
pub async fn retry_on_race<T>(
    core: &Core,
    ws: &WorkspaceId,
    run_id: &RunId,
    mut attempt: impl FnMut(StoredRun) -> Result<(RunWrite, T), ServiceError>,
) -> Result<T, ServiceError> {
    for _ in 0..MAX_RACES {
        let stored = load(core, ws, run_id)
            .await?
            .ok_or_else(|| ServiceError::not_found("run", run_id))?;
        let (write, result) = attempt(stored)?;
        match core
            .store
            .transact_events(write.ops, run_id, &write.events)
            .await
        {
            Ok(()) => return Ok(result),
            Err(StoreError::ConditionFailed { op: 0 }) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(ServiceError::Conflict(format!(
        "run {run_id} kept changing while it was being updated; try again"
    )))
}

/// Ends a run with `transition` (complete, fail, time out, cancel), freeing its slot
/// when it was running and recording a `status` event. `Conflict` when the state
/// machine refuses the transition.
///
/// `prepare` sees the run as read and may refuse (an error ends the attempt) or edit it
/// (record usage) before the transition is applied.
pub async fn finish(
    core: &Core,
    ws: &WorkspaceId,
    run_id: &RunId,
    transition: Transition,
    prepare: impl Fn(&mut Run) -> Result<(), ServiceError>,
) -> Result<Run, ServiceError> {
    let run = retry_on_race(core, ws, run_id, |stored| {
        let mut after = stored.run.clone();
        prepare(&mut after)?;
        after
            .apply(transition.clone(), core.now())
            .map_err(|e| ServiceError::Conflict(e.to_string()))?;
        let status = EventPayload::Status {
            status: after.status,
        };
        let mut write = write(&stored, &after, vec![status], core.now())?;
        if stored.run.status == tlao_domain::RunStatus::Running {
            write.ops.extend(release_slot_ops(&after));
        } else {
            write.ops.extend([
                WriteOp::Delete {
                    key: keys::queue_entry(&after.executor, run_id),
                    condition: None,
                },
                WriteOp::Delete {
                    key: keys::workspace_queue_entry(ws, run_id),
                    condition: None,
                },
            ]);
        }
        Ok((write, after))
    })
    .await?;
    core.signal_queue();
    Ok(run)
}
