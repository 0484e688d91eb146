//! The client commands, one module per command family; each takes its parsed
//! arguments and the profile name and returns how the process should exit.

pub mod apply;
pub mod artifacts;
pub mod auth;
pub mod bundle;
pub mod executors;
pub mod keys;
pub mod logs;
pub mod rerun;
pub mod run;
pub mod runs;
pub mod workspace;
