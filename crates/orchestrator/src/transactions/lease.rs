//! Leasing a queued run, and dropping a queue entry that no longer leads to one.
//!
//! A lease is one transaction that flips the run to `running` (conditioned on the
//! revision it was read at), removes its queue entries (conditioned on its executor's
//! entry still being there), takes a slot on the workspace's active-run counter
//! (conditioned on the concurrency limit) and enters it in the index of running runs
//! the reaper reads. So two workers never lease one run, and the limit holds under any
//! number of them.

use tlao_domain::{ExecutorName, Run, RunId, Timestamp, WorkspaceId, keys};
use tlao_ports::{AttrValue, Condition, Direction, Item, Query, Update, WriteOp};

use crate::attrs::{self, ACTIVE_RUNS, kind};
use crate::run_store::{self, StoredRun};
use crate::store::{Store, StoreError};
use crate::transactions::runs::dequeue_ops;

/// Why [`lease`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The run was written since it was read: another lease took it, or it was
    /// cancelled.
    #[error("the run changed since it was read")]
    RunChanged,
    /// The run's entry is no longer in its executor's queue: another lease took it, or
    /// it was cancelled.
    #[error("the run is no longer queued")]
    NotQueued,
    /// The workspace runs as many runs as it may at once (or no longer exists).
    #[error("the workspace has no free slot")]
    WorkspaceFull,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Starts a queued run: writes `leased` (the run `stored` was read as, after its
/// `Start` transition) with its `running` event (published once stored), removes its
/// queue entries, takes a slot of its workspace below `limit` concurrent runs, and
/// enters it in the index of running runs.
pub async fn lease(
    store: &Store,
    stored: &StoredRun,
    leased: &Run,
    limit: u32,
    now: Timestamp,
) -> Result<(), LeaseError> {
    let ws = &leased.workspace_id;
    let run_id = &leased.run_id;
    let running = tlao_domain::EventPayload::Status {
        status: leased.status,
    };
    let run_store::RunWrite { mut tx, events } =
        run_store::write(stored, leased, vec![running], now, LeaseError::RunChanged)?;
    tx.guarded(
        WriteOp::Delete {
            key: keys::queue_entry(&leased.executor, run_id),
            condition: Some(Condition::Exists),
        },
        LeaseError::NotQueued,
    )
    .push(WriteOp::Delete {
        key: keys::workspace_queue_entry(ws, run_id),
        condition: None,
    })
    .guarded(
        WriteOp::Update {
            key: keys::workspace(ws),
            update: Update::new().add(ACTIVE_RUNS, 1),
            condition: Some(Condition::And(vec![
                Condition::Exists,
                Condition::Or(vec![
                    Condition::AttrMissing(ACTIVE_RUNS.into()),
                    Condition::LessThan(ACTIVE_RUNS.into(), i64::from(limit)),
                ]),
            ])),
        },
        LeaseError::WorkspaceFull,
    )
    .push(WriteOp::Put {
        item: Item::new(keys::active_run(run_id))
            .with(attrs::KIND, AttrValue::S(kind::ACTIVE.into()))
            .with(attrs::WORKSPACE_ID, AttrValue::S(ws.to_string())),
        condition: Some(Condition::NotExists),
    });
    tx.commit_events(store, run_id, &events).await
}

/// Removes a run's queue entries (one that leads to no queued run: it was cancelled
/// between a read and its write, or is gone).
pub async fn dequeue(
    store: &Store,
    executor: &ExecutorName,
    ws: &WorkspaceId,
    run_id: &RunId,
) -> Result<(), StoreError> {
    store
        .transact(dequeue_ops(executor, ws, run_id).into())
        .await
}

/// The oldest `limit` entries of an executor's queue: each run and its workspace.
pub async fn queued_for(
    store: &Store,
    executor: &ExecutorName,
    limit: usize,
) -> Result<Vec<(RunId, WorkspaceId)>, StoreError> {
    let page = store
        .query_items(Query::new(
            keys::queue_of(executor),
            Direction::Forward,
            limit,
        ))
        .await?;
    Ok(page.items.iter().filter_map(entry_of).collect())
}

/// The run and workspace of a queue entry or an entry of the index of running runs;
/// `None` when it names none.
pub(crate) fn entry_of(item: &Item) -> Option<(RunId, WorkspaceId)> {
    let run = item.key.sk.parse::<RunId>().ok()?;
    let ws = item.s(attrs::WORKSPACE_ID)?.parse::<WorkspaceId>().ok()?;
    Some((run, ws))
}

/// How many runs of the workspace are running now (its active-run counter).
pub async fn active_runs(store: &Store, ws: &WorkspaceId) -> Result<u64, StoreError> {
    Ok(store
        .get_item(&keys::workspace(ws))
        .await?
        .and_then(|item| item.n(ACTIVE_RUNS))
        .map_or(0, |n| u64::try_from(n).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use tlao_domain::Guardrails;

    use super::*;
    use crate::transactions::create_run;
    use crate::transactions::testing::World;

    /// A world with a queued run in a fresh workspace, and that run as stored.
    async fn queued() -> (World, StoredRun) {
        let world = World::new(Guardrails::default());
        let ws = world.workspace().await;
        let run = world.run(&ws);
        create_run(&world.core().store, &run, 10, None)
            .await
            .expect("the run is queued");
        let stored = run_store::load(world.core(), &ws, &run.run_id)
            .await
            .expect("a read")
            .expect("the run is stored");
        (world, stored)
    }

    #[tokio::test]
    async fn a_second_lease_of_the_same_run_is_refused_as_run_changed() {
        let (world, stored) = queued().await;
        let (store, now) = (&world.core().store, world.core().now());
        lease(store, &stored, &world.started(&stored.run), 2, now)
            .await
            .expect("the first lease takes the run");

        let refused = lease(store, &stored, &world.started(&stored.run), 2, now).await;

        assert!(
            matches!(refused, Err(LeaseError::RunChanged)),
            "{refused:?}"
        );
        assert_eq!(
            active_runs(store, &stored.run.workspace_id)
                .await
                .expect("a read"),
            1
        );
    }

    #[tokio::test]
    async fn leasing_a_run_whose_queue_entry_is_gone_is_refused_as_not_queued() {
        let (world, stored) = queued().await;
        let (store, now) = (&world.core().store, world.core().now());
        let run = &stored.run;
        dequeue(store, &run.executor, &run.workspace_id, &run.run_id)
            .await
            .expect("the entries are removed");

        let refused = lease(store, &stored, &world.started(run), 2, now).await;

        assert!(matches!(refused, Err(LeaseError::NotQueued)), "{refused:?}");
    }

    #[tokio::test]
    async fn leasing_in_a_workspace_at_its_limit_is_refused_as_workspace_full() {
        let (world, first) = queued().await;
        let (store, now) = (&world.core().store, world.core().now());
        let ws = &first.run.workspace_id;
        lease(store, &first, &world.started(&first.run), 1, now)
            .await
            .expect("the first run takes the only slot");
        let second = world.run(ws);
        create_run(store, &second, 10, None)
            .await
            .expect("the run is queued");
        let second = run_store::load(world.core(), ws, &second.run_id)
            .await
            .expect("a read")
            .expect("the run is stored");

        let refused = lease(store, &second, &world.started(&second.run), 1, now).await;

        assert!(
            matches!(refused, Err(LeaseError::WorkspaceFull)),
            "{refused:?}"
        );
    }
}
