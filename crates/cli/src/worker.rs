//! `tlao worker`: the execution plane. With `--once` it leases one run, executes it and
//! exits — the single-job container of requirement 5.7; without it, it loops. With
//! `--run ID --lease ID` it executes a run the dispatcher already leased for it (how
//! `tlao dev` starts one process per run).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use tlao_domain::{ExecutorName, LeaseId, RunId};
use tlao_worker_kiro::WorkerConfig;

/// Options of `tlao worker`.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// Execute one run, then exit (waits up to --wait for one to be leasable).
    #[arg(long, conflicts_with = "run")]
    pub once: bool,
    /// The control plane's URL.
    #[arg(long, env = "TLAO_API_URL", default_value = "http://127.0.0.1:7411")]
    pub api_url: String,
    /// The worker token the server was configured with.
    #[arg(long, env = "TLAO_WORKER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Only lease runs of these executors (repeatable).
    #[arg(long = "executor")]
    pub executors: Vec<ExecutorName>,
    /// How long `--once` waits for a run, in seconds.
    #[arg(long, default_value_t = 20)]
    pub wait: u64,
    /// Where runs are unpacked [default: a `tlao-work` folder in the temp dir].
    #[arg(long)]
    pub work_root: Option<PathBuf>,
    /// Execute this already-leased run (with --lease).
    #[arg(long, requires = "lease")]
    pub run: Option<RunId>,
    /// The lease of --run.
    #[arg(long, requires = "run")]
    pub lease: Option<LeaseId>,
}

/// Runs the worker.
pub async fn run(args: WorkerArgs) -> anyhow::Result<()> {
    let Some(token) = args.token.filter(|t| !t.is_empty()) else {
        bail!(
            "no worker token: pass --token or set TLAO_WORKER_TOKEN to the server's worker token"
        );
    };
    let mut config = WorkerConfig::new(
        args.api_url.trim_end_matches('/').to_owned(),
        token,
        args.work_root
            .unwrap_or_else(|| std::env::temp_dir().join("tlao-work")),
    );
    if !args.executors.is_empty() {
        config.executors = Some(args.executors);
    }
    match (args.run, args.lease) {
        (Some(run_id), Some(lease_id)) => {
            tlao_worker_kiro::run_assigned(&config, run_id, lease_id)
                .await
                .context("executing the assigned run")?;
        }
        _ if args.once => {
            let summary = tlao_worker_kiro::run_once(&config, Duration::from_secs(args.wait))
                .await
                .context("executing a run")?;
            if summary.is_none() {
                tracing::info!("no run to execute");
            }
        }
        _ => tlao_worker_kiro::run_forever(&config).await?,
    }
    Ok(())
}
