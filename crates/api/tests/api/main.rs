//! The API's integration tests, one binary: each module was a test binary of its own, and
//! every binary links the whole stack again (the clean test build paid ~15 links of it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod archives;
mod artifacts;
mod auth;
mod availability;
mod events;
mod http;
mod keys;
mod logging;
mod maintenance;
mod registry_and_workspaces;
mod runs;
mod sdk_event_stream;
mod tasks;
mod tenant_limits;
mod worker;
