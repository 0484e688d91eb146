//! `tlao bundle RUN`: the run's bundle (`GET /runs/{id}/bundle`), one `tar.gz` with
//! everything needed to understand and reproduce the run and a `manifest.json` of
//! SHA-256s. The download goes to a temporary file beside the destination, every file
//! of it is checked against the manifest, and only then is it renamed into place.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use futures::StreamExt;
use serde_json::json;
use sha2::{Digest, Sha256};
use tlao_domain::RunId;
use tlao_sdk::wire::{BUNDLE_FORMAT, BUNDLE_MANIFEST, BundleManifest};

use crate::context::Context;
use crate::errors::Exit;
use crate::output::{self, human_bytes};
use crate::progress;

/// The most bytes one file of a bundle may unpack to while it is checked.
const MAX_ENTRY_BYTES: u64 = 1 << 30;

/// Options of `tlao bundle`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    tlao bundle run_01J...                       # ./run_01J....bundle.tar.gz\n  \
    tlao bundle run_01J... -o bug-report.tar.gz --with-archive\n\n\
    The bundle holds manifest.json (each file's size and SHA-256), run.json (status,\n\
    timings, usage, log), task.json (the TaskSpec), executor.json (its record and the\n\
    agent's reported version), archive.json (the workspace archive's hash; with\n\
    --with-archive, archive.tar.gz too), events.jsonl, artifacts.json and artifacts/.")]
pub struct BundleArgs {
    /// The run (`run_...`).
    pub run: RunId,
    /// Where to write it [default: ./RUN.bundle.tar.gz, RUN the run id].
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Put the workspace archive itself in the bundle, not only its hash.
    #[arg(long)]
    pub with_archive: bool,
    /// Replace an existing file.
    #[arg(long)]
    pub force: bool,
    /// Print the manifest and where it was written as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tlao bundle`.
pub async fn bundle(args: BundleArgs, profile: &str) -> anyhow::Result<Exit> {
    let destination = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.bundle.tar.gz", args.run)));
    if destination.is_dir() {
        bail!(
            "{} is a directory; -o names the bundle's file",
            destination.display()
        );
    }
    if destination.exists() && !args.force {
        bail!(
            "{} exists; pass --force to replace it, or -o to write elsewhere",
            destination.display()
        );
    }
    let dir = match destination.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut file = tempfile::Builder::new()
        .prefix(".tlao-bundle-")
        .tempfile_in(&dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;

    let ctx = Context::load(profile)?;
    let mut download = ctx
        .client
        .run_bundle(&args.run, args.with_archive)
        .await
        .with_context(|| format!("reading the bundle of run {}", args.run))?;
    ctx.save_session()?;
    let bar = progress::transfer("downloading", download.content_length.unwrap_or(0));
    let mut size: u64 = 0;
    while let Some(chunk) = download.body.next().await {
        let chunk = chunk.with_context(|| format!("downloading the bundle of {}", args.run))?;
        size += chunk.len() as u64;
        file.write_all(&chunk)
            .with_context(|| format!("writing {}", file.path().display()))?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    file.as_file_mut().sync_all()?;

    let path = file.path().to_path_buf();
    let manifest = tokio::task::spawn_blocking(move || verify(&path))
        .await
        .context("the checking task failed")?
        .context("the downloaded bundle does not match its manifest; nothing was written")?;
    if manifest.run_id != args.run {
        bail!(
            "the server sent the bundle of run {} for run {}; nothing was written",
            manifest.run_id,
            args.run
        );
    }
    let persisted = if args.force {
        file.persist(&destination).map(drop)
    } else {
        file.persist_noclobber(&destination).map(drop)
    };
    persisted.map_err(|e| {
        anyhow::Error::new(e.error).context(format!("writing {}", destination.display()))
    })?;

    if args.json {
        output::print_json(&json!({
            "path": destination.display().to_string(),
            "size": size,
            "manifest": manifest,
        }))?;
    } else {
        for omitted in &manifest.omitted {
            output::note(format!("left out {omitted}"));
        }
        output::success(format!(
            "bundle of run {} ({}, {} files, every SHA-256 verified against its manifest) → {}",
            args.run,
            human_bytes(size),
            manifest.files.len(),
            destination.display()
        ));
    }
    Ok(Exit::Success)
}

/// Reads the bundle at `path` and checks that it holds its manifest and exactly the
/// files the manifest lists, each with its size and SHA-256; returns the manifest.
pub fn verify(path: &Path) -> anyhow::Result<BundleManifest> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut manifest: Option<BundleManifest> = None;
    let mut found: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut root: Option<String> = None;
    for entry in archive.entries().context("reading the bundle")? {
        let mut entry = entry.context("reading the bundle")?;
        let name = entry
            .path()
            .context("a bundle entry's path")?
            .to_string_lossy()
            .into_owned();
        let Some((top, inner)) = name.split_once('/') else {
            bail!("the bundle holds {name:?} outside its directory");
        };
        match &root {
            None => root = Some(top.to_owned()),
            Some(root) if root != top => {
                bail!("the bundle holds {name:?} outside its directory {root}")
            }
            Some(_) => {}
        }
        if !entry.header().entry_type().is_file() {
            bail!("the bundle holds {name:?}, which is not a regular file");
        }
        let mut bytes = Vec::new();
        (&mut entry)
            .take(MAX_ENTRY_BYTES + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {name} from the bundle"))?;
        if bytes.len() as u64 > MAX_ENTRY_BYTES {
            bail!("{name} in the bundle is larger than {MAX_ENTRY_BYTES} bytes");
        }
        if inner == BUNDLE_MANIFEST {
            manifest = Some(
                serde_json::from_slice(&bytes)
                    .context("the bundle's manifest.json is not a manifest")?,
            );
        } else if found
            .insert(
                inner.to_owned(),
                (bytes.len() as u64, hex::encode(Sha256::digest(&bytes))),
            )
            .is_some()
        {
            bail!("the bundle holds {name:?} twice");
        }
    }
    let Some(manifest) = manifest else {
        bail!("the bundle has no {BUNDLE_MANIFEST}");
    };
    if manifest.format != BUNDLE_FORMAT {
        bail!(
            "the bundle's format is {:?}; this tlao reads {BUNDLE_FORMAT:?}",
            manifest.format
        );
    }
    for listed in &manifest.files {
        let Some((size, sha256)) = found.remove(&listed.path) else {
            bail!("{} is in the manifest but not in the bundle", listed.path);
        };
        if size != listed.size || *sha256 != listed.sha256 {
            bail!(
                "{} has {size} bytes with SHA-256 {sha256}, but the manifest says {} bytes with {}",
                listed.path,
                listed.size,
                listed.sha256
            );
        }
    }
    if let Some(extra) = found.keys().next() {
        bail!("{extra} is in the bundle but not in its manifest");
    }
    Ok(manifest)
}
