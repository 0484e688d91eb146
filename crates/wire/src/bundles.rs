//! The run bundle (`GET /runs/{id}/bundle`, `tlao bundle`): one `tar.gz` holding
//! everything needed to understand and reproduce a run, under a directory named after
//! the run, with a [`BundleManifest`] (`manifest.json`) listing every other file with
//! its size and SHA-256.
//!
//! The files: `run.json` (the run: status, timings, usage, error, its kept log),
//! `task.json` (the task and its TaskSpec, with the commit its archive was packed
//! from), `executor.json` ([`BundleExecutor`]), `archive.json` (the workspace
//! archive's record and hash, when the task has one) and `archive.tar.gz` (the archive
//! itself, when asked for), `events.jsonl` (every stored event, one JSON object a
//! line, as the event stream sends them), `artifacts.json` (each artifact's record
//! with its hash) and `artifacts/<artifactId>/<name>` (the bytes of each available
//! artifact: the patch, the transcript, the files the agent wrote).

use serde::{Deserialize, Serialize};
use tlao_domain::{RunId, Timestamp};

use crate::executors::ExecutorView;

/// The name of a bundle's manifest, in its directory.
pub const BUNDLE_MANIFEST: &str = "manifest.json";
/// The bundle format [`BundleManifest::format`] names.
pub const BUNDLE_FORMAT: &str = "tlao-run-bundle/1";

/// `manifest.json`: what a bundle holds, and the hashes to check it by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BundleManifest {
    /// The format, [`BUNDLE_FORMAT`].
    pub format: String,
    /// The run.
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^run_[0-7][0-9A-HJKMNP-TV-Z]{25}$"))]
    pub run_id: RunId,
    /// When the bundle was made (RFC 3339).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// The version of the server that made it.
    pub server_version: String,
    /// Every other file of the bundle, by its path inside the bundle's directory.
    pub files: Vec<BundleFile>,
    /// What was left out, and why (an artifact that is not available, blobs past the
    /// bundle's size limit).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub omitted: Vec<String>,
}

/// One file of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BundleFile {
    /// Its path inside the bundle's directory (`run.json`, `artifacts/art_…/plan.json`).
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// The lower-case hex SHA-256 of its bytes.
    pub sha256: String,
}

/// `executor.json`: the executor the run ran on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BundleExecutor {
    /// Its name, as the run records it.
    pub name: String,
    /// Its registry record, when it is still registered.
    pub record: Option<ExecutorView>,
    /// The version its program last reported (`--version`'s first line), if any.
    pub agent_version: Option<String>,
}
