//! The dispatcher: turns queued runs into started workers.
//!
//! It leases runs on the workers' behalf (so a worker is never started for nothing) and
//! asks the [`RunLauncher`] to start one single-job worker per lease. The lease is light
//! ([`crate::worker::Lease`]): the worker it starts fetches its assignment, presigned
//! URLs and all, when it starts. It wakes when a
//! run is queued or a slot frees in this process, and polls otherwise, so runs queued
//! through another API instance are picked up too. When a launched worker exits without
//! finishing its run, the run fails at once as `worker_lost` instead of waiting for the
//! heartbeat timeout.
//!
//! It remembers the runs whose workers it started and that are still running
//! ([`Dispatcher::launched`]), so a stopping server knows which runs are its own to
//! wait for, and to cancel when its grace period is over.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tlao_domain::{LeaseId, RunError, RunErrorCode, RunId, Usage};
use tlao_ports::{LaunchError, RunLauncher};

use crate::context::Core;
use crate::worker::{Completion, WorkerService};

/// The runs a dispatcher leased whose workers have not exited yet (being started, or
/// running), with the lease each worker holds. Cloning shares the set.
#[derive(Debug, Clone, Default)]
pub struct LaunchedRuns {
    runs: Arc<Mutex<BTreeMap<RunId, LeaseId>>>,
    /// Lease attempts under way: a run they take is not in `runs` yet.
    leasing: Arc<AtomicUsize>,
}

/// A lease attempt under way, counted until dropped.
struct Leasing(Arc<AtomicUsize>);

impl Drop for Leasing {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl LaunchedRuns {
    /// The runs and their leases, oldest run first.
    pub fn snapshot(&self) -> Vec<(RunId, LeaseId)> {
        self.lock()
            .iter()
            .map(|(run, lease)| (run.clone(), lease.clone()))
            .collect()
    }

    /// How many runs are leased and not over for their workers.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no run is leased, being leased, or running here.
    pub fn is_empty(&self) -> bool {
        self.leasing.load(Ordering::SeqCst) == 0 && self.lock().is_empty()
    }

    fn begin_lease(&self) -> Leasing {
        self.leasing.fetch_add(1, Ordering::SeqCst);
        Leasing(self.leasing.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<RunId, LeaseId>> {
        self.runs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Starts workers for queued runs.
pub struct Dispatcher {
    core: Arc<Core>,
    workers: Arc<WorkerService>,
    launcher: Arc<dyn RunLauncher>,
    poll: Duration,
    launched: LaunchedRuns,
}

impl Dispatcher {
    /// A dispatcher that polls the queue every `poll` besides waking on local changes.
    pub fn new(
        core: Arc<Core>,
        workers: Arc<WorkerService>,
        launcher: Arc<dyn RunLauncher>,
        poll: Duration,
    ) -> Self {
        Dispatcher {
            core,
            workers,
            launcher,
            poll,
            launched: LaunchedRuns::default(),
        }
    }

    /// The runs whose workers this dispatcher started and that are still running.
    pub fn launched(&self) -> LaunchedRuns {
        self.launched.clone()
    }

    /// Runs until the task is dropped, or until the process stops leasing
    /// ([`Core::stop_leasing`]); the workers it started keep running either way.
    pub async fn run(self) {
        let mut changes = self.core.queue_version.subscribe();
        while self.core.is_leasing() {
            if let Err(error) = self.dispatch().await {
                tracing::error!(operation = "dispatch", error = %error, "dispatching failed");
            }
            tokio::select! {
                _ = changes.changed() => {}
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
    }

    /// Leases and launches while there is capacity and leasable work; returns how many
    /// workers were started.
    pub async fn dispatch(&self) -> Result<usize, crate::ServiceError> {
        let mut started = 0;
        while self.launcher.capacity() > 0 && self.core.is_leasing() {
            // Counted from before the lease until the run is in the set, so a stopping
            // server never misses a run leased while it looked.
            let leasing = self.launched.begin_lease();
            let Some(lease) = self.workers.lease(None).await? else {
                break;
            };
            let launch = lease.launch();
            self.launched
                .lock()
                .insert(launch.run_id.clone(), launch.lease_id.clone());
            drop(leasing);
            match self.launcher.launch(&launch).await {
                Ok(exit) => {
                    started += 1;
                    let workers = self.workers.clone();
                    let core = self.core.clone();
                    let launched = self.launched.clone();
                    tokio::spawn(async move {
                        let how = exit.await;
                        core.signal_queue();
                        let error = RunError {
                            code: RunErrorCode::WorkerLost,
                            message: format!(
                                "the worker process ended ({how}) before it completed the run"
                            ),
                            exit_code: None,
                        };
                        // Conditional on the lease and on the run still running: a worker
                        // that completed its run is left alone.
                        if let Ok(run) = workers
                            .complete_if_running(
                                &launch.run_id,
                                &launch.lease_id,
                                Completion::Failed(error),
                                Usage::Unmeasured,
                            )
                            .await
                            && let Some(run) = run
                        {
                            tracing::warn!(
                                workspace_id = %run.workspace_id, run_id = %run.run_id,
                                operation = "dispatch", "the worker exited without completing its run"
                            );
                        }
                        // Only now: a stopping server waits for this set to empty, and
                        // by then no run of an exited worker may still be `running`.
                        launched.lock().remove(&launch.run_id);
                    });
                }
                Err(error) => {
                    let code = match error {
                        LaunchError::Busy(_) => RunErrorCode::Internal,
                        LaunchError::Failed(_) => RunErrorCode::ExecutorUnavailable,
                    };
                    let failure = RunError {
                        code,
                        message: error.to_string(),
                        exit_code: None,
                    };
                    tracing::error!(
                        workspace_id = %lease.run.workspace_id, run_id = %launch.run_id,
                        operation = "dispatch", error = %error, "could not start a worker"
                    );
                    let failed = self
                        .workers
                        .complete(
                            &launch.run_id,
                            &launch.lease_id,
                            Completion::Failed(failure),
                            Usage::Unmeasured,
                        )
                        .await;
                    self.launched.lock().remove(&launch.run_id);
                    failed?;
                }
            }
        }
        Ok(started)
    }
}
