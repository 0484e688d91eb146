//! Packing a run's record ([`tlao_orchestrator::RunRecord`]) into the run bundle the
//! wire crate describes ([`tlao_wire::bundles`]): its files as the API's own JSON
//! shapes, the blobs as they are, and a `manifest.json` with each file's SHA-256, all
//! under one directory named after the run, in a `tar.gz`.

use std::io::Write as _;

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use tlao_domain::{ArtifactStatus, Timestamp};
use tlao_orchestrator::RunRecord;
use tlao_wire::executors::AvailabilityView;
use tlao_wire::{
    ArchiveView, ArtifactView, BUNDLE_FORMAT, BUNDLE_MANIFEST, BundleExecutor, BundleFile,
    BundleManifest, ExecutorView, RunEventMessage, TaskView,
};

use crate::dto;

/// The version of this server, as a bundle's manifest names it.
pub const SERVER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The files of a bundle, in order, before they are packed.
struct Files {
    entries: Vec<(String, Vec<u8>)>,
}

impl Files {
    fn json<T: serde::Serialize>(&mut self, path: &str, value: &T) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        self.entries.push((path.to_owned(), bytes));
        Ok(())
    }
}

/// The bundle of `record` made at `now`, as `tar.gz` bytes; its directory is the run id.
/// `with_archive` says whether the archive's bytes were asked for (so their absence is
/// an omission to report).
pub fn pack(record: RunRecord, now: Timestamp, with_archive: bool) -> std::io::Result<Vec<u8>> {
    let RunRecord {
        run,
        task,
        executor,
        executor_seen,
        archive,
        archive_bytes,
        events,
        artifacts,
    } = record;
    let run_id = run.run.run_id.clone();
    let executor_name = run.run.executor.as_str().to_owned();
    let mut files = Files {
        entries: Vec::new(),
    };
    let mut omitted = Vec::new();

    files.json("run.json", &dto::run_view(run, now))?;
    files.json("task.json", &TaskView::from(task))?;
    files.json(
        "executor.json",
        &BundleExecutor {
            name: executor_name,
            record: executor.as_ref().map(|descriptor| ExecutorView {
                availability: executor_seen.as_ref().map(AvailabilityView::from),
                ..ExecutorView::from(descriptor)
            }),
            agent_version: executor_seen.and_then(|seen| seen.version),
        },
    )?;
    if let Some(archive) = archive {
        files.json(
            "archive.json",
            &ArchiveView {
                archive_id: archive.archive_id,
                key: archive.key,
                size: archive.size,
                sha256: archive.sha256,
            },
        )?;
        match archive_bytes {
            Some(bytes) => files
                .entries
                .push(("archive.tar.gz".into(), bytes.to_vec())),
            None if with_archive => omitted.push(format!(
                "archive.tar.gz: past the bundle's size limit ({} bytes)",
                tlao_orchestrator::bundles::MAX_RECORD_BYTES
            )),
            None => {}
        }
    }
    let mut lines = Vec::new();
    for event in events {
        serde_json::to_writer(&mut lines, &RunEventMessage::from(event))
            .map_err(std::io::Error::other)?;
        lines.push(b'\n');
    }
    files.entries.push(("events.jsonl".into(), lines));
    let mut views = Vec::with_capacity(artifacts.len());
    let mut blobs = Vec::new();
    for (artifact, bytes) in artifacts {
        let path = format!(
            "artifacts/{}/{}",
            artifact.artifact_id,
            artifact.name.as_str()
        );
        match bytes {
            Some(bytes) => blobs.push((path, bytes.to_vec())),
            None if artifact.status == ArtifactStatus::Available => omitted.push(format!(
                "{path}: past the bundle's size limit ({} bytes)",
                tlao_orchestrator::bundles::MAX_RECORD_BYTES
            )),
            None => omitted.push(format!(
                "{path}: the artifact is {}",
                artifact.status.as_str()
            )),
        }
        views.push(ArtifactView::new(artifact, None));
    }
    files.json("artifacts.json", &views)?;
    files.entries.extend(blobs);

    let manifest = BundleManifest {
        format: BUNDLE_FORMAT.to_owned(),
        run_id: run_id.clone(),
        created_at: now,
        server_version: SERVER_VERSION.to_owned(),
        files: files
            .entries
            .iter()
            .map(|(path, bytes)| BundleFile {
                path: path.clone(),
                size: bytes.len() as u64,
                sha256: hex::encode(Sha256::digest(bytes)),
            })
            .collect(),
        omitted,
    };
    files.json(BUNDLE_MANIFEST, &manifest)?;
    // The manifest first, so a reader meets it before what it describes.
    files.entries.rotate_right(1);

    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    let mtime = u64::try_from(now.unix_millis() / 1000).unwrap_or(0);
    for (path, bytes) in &files.entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, format!("{run_id}/{path}"), bytes.as_slice())?;
    }
    let mut gz = tar.into_inner()?;
    gz.flush()?;
    gz.finish()
}
