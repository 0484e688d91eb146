//! Workspaces and their archives.

use serde::{Deserialize, Serialize};
use tlao_domain::{Archive, ArchiveId, Guardrails, Timestamp, Workspace, WorkspaceId};

/// The body of `POST /workspaces`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateWorkspaceRequest {
    /// A display name: 1 to 100 characters once white space around it is trimmed, no
    /// control characters.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^[\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,98}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
        )
    )]
    pub name: String,
}

/// A workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceView {
    /// Its id (`ws_...`).
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^ws_[0-7][0-9A-HJKMNP-TV-Z]{25}$"))]
    pub workspace_id: WorkspaceId,
    /// Its display name.
    pub name: String,
    /// When it was created (RFC 3339).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// The guardrails its requests meet, so clients can check before sending.
    pub limits: WorkspaceLimits,
}

impl WorkspaceView {
    /// The view of a workspace under `guardrails`.
    pub fn new(workspace: Workspace, guardrails: &Guardrails) -> Self {
        WorkspaceView {
            workspace_id: workspace.workspace_id,
            name: workspace.name.as_str().to_owned(),
            created_at: workspace.created_at,
            limits: guardrails.into(),
        }
    }
}

/// The guardrails that apply to a workspace's requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceLimits {
    /// The largest archive `POST /workspaces/{workspaceId}/archives` accepts, in bytes
    /// (a larger one is a 413); the CLI refuses before uploading.
    pub max_archive_bytes: u64,
    /// The most entries (files, directories, links) an archive may hold (more is a 413
    /// with `limit: "maxArchiveEntries"`, as the upload streams).
    // An `Option` only so answers of servers from before this limit still read.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = u64, required = true))]
    pub max_archive_entries: Option<u64>,
    /// The most bytes of file content an archive may unpack to (more is a 413 with
    /// `limit: "maxUnpackedBytes"`, as the upload streams).
    // An `Option` only so answers of servers from before this limit still read.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = u64, required = true))]
    pub max_unpacked_bytes: Option<u64>,
}

impl From<&Guardrails> for WorkspaceLimits {
    fn from(guardrails: &Guardrails) -> Self {
        WorkspaceLimits {
            max_archive_bytes: guardrails.max_archive_bytes,
            max_archive_entries: Some(guardrails.max_archive_entries),
            max_unpacked_bytes: Some(guardrails.max_unpacked_bytes),
        }
    }
}

/// One page of the workspaces the caller belongs to, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceList {
    /// The workspaces.
    pub items: Vec<WorkspaceView>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = "^ws_[0-7][0-9A-HJKMNP-TV-Z]{25}$", required = true)
    )]
    pub next_cursor: Option<String>,
}

/// An uploaded workspace archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ArchiveView {
    /// Its id (`arc_...`), for a task's `input.archiveId`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^arc_[0-7][0-9A-HJKMNP-TV-Z]{25}$"))]
    pub archive_id: ArchiveId,
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
            archive_id: archive.archive_id,
            key: archive.key,
            size: archive.size,
            sha256: archive.sha256,
        }
    }
}
