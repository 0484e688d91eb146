//! One maintenance pass: what the background loops of `tlao serve` do, done once, on
//! demand. Where the server process is frozen between requests (AWS Lambda), no loop
//! runs; a schedule calls `POST /admin/maintenance` once a minute instead, and each call
//! is one [`Maintenance::pass`].
//!
//! A pass judges every running run (timed out, worker lost), scans every queue for runs
//! waiting past `guardrails.max_queue_seconds`, and, with a launcher, leases and launches
//! queued runs while it has capacity. Each step is a conditional write, so a pass is
//! idempotent: a second pass right after the first finds nothing more to do, and two
//! passes racing (two API instances) end each run once. Passes in one process run one
//! at a time.

use std::sync::Arc;

use tlao_domain::RunId;

use crate::dispatcher::Dispatcher;
use crate::error::ServiceError;
use crate::reaper::Reaper;

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MaintenancePass {
    /// Running runs ended as `timed_out`.
    pub timed_out: Vec<RunId>,
    /// Running runs ended as `failed` / `worker_lost`.
    pub lost: Vec<RunId>,
    /// Queued runs ended as `failed` / `queue_timeout`.
    pub expired: Vec<RunId>,
    /// Workers started for queued runs (0 without a launcher).
    pub dispatched: usize,
}

/// Runs maintenance passes: the reaper's sweep, then a dispatch.
pub struct Maintenance {
    reaper: Reaper,
    dispatcher: Option<Arc<Dispatcher>>,
    running: tokio::sync::Mutex<()>,
}

impl Maintenance {
    /// Passes with `reaper`, dispatching through `dispatcher` when there is one (the
    /// same dispatcher as the background loop's, if that runs too).
    pub fn new(reaper: Reaper, dispatcher: Option<Arc<Dispatcher>>) -> Self {
        Maintenance {
            reaper,
            dispatcher,
            running: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether passes start workers (a launcher is configured).
    pub fn dispatches(&self) -> bool {
        self.dispatcher.is_some()
    }

    /// Only the dispatch of a pass: starts workers for queued runs while the launcher
    /// has capacity; how many (0 without a launcher). What a server with its loops off
    /// does right after creating a run, so the run need not wait for the next pass.
    pub async fn dispatch(&self) -> Result<usize, ServiceError> {
        match &self.dispatcher {
            Some(dispatcher) => dispatcher.dispatch().await,
            None => Ok(0),
        }
    }

    /// One pass. Runs are ended before any is dispatched, so a run that expired is never
    /// launched. Errors: `Unavailable` when the table cannot be read now (the next pass
    /// tries again); what the sweep or the dispatch fails with otherwise.
    pub async fn pass(&self) -> Result<MaintenancePass, ServiceError> {
        let _one_at_a_time = self.running.lock().await;
        let sweep = self.reaper.sweep_everything().await?;
        let dispatched = match &self.dispatcher {
            Some(dispatcher) => dispatcher.dispatch().await?,
            None => 0,
        };
        Ok(MaintenancePass {
            timed_out: sweep.timed_out,
            lost: sweep.lost,
            expired: sweep.expired,
            dispatched,
        })
    }
}
