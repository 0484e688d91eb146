//! `tlao`: the TLÁO Codex command line. The composition root of every process: the dev
//! server, the API server, the worker, and the client commands.
//!
//! A library with one entry point, [`main`], which `src/main.rs` calls: built as a
//! library, the command line compiles while its dependencies are still generating code
//! (cargo pipelines libraries, not binaries), which shortens a first build.
//!
//! Exit codes (`CONTRACT.md`): 0 success or the run completed; 1 the run failed, timed
//! out or was cancelled, or another error; 2 a usage error; 3 the API cannot be
//! reached; 4 not authenticated or not allowed (the `errors` module).

mod admin;
mod aws;
mod bootstrap;
mod commands;
mod context;
mod dev;
mod errors;
mod follow;
mod git;
mod launcher;
mod logging;
mod metrics;
mod output;
mod package;
mod profile;
mod progress;
mod prompt;
mod secrets;
mod serve;
mod server;
mod settings;
mod shutdown;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands::{
    apply, artifacts, auth, bundle, executors, keys, logs, rerun, run, runs, workspace,
};
use crate::errors::Exit;
use crate::settings::Settings;

/// TLÁO Codex: hand work to AI coding agents, get back logs and artifacts.
#[derive(Debug, Parser)]
#[command(
    name = "tlao",
    version,
    propagate_version = true,
    after_help = "Start here:\n  \
        tlao dev                          # the whole system on this machine (logs you in)\n  \
        tlao run plan \"add a health check\"  # package this directory, run the agent, stream logs\n  \
        tlao run change \"fix the bug\" --apply  # the change, applied to this repository\n  \
        tlao runs                         # what ran\n\n\
        Exit codes: 0 success (run completed), 1 run failed/timed out/cancelled or error,\n\
        2 usage error, 3 cannot reach the API, 4 not authenticated or not allowed.\n\
        TLAO_API_URL and TLAO_TOKEN override the stored profile."
)]
struct Cli {
    /// A configuration file for `dev` and `serve` [default: ./tlao.toml when present].
    #[arg(long, global = true, env = "TLAO_CONFIG")]
    config: Option<PathBuf>,
    /// The stored login to use.
    #[arg(
        long,
        global = true,
        env = "TLAO_PROFILE",
        default_value = profile::DEFAULT_PROFILE,
        value_name = "NAME"
    )]
    profile: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole system on this machine: API, console, local workers, embedded storage.
    ///
    /// Example: tlao dev --addr 127.0.0.1:7411
    Dev(dev::DevArgs),
    /// Run the API and orchestrator on the configured adapters.
    ///
    /// Example: TLAO_STORAGE__KIND=sqlite TLAO_AUTH__SECRET_FILE=/etc/tlao/secret tlao serve
    Serve,
    /// Execute runs: lease, run the agent, stream logs, upload artifacts.
    ///
    /// Example: TLAO_WORKER_TOKEN=... tlao worker --once --api-url http://127.0.0.1:7411
    #[command(after_help = worker::WORKER_EXIT_CODES)]
    Worker(worker::WorkerArgs),
    /// Operator steps on the configured storage: create the AWS table and bucket, the first administrator.
    ///
    /// Example: tlao admin init-aws && tlao admin bootstrap
    Admin(admin::AdminArgs),
    /// Log in to a server with an API key and store the login in the profile.
    Login(auth::LoginArgs),
    /// Forget the profile's API key and token.
    ///
    /// Example: tlao logout
    Logout,
    /// Show who the profile is logged in as, checked against the server.
    Whoami(auth::WhoamiArgs),
    /// Hand a task to an agent (plan, change, doc, deploy), or show or cancel a run.
    Run(run::RunArgs),
    /// List runs, newest first.
    Runs(runs::RunsArgs),
    /// Apply a code.change run's patch to this repository (or commit it on a branch).
    Apply(apply::ApplyArgs),
    /// Start a new run of a run's task: the same TaskSpec and workspace archive.
    Rerun(rerun::RerunArgs),
    /// Show how two runs' patches differ.
    Diff(rerun::DiffArgs),
    /// Download a run's bundle: everything needed to understand and reproduce it.
    Bundle(bundle::BundleArgs),
    /// Show a run's logs, or follow them live.
    Logs(logs::LogsArgs),
    /// List what a run produced.
    Artifacts(artifacts::ArtifactsArgs),
    /// Download an artifact.
    Artifact(artifacts::ArtifactArgs),
    /// Create, list, or choose workspaces.
    Workspace(workspace::WorkspaceArgs),
    /// List, register or remove executors.
    Executors(executors::ExecutorsArgs),
    /// List, create or revoke API keys.
    Keys(keys::KeysArgs),
}

/// Runs the `tlao` command line with the process's arguments and returns its exit code.
///
/// A worker runs on a single-threaded runtime: it executes one run at a time, mostly
/// waiting on its agent and the API, and moves its heavy work (unpacking, diffing) to
/// blocking threads. On one thread, the handover a standby waits for, its agent's
/// output and the reports to the API wake the task that needs them directly instead
/// of waking a second worker thread: measured, `POST /runs` → agent started fell from
/// p50 6.2–6.7 ms to 5.2–6.0 ms (docs/performance.md). Everything else (the server,
/// the client commands) runs on a multi-threaded runtime.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut builder = if matches!(cli.command, Command::Worker(_)) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    match builder.enable_all().build() {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            ExitCode::from(Exit::Failure.code())
        }
    }
}

async fn run(cli: Cli) -> ExitCode {
    let profile = cli.profile;
    let client_command = !matches!(
        cli.command,
        Command::Dev(_) | Command::Serve | Command::Worker(_) | Command::Admin(_)
    );
    if client_command {
        logging::init_client();
        output::init_colors();
    } else {
        logging::init();
    }
    let result = match cli.command {
        Command::Dev(args) => {
            async { dev::run(args, Settings::load(cli.config.as_deref())?).await }
                .await
                .map(|()| Exit::Success)
        }
        Command::Serve => async { serve::run(Settings::load(cli.config.as_deref())?).await }
            .await
            .map(|()| Exit::Success),
        Command::Worker(args) => worker::run(args).await,
        Command::Admin(args) => {
            async { admin::run(args, Settings::load(cli.config.as_deref())?).await }
                .await
                .map(|()| Exit::Success)
        }
        Command::Login(args) => auth::login(args, &profile).await,
        Command::Logout => auth::logout(&profile),
        Command::Whoami(args) => auth::whoami(args, &profile).await,
        Command::Run(args) => run::run(args, &profile).await,
        Command::Runs(args) => runs::runs(args, &profile).await,
        Command::Apply(args) => apply::apply(args, &profile).await,
        Command::Rerun(args) => rerun::rerun(args, &profile).await,
        Command::Diff(args) => rerun::diff(args, &profile).await,
        Command::Bundle(args) => bundle::bundle(args, &profile).await,
        Command::Logs(args) => logs::logs(args, &profile).await,
        Command::Artifacts(args) => artifacts::list(args, &profile).await,
        Command::Artifact(args) => artifacts::artifact(args, &profile).await,
        Command::Workspace(args) => workspace::workspace(args, &profile).await,
        Command::Executors(args) => executors::executors(args, &profile).await,
        Command::Keys(args) => keys::keys(args, &profile).await,
    };
    match result {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(error) if client_command => {
            eprintln!("{}", errors::render(&error, &profile));
            ExitCode::from(errors::exit_code(&error).code())
        }
        Err(error) => {
            // The processes print the whole chain on one line and exit 1.
            eprintln!("error: {error:#}");
            ExitCode::from(Exit::Failure.code())
        }
    }
}
