//! The run launcher port: how the control plane starts a single-job worker for a run it
//! has leased — a local process in `tlao dev`, a container on AWS — and ends it again
//! when the run is over without it: lost, timed out, or the server stopping.

use std::future::Future;
use std::pin::Pin;

use async_trait::async_trait;
use tlao_domain::{LeaseId, RunId};

/// What a started worker needs to find its run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The run, already leased.
    pub run_id: RunId,
    /// The lease the worker must carry.
    pub lease_id: LeaseId,
}

/// Resolves when the worker has exited, with a description of how (`exit status 0`,
/// `killed by signal 9`). Launchers that cannot observe their workers never resolve it;
/// the reaper's heartbeat timeout covers them.
pub type WorkerExit = Pin<Box<dyn Future<Output = String> + Send>>;

/// Why a worker could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// No capacity right now; try again later.
    #[error("no worker capacity: {0}")]
    Busy(String),
    /// Starting failed (missing binary, refused by the container service, ...).
    #[error("could not start a worker: {0}")]
    Failed(String),
}

/// Why a worker could not be stopped.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    /// The platform running the workers cannot be reached now (a throttled or failing
    /// container API); a later call may succeed.
    #[error("the worker could not be stopped now: {0}")]
    Transient(String),
    /// The platform refused or failed the stop for good.
    #[error("the worker could not be stopped: {0}")]
    Failed(String),
}

/// Starts single-job workers, and stops them.
#[async_trait]
pub trait RunLauncher: Send + Sync {
    /// How many more workers may be started now.
    fn capacity(&self) -> usize;

    /// Starts one worker for a leased run and returns a future of its exit.
    ///
    /// Errors: `Busy` when at capacity, `Failed` when the worker could not be started
    /// (the caller fails the run with the message).
    async fn launch(&self, launch: &Launch) -> Result<WorkerExit, LaunchError>;

    /// Stops the worker this launcher started for `run_id`, with everything it started
    /// (its agent, the agent's children), however it is doing — hung, stopped with
    /// `SIGSTOP`, busy. Once the worker is gone its exit future resolves and its slot is
    /// free. Returns `true` when there was such a worker still running, `false` when
    /// this launcher has none for the run (never started here, or already gone), which
    /// is not an error: a run may be ended by any instance of the control plane.
    ///
    /// A local launcher returns once the processes are dead; a container launcher once
    /// the platform accepted the stop.
    ///
    /// Errors: `Transient` when the platform cannot be reached now (call again),
    /// `Failed` when it refused.
    async fn stop(&self, run_id: &RunId) -> Result<bool, StopError>;

    /// Stops every worker this launcher started that still runs, as [`RunLauncher::stop`]
    /// does one (for a server that is shutting down). Returns how many were stopped.
    ///
    /// Errors: the first error met; the other workers are still stopped.
    async fn stop_all(&self) -> Result<usize, StopError>;

    /// Ends what is left of workers an earlier life of this launcher started (the
    /// server crashed or was killed) and returns the launches whose worker is known to
    /// be gone, so their runs can fail at once instead of waiting out the heartbeat
    /// timeout. A worker that may still be running is not returned. Launchers that keep
    /// no record of earlier workers return nothing (the default).
    ///
    /// Errors: `Failed` when the records cannot be read; nothing was ended then.
    async fn recover(&self) -> Result<Vec<Launch>, StopError> {
        Ok(Vec::new())
    }
}
