//! The Rust client of TLÁO Codex, used by the `tlao` CLI and the worker.
//!
//! - [`worker`]: the worker protocol's wire types.
//! - [`worker_client`]: [`WorkerClient`], the worker protocol over HTTP.

pub mod worker;
pub mod worker_client;

pub use worker_client::{ByteStream, RetryPolicy, WorkerClient, WorkerClientError};
