//! The CLI's integration tests, one binary: each module was a test binary of its own,
//! and every binary linked the whole stack again. Each test still runs `tlao` as a
//! process of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod acp;
mod acp_agents;
mod apply;
mod aws_e2e;
mod chaos_process_trees;
mod chaos_server;
mod chaos_storage;
mod cli;
mod deploy_files;
mod dev_server;
mod execution;
mod sandbox;
mod shutdown;
mod stream_agents;
mod worker_faults;
