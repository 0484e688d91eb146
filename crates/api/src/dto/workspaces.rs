//! Workspaces and their archives.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tlao_domain::{Archive, Guardrails, ValidationErrors, Workspace};
use utoipa::ToSchema;

use super::common::rfc3339;
use crate::params::single_string;

/// The body of `POST /workspaces`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateWorkspaceRequest {
    /// A display name, 1 to 100 characters.
    pub name: String,
}

impl CreateWorkspaceRequest {
    /// Reads the name out of a request body.
    pub(crate) fn parse(body: &Value) -> Result<String, ValidationErrors> {
        single_string(body, "name")
    }
}

/// A workspace.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceView {
    /// Its id (`ws_...`).
    pub workspace_id: String,
    /// Its display name.
    pub name: String,
    /// When it was created (RFC 3339).
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The guardrails its requests meet, so clients can check before sending.
    pub limits: WorkspaceLimits,
}

/// The guardrails that apply to a workspace's requests.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceLimits {
    /// The largest archive `POST /workspaces/{workspaceId}/archives` accepts, in bytes
    /// (a larger one is a 413); the CLI refuses before uploading.
    pub max_archive_bytes: u64,
}

impl From<&Guardrails> for WorkspaceLimits {
    fn from(guardrails: &Guardrails) -> Self {
        WorkspaceLimits {
            max_archive_bytes: guardrails.max_archive_bytes,
        }
    }
}

impl WorkspaceView {
    /// The view of a workspace under `guardrails`.
    pub fn new(workspace: Workspace, guardrails: &Guardrails) -> Self {
        WorkspaceView {
            workspace_id: workspace.workspace_id.to_string(),
            name: workspace.name.as_str().to_owned(),
            created_at: rfc3339(workspace.created_at),
            limits: guardrails.into(),
        }
    }
}

/// The workspaces the caller belongs to, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceList {
    /// The workspaces.
    pub items: Vec<WorkspaceView>,
}

/// An uploaded workspace archive.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveView {
    /// Its id (`arc_...`), for a task's `input.archiveId`.
    pub archive_id: String,
    /// The blob key, `workspaces/{ws}/archives/{archiveId}.tar.gz`.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// The lower-case hex SHA-256 of its bytes.
    pub sha256: String,
}

impl From<Archive> for ArchiveView {
    fn from(archive: Archive) -> Self {
        ArchiveView {
            archive_id: archive.archive_id.to_string(),
            key: archive.key,
            size: archive.size,
            sha256: archive.sha256,
        }
    }
}
