//! The reaper: the backstop that ends runs nobody will end.
//!
//! A running run past its deadline (plus a grace period for the worker to report it
//! itself) becomes `timed_out` (requirement 2.8); a running run whose worker has been
//! silent longer than the heartbeat timeout becomes `failed` with code `worker_lost`
//! (requirement 13.5). The same sweep on server start judges runs a crash left
//! `running`. Every change is a conditional write, so the reaper racing a worker's own
//! completion yields exactly one outcome.
//!
//! A queued run that no worker leased within `guardrails.max_queue_seconds` of its
//! creation becomes `failed` with code `queue_timeout`, and its daily quota units are
//! given back ([`transactions::expire_queued_run`]). The queues are read at most every
//! [`QUEUE_SCAN_INTERVAL`] or a quarter of the queue timeout (they are oldest first, so a scan reads each registered
//! executor's queue only up to its first run still in time): a queue timeout is judged
//! in minutes, and every read of the table is billed on DynamoDB. A queue entry whose
//! executor was removed from the registry is not read by anything (no lease, no scan);
//! such runs wait until somebody cancels them.
//!
//! The reaper only ends runs; the worker of a run it ended may still be running (hung,
//! stopped). The [`crate::Dispatcher`] that launched it sees the end and has its
//! launcher stop it: at once after `worker_lost`, after a grace period otherwise.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tlao_domain::{
    ExecutorName, RunError, RunErrorCode, RunId, RunStatus, Timestamp, Transition, WorkspaceId,
    keys,
};
use tlao_ports::{Cursor, Direction, Query};

use crate::context::Core;
use crate::error::ServiceError;
use crate::run_store;
use crate::transactions::{self, lease::entry_of};

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sweep {
    /// Runs ended as `timed_out`.
    pub timed_out: Vec<RunId>,
    /// Runs ended as `failed` / `worker_lost`.
    pub lost: Vec<RunId>,
    /// Queued runs ended as `failed` / `queue_timeout`.
    pub expired: Vec<RunId>,
}

/// How often at most a sweep reads the queues for runs waiting too long (more often
/// when `guardrails.max_queue_seconds` is under two minutes: four times per timeout).
pub const QUEUE_SCAN_INTERVAL: Duration = Duration::from_secs(30);

/// Queue entries read per page of a queue scan.
const QUEUE_PAGE: usize = 100;

/// Finds and ends overdue and abandoned runs.
pub struct Reaper {
    core: Arc<Core>,
    heartbeat_timeout: Duration,
    deadline_grace: Duration,
    /// When the queues were last scanned for expired runs.
    queues_scanned_at: Mutex<Option<Timestamp>>,
}

impl Reaper {
    /// A reaper failing runs silent for `heartbeat_timeout`, and timing out runs
    /// `deadline_grace` after their deadline.
    pub fn new(core: Arc<Core>, heartbeat_timeout: Duration, deadline_grace: Duration) -> Self {
        Reaper {
            core,
            heartbeat_timeout,
            deadline_grace,
            queues_scanned_at: Mutex::new(None),
        }
    }

    /// Looks at every running run once, and, when the queues were not scanned within
    /// [`QUEUE_SCAN_INTERVAL`], at every queued run waiting past its time.
    pub async fn sweep(&self) -> Result<Sweep, ServiceError> {
        let scan_queues = self.queue_scan_due();
        self.sweep_with(scan_queues).await
    }

    /// Looks at every running run and every queue once, whenever the queues were last
    /// scanned: what a scheduled maintenance pass does, when no loop sweeps between
    /// passes (see [`crate::Maintenance`]).
    pub async fn sweep_everything(&self) -> Result<Sweep, ServiceError> {
        self.record_queue_scan();
        self.sweep_with(true).await
    }

    async fn sweep_with(&self, scan_queues: bool) -> Result<Sweep, ServiceError> {
        let mut sweep = Sweep::default();
        // A failed queue scan does not keep the running runs from being judged; it is
        // tried again at the next scan.
        if scan_queues && let Err(error) = self.expire_queued(&mut sweep).await {
            tracing::error!(
                operation = "reap", error = %error,
                "could not scan the queues for runs waiting past their time"
            );
        }
        let mut cursor: Option<Cursor> = None;
        loop {
            let page = self
                .core
                .store
                .query_items(Query::new(keys::active_runs(), Direction::Forward, 500).after(cursor))
                .await?;
            for item in &page.items {
                let Some((run_id, ws)) = entry_of(item) else {
                    continue;
                };
                if let Err(error) = self.judge(&ws, &run_id, &mut sweep).await {
                    tracing::error!(
                        workspace_id = %ws, run_id = %run_id, operation = "reap",
                        error = %error, "could not judge a running run"
                    );
                }
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(sweep)
    }

    async fn judge(
        &self,
        ws: &WorkspaceId,
        run_id: &RunId,
        sweep: &mut Sweep,
    ) -> Result<(), ServiceError> {
        let Some(stored) = run_store::load(&self.core, ws, run_id).await? else {
            return Ok(());
        };
        let run = &stored.run;
        if run.status != RunStatus::Running {
            // Ended without freeing its index entry (cannot happen through the services;
            // tidy it anyway).
            self.core
                .store
                .delete(&keys::active_run(run_id), None)
                .await?;
            return Ok(());
        }
        let grace_ms = self.deadline_grace.as_millis() as i64;
        let timeout_s = self.heartbeat_timeout.as_secs().max(1);
        let overdue = |run: &tlao_domain::Run, now: tlao_domain::Timestamp| {
            run.deadline.is_some_and(|d| now >= d.plus_millis(grace_ms))
        };
        let now = self.core.now();
        let timed_out = overdue(run, now);
        let transition = if timed_out {
            Transition::TimeOut
        } else if run.heartbeat_expired(now, timeout_s) {
            Transition::Fail(RunError {
                code: RunErrorCode::WorkerLost,
                message: format!(
                    "the worker sent no heartbeat for {timeout_s} s; it is presumed dead"
                ),
                exit_code: None,
            })
        } else {
            return Ok(());
        };
        // The verdict is checked again on the run as it is when written: a worker that
        // reported in between keeps its run.
        let core = &self.core;
        let result = transactions::finish_run(core, ws, run_id, transition, |current| {
            let now = core.now();
            let still = current.status == RunStatus::Running
                && if timed_out {
                    overdue(current, now)
                } else {
                    current.heartbeat_expired(now, timeout_s)
                };
            if still {
                Ok(())
            } else {
                Err(ServiceError::Conflict(
                    "the run reported in or ended".into(),
                ))
            }
        })
        .await;
        match result {
            Ok(_) => {
                tracing::warn!(
                    workspace_id = %ws, run_id = %run_id, operation = "reap",
                    outcome = if timed_out { "timed_out" } else { "worker_lost" }, "run ended by the reaper"
                );
                if timed_out {
                    sweep.timed_out.push(run_id.clone());
                } else {
                    sweep.lost.push(run_id.clone());
                }
                Ok(())
            }
            Err(ServiceError::Conflict(_)) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// Whether a queue scan is due now; if so, records it as done now.
    fn queue_scan_due(&self) -> bool {
        let now = self.core.now();
        let mut last = self
            .queues_scanned_at
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // At least four scans per queue timeout, so a run expires at most a quarter of
        // its time late.
        let every = (QUEUE_SCAN_INTERVAL.as_millis() as i64)
            .min((self.core.guardrails.max_queue_seconds as i64).saturating_mul(250));
        let due = last.is_none_or(|at| now.millis_since(at) >= every || now < at);
        if due {
            *last = Some(now);
        }
        due
    }

    /// Records a queue scan as done now.
    fn record_queue_scan(&self) {
        let now = self.core.now();
        *self
            .queues_scanned_at
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(now);
    }

    /// Fails every queued run of a registered executor that has waited
    /// `guardrails.max_queue_seconds` since its creation.
    async fn expire_queued(&self, sweep: &mut Sweep) -> Result<(), ServiceError> {
        let executors = crate::backlog::registered_executors(&self.core).await?;
        for executor in &executors {
            self.expire_queue_of(executor, sweep).await?;
        }
        Ok(())
    }

    /// [`Reaper::expire_queued`] for one executor's queue, oldest entry first, up to the
    /// first run still within its time.
    async fn expire_queue_of(
        &self,
        executor: &ExecutorName,
        sweep: &mut Sweep,
    ) -> Result<(), ServiceError> {
        let max_queue_seconds = self.core.guardrails.max_queue_seconds;
        let mut cursor: Option<Cursor> = None;
        loop {
            let page = self
                .core
                .store
                .query_items(
                    Query::new(keys::queue_of(executor), Direction::Forward, QUEUE_PAGE)
                        .after(cursor),
                )
                .await?;
            for item in &page.items {
                let Some((run_id, ws)) = entry_of(item) else {
                    continue;
                };
                // A run id sorts by, and holds, its creation time.
                let created = Timestamp::from_unix_millis(run_id.ulid().unix_millis() as i64);
                if self.core.now() < created.plus_seconds(max_queue_seconds) {
                    return Ok(());
                }
                match transactions::expire_queued_run(&self.core, &ws, &run_id, max_queue_seconds)
                    .await
                {
                    Ok(_) => {
                        tracing::warn!(
                            workspace_id = %ws, run_id = %run_id, executor = %executor,
                            operation = "reap", outcome = "queue_timeout",
                            max_queue_seconds, "queued run expired: no worker leased it in time"
                        );
                        sweep.expired.push(run_id);
                    }
                    // Leased or cancelled since the entry was read.
                    Err(ServiceError::Conflict(_)) => {}
                    // The entry names no run: drop it, or it would be read for ever.
                    Err(ServiceError::NotFound { .. }) => {
                        transactions::dequeue(&self.core.store, executor, &ws, &run_id).await?;
                    }
                    Err(error) => {
                        tracing::error!(
                            workspace_id = %ws, run_id = %run_id, operation = "reap",
                            error = %error, "could not expire a queued run"
                        );
                    }
                }
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// Sweeps every `interval` until the task is dropped.
    pub async fn run(self, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(error) = self.sweep().await {
                tracing::error!(operation = "reap", error = %error, "reaper sweep failed");
            }
        }
    }
}
