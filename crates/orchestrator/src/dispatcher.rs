//! The dispatcher: turns queued runs into started workers, and ends the workers whose
//! run is over without them.
//!
//! It leases runs on the workers' behalf (so a worker is never started for nothing) and
//! asks the [`RunLauncher`] to start one single-job worker per lease. The lease is light
//! ([`crate::worker::Lease`]): the worker it starts fetches its assignment, presigned
//! URLs and all, when it starts. It wakes when a run is queued or a slot frees in this
//! process, and polls otherwise, so runs queued through another API instance are picked
//! up too.
//!
//! It then watches each worker it launched, and its run:
//!
//! - When the worker exits without finishing its run, the run fails at once as
//!   `worker_lost` instead of waiting for the heartbeat timeout.
//! - When the run fails as `worker_lost` while the worker still runs (the reaper found
//!   it silent: hung, stopped with `SIGSTOP`, cut off), the launcher stops it at once,
//!   with everything it started, and its slot is free for the next run.
//! - When the run ends any other way (cancelled, timed out, completed) and the worker
//!   has not exited [`Dispatcher::with_stop_grace`] later, it is stopped then: a
//!   healthy worker learns of the end within a heartbeat and leaves on its own.
//!
//! Ends in this process are seen at once (every end of a running run wakes the queue);
//! ends elsewhere within [`RUN_CHECK`].
//!
//! At start, [`Dispatcher::recover`] fails the runs whose worker an earlier server
//! started and the launcher knows to be gone.
//!
//! It remembers the runs whose workers it started and that are still running
//! ([`Dispatcher::launched`]), so a stopping server knows which runs are its own to
//! wait for, and to cancel when its grace period is over.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tlao_domain::{LeaseId, RunError, RunErrorCode, RunId, RunStatus, Usage, WorkspaceId};
use tlao_ports::{Launch, LaunchError, RunLauncher, WorkerExit};

use crate::context::Core;
use crate::run_store;
use crate::worker::{Completion, WorkerService};

/// How often the dispatcher looks at the run of each worker it launched, besides
/// waking on every end in this process: ends decided by another API instance.
pub const RUN_CHECK: Duration = Duration::from_secs(5);
/// How long a worker may outlive its run's end by default.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(30);

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
    stop_grace: Duration,
    launched: LaunchedRuns,
    /// Held by each [`Dispatcher::dispatch`]: the loop and a maintenance pass sharing
    /// this dispatcher never both take the launcher's last free slot.
    dispatching: tokio::sync::Mutex<()>,
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
            stop_grace: DEFAULT_STOP_GRACE,
            launched: LaunchedRuns::default(),
            dispatching: tokio::sync::Mutex::new(()),
        }
    }

    /// How long a worker may outlive its run's end (other than `worker_lost`) before it
    /// is stopped; the heartbeat timeout is a good value.
    pub fn with_stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = grace;
        self
    }

    /// The runs whose workers this dispatcher started and that are still running.
    pub fn launched(&self) -> LaunchedRuns {
        self.launched.clone()
    }

    /// Runs until the task is dropped, or until the process stops leasing
    /// ([`Core::stop_leasing`]); the workers it started keep running either way, and
    /// are still watched. Shared (an [`Arc`]) so a [`crate::Maintenance`] pass may
    /// dispatch through the same dispatcher.
    pub async fn run(self: Arc<Self>) {
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

    /// Fails, as `worker_lost`, the runs whose worker an earlier life of the launcher
    /// started and now knows to be gone (the server crashed or was killed), once the
    /// launcher has ended what was left of them; returns those runs. A run that ended
    /// meanwhile, or was leased again, is left as it is. A launcher that cannot tell
    /// fails nothing: the heartbeat timeout still covers its runs.
    pub async fn recover(&self) -> Result<Vec<RunId>, crate::ServiceError> {
        let gone = match self.launcher.recover().await {
            Ok(gone) => gone,
            Err(error) => {
                tracing::warn!(operation = "dispatch.recover", %error, "cannot tell which workers of an earlier server are gone");
                return Ok(Vec::new());
            }
        };
        let mut failed = Vec::new();
        for launch in gone {
            let error = RunError {
                code: RunErrorCode::WorkerLost,
                message: "the worker process is gone: the server that started it stopped without ending its run".into(),
                exit_code: None,
            };
            match self
                .workers
                .complete_if_running(
                    &launch.run_id,
                    &launch.lease_id,
                    Completion::Failed(error),
                    Usage::Unmeasured,
                )
                .await
            {
                Ok(Some(run)) => {
                    tracing::warn!(
                        workspace_id = %run.workspace_id, run_id = %run.run_id,
                        operation = "dispatch.recover", "failed the run of a gone worker"
                    );
                    failed.push(run.run_id);
                }
                Ok(None) => {}
                Err(error @ crate::ServiceError::Unavailable(_)) => return Err(error),
                Err(error) => {
                    tracing::debug!(run_id = %launch.run_id, %error, operation = "dispatch.recover", "the run of a gone worker is not its to fail");
                }
            }
        }
        Ok(failed)
    }

    /// Leases and launches while there is capacity and leasable work; returns how many
    /// workers were started.
    pub async fn dispatch(&self) -> Result<usize, crate::ServiceError> {
        let _dispatching = self.dispatching.lock().await;
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
                    // Subscribed before the watch first runs, so an end that comes
                    // before it does still wakes it.
                    let changes = self.core.queue_version.subscribe();
                    let watch = Watch {
                        core: self.core.clone(),
                        workers: self.workers.clone(),
                        launcher: self.launcher.clone(),
                        launched: self.launched.clone(),
                        workspace_id: lease.run.workspace_id.clone(),
                        launch,
                        stop_grace: self.stop_grace,
                    };
                    tokio::spawn(watch.run(exit, changes));
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
                    let completed = self
                        .workers
                        .complete(
                            &launch.run_id,
                            &launch.lease_id,
                            Completion::Failed(failure),
                            Usage::Unmeasured,
                        )
                        .await;
                    self.launched.lock().remove(&launch.run_id);
                    completed?;
                }
            }
        }
        Ok(started)
    }
}

/// One launched worker and its run, watched until the worker is gone.
struct Watch {
    core: Arc<Core>,
    workers: Arc<WorkerService>,
    launcher: Arc<dyn RunLauncher>,
    launched: LaunchedRuns,
    workspace_id: WorkspaceId,
    launch: Launch,
    stop_grace: Duration,
}

/// What the worker's run says about the worker.
enum Verdict {
    /// The run is still running: the worker is needed.
    Needed,
    /// The run failed as `worker_lost`: stop the worker now.
    Lost,
    /// The run ended otherwise (or is gone): the worker should leave on its own.
    Ended(Option<RunStatus>),
}

impl Watch {
    /// Waits for the worker to exit, stopping it when its run is over without it, then
    /// fails the run if the worker left it running.
    async fn run(self, exit: WorkerExit, changes: tokio::sync::watch::Receiver<u64>) {
        let how = self.supervise(exit, changes).await;
        self.core.signal_queue();
        let error = RunError {
            code: RunErrorCode::WorkerLost,
            message: format!("the worker process ended ({how}) before it completed the run"),
            exit_code: None,
        };
        // Conditional on the lease and on the run still running: a worker that
        // completed its run is left alone.
        if let Ok(Some(run)) = self
            .workers
            .complete_if_running(
                &self.launch.run_id,
                &self.launch.lease_id,
                Completion::Failed(error),
                Usage::Unmeasured,
            )
            .await
        {
            tracing::warn!(
                workspace_id = %run.workspace_id, run_id = %run.run_id,
                operation = "dispatch", "the worker exited without completing its run"
            );
        }
        // Only now: a stopping server waits for this set to empty, and by then no run
        // of an exited worker may still be `running`.
        self.launched.lock().remove(&self.launch.run_id);
    }

    /// Resolves when the worker has exited, with how; stops it on the way when its run
    /// ends without it.
    async fn supervise(
        &self,
        mut exit: WorkerExit,
        mut changes: tokio::sync::watch::Receiver<u64>,
    ) -> String {
        let mut stop_at: Option<tokio::time::Instant> = None;
        let mut stopped = false;
        loop {
            let grace_over = async {
                match stop_at {
                    Some(at) if !stopped => tokio::time::sleep_until(at).await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                how = &mut exit => return how,
                _ = changes.changed() => {}
                () = tokio::time::sleep(RUN_CHECK) => {}
                () = grace_over => {
                    stopped = self.stop("it outlived its run's end by the grace period").await;
                    if !stopped {
                        stop_at = Some(tokio::time::Instant::now() + RUN_CHECK);
                    }
                    continue;
                }
            }
            if stopped || stop_at.is_some() {
                continue;
            }
            match self.verdict().await {
                Verdict::Needed => {}
                Verdict::Lost => stopped = self.stop("its run was failed as worker_lost").await,
                Verdict::Ended(status) => {
                    tracing::debug!(run_id = %self.launch.run_id, ?status, "the run ended; its worker has a grace period to leave");
                    stop_at = Some(tokio::time::Instant::now() + self.stop_grace);
                }
            }
        }
    }

    /// Reads the run; a read that fails says nothing (the next check reads again).
    async fn verdict(&self) -> Verdict {
        let run = match run_store::load(&self.core, &self.workspace_id, &self.launch.run_id).await {
            Ok(Some(stored)) => stored.run,
            Ok(None) => return Verdict::Ended(None),
            Err(error) => {
                tracing::debug!(run_id = %self.launch.run_id, %error, "cannot read the run of a worker");
                return Verdict::Needed;
            }
        };
        if !run.status.is_terminal() {
            Verdict::Needed
        } else if run
            .error
            .as_ref()
            .is_some_and(|e| e.code == RunErrorCode::WorkerLost)
        {
            Verdict::Lost
        } else {
            Verdict::Ended(Some(run.status))
        }
    }

    /// Asks the launcher to stop the worker; whether it is done with (stopped, or
    /// already gone). A failed stop is tried again at the next check.
    async fn stop(&self, why: &str) -> bool {
        match self.launcher.stop(&self.launch.run_id).await {
            Ok(was_running) => {
                tracing::warn!(
                    workspace_id = %self.workspace_id, run_id = %self.launch.run_id,
                    operation = "dispatch.stop", was_running, "stopped a worker: {why}"
                );
                true
            }
            Err(error) => {
                tracing::error!(
                    workspace_id = %self.workspace_id, run_id = %self.launch.run_id,
                    operation = "dispatch.stop", %error, "cannot stop a worker ({why})"
                );
                false
            }
        }
    }
}
