//! `tlao artifacts RUN` (what a run produced) and `tlao artifact get ID` (download one
//! through its presigned URL). A download goes to a temporary file next to the
//! destination, is checked against the artifact's size and SHA-256, and only then
//! renamed into place; an existing file is replaced only with `--force`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use futures::StreamExt;
use serde_json::json;
use sha2::{Digest, Sha256};
use tlao_domain::{ArtifactId, RunId};
use tlao_sdk::types::ArtifactView;
use tlao_sdk::wire::ArtifactStatusName;

use crate::context::Context;
use crate::errors::Exit;
use crate::output::{self, Table, human_bytes};
use crate::progress;

/// Options of `tlao artifacts`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  tlao artifacts run_01J...\n  tlao artifacts run_01J... --json | jq -r '.[].artifactId'"
)]
pub struct ArtifactsArgs {
    /// The run (`run_...`).
    pub run: RunId,
    /// Print the artifacts as a JSON array.
    #[arg(long)]
    pub json: bool,
}

/// `tlao artifact ...`.
#[derive(Debug, clap::Args)]
pub struct ArtifactArgs {
    #[command(subcommand)]
    pub command: ArtifactCommand,
}

/// The subcommands of `tlao artifact`.
#[derive(Debug, clap::Subcommand)]
pub enum ArtifactCommand {
    /// Download an artifact, verifying its size and SHA-256.
    #[command(after_help = "Examples:\n  \
        tlao artifact get art_01J...                 # into ./<its name>\n  \
        tlao artifact get art_01J... -o plan.json --force\n  \
        tlao artifact get art_01J... -o out/         # into a directory")]
    Get(GetArgs),
}

/// Options of `tlao artifact get`.
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// The artifact (`art_...`).
    pub id: ArtifactId,
    /// Where to write it: a file, or an existing directory [default: its name, here].
    #[arg(long, short = 'o', value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Replace an existing file.
    #[arg(long)]
    pub force: bool,
    /// Print the artifact and where it was written as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tlao artifacts`.
pub async fn list(args: ArtifactsArgs, profile: &str) -> anyhow::Result<Exit> {
    let ctx = Context::load(profile)?;
    let artifacts = ctx
        .client
        .run_artifacts(&args.run)
        .await
        .with_context(|| format!("listing the artifacts of {}", args.run))?;
    ctx.save_session()?;
    if args.json {
        output::print_json(&artifacts)?;
        return Ok(Exit::Success);
    }
    if artifacts.is_empty() {
        output::note(format!("run {} has no artifacts", args.run));
        return Ok(Exit::Success);
    }
    let mut table = Table::new(&["ARTIFACT", "TYPE", "NAME", "SIZE", "STATUS"]);
    for artifact in &artifacts {
        table.row(vec![
            artifact.artifact_id.to_string(),
            wire_name(&artifact.artifact_type),
            artifact.name.clone(),
            human_bytes(artifact.size),
            wire_name(&artifact.status),
        ]);
    }
    table.print()?;
    Ok(Exit::Success)
}

/// `tlao artifact ...`.
pub async fn artifact(args: ArtifactArgs, profile: &str) -> anyhow::Result<Exit> {
    match args.command {
        ArtifactCommand::Get(get_args) => get(get_args, profile).await,
    }
}

fn wire_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

async fn get(args: GetArgs, profile: &str) -> anyhow::Result<Exit> {
    let ctx = Context::load(profile)?;
    let artifact = ctx
        .client
        .get_artifact(&args.id)
        .await
        .with_context(|| format!("reading artifact {}", args.id))?;
    ctx.save_session()?;
    let url = match (&artifact.status, &artifact.download_url) {
        (ArtifactStatusName::Available, Some(url)) => url.clone(),
        (status, _) => bail!(
            "artifact {} is {}, not available for download",
            artifact.artifact_id,
            wire_name(status)
        ),
    };
    let destination = destination(&artifact, args.output.as_deref());
    if destination.exists() && !args.force {
        bail!(
            "{} exists; pass --force to replace it, or -o to write elsewhere",
            destination.display()
        );
    }
    download(&ctx, &artifact, &url, &destination, args.force).await?;
    if args.json {
        let mut value = serde_json::to_value(&artifact)?;
        value["path"] = json!(destination.display().to_string());
        output::print_json(&value)?;
    } else {
        output::success(format!(
            "{} ({}, sha256 verified) → {}",
            artifact.name,
            human_bytes(artifact.size),
            destination.display()
        ));
    }
    Ok(Exit::Success)
}

/// Where the artifact goes: `-o` (into it when it is a directory), else its file name
/// in the current directory.
fn destination(artifact: &ArtifactView, output: Option<&Path>) -> PathBuf {
    let file_name = Path::new(&artifact.name)
        .file_name()
        .map(PathBuf::from)
        .filter(|name| !name.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from(artifact.artifact_id.as_str()));
    match output {
        Some(path) if path.is_dir() => path.join(file_name),
        Some(path) => path.to_path_buf(),
        None => file_name,
    }
}

/// Streams the download into a temporary file beside `destination`, checks it, and
/// renames it into place.
async fn download(
    ctx: &Context,
    artifact: &ArtifactView,
    url: &str,
    destination: &Path,
    force: bool,
) -> anyhow::Result<()> {
    let dir = match destination.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut file = tempfile::Builder::new()
        .prefix(".tlao-download-")
        .tempfile_in(&dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    let mut download = ctx
        .client
        .download(url)
        .await
        .with_context(|| format!("downloading {}", artifact.name))?;
    let bar = progress::transfer(
        "downloading",
        download.content_length.unwrap_or(artifact.size),
    );
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    while let Some(chunk) = download.body.next().await {
        let chunk = chunk.with_context(|| format!("downloading {}", artifact.name))?;
        hasher.update(&chunk);
        size += chunk.len() as u64;
        file.write_all(&chunk)
            .with_context(|| format!("writing {}", file.path().display()))?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    file.as_file_mut().sync_all()?;
    let sha256 = hex::encode(hasher.finalize());
    if size != artifact.size {
        bail!(
            "the download of {} has {size} bytes, but the artifact has {}; nothing was written",
            artifact.name,
            artifact.size
        );
    }
    if sha256 != artifact.sha256 {
        bail!(
            "the download of {} has SHA-256 {sha256}, but the artifact's is {}; nothing was written",
            artifact.name,
            artifact.sha256
        );
    }
    let persisted = if force {
        file.persist(destination).map(drop)
    } else {
        file.persist_noclobber(destination).map(drop)
    };
    persisted.map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "{} exists; pass --force to replace it",
                destination.display()
            )
        } else {
            anyhow::Error::new(e.error).context(format!("writing {}", destination.display()))
        }
    })?;
    Ok(())
}
