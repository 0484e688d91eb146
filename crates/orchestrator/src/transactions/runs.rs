//! Creating a run and ending it, and the queue entries that wait for a lease.
//!
//! Creating a run is one transaction: the day's quota counters — the workspace's and its
//! creator's, across their workspaces — are incremented on the condition that each is
//! below its quota, and the run, its first event, its lookup item and its queue entries
//! are inserted (with the request's idempotency record, if any). So both quotas hold
//! under any number of API instances, and a run is never half-created.
//!
//! A run that waited in the queue for longer than it may ([`expire_queued_run`]) leaves
//! it in one transaction too: it fails as `queue_timeout`, its queue entries go and the
//! quota units it took are given back, so an outage of the workers does not eat a
//! workspace's day.

use tlao_domain::{
    EventPayload, ExecutorName, Key, LogStream, Run, RunError, RunEvent, RunId, RunStatus,
    Transition, UserId, UtcDate, WorkspaceId, keys,
};
use tlao_ports::{AttrValue, Condition, Item, Update, WriteOp};

use crate::attrs::{self, ACTIVE_RUNS, kind};
use crate::codec::{self, Lookup, LookupOf, Step};
use crate::context::Core;
use crate::error::ServiceError;
use crate::run_store::{WriteFailure, attempt, retry_on_race_reading};
use crate::store::{Store, StoreError};
use crate::transaction::Transaction;
use crate::transactions::artifacts::{pending_artifacts, settle_pending_ops};

/// Why [`create_run`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum CreateRunError {
    /// The workspace has used its daily run quota.
    #[error("the workspace has used its daily run quota")]
    QuotaExhausted,
    /// The run's creator has used their daily run quota across their workspaces.
    #[error("the creator has used their daily run quota")]
    UserQuotaExhausted,
    /// Another request with the same idempotency key recorded its response first.
    #[error("another request with this idempotency key was recorded first")]
    IdempotencyKeyTaken,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The daily run quotas a new run counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyQuotas {
    /// Runs per workspace per UTC day.
    pub per_workspace: u32,
    /// Runs per user per UTC day, across their workspaces.
    pub per_user: u32,
}

impl From<u32> for DailyQuotas {
    /// The same quota for the workspace and for the user.
    fn from(quota: u32) -> Self {
        DailyQuotas {
            per_workspace: quota,
            per_user: quota,
        }
    }
}

/// Stores a new queued `run`: counts it against its workspace's quota and its creator's
/// for the day it was created (`quotas`), inserts it with its `queued` event (published once stored), its lookup
/// item and its queue entries, and writes `idempotency_record` (the record of the
/// request's idempotency key, whose condition fails when another request holds the
/// key) when given.
pub async fn create_run(
    store: &Store,
    run: &Run,
    quotas: impl Into<DailyQuotas>,
    idempotency_record: Option<WriteOp>,
) -> Result<(), CreateRunError> {
    let quotas = quotas.into();
    let ws = &run.workspace_id;
    let queued = RunEvent {
        seq: 1,
        at: run.created_at,
        payload: EventPayload::Status {
            status: RunStatus::Queued,
        },
    };
    let quota_expiry = run
        .created_at
        .start_of_next_utc_day()
        .plus_seconds(86_400)
        .unix_millis()
        / 1000;
    let mut run_item = codec::encode(run).map_err(StoreError::from)?;
    run_item
        .attrs
        .insert(attrs::NEXT_SEQ.into(), AttrValue::N(1));
    let day = run.created_at.utc_date();
    let mut tx = Transaction::new();
    tx.guarded(
        count_run(
            keys::daily_quota(ws, day),
            quotas.per_workspace,
            quota_expiry,
        ),
        CreateRunError::QuotaExhausted,
    )
    .guarded(
        count_run(
            keys::user_daily_quota(&run.created_by, day),
            quotas.per_user,
            quota_expiry,
        ),
        CreateRunError::UserQuotaExhausted,
    )
    .push(WriteOp::Put {
        item: run_item,
        condition: Some(Condition::NotExists),
    })
    .insert(&Step {
        run_id: run.run_id.clone(),
        event: queued.clone(),
    })?
    .insert(&Lookup {
        of: LookupOf::Run(run.run_id.clone()),
        workspace_id: ws.clone(),
    })?;
    for op in enqueue_ops(run) {
        tx.push(op);
    }
    if let Some(record) = idempotency_record {
        tx.guarded(record, CreateRunError::IdempotencyKeyTaken);
    }
    tx.commit_events(store, &run.run_id, std::slice::from_ref(&queued))
        .await
}

/// The increment of a daily quota counter at `key`, on the condition that it is below
/// `quota`; the counter expires (`expires_at`, seconds) a day after its day ends.
fn count_run(key: Key, quota: u32, expires_at: i64) -> WriteOp {
    WriteOp::Update {
        key,
        update: Update::new()
            .add(attrs::QUOTA_COUNT, 1)
            .set(attrs::KIND, AttrValue::S(kind::QUOTA.into()))
            .set(attrs::EXPIRES_AT, AttrValue::N(expires_at)),
        condition: Some(Condition::Or(vec![
            Condition::AttrMissing(attrs::QUOTA_COUNT.into()),
            Condition::LessThan(attrs::QUOTA_COUNT.into(), i64::from(quota)),
        ])),
    }
}

/// Ends a run with `transition` (complete, fail, time out, cancel), freeing its slot
/// when it was running and recording a `status` event. Its artifacts still pending are
/// settled as `upload_failed` in the same transaction (a lease cannot finalize them
/// once the run has ended), so none stays pending for ever. `Conflict` when the state
/// machine refuses the transition.
///
/// `prepare` sees the run as read and may refuse (an error ends the attempt) or edit it
/// (record usage) before the transition is applied.
pub async fn finish_run(
    core: &Core,
    ws: &WorkspaceId,
    run_id: &RunId,
    transition: Transition,
    prepare: impl Fn(&mut Run) -> Result<(), ServiceError>,
) -> Result<Run, ServiceError> {
    let (transition, prepare) = (&transition, &prepare);
    let run = retry_on_race_reading(core, ws, run_id, |stored| async move {
        let mut after = stored.run.clone();
        prepare(&mut after)?;
        after
            .apply(transition.clone(), core.now())
            .map_err(|e| ServiceError::Conflict(e.to_string()))?;
        let pending = if stored.run.status == RunStatus::Running {
            pending_artifacts(core, &stored.run).await?
        } else {
            Vec::new()
        };
        let status = EventPayload::Status {
            status: after.status,
        };
        let mut write = attempt(&stored, &after, vec![status], core.now())?;
        let freed = if stored.run.status == RunStatus::Running {
            release_slot_ops(&after)
        } else {
            dequeue_ops(&after.executor, ws, run_id)
        };
        for op in freed {
            write.tx.push(op);
        }
        for (op, failure) in
            settle_pending_ops(&pending, after.status, || WriteFailure::RunChanged)?
        {
            write.tx.guarded(op, failure);
        }
        Ok((write, after))
    })
    .await?;
    core.signal_queue();
    Ok(run)
}

/// Fails a run still queued `max_queue_seconds` after its creation as `queue_timeout`
/// ([`RunError::queue_timeout`]): records a log line and the `failed` status event
/// saying why, removes its queue entries and gives back the daily quota units its
/// creation took (the workspace's and its creator's, for the day it was created; a
/// counter already expired is left alone). `Conflict` when the run is no longer queued
/// or has not waited that long (a worker leased it, somebody cancelled it).
pub async fn expire_queued_run(
    core: &Core,
    ws: &WorkspaceId,
    run_id: &RunId,
    max_queue_seconds: u64,
) -> Result<Run, ServiceError> {
    let run = retry_on_race_reading(core, ws, run_id, |stored| async move {
        let now = core.now();
        if !stored.run.queue_expired(now, max_queue_seconds) {
            return Err(ServiceError::Conflict(format!(
                "run {run_id} is {} and not past its time in the queue",
                stored.run.status
            )));
        }
        let error = RunError::queue_timeout(max_queue_seconds);
        let mut after = stored.run.clone();
        after
            .apply(Transition::Expire(error.clone()), now)
            .map_err(|e| ServiceError::Conflict(e.to_string()))?;
        let events = vec![
            EventPayload::Log {
                stream: LogStream::System,
                text: error.message,
            },
            EventPayload::Status {
                status: after.status,
            },
        ];
        let mut write = attempt(&stored, &after, events, now)?;
        for op in dequeue_ops(&after.executor, ws, run_id) {
            write.tx.push(op);
        }
        let day = after.created_at.utc_date();
        for counter in [
            keys::daily_quota(ws, day),
            keys::user_daily_quota(&after.created_by, day),
        ] {
            if quota_count(&core.store, &counter).await? > 0 {
                write.tx.push(give_back_run(counter));
            }
        }
        Ok((write, after))
    })
    .await?;
    core.signal_queue();
    Ok(run)
}

/// The decrement of a daily quota counter at `key` that exists (read as positive just
/// before: the run being expired counted in it).
fn give_back_run(key: Key) -> WriteOp {
    WriteOp::Update {
        key,
        update: Update::new().add(attrs::QUOTA_COUNT, -1),
        condition: Some(Condition::Exists),
    }
}

/// The extra operations that end a running run: its workspace slot is freed and it
/// leaves the active index.
fn release_slot_ops(run: &Run) -> [WriteOp; 2] {
    [
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

/// How many runs the workspace created on `day` (UTC), as counted against its quota.
pub async fn runs_created_on(
    store: &Store,
    ws: &WorkspaceId,
    day: UtcDate,
) -> Result<u64, StoreError> {
    quota_count(store, &keys::daily_quota(ws, day)).await
}

/// How many runs `user` created on `day` (UTC) across their workspaces, as counted
/// against their quota.
pub async fn runs_created_by_on(
    store: &Store,
    user: &UserId,
    day: UtcDate,
) -> Result<u64, StoreError> {
    quota_count(store, &keys::user_daily_quota(user, day)).await
}

async fn quota_count(store: &Store, key: &Key) -> Result<u64, StoreError> {
    Ok(store
        .get_item(key)
        .await?
        .and_then(|item| item.n(attrs::QUOTA_COUNT))
        .map_or(0, |n| u64::try_from(n).unwrap_or(0)))
}

/// The inserts of a queued run's entries: in its executor's queue (which leases read,
/// oldest first) and in its workspace's queue (which gives queue positions).
fn enqueue_ops(run: &Run) -> [WriteOp; 2] {
    [
        WriteOp::Put {
            item: Item::new(keys::queue_entry(&run.executor, &run.run_id))
                .with(attrs::KIND, AttrValue::S(kind::QUEUE.into()))
                .with(
                    attrs::WORKSPACE_ID,
                    AttrValue::S(run.workspace_id.to_string()),
                ),
            condition: Some(Condition::NotExists),
        },
        WriteOp::Put {
            item: Item::new(keys::workspace_queue_entry(&run.workspace_id, &run.run_id))
                .with(attrs::KIND, AttrValue::S(kind::QUEUED.into()))
                .with(attrs::EXECUTOR, AttrValue::S(run.executor.to_string())),
            condition: Some(Condition::NotExists),
        },
    ]
}

/// The deletes of a run's queue entries, whether or not they are there.
pub(crate) fn dequeue_ops(
    executor: &ExecutorName,
    ws: &WorkspaceId,
    run_id: &RunId,
) -> [WriteOp; 2] {
    [
        WriteOp::Delete {
            key: keys::queue_entry(executor, run_id),
            condition: None,
        },
        WriteOp::Delete {
            key: keys::workspace_queue_entry(ws, run_id),
            condition: None,
        },
    ]
}

#[cfg(test)]
mod tests {
    use tlao_domain::{Guardrails, UserId};

    use super::*;
    use crate::idempotency::Idempotency;
    use crate::transactions::testing::World;

    fn quotas(per_workspace: u32, per_user: u32) -> DailyQuotas {
        DailyQuotas {
            per_workspace,
            per_user,
        }
    }

    /// A new queued run in `ws` created by `user`.
    fn run_by(world: &World, ws: &WorkspaceId, user: &UserId) -> Run {
        Run {
            created_by: user.clone(),
            ..world.run(ws)
        }
    }

    #[tokio::test]
    async fn a_run_beyond_its_creators_daily_quota_is_refused_in_any_workspace() {
        let world = World::new(Guardrails::default());
        let (first_ws, second_ws) = (world.workspace().await, world.workspace().await);
        let store = &world.core().store;
        let user = UserId::new(world.core().new_ulid());
        for ws in [&first_ws, &second_ws] {
            create_run(store, &run_by(&world, ws, &user), quotas(10, 2), None)
                .await
                .expect("within both quotas");
        }

        let refused = create_run(
            store,
            &run_by(&world, &first_ws, &user),
            quotas(10, 2),
            None,
        )
        .await;

        assert!(
            matches!(refused, Err(CreateRunError::UserQuotaExhausted)),
            "{refused:?}"
        );
        let today = world.core().now().utc_date();
        assert_eq!(
            runs_created_by_on(store, &user, today)
                .await
                .expect("a read"),
            2
        );
        assert_eq!(
            runs_created_on(store, &first_ws, today)
                .await
                .expect("a read"),
            1
        );
        let other = UserId::new(world.core().new_ulid());
        create_run(
            store,
            &run_by(&world, &first_ws, &other),
            quotas(10, 2),
            None,
        )
        .await
        .expect("another user has their own quota");
    }

    #[tokio::test]
    async fn a_race_of_runs_against_the_users_quota_admits_exactly_the_quota() {
        let world = std::sync::Arc::new(World::new(Guardrails::default()));
        let mut workspaces = Vec::new();
        for _ in 0..4 {
            workspaces.push(world.workspace().await);
        }
        let user = UserId::new(world.core().new_ulid());
        let attempts = (0..30).map(|index| {
            let world = world.clone();
            let run = run_by(&world, &workspaces[index % workspaces.len()], &user);
            tokio::spawn(async move {
                create_run(&world.core().store, &run, quotas(100, 12), None).await
            })
        });
        let outcomes = futures::future::join_all(attempts).await;

        let admitted = outcomes
            .iter()
            .filter(|outcome| matches!(outcome, Ok(Ok(()))))
            .count();
        let refused = outcomes
            .iter()
            .filter(|outcome| matches!(outcome, Ok(Err(CreateRunError::UserQuotaExhausted))))
            .count();
        assert_eq!((admitted, refused), (12, 18), "{outcomes:?}");
        let today = world.core().now().utc_date();
        let store = &world.core().store;
        assert_eq!(
            runs_created_by_on(store, &user, today)
                .await
                .expect("a read"),
            12
        );
    }

    #[tokio::test]
    async fn a_run_beyond_the_daily_quota_is_refused_as_quota_exhausted() {
        let world = World::new(Guardrails::default());
        let ws = world.workspace().await;
        let store = &world.core().store;
        create_run(store, &world.run(&ws), quotas(1, 10), None)
            .await
            .expect("the first run fits the quota");

        let refused = create_run(store, &world.run(&ws), quotas(1, 10), None).await;

        assert!(
            matches!(refused, Err(CreateRunError::QuotaExhausted)),
            "{refused:?}"
        );
        let today = world.core().now().utc_date();
        assert_eq!(runs_created_on(store, &ws, today).await.expect("a read"), 1);
    }

    #[tokio::test]
    async fn a_run_recording_an_idempotency_key_already_recorded_is_refused_as_key_taken() {
        let world = World::new(Guardrails::default());
        let ws = world.workspace().await;
        let store = &world.core().store;
        let user = UserId::new(world.core().new_ulid());
        let key = Idempotency::new("retry-1", "create_run", &"body").expect("a valid key");
        let now = world.core().now();
        let first = world.run(&ws);
        let record = key.record_op(&user, &first, now).expect("a record");
        create_run(store, &first, quotas(10, 10), Some(record))
            .await
            .expect("the first request records the key");

        let second = world.run(&ws);
        let record = key.record_op(&user, &second, now).expect("a record");
        let refused = create_run(store, &second, quotas(10, 10), Some(record)).await;

        assert!(
            matches!(refused, Err(CreateRunError::IdempotencyKeyTaken)),
            "{refused:?}"
        );
    }
}
