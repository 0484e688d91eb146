//! Artifacts: what a run produced, with a download URL while the bytes are available.

use serde::{Deserialize, Serialize};
use tlao_domain::{Artifact, ArtifactId, RunId, Timestamp, WorkspaceId};

use crate::names::{ArtifactStatusName, ArtifactTypeName};

/// An artifact's id (`art_` and a ULID), for the document where ids are listed.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(as = ArtifactId, pattern = "^art_[0-7][0-9A-HJKMNP-TV-Z]{25}$")]
pub struct ArtifactIdText(pub String);

/// An artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ArtifactView {
    /// Its id (`art_...`).
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^art_[0-7][0-9A-HJKMNP-TV-Z]{25}$"))]
    pub artifact_id: ArtifactId,
    /// The run that produced it.
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^run_[0-7][0-9A-HJKMNP-TV-Z]{25}$"))]
    pub run_id: RunId,
    /// The run's workspace.
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^ws_[0-7][0-9A-HJKMNP-TV-Z]{25}$"))]
    pub workspace_id: WorkspaceId,
    /// What it is.
    pub artifact_type: ArtifactTypeName,
    /// Its file name, relative to the run's output.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its media type.
    pub content_type: String,
    /// The lower-case hex SHA-256 of its bytes.
    pub sha256: String,
    /// Where its bytes are.
    pub status: ArtifactStatusName,
    /// The blob key, under `workspaces/{ws}/runs/{run}/artifacts/`.
    pub key: String,
    /// When the record was created (RFC 3339).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// A presigned GET URL; null unless the artifact is available.
    #[serde(default)]
    pub download_url: Option<String>,
    /// When `downloadUrl` stops working; null with it.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub download_url_expires_at: Option<Timestamp>,
    /// Why storing its bytes failed; only when `upload_failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ArtifactView {
    /// The view of an artifact, with its presigned download (URL and expiry) when it has one.
    pub fn new(artifact: Artifact, download: Option<(String, Timestamp)>) -> Self {
        let (download_url, download_url_expires_at) = download.unzip();
        ArtifactView {
            artifact_id: artifact.artifact_id,
            run_id: artifact.run_id,
            workspace_id: artifact.workspace_id,
            artifact_type: artifact.artifact_type.into(),
            name: artifact.name.as_str().to_owned(),
            size: artifact.size,
            content_type: artifact.content_type,
            sha256: artifact.sha256,
            status: artifact.status.into(),
            key: artifact.key,
            created_at: artifact.created_at,
            download_url,
            download_url_expires_at,
            error: artifact.error,
        }
    }
}

/// A run's artifacts, in the order they were produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ArtifactList {
    /// The artifacts.
    pub items: Vec<ArtifactView>,
}
