//! The run launcher port: how the control plane starts a single-job worker for a run it
//! has leased — a local process in `tlao dev`, a container on AWS.

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

/// Starts single-job workers.
#[async_trait]
pub trait RunLauncher: Send + Sync {
    /// How many more workers may be started now.
    fn capacity(&self) -> usize;

    /// Starts one worker for a leased run and returns a future of its exit.
    ///
    /// Errors: `Busy` when at capacity, `Failed` when the worker could not be started
    /// (the caller fails the run with the message).
    async fn launch(&self, launch: &Launch) -> Result<WorkerExit, LaunchError>;
}
