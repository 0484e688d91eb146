//! The HTTP API of TLÁO Codex: an actix-web app over the orchestrator's services.
//!
//! Handlers are thin: each parses its input into domain types, calls one service method
//! and turns the result into a camelCase JSON view ([`dto`]). Business rules stay in
//! `tlao-orchestrator`; the only HTTP decisions made here are the status codes, which
//! [`ApiError`] chooses in one place.
//!
//! - [`build`] binds the app to a listener and returns the running [`Server`].
//! - [`openapi`] is the OpenAPI document generated from the handlers (also served at
//!   `GET /openapi.json`).
//! - Every response carries `x-request-id`; every error is `application/problem+json`.
//! - The agent console (server-rendered pages, session cookie) is mounted at `/console`,
//!   outside the route table and the OpenAPI document.
//!
//! [`Server`]: actix_web::dev::Server

mod app;
mod auth;
mod bundle;
mod console;
pub mod dto;
mod error;
mod handover;
mod openapi;
mod params;
mod request_id;
mod routes;
mod state;
mod streaming;

pub use app::{AgentSandbox, ApiConfig, AppDeps, build};
pub use auth::{Authenticated, Claims, ISSUER};
pub use error::ApiError;
pub use handover::Handovers;
pub use openapi::openapi;
pub use request_id::{REQUEST_ID_HEADER, RequestId};
