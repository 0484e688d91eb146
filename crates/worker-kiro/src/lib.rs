//! The execution plane of TLÁO Codex: a worker that leases runs from the API and
//! executes them with an agent CLI.
//!
//! - [`run_once`], [`run_assigned`], [`run_forever`]: the worker's entry points
//!   (`tlao worker --once`, `tlao worker --run ID --lease ID`, `tlao worker`).
//! - [`extract`]: safe extraction of hostile workspace archives.
//! - [`KiroExecutor`], [`CommandExecutor`] and [`AcpExecutor`]: the built-in executor kinds, running
//!   the agent in its own process tree ([`process`]).
//! - [`events`]: batching events to the API, heartbeats, stop signals.
//! - [`patch`], [`outputs`], [`upload`]: turning what the agent did into artifacts.

pub mod acp;
pub mod ansi;
pub mod availability;
pub mod command;
pub mod config;
pub mod confine;
pub mod events;
pub mod executors;
pub mod extract;
pub mod kiro;
mod outcome;
pub mod outputs;
pub mod patch;
pub mod probe_cache;
pub mod process;
pub mod prompt;
pub mod run;
pub mod run_dir;
pub mod stream;
pub mod upload;

pub use acp::AcpExecutor;
pub use command::CommandExecutor;
pub use config::WorkerConfig;
pub use confine::{AgentGrants, Confinement, Network, SandboxMode};
pub use executors::executor_for;
pub use extract::{
    ExtractError, ExtractLimits, ExtractSummary, extract_archive, extract_archive_file,
};
pub use kiro::KiroExecutor;
pub use patch::{diff_trees, write_patch};
pub use prompt::build_prompt;
pub use run::{RunSummary, run_assigned, run_forever, run_handed, run_once};
pub use stream::StreamExecutor;
