//! The agent console over HTTP, one module per page: signing in and out
//! ([`login`]), the dashboard, the runs list and a run's page with its log
//! ([`runs`]), starting a task through the multipart form ([`new_task`]), artifacts, and
//! what every page shares ([`security`]: CSRF on every form, the security headers, the
//! content-hashed assets, the 404 and 405 pages). [`support`] signs in and reads pages
//! as a browser would. (The browser tests in the repository's `tests/console/` drive
//! the same pages in Chromium.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod artifacts;
mod dashboard;
mod login;
mod new_task;
mod runs;
mod security;
mod support;
