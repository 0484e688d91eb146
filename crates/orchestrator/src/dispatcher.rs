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

use std::sync::Arc;
use std::time::Duration;

use tlao_domain::{RunError, RunErrorCode, Usage};
use tlao_ports::{LaunchError, RunLauncher};

use crate::context::Core;
use crate::worker::{Completion, WorkerService};

/// Starts workers for queued runs.
pub struct Dispatcher {
    core: Arc<Core>,
    workers: Arc<WorkerService>,
    launcher: Arc<dyn RunLauncher>,
    poll: Duration,
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
        }
    }

    /// Runs until the task is dropped.
    pub async fn run(self) {
        let mut changes = self.core.queue_version.subscribe();
        loop {
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
        while self.launcher.capacity() > 0 {
            let Some(lease) = self.workers.lease(None).await? else {
                break;
            };
            let launch = lease.launch();
            match self.launcher.launch(&launch).await {
                Ok(exit) => {
                    started += 1;
                    let workers = self.workers.clone();
                    let core = self.core.clone();
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
                    self.workers
                        .complete(
                            &launch.run_id,
                            &launch.lease_id,
                            Completion::Failed(failure),
                            Usage::Unmeasured,
                        )
                        .await?;
                }
            }
        }
        Ok(started)
    }
}
