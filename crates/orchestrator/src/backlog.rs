//! The backlog: how many runs wait in the queues and how many run, measured from the
//! table. What a deployment scales its workers on (`tlao serve` publishes it as a
//! CloudWatch metric), and what the reaper's queue scan reads the queues of.

use tlao_domain::{ExecutorName, keys};
use tlao_ports::{Cursor, Direction, Query};

use crate::context::Core;
use crate::error::ServiceError;

/// Items read per page while counting.
const PAGE: usize = 500;

/// Runs waiting and running, at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    /// Runs in the queues of registered executors (waiting for a worker or a slot).
    pub queued: u64,
    /// Runs a worker holds a lease on.
    pub running: u64,
}

impl Backlog {
    /// Measures the backlog: one count of each registered executor's queue and one of
    /// the index of running runs. Runs queued for an executor no longer registered are
    /// not counted (no worker may lease them).
    pub async fn measure(core: &Core) -> Result<Backlog, ServiceError> {
        let mut queued = 0;
        for executor in registered_executors(core).await? {
            queued += count(core, keys::queue_of(&executor)).await?;
        }
        Ok(Backlog {
            queued,
            running: count(core, keys::active_runs()).await?,
        })
    }
}

/// The names of every registered executor, read from the table (not a cache).
pub(crate) async fn registered_executors(core: &Core) -> Result<Vec<ExecutorName>, ServiceError> {
    let mut names = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = core
            .store
            .query_items(Query::new(keys::executors(), Direction::Forward, PAGE).after(cursor))
            .await?;
        names.extend(page.items.iter().filter_map(|item| {
            item.key
                .sk
                .strip_prefix("EXEC#")?
                .parse::<ExecutorName>()
                .ok()
        }));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(names),
        }
    }
}

/// How many items have keys under `prefix`.
async fn count(core: &Core, prefix: keys::KeyPrefix) -> Result<u64, ServiceError> {
    let mut total = 0;
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = core
            .store
            .query_items(Query::new(prefix.clone(), Direction::Forward, PAGE).after(cursor))
            .await?;
        total += page.items.len() as u64;
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(total),
        }
    }
}
