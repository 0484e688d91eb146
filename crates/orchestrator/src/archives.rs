//! Workspace archives (requirements 7.1, 11.2, 11.4): a tar.gz streamed into the blob
//! store under `workspaces/{ws}/archives/`, measured and hashed on the way, and refused
//! as soon as it passes the size guardrail — never buffered whole in memory.
//!
//! On the same pass the gzip stream is decompressed into a [`TarScan`], which counts the
//! entries and unpacked bytes the worker would extract, so an archive past
//! `max_archive_entries` or `max_unpacked_bytes` (a gzip bomb, a flood of empty files)
//! is cut off as it arrives, and one the worker could not read is refused when it ends;
//! either way nothing is stored. Decompression stops at the archive's end, as the
//! worker's does.

use std::io::Write as _;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use flate2::write::GzDecoder;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tlao_domain::tar_scan::{TarLimits, TarScan, TarScanError, TarSummary};
use tlao_domain::{Archive, ArchiveId, Limit, WorkspaceId, keys};
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
    #[error("the archive passes the limit {0} of {1}")]
    Limit(Limit, u64),
    #[error("the body is not a readable tar.gz archive: {0}")]
    Unreadable(String),
}

impl Rejected {
    fn of_scan(error: TarScanError) -> Rejected {
        match error {
            TarScanError::TooManyEntries { max } => Rejected::Limit(Limit::MaxArchiveEntries, max),
            TarScanError::TooLarge { max } => Rejected::Limit(Limit::MaxUnpackedBytes, max),
            TarScanError::Corrupt(reason) => Rejected::Unreadable(reason),
        }
    }
}

struct Progress {
    size: u64,
    head: Vec<u8>,
    hasher: Sha256,
    unpack: Unpack,
}

/// The tar scan's end of the decompressor: each piece of the tar stream is scanned as
/// it is decompressed, and a refusal stops the decompression.
struct ScanSink {
    scan: TarScan,
    refusal: Option<TarScanError>,
}

impl std::io::Write for ScanSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.scan.feed(buf) {
            Ok(()) => Ok(buf.len()),
            Err(refusal) => {
                self.refusal = Some(refusal);
                Err(std::io::Error::other("the archive was refused"))
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The archive's gzip stream, decompressed into the tar scan as it arrives.
struct Unpack {
    /// `None` once the tar archive ended (or could not be read): the rest is stored
    /// unread, as the worker leaves it unread.
    decoder: Option<GzDecoder<ScanSink>>,
    /// What was counted, once the decoder is gone.
    summary: TarSummary,
    /// Why the archive cannot be read, decided as it streams and reported at its end
    /// (so a body that is also too large is refused for its size).
    unreadable: Option<String>,
}

impl Unpack {
    fn new(limits: TarLimits) -> Unpack {
        Unpack {
            decoder: Some(GzDecoder::new(ScanSink {
                scan: TarScan::new(limits),
                refusal: None,
            })),
            summary: TarSummary::default(),
            unreadable: None,
        }
    }

    /// Decompresses and scans the next piece of the body; `Err` when the archive
    /// passes a limit.
    fn feed(&mut self, mut chunk: &[u8]) -> Result<(), Rejected> {
        while !chunk.is_empty() {
            let Some(decoder) = self.decoder.as_mut() else {
                return Ok(());
            };
            if decoder.get_ref().scan.is_ended() {
                return self.stop(Ok(()));
            }
            match decoder.write(chunk) {
                // The gzip member ended: what follows it is never read.
                Ok(0) => {
                    let flushed = decoder.try_finish();
                    return self.stop(flushed);
                }
                Ok(n) => chunk = &chunk[n..],
                Err(error) => return self.stop(Err(error)),
            }
        }
        // The decompressor keeps some output back; what this piece holds is scanned now.
        if let Some(decoder) = self.decoder.as_mut() {
            if let Err(error) = decoder.flush() {
                return self.stop(Err(error));
            }
            if decoder.get_ref().scan.is_ended() {
                return self.stop(Ok(()));
            }
        }
        Ok(())
    }

    /// Ends the scan at the end of the body: `Err` when the archive passed a limit or
    /// cannot be read.
    fn finish(&mut self) -> Result<TarSummary, Rejected> {
        if let Some(decoder) = self.decoder.as_mut() {
            let ended = decoder.get_ref().scan.is_ended();
            let flushed = if ended { Ok(()) } else { decoder.try_finish() };
            self.stop(flushed)?;
        }
        match self.unreadable.take() {
            Some(reason) => Err(Rejected::Unreadable(reason)),
            None => Ok(self.summary),
        }
    }

    /// Drops the decoder after `outcome` (of its last write): a limit refusal is
    /// returned at once, anything else that went wrong is kept for the end.
    fn stop(&mut self, outcome: std::io::Result<()>) -> Result<(), Rejected> {
        let Some(decoder) = self.decoder.take() else {
            return Ok(());
        };
        let sink = decoder.get_ref();
        self.summary = sink.scan.summary();
        let refusal = sink.refusal.clone().or_else(|| match outcome {
            Ok(()) => sink.scan.finish().err(),
            Err(_) => None,
        });
        match (refusal, outcome) {
            (Some(TarScanError::Corrupt(reason)), _) => {
                self.unreadable = Some(reason);
                Ok(())
            }
            (Some(limit), _) => Err(Rejected::of_scan(limit)),
            (None, Err(error)) => {
                self.unreadable = Some(format!("the gzip stream is corrupt ({error})"));
                Ok(())
            }
            (None, Ok(())) => Ok(()),
        }
    }
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
    /// passes the limit, and nothing is stored. So is an archive whose entries or
    /// unpacked bytes pass their limits (`LimitReached`, as soon as they do), and one
    /// that is not a readable tar.gz (`Invalid` on `body`, once it ends).
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

        let progress = Arc::new(Mutex::new(Progress {
            size: 0,
            head: Vec::new(),
            hasher: Sha256::new(),
            unpack: Unpack::new(TarLimits::from(&self.core.guardrails)),
        }));
        let seen = progress.clone();
        let at_end = progress.clone();
        let checked = body.map(move |chunk| {
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
            p.unpack.feed(&chunk).map_err(std::io::Error::other)?;
            Ok(chunk)
        });
        // After the last chunk: the scan's verdict on the whole archive, before the
        // store commits it.
        let verdict = futures::stream::once(async move {
            let mut p = at_end
                .lock()
                .map_err(|_| std::io::Error::other("progress lock poisoned"))?;
            if p.head != [0x1f, 0x8b] {
                return Err(std::io::Error::other(Rejected::NotGzip));
            }
            p.unpack.finish().map_err(std::io::Error::other)?;
            Ok(Bytes::new())
        });
        let checked: ByteStream = Box::pin(checked.chain(verdict));
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
        let (size, sha256, head_ok, contents) = {
            let p = progress
                .lock()
                .map_err(|_| ServiceError::Internal(anyhow::anyhow!("progress lock poisoned")))?;
            (
                p.size,
                hex_lower(&p.hasher.clone().finalize()),
                p.head == [0x1f, 0x8b],
                p.unpack.summary,
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
        tracing::info!(
            workspace_id = %ws, archive_id = %archive.archive_id, size,
            entries = contents.entries, unpacked_bytes = contents.unpacked_bytes,
            operation = "upload_archive", "archive stored"
        );
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
        Some(Rejected::Limit(limit, max)) => ServiceError::LimitReached {
            limit: *limit,
            max: *max,
        },
        Some(rejected @ Rejected::Unreadable(_)) => {
            ServiceError::invalid("body", rejected.to_string())
        }
        None => ServiceError::invalid("body", format!("the upload was interrupted: {error}")),
    }
}
