//! Artifacts (requirement 3): metadata and a presigned download URL.

use std::sync::Arc;
use std::time::Duration;

use tlao_domain::{Artifact, ArtifactId, ArtifactStatus, RunId, WorkspaceId, keys};
use tlao_ports::{BlobKey, Cursor, Direction, PresignedUrl, Query};

use crate::codec::LookupOf;
use crate::context::{Caller, Core};
use crate::error::ServiceError;

/// How long a download URL works.
pub const DOWNLOAD_TTL: Duration = Duration::from_secs(15 * 60);

/// An artifact and, when its bytes are available, where to download them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactView {
    /// The record.
    pub artifact: Artifact,
    /// A presigned GET URL, when the artifact is available.
    pub download: Option<PresignedUrl>,
}

/// Reads artifacts.
pub struct ArtifactService {
    core: Arc<Core>,
}

impl ArtifactService {
    /// The service over shared dependencies.
    pub fn new(core: Arc<Core>) -> Self {
        ArtifactService { core }
    }

    /// An artifact with a download URL (requirements 3.2, 3.4).
    pub async fn get(
        &self,
        caller: &Caller,
        id: &ArtifactId,
    ) -> Result<ArtifactView, ServiceError> {
        let ws = self
            .core
            .locate(LookupOf::Artifact(id.clone()))
            .await?
            .ok_or_else(|| ServiceError::not_found("artifact", id))?;
        self.core.require_member(caller, &ws).await?;
        let artifact = self
            .core
            .store
            .get::<Artifact>(&keys::artifact(&ws, id))
            .await?
            .ok_or_else(|| ServiceError::not_found("artifact", id))?;
        self.with_download(artifact).await
    }

    /// The artifacts of a run the caller can see, in the order they were produced.
    pub async fn list_for_run(
        &self,
        caller: &Caller,
        run_id: &RunId,
    ) -> Result<Vec<ArtifactView>, ServiceError> {
        let run = self.core.run_for(caller, run_id).await?;
        let ws = run.workspace_id.clone();
        let mut views = Vec::with_capacity(run.artifact_ids.len());
        for id in &run.artifact_ids {
            if let Some(artifact) = self
                .core
                .store
                .get::<Artifact>(&keys::artifact(&ws, id))
                .await?
            {
                views.push(self.with_download(artifact).await?);
            }
        }
        Ok(views)
    }

    /// A page of a workspace's artifacts, newest first, and the id to continue after
    /// when there are more. No download URLs: they are made when one is downloaded.
    pub async fn list_for_workspace(
        &self,
        caller: &Caller,
        ws: &WorkspaceId,
        limit: usize,
        after: Option<&ArtifactId>,
    ) -> Result<(Vec<Artifact>, Option<ArtifactId>), ServiceError> {
        self.core.require_member(caller, ws).await?;
        let limit = limit.clamp(1, crate::runs::MAX_PAGE);
        let cursor = after.map(|id| Cursor::after(keys::artifact(ws, id).sk));
        let (artifacts, next) = self
            .core
            .store
            .query::<Artifact>(
                Query::new(keys::artifacts_of(ws), Direction::Backward, limit).after(cursor),
            )
            .await?;
        let next = next
            .and_then(|_| artifacts.last())
            .map(|artifact| artifact.artifact_id.clone());
        Ok((artifacts, next))
    }

    async fn with_download(&self, artifact: Artifact) -> Result<ArtifactView, ServiceError> {
        let download = if artifact.status == ArtifactStatus::Available {
            let key =
                BlobKey::parse(&artifact.key).map_err(|e| ServiceError::Internal(e.into()))?;
            Some(self.core.blobs.presign_get(&key, DOWNLOAD_TTL).await?)
        } else {
            None
        };
        Ok(ArtifactView { artifact, download })
    }
}
