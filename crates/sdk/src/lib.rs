//! The Rust client of TLÁO Codex, used by the `tlao` CLI and the worker.
//!
//! - [`client`]: [`TlaoClient`], the user-facing API (tokens, workspaces, archives,
//!   tasks, runs, artifacts, executors), with its bodies in [`types`].
//! - [`worker`]: the worker protocol's wire types (the wire crate's, re-exported).
//! - [`worker_client`]: [`WorkerClient`], the worker protocol over HTTP.
//! - [`events`]: the wire format of a run's event stream (`GET /runs/{id}/events`).
//! - [`event_stream`]: [`EventStream`], that stream as a user follows it, resuming
//!   across dropped connections.
//! - [`sse`]: the `text/event-stream` parser underneath.
//! - [`retry`]: [`RetryPolicy`], the backoff all three share.
//!
//! Underneath, one private HTTP core (`http.rs`) builds the requests of all three, sends
//! them again when their caller's rules allow, and reads every error answer the same way.

pub mod client;
pub mod event_stream;
pub mod events;
mod http;
pub mod retry;
pub mod sse;
pub mod types;
pub use tlao_wire::worker;
pub mod worker_client;

pub use client::{ClientError, Credentials, Session, TlaoClient};
pub use event_stream::{EventStream, EventStreamError, stream_run_events};
pub use events::EventStreamItem;
pub use retry::RetryPolicy;
pub use tlao_wire as wire;
pub use worker_client::{ByteStream, WorkerClient, WorkerClientError};
