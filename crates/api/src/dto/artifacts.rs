//! Artifacts: what a run produced, with a download URL while the bytes are available.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::common::rfc3339;
use super::{ArtifactStatusName, ArtifactTypeName};

/// An artifact.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactView {
    /// Its id (`art_...`).
    pub artifact_id: String,
    /// The run that produced it.
    pub run_id: String,
    /// The run's workspace.
    pub workspace_id: String,
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
    #[schema(format = DateTime)]
    pub created_at: String,
    /// A presigned GET URL; null unless the artifact is available.
    pub download_url: Option<String>,
    /// When `downloadUrl` stops working; null with it.
    #[schema(format = DateTime)]
    pub download_url_expires_at: Option<String>,
}

impl From<tlao_orchestrator::ArtifactView> for ArtifactView {
    fn from(view: tlao_orchestrator::ArtifactView) -> Self {
        let tlao_orchestrator::ArtifactView { artifact, download } = view;
        let (download_url, download_url_expires_at) = match download {
            Some(url) => (Some(url.url), Some(rfc3339(url.expires_at))),
            None => (None, None),
        };
        ArtifactView {
            artifact_id: artifact.artifact_id.to_string(),
            run_id: artifact.run_id.to_string(),
            workspace_id: artifact.workspace_id.to_string(),
            artifact_type: artifact.artifact_type.into(),
            name: artifact.name.as_str().to_owned(),
            size: artifact.size,
            content_type: artifact.content_type,
            sha256: artifact.sha256,
            status: artifact.status.into(),
            key: artifact.key,
            created_at: rfc3339(artifact.created_at),
            download_url,
            download_url_expires_at,
        }
    }
}

/// A run's artifacts, in the order they were produced.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ArtifactList {
    /// The artifacts.
    pub items: Vec<ArtifactView>,
}
