//! The local run launcher: one `tlao worker --run ID --lease ID` process per run, so each
//! run is an isolated process exactly as it is an isolated container in the cloud.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use tlao_ports::{Launch, LaunchError, RunLauncher, WorkerExit};
use tokio::process::Command;

/// Starts worker processes, at most `max_workers` at once.
pub struct ProcessLauncher {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    max_workers: usize,
    running: Arc<AtomicUsize>,
}

impl ProcessLauncher {
    /// Launches `program args... --run ID --lease ID` with `env` added to this
    /// process's environment (the API URL and worker token go there).
    pub fn new(
        program: PathBuf,
        args: Vec<String>,
        env: Vec<(String, String)>,
        max_workers: usize,
    ) -> Self {
        ProcessLauncher {
            program,
            args,
            env,
            max_workers: max_workers.max(1),
            running: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Workers currently running.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }
}

/// Decrements the running count when the worker's watcher ends, however it ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl RunLauncher for ProcessLauncher {
    fn capacity(&self) -> usize {
        self.max_workers.saturating_sub(self.running())
    }

    async fn launch(&self, launch: &Launch) -> Result<WorkerExit, LaunchError> {
        // Reserve a slot first so concurrent launches cannot overshoot the bound.
        let previous = self.running.fetch_add(1, Ordering::SeqCst);
        let slot = Slot(self.running.clone());
        if previous >= self.max_workers {
            return Err(LaunchError::Busy(format!(
                "{} workers are running",
                self.max_workers
            )));
        }
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .arg("--run")
            .arg(launch.run_id.as_str())
            .arg("--lease")
            .arg(launch.lease_id.as_str())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .kill_on_drop(false);
        let mut child = command
            .spawn()
            .map_err(|e| LaunchError::Failed(format!("{}: {e}", self.program.display())))?;
        tracing::debug!(run_id = %launch.run_id, pid = child.id(), "worker process started");
        Ok(Box::pin(async move {
            let _slot = slot;
            match child.wait().await {
                Ok(status) => describe(status),
                Err(e) => format!("could not be waited for: {e}"),
            }
        }))
    }
}

fn describe(status: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("killed by signal {signal}");
        }
    }
    match status.code() {
        Some(code) => format!("exit status {code}"),
        None => "an unknown exit status".into(),
    }
}
