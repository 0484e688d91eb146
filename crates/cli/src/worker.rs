//! `tlao worker`: the execution plane. With `--once` it leases one run, executes it and
//! exits — the single-job container of requirement 5.7; without it, it loops. With
//! `--run ID --lease ID` it executes a run the dispatcher already leased for it (how
//! `tlao dev` starts one process per run); with `--standby` it starts, initialises and
//! waits for that assignment on standard input — one line: `<run id> <lease id>`, or a
//! handover document (the assignment and TaskSpec as JSON, so no request comes before
//! the agent starts) — so a run the launcher hands it costs no process start (see the
//! local launcher's standby workers), and prints `started` on standard output once its
//! agent has started; the pipe closing first ends it, doing nothing.
//!
//! Its exit code says how its run went ([`WORKER_EXIT_CODES`]): 0 only when the run
//! completed (or `--once` found nothing to do), 3 when it gave up on a run because the
//! API did not answer for longer than the heartbeat timeout the lease announced (the
//! agent was stopped and nothing more written; the server has failed the run as
//! `worker_lost`), 4 when the API refuses the worker token, 1 otherwise (the run failed,
//! timed out, was cancelled or ended elsewhere, or the worker failed).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use tlao_domain::{ExecutorName, LeaseId, RunId, RunStatus};
use tlao_sdk::WorkerClientError;
use tlao_sdk::worker::{Handover, MAX_HANDOVER_BYTES, MIN_HEARTBEAT_INTERVAL};
use tlao_worker_kiro::{RunSummary, SandboxMode, WorkerConfig};

use crate::errors::Exit;

/// The exit codes of `tlao worker`, as `--help` shows them.
pub const WORKER_EXIT_CODES: &str = "\
Exit codes:
  0  the run completed (with --once: also when no run was leasable within --wait)
  1  the run failed, timed out, was cancelled or ended elsewhere; or the worker failed
  2  usage error
  3  gave up: the API did not answer for longer than the heartbeat timeout the lease
     announced; the agent was stopped and nothing more was written (the server fails
     the run as worker_lost); also when the API cannot be reached at all
  4  the API refused the worker token";

/// Options of `tlao worker`.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// Execute one run, then exit (waits up to --wait for one to be leasable).
    #[arg(long, conflicts_with = "run")]
    pub once: bool,
    /// Wait on standard input for one already-leased run (one line: `<run id> <lease
    /// id>`, or the launcher's JSON handover) and execute it, printing `started` once its
    /// agent has; exit doing nothing when the input closes first. How the local launcher
    /// keeps workers ready ahead of their runs.
    #[arg(long, conflicts_with_all = ["once", "run"])]
    pub standby: bool,
    /// The control plane's URL.
    #[arg(long, env = "TLAO_API_URL", default_value = "http://127.0.0.1:7411")]
    pub api_url: String,
    /// The worker token the server was configured with.
    #[arg(long, env = "TLAO_WORKER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Only lease runs of these executors (repeatable).
    #[arg(long = "executor")]
    pub executors: Vec<ExecutorName>,
    /// How long `--once` waits for a run, in seconds (at most a day); a wait over the
    /// API's 30 s long-poll is several long-polls, one after the other.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(0..=86_400))]
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
    /// How strictly agents are sandboxed: `auto` (where the kernel can), `required`
    /// (runs fail on a worker that cannot), `off`.
    #[arg(long, env = "TLAO_SANDBOX__MODE", default_value = "auto")]
    pub sandbox: SandboxMode,
    /// Paths every agent may read beneath (repeatable; comma-separated in the variable).
    #[arg(long, env = "TLAO_SANDBOX__READ", value_delimiter = ',')]
    pub sandbox_read: Vec<PathBuf>,
    /// Paths every agent may write beneath (repeatable; comma-separated in the variable).
    #[arg(long, env = "TLAO_SANDBOX__WRITE", value_delimiter = ',')]
    pub sandbox_write: Vec<PathBuf>,
    /// Variables of this worker's environment every agent gets: names, or prefixes
    /// ending in `*` (repeatable; comma-separated in the variable). `TLAO_*` never passes.
    #[arg(long, env = "TLAO_SANDBOX__PASS_ENV", value_delimiter = ',')]
    pub pass_env: Vec<String>,
    /// A directory no agent may see even when it is on its PATH (the server's data
    /// directory; repeatable). The work root always is one.
    #[arg(long)]
    pub protect: Vec<PathBuf>,
}

/// The exit code for how a run went.
fn exit_for(summary: &RunSummary) -> Exit {
    if summary.out_of_contact {
        Exit::Unreachable
    } else if summary.status == Some(RunStatus::Completed) {
        Exit::Success
    } else {
        Exit::Failure
    }
}

/// The exit code for a worker that failed: 3 when the API could not be reached, 4 when
/// it refused the token, 1 otherwise.
fn exit_for_error(error: &anyhow::Error) -> Exit {
    for cause in error.chain() {
        match cause.downcast_ref::<WorkerClientError>() {
            Some(WorkerClientError::Connection { .. }) => return Exit::Unreachable,
            Some(WorkerClientError::Api {
                status: 401 | 403, ..
            }) => return Exit::Denied,
            _ => {}
        }
    }
    Exit::Failure
}

/// Runs the worker; the exit code says how its run went ([`WORKER_EXIT_CODES`]).
pub async fn run(args: WorkerArgs) -> anyhow::Result<Exit> {
    match work(args).await {
        Ok(exit) => Ok(exit),
        Err(error) => {
            let exit = exit_for_error(&error);
            if exit == Exit::Failure {
                return Err(error);
            }
            eprintln!("error: {error:#}");
            Ok(exit)
        }
    }
}

async fn work(args: WorkerArgs) -> anyhow::Result<Exit> {
    // The token is in this process's memory and environment: /proc/<pid>/environ and
    // mem are closed to the agents (and any other process of the user) from here on.
    if let Err(error) = tlao_sandbox::make_non_dumpable() {
        tracing::warn!(%error, "cannot make the worker non-dumpable");
    }
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
    config.sandbox = args.sandbox;
    config.grants.read = args.sandbox_read;
    config.grants.write = args.sandbox_write;
    config.grants.pass_env = args.pass_env;
    config.protected = args.protect;
    match (config.sandbox, tlao_sandbox::support()) {
        (SandboxMode::Off, _) => {
            tracing::warn!("agents run without a sandbox (sandbox.mode = off)")
        }
        (mode, support) => tracing::info!(%mode, %support, "agent sandbox"),
    }
    // What a standby's run would otherwise make first, made while it waits: its
    // directory, its agent's process tree and its sandbox's system rules; whatever the
    // run does not take is removed when this function returns, however it returns.
    let _ahead = args.standby.then(|| {
        tlao_worker_kiro::run_dir::prepare_ahead(
            &config.work_root,
            config.sandbox,
            &config.grants.network,
        )
    });
    let assigned = if args.standby {
        // `ps` (and the tests) tell an idle standby from a worker executing a run.
        set_process_name(STANDBY_NAME);
        let assignment = standby_assignment().await?;
        tracing::debug!(assigned = assignment.is_some(), "standby woken");
        set_process_name("tlao");
        // The launcher starts this standby's replacement when the agent has started.
        tlao_worker_kiro::process::on_first_spawn(|| {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", tlao_adapters_local::STARTED_LINE);
            let _ = out.flush();
        });
        match assignment {
            Some(assigned) => Some(assigned),
            None => {
                tracing::debug!("standby released without a run");
                return Ok(Exit::Success);
            }
        }
    } else {
        args.run
            .zip(args.lease)
            .map(|(run_id, lease_id)| Assigned::Ids(run_id, lease_id))
    };
    let work = async {
        let summary = match assigned {
            Some(Assigned::Ids(run_id, lease_id)) => {
                tlao_worker_kiro::run_assigned(&config, run_id, lease_id)
                    .await
                    .context("executing the assigned run")?
            }
            Some(Assigned::Handed(handover)) => tlao_worker_kiro::run_handed(&config, *handover)
                .await
                .context("executing the handed run")?,
            _ if args.once => {
                match tlao_worker_kiro::run_once(&config, Duration::from_secs(args.wait))
                    .await
                    .context("executing a run")?
                {
                    Some(summary) => summary,
                    None => {
                        tracing::info!("no run to execute");
                        return anyhow::Ok(Exit::Success);
                    }
                }
            }
            _ => tlao_worker_kiro::run_forever(&config).await?,
        };
        if summary.out_of_contact {
            tracing::error!(
                run_id = %summary.run_id,
                "gave up on the run: the API did not answer for longer than its heartbeat timeout"
            );
        }
        anyhow::Ok(exit_for(&summary))
    };
    // Ctrl-C or SIGTERM drops the work, which kills the executor's whole process group;
    // the control plane then sees the worker gone and fails its run as worker_lost.
    tokio::select! {
        result = work => result,
        signal = shutdown_signal() => {
            tracing::warn!(signal, "stopping: the current run's executor is killed");
            bail!("stopped by {signal}");
        }
    }
}

/// The process name (`/proc/<pid>/comm`) of a standby worker waiting for its run.
pub const STANDBY_NAME: &str = "tlao-standby";

/// Names this process (its main thread's `comm`, what `ps` and `top` show), where the
/// system allows it; nothing depends on it.
fn set_process_name(name: &str) {
    #[cfg(target_os = "linux")]
    if let Err(error) = std::fs::write("/proc/self/comm", name) {
        tracing::debug!(%error, name, "cannot name the process");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = name;
}

/// The run a worker was given to execute.
enum Assigned {
    /// By its ids: the worker asks the API for the assignment.
    Ids(RunId, LeaseId),
    /// With its assignment and TaskSpec.
    Handed(Box<Handover>),
}

/// A standby's assignment: one line on standard input, `<run id> <lease id>` or a JSON
/// [`Handover`], or `None` when the input closes without one (the launcher let the
/// standby go).
async fn standby_assignment() -> anyhow::Result<Option<Assigned>> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    let mut line = String::new();
    let mut input = tokio::io::BufReader::new(stdin_reader().take(MAX_HANDOVER_BYTES));
    if input
        .read_line(&mut line)
        .await
        .context("reading the standby's assignment")?
        == 0
    {
        return Ok(None);
    }
    parse_assignment(&line).map(Some)
}

/// Standard input, read asynchronously. A pipe (what the launcher gives a standby) is
/// read through the runtime's poller, so the handover wakes a runtime thread directly;
/// `tokio::io::stdin` would read it on a blocking thread that then wakes a runtime
/// thread, one more hand-off between threads on the run's critical path. Anything else
/// (a terminal, a file) is read through `tokio::io::stdin`.
fn stdin_reader() -> Box<dyn tokio::io::AsyncRead + Unpin + Send> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        if let Ok(fd) = std::io::stdin().as_fd().try_clone_to_owned()
            && let Ok(pipe) = tokio::net::unix::pipe::Receiver::from_owned_fd(fd)
        {
            return Box::new(pipe);
        }
    }
    Box::new(tokio::io::stdin())
}

/// Reads a standby's assignment line.
fn parse_assignment(line: &str) -> anyhow::Result<Assigned> {
    if line.trim_start().starts_with('{') {
        let handover: Handover =
            serde_json::from_str(line).context("the standby's handover is not a valid document")?;
        return Ok(Assigned::Handed(Box::new(handover)));
    }
    let mut words = line.split_whitespace();
    let (Some(run), Some(lease), None) = (words.next(), words.next(), words.next()) else {
        bail!("a standby's assignment is `<run id> <lease id>` or a handover, got {line:?}");
    };
    let run_id = run
        .parse::<RunId>()
        .map_err(|e| anyhow::anyhow!("the assignment's run id {run:?}: {e}"))?;
    let lease_id = lease
        .parse::<LeaseId>()
        .map_err(|e| anyhow::anyhow!("the assignment's lease id {lease:?}: {e}"))?;
    Ok(Assigned::Ids(run_id, lease_id))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standby_reads_ids_or_a_handover_and_refuses_anything_else() {
        let (run, lease) = (
            "run_01M8YN2QS0FWFQJT2JE5BT3ZNR",
            "lease_01M8YN2QS0FWFQJT2JE5BT3ZNS",
        );
        match parse_assignment(&format!("{run} {lease}\n")).unwrap() {
            Assigned::Ids(r, l) => assert_eq!((r.as_str(), l.as_str()), (run, lease)),
            Assigned::Handed(_) => panic!("ids are not a handover"),
        }
        for bad in [
            String::new(),
            format!("{run}\n"),
            format!("{run} {lease} more\n"),
            format!("{lease} {run}\n"),
            "{\"assignment\": 1}\n".to_owned(),
            "{not json\n".to_owned(),
        ] {
            assert!(parse_assignment(&bad).is_err(), "{bad:?}");
        }
    }
}
