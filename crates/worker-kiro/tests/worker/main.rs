//! The worker's integration tests, one binary: each module was a test binary of its own,
//! and every binary linked the whole crate graph again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/mod.rs"]
mod support;

mod acp_executor;
mod availability;
mod command_executor;
mod extract;
mod kiro_executor;
mod logging;
mod outages;
mod patch;
mod process_group;
mod process_tree;
mod run_loop;
