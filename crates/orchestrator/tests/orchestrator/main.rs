//! The orchestrator's integration tests, one binary: each module was a test binary of its
//! own, and every binary linked the whole crate graph again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod codec_roundtrip;
mod dispatcher;
mod log_page;
mod retry_budget;
mod selection;
mod services;
mod start;
mod store_retry;
mod stream;
mod tenant_limits;
mod worker;
