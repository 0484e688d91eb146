//! AWS adapters: what TLÁO Codex needs to run on AWS, behind the same ports as the
//! local engines and tested on the same contract suites.
//!
//! - [`DynamoTable`]: the [`Table`](tlao_ports::Table) port on one DynamoDB table.
//! - [`S3BlobStore`]: the [`BlobStore`](tlao_ports::BlobStore) port on one S3 bucket,
//!   with S3's own presigned URLs.
//! - [`EcsLauncher`]: the [`RunLauncher`](tlao_ports::RunLauncher) port on ECS/Fargate.
//! - [`SecretWriter`]: stores a value in a Secrets Manager secret (the administrator's
//!   key, written by `tlao admin bootstrap --key-secret`).
//! - [`AwsConnection`]: region and endpoint override (emulators); credentials come from
//!   the standard AWS chain.
//!
//! AWS SDK types never leave this crate: every SDK error is classified into the port's
//! error here (throttling, 5xx, timeouts and transaction conflicts are `Transient`).
//!
//! A failed write is tried at most three times in all (requirement 13.2): the table
//! port's DynamoDB calls are one request each, retried by the orchestrator's store
//! only; S3 requests, which the orchestrator does not retry, by the SDK only.

mod connection;
mod dynamo_expr;
mod dynamo_table;
mod ecs_launcher;
#[cfg(test)]
mod retry_budget;
mod s3_blob;
mod sdk_error;
mod secrets;

pub use connection::{AwsConnection, DEFAULT_REGION};
pub use dynamo_table::{DynamoTable, TTL_ATTRIBUTE};
pub use ecs_launcher::{EcsLauncher, EcsLauncherConfig, STARTED_BY, STOP_REASON};
pub use s3_blob::{PART_BYTES, S3BlobStore};
pub use secrets::SecretWriter;

/// What an idempotent provisioning step (`ensure_table`, `ensure_bucket`) found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provisioned {
    /// It was missing and has been created.
    Created,
    /// It already existed.
    Existing,
}
