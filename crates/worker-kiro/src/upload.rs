//! Uploading one artifact: hash, register, `PUT` with retries, finalize.
//!
//! The SHA-256 and size are computed while reading the file once; the record is
//! created `pending`; the bytes are streamed to the presigned URL, up to
//! [`UPLOAD_ATTEMPTS`] times with backoff; then the artifact is finalized, with the
//! last error when every attempt failed, which makes it `upload_failed` (requirement
//! 13.3) and fails the run with a message naming it.
//!
//! An upload URL stores once. So when an attempt's answer was lost after the bytes
//! were stored, the next attempt is refused — `409` from the API's presigned gateway,
//! `412` from S3 — and that refusal ends the attempts without an error: the artifact
//! is finalized as if the upload had succeeded, and finalization, which checks the
//! stored bytes' size and SHA-256 against the declared ones, decides (`available` when
//! they are ours; `upload_failed` naming the mismatch otherwise; a refusal because the
//! run ended makes finalization fenced, and the worker stops).

use std::io;
use std::path::Path;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::Stream;
use sha2::{Digest, Sha256};
use tlao_domain::{LeaseId, ProducedArtifact, RunId, WorkspaceId};
use tlao_sdk::wire::{ArtifactStatusName, ArtifactView};
use tlao_sdk::worker::{ArtifactRequest, FinalizeRequest};
use tlao_sdk::{WorkerClient, WorkerClientError};
use tokio::io::AsyncReadExt;

/// How many times the bytes of an artifact are sent before giving up.
pub const UPLOAD_ATTEMPTS: u32 = 3;
/// The delay before the second attempt; it triples for the third.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(500);
/// The size of the chunks a file is read and sent in.
const CHUNK_BYTES: usize = 64 * 1024;

/// Why an artifact is not stored.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The lease is gone; the worker stops.
    #[error("the lease is no longer held")]
    LeaseLost,
    /// The artifact could not be stored; the run fails with this message.
    #[error("{0}")]
    Failed(String),
}

/// Uploads `produced` as an artifact of `run_id` (of `workspace_id`) and returns the
/// settled record.
pub async fn upload_artifact(
    client: &WorkerClient,
    workspace_id: &WorkspaceId,
    run_id: &RunId,
    lease_id: &LeaseId,
    produced: &ProducedArtifact,
) -> Result<ArtifactView, UploadError> {
    let name = produced.name.as_str();
    let (sha256, size) = hash_file(&produced.path)
        .await
        .map_err(|e| UploadError::Failed(format!("artifact {name:?} cannot be read: {e}")))?;
    let request = ArtifactRequest {
        lease_id: lease_id.clone(),
        name: produced.name.clone(),
        artifact_type: produced.artifact_type.into(),
        size,
        sha256,
        content_type: produced.content_type.clone(),
    };
    let slot = match client.create_artifact(run_id, &request).await {
        Ok(slot) => slot,
        Err(e) if e.is_lease_lost() => return Err(UploadError::LeaseLost),
        Err(e) => {
            return Err(UploadError::Failed(format!(
                "artifact {name:?} could not be registered: {e}"
            )));
        }
    };
    let mut last_error = None;
    for attempt in 1..=UPLOAD_ATTEMPTS {
        if attempt > 1 {
            tokio::time::sleep(FIRST_RETRY_DELAY * 3u32.pow(attempt - 2)).await;
        }
        let result = match tokio::fs::File::open(&produced.path).await {
            Ok(file) => client
                .upload(&slot.upload, file_stream(file), size)
                .await
                .map_err(UploadAttempt::from),
            Err(e) => Err(UploadAttempt::Failed(format!("cannot read the file: {e}"))),
        };
        match result {
            Ok(()) => {
                last_error = None;
                break;
            }
            Err(UploadAttempt::Refused(refusal)) => {
                tracing::info!(
                    workspace_id = %workspace_id, run_id = %run_id, operation = "upload_artifact",
                    artifact = %name, attempt, %refusal,
                    "the upload url stores no more: finalizing, which checks what is stored"
                );
                last_error = None;
                break;
            }
            Err(UploadAttempt::Failed(error)) => {
                tracing::warn!(
                    workspace_id = %workspace_id, run_id = %run_id, operation = "upload_artifact",
                    artifact = %name, attempt, %error, "artifact upload failed"
                );
                last_error = Some(error);
            }
        }
    }
    let finalize = FinalizeRequest {
        lease_id: lease_id.clone(),
        error: last_error.as_ref().map(|error| {
            format!("every one of {UPLOAD_ATTEMPTS} upload attempts failed; the last: {error}")
        }),
    };
    let artifact = match client
        .finalize(run_id, &slot.artifact.artifact_id, &finalize)
        .await
    {
        Ok(artifact) => artifact,
        Err(e) if e.is_lease_lost() => return Err(UploadError::LeaseLost),
        Err(e) => {
            return Err(UploadError::Failed(format!(
                "artifact {name:?} could not be finalized: {e}"
            )));
        }
    };
    if let Some(error) = last_error {
        return Err(UploadError::Failed(format!(
            "artifact {name:?} could not be uploaded after {UPLOAD_ATTEMPTS} attempts: {error}"
        )));
    }
    if artifact.status != ArtifactStatusName::Available {
        let reason = artifact.error.as_deref().unwrap_or("no reason was given");
        return Err(UploadError::Failed(format!(
            "artifact {name:?} was not stored: {reason}"
        )));
    }
    Ok(artifact)
}

/// How one `PUT` of an artifact's bytes did not succeed.
enum UploadAttempt {
    /// The URL refuses every further `PUT` (`409`, `412`): bytes are already stored at
    /// its key (an earlier attempt whose answer was lost), or the artifact or its run
    /// no longer takes any. Sending again cannot help; finalization tells which.
    Refused(String),
    /// Anything else: another attempt may succeed.
    Failed(String),
}

impl From<WorkerClientError> for UploadAttempt {
    fn from(error: WorkerClientError) -> Self {
        match error.status() {
            Some(409 | 412) => UploadAttempt::Refused(error.to_string()),
            _ => UploadAttempt::Failed(error.to_string()),
        }
    }
}

/// The lower-case hex SHA-256 and size of the file at `path`, read once.
pub async fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buffer = vec![0u8; CHUNK_BYTES];
    loop {
        let n = file.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// The file's bytes as a stream of chunks, ending after the first error.
pub fn file_stream(
    file: tokio::fs::File,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    futures::stream::unfold(Some(file), |state| async move {
        let mut file = state?;
        let mut buffer = BytesMut::with_capacity(CHUNK_BYTES);
        match file.read_buf(&mut buffer).await {
            Ok(0) => None,
            Ok(_) => Some((Ok(buffer.freeze()), Some(file))),
            Err(e) => Some((Err(e), None)),
        }
    })
}
