//! `tlao`: the TLÁO Codex command line. The composition root of every process: the dev
//! server, the API server, the worker, and the client commands.

mod bootstrap;
mod dev;
mod logging;
mod profile;
mod secrets;
mod serve;
mod server;
mod settings;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::settings::Settings;

/// TLÁO Codex: hand work to AI coding agents, get back logs and artifacts.
#[derive(Debug, Parser)]
#[command(name = "tlao", version, about, propagate_version = true)]
struct Cli {
    /// A configuration file [default: ./tlao.toml when present].
    #[arg(long, global = true, env = "TLAO_CONFIG")]
    config: Option<PathBuf>,
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
    Worker(worker::WorkerArgs),
}

/// Exit codes of the contract: 2 for usage errors (clap's own), 1 otherwise here.
const EXIT_FAILURE: u8 = 1;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init();
    let result = async {
        match cli.command {
            Command::Dev(args) => dev::run(args, Settings::load(cli.config.as_deref())?).await,
            Command::Serve => serve::run(Settings::load(cli.config.as_deref())?).await,
            Command::Worker(args) => worker::run(args).await,
        }
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
