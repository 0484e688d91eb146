//! Workspace archives (requirements 7.1, 11.2, 11.4): a tar.gz streamed into the blob
//! store under `workspaces/{ws}/archives/`, measured and hashed on the way, and refused
//! as soon as it passes the size guardrail — never buffered whole in memory.

use std::sync::{Arc, Mutex};

use futures::StreamExt;
use sha2::{Digest, Sha256};
use tlao_domain::{Archive, ArchiveId, WorkspaceId, keys};
use tlao_ports::{BlobError, BlobKey, ByteStream};

use crate::context::{Caller, Core};
use crate::error::ServiceError;
use crate::transactions;
use crate::users::hex_lower;

/// Why the upload stream was cut; travels inside the `io::Error` the blob store returns.
#[derive(Debug, thiserror::Error)]
enum Rejected {
    #[error("the archive exceeds {0} bytes")]
    TooLarge(u64),
    #[error("the body is not a gzip stream (it must start with 1f 8b)")]
    NotGzip,
}

#[derive(Default)]
struct Progress {
    size: u64,
    head: Vec<u8>,
    hasher: Sha256,
}

/// Accepts workspace archive uploads.
pub struct ArchiveService {
    core: Arc<Core>,
}

impl ArchiveService {
    /// The service over shared dependencies.
    pub fn new(core: Arc<Core>) -> Self {
        ArchiveService { core }
    }

    /// Streams an archive into the workspace. A declared length above the limit is
    /// refused before anything is read; an undeclared one is cut off as soon as it
    /// passes the limit, and nothing is stored.
    pub async fn upload(
        &self,
        caller: &Caller,
        ws: &WorkspaceId,
        declared_len: Option<u64>,
        body: ByteStream,
    ) -> Result<Archive, ServiceError> {
        self.core.require_member(caller, ws).await?;
        let max_bytes = self.core.guardrails.max_archive_bytes;
        if declared_len.is_some_and(|len| len > max_bytes) {
            return Err(ServiceError::TooLarge { max_bytes });
        }
        let archive_id = ArchiveId::new(self.core.new_ulid());
        let key_text = keys::blob::archive(ws, &archive_id);
        let key = BlobKey::parse(&key_text).map_err(|e| ServiceError::Internal(e.into()))?;

        let progress = Arc::new(Mutex::new(Progress::default()));
        let seen = progress.clone();
        let checked: ByteStream = Box::pin(body.map(move |chunk| {
            let chunk = chunk?;
            let mut p = seen
                .lock()
                .map_err(|_| std::io::Error::other("progress lock poisoned"))?;
            p.size += chunk.len() as u64;
            if p.size > max_bytes {
                return Err(std::io::Error::other(Rejected::TooLarge(max_bytes)));
            }
            if p.head.len() < 2 {
                let need = 2 - p.head.len();
                p.head.extend(chunk.iter().take(need));
                if p.head.len() == 2 && p.head != [0x1f, 0x8b] {
                    return Err(std::io::Error::other(Rejected::NotGzip));
                }
            }
            p.hasher.update(&chunk);
            Ok(chunk)
        }));
        match self
            .core
            .blobs
            .put_stream(&key, checked, "application/gzip")
            .await
        {
            Ok(_) => {}
            Err(BlobError::Body(error)) => return Err(rejection(error, max_bytes)),
            Err(other) => return Err(other.into()),
        }
        let (size, sha256, head_ok) = {
            let p = progress
                .lock()
                .map_err(|_| ServiceError::Internal(anyhow::anyhow!("progress lock poisoned")))?;
            (
                p.size,
                hex_lower(&p.hasher.clone().finalize()),
                p.head == [0x1f, 0x8b],
            )
        };
        if !head_ok {
            let _ = self.core.blobs.delete(&key).await;
            return Err(ServiceError::invalid("body", Rejected::NotGzip.to_string()));
        }
        let archive = Archive {
            archive_id,
            workspace_id: ws.clone(),
            key: key_text,
            size,
            sha256,
            uploaded_by: caller.user_id.clone(),
            created_at: self.core.now(),
        };
        transactions::store_archive(&self.core.store, &archive).await?;
        tracing::info!(workspace_id = %ws, archive_id = %archive.archive_id, size, operation = "upload_archive", "archive stored");
        Ok(archive)
    }
}

fn rejection(error: std::io::Error, max_bytes: u64) -> ServiceError {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<Rejected>())
    {
        Some(Rejected::TooLarge(_)) => ServiceError::TooLarge { max_bytes },
        Some(Rejected::NotGzip) => ServiceError::invalid("body", Rejected::NotGzip.to_string()),
        None => ServiceError::invalid("body", format!("the upload was interrupted: {error}")),
    }
}
