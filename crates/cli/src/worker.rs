//! `tlao worker`: the execution plane. With `--once` it leases one run, executes it and
//! exits — the single-job container of requirement 5.7; without it, it loops. With
//! `--run ID --lease ID` it executes a run the dispatcher already leased for it (how
//! `tlao dev` starts one process per run).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use tlao_domain::{ExecutorName, LeaseId, RunId};
use tlao_sdk::worker::MIN_HEARTBEAT_INTERVAL;
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
    /// The most time between heartbeats while the executor is quiet, in milliseconds.
    /// Each lease also says how often the server wants them (a third of its
    /// `worker.heartbeat_timeout_seconds`); the shorter of the two is used.
    #[arg(long, env = "TLAO_WORKER_HEARTBEAT_MS", default_value_t = 5000)]
    pub heartbeat_ms: u64,
    /// The most bytes of file content a workspace archive may extract to; the API's
    /// setting of the same name checks uploads against it.
    #[arg(
        long,
        env = "TLAO_GUARDRAILS__MAX_UNPACKED_BYTES",
        default_value_t = tlao_domain::Guardrails::DEFAULT_MAX_UNPACKED_BYTES
    )]
    pub max_unpacked_bytes: u64,
    /// The most entries a workspace archive may hold; the API's setting of the same
    /// name checks uploads against it.
    #[arg(
        long,
        env = "TLAO_GUARDRAILS__MAX_ARCHIVE_ENTRIES",
        default_value_t = tlao_domain::Guardrails::DEFAULT_MAX_ARCHIVE_ENTRIES
    )]
    pub max_archive_entries: u64,
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
    config.heartbeat_interval =
        Duration::from_millis(args.heartbeat_ms).max(MIN_HEARTBEAT_INTERVAL);
    config.max_extracted_bytes = args.max_unpacked_bytes;
    config.max_entries = args.max_archive_entries;
    let work = async {
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
        anyhow::Ok(())
    };
    // Ctrl-C or SIGTERM drops the work, which kills the executor's whole process group;
    // the control plane then sees the worker gone and fails its run as worker_lost.
    tokio::select! {
        result = work => result?,
        signal = shutdown_signal() => {
            tracing::warn!(signal, "stopping: the current run's executor is killed");
            bail!("stopped by {signal}");
        }
    }
    Ok(())
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM, naming the signal.
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
