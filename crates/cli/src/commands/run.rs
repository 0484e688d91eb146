//! `tlao run plan|change|doc|deploy`: package the directory, upload it, create the task
//! and the run, then follow the run live and exit with its outcome (0 completed, 1
//! failed, timed out or cancelled). Also `tlao run get` and `tlao run cancel`.
//!
//! Everything that can fail cheaply fails before the upload: the prompt (a usage
//! error when empty), the login and the workspace (read first, which also tells the
//! archive limit), then the size of the packaged archive against that limit.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use futures::TryStreamExt;
use tlao_domain::{RunId, TaskType, WorkspaceId};
use tlao_sdk::types::{CreateRunRequest, CreateTaskRequest, RunView, TaskInputBody};
use tlao_sdk::wire::{RunStatusName, SourceRevisionBody, UsageView};
use tlao_sdk::{ClientError, TlaoClient};
use tokio_util::io::ReaderStream;

use crate::commands::apply::{self, ApplyOptions};
use crate::context::Context;
use crate::errors::{CliError, Exit};
use crate::follow::{self, Display};
use crate::output::{self, human_bytes, human_duration, status_style};
use crate::package::{self, Packaged, TLAOIGNORE};
use crate::{git, progress, prompt};

/// How many of the largest paths a refusal names.
const LARGEST_SHOWN: usize = 8;
/// The read size when streaming the archive.
const UPLOAD_CHUNK: usize = 256 * 1024;

/// `tlao run ...`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    tlao run plan \"add rate limiting to the API\"\n  \
    tlao run change \"fix the flaky test\" --path ./service --executor kiro\n  \
    git log -1 --format=%B | tlao run doc --detach\n  \
    tlao run get run_01J...\n  \
    tlao run cancel run_01J...")]
pub struct RunArgs {
    #[command(subcommand)]
    pub command: RunCommand,
}

/// The subcommands of `tlao run`.
#[derive(Debug, clap::Subcommand)]
pub enum RunCommand {
    /// Ask the agent for a plan (task type spec.generate).
    ///
    /// Example: tlao run plan "split the monolith's billing module"
    Plan(StartArgs),
    /// Ask the agent to change the code (task type code.change); the result is a patch.
    ///
    /// Example: tlao run change "rename Foo to Bar everywhere" --apply
    Change(ChangeArgs),
    /// Ask the agent to write documentation (task type doc.write).
    ///
    /// Example: tlao run doc "document the public API" --path ./lib
    Doc(StartArgs),
    /// Ask the agent to deploy (task type deploy.run).
    ///
    /// Example: tlao run deploy "deploy the staging stack" --executor kiro
    Deploy(StartArgs),
    /// Show a run: status, timing, error, artifacts.
    ///
    /// Example: tlao run get run_01J... --json
    Get(RunIdArgs),
    /// Cancel a queued or running run.
    ///
    /// Example: tlao run cancel run_01J...
    Cancel(RunIdArgs),
}

/// Options of `tlao run plan|change|doc|deploy`.
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// The instruction to the agent. Without it: standard input when piped, else
    /// $VISUAL/$EDITOR on a temporary file. `-` reads standard input.
    pub prompt: Option<String>,
    /// The directory to package (honours .gitignore and .tlaoignore; never packages
    /// .git, node_modules, target, build, dist and similar).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub path: PathBuf,
    /// The executor to run it on [default: the first one serving the task type].
    #[arg(long, value_name = "NAME")]
    pub executor: Option<String>,
    /// The workspace [default: the profile's (`tlao workspace use`), else your first].
    #[arg(long, value_name = "ID")]
    pub workspace: Option<WorkspaceId>,
    /// Print the run id and return at once instead of following the run.
    #[arg(long)]
    pub detach: bool,
    /// Print the run as JSON (when it ends, or at once with --detach) instead of its logs.
    #[arg(long)]
    pub json: bool,
}

/// Options of `tlao run change`: those of every task, and what to do with the patch.
#[derive(Debug, clap::Args)]
pub struct ChangeArgs {
    #[command(flatten)]
    pub start: StartArgs,
    /// When the run completes, apply its patch to the repository at --path (as `tlao
    /// apply` does).
    #[arg(long, conflicts_with = "detach")]
    pub apply: bool,
    #[command(flatten)]
    pub options: ApplyOptions,
}

/// A run id, and `--json`.
#[derive(Debug, clap::Args)]
pub struct RunIdArgs {
    /// The run (`run_...`).
    pub id: RunId,
    /// Print the run as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tlao run ...`.
pub async fn run(args: RunArgs, profile: &str) -> anyhow::Result<Exit> {
    match args.command {
        RunCommand::Plan(start_args) => {
            start(start_args, TaskType::SpecGenerate, profile, None).await
        }
        RunCommand::Change(change) => start_change(change, profile).await,
        RunCommand::Doc(start_args) => start(start_args, TaskType::DocWrite, profile, None).await,
        RunCommand::Deploy(start_args) => {
            start(start_args, TaskType::DeployRun, profile, None).await
        }
        RunCommand::Get(id_args) => get(id_args, profile).await,
        RunCommand::Cancel(id_args) => cancel(id_args, profile).await,
    }
}

/// The exit code of a final status.
pub fn exit_for(status: RunStatusName) -> Exit {
    if status == RunStatusName::Completed {
        Exit::Success
    } else {
        Exit::Failure
    }
}

/// `tlao run change`, then `--apply` (or `--branch`, `--check`, which imply it).
async fn start_change(args: ChangeArgs, profile: &str) -> anyhow::Result<Exit> {
    let ChangeArgs {
        start: start_args,
        apply,
        options,
    } = args;
    let applying = apply || options.branch.is_some() || options.check || options.conflicts;
    if !applying {
        return start(start_args, TaskType::CodeChange, profile, None).await;
    }
    if start_args.detach {
        return Err(CliError::Usage(
            "--apply waits for the run: it cannot be used with --detach".into(),
        )
        .into());
    }
    start(start_args, TaskType::CodeChange, profile, Some(options)).await
}

async fn start(
    args: StartArgs,
    task_type: TaskType,
    profile: &str,
    then_apply: Option<ApplyOptions>,
) -> anyhow::Result<Exit> {
    let prompt = prompt::resolve(args.prompt, task_type.as_str())?;
    let dir = apply::canonical_dir(&args.path)?;
    // Applying needs a repository (and a usable branch and identity): known before
    // anything is uploaded.
    let repo = then_apply
        .as_ref()
        .map(|options| options.preflight(&dir, None))
        .transpose()?;
    let ctx = Context::load(profile)?;
    let client = &ctx.client;
    let workspace_id = ctx.workspace(args.workspace.as_ref()).await?;
    let workspace = client
        .get_workspace(&workspace_id)
        .await
        .with_context(|| format!("reading workspace {workspace_id}"))?;
    let max_bytes = workspace.limits.max_archive_bytes;

    let source = git::source_of(&dir).map(|s| SourceRevisionBody {
        commit: s.commit,
        dirty: s.dirty,
    });
    let (archive, packaged) = package_dir(&dir).await?;
    if packaged.archive_bytes > max_bytes {
        anyhow::bail!(too_large(&dir, &packaged, max_bytes));
    }
    let receipt = match upload(
        client,
        &workspace_id,
        archive.path(),
        packaged.archive_bytes,
    )
    .await
    {
        Err(ClientError::Api {
            status: 413,
            problem,
            ..
        }) if problem.as_ref().and_then(|p| p.max_bytes).is_some() => {
            let max = problem.and_then(|p| p.max_bytes).unwrap_or_default();
            anyhow::bail!(too_large(&dir, &packaged, max));
        }
        other => other.context("uploading the workspace archive")?,
    };
    drop(archive);

    let task = client
        .create_task(&CreateTaskRequest {
            workspace_id: workspace_id.clone(),
            task_type: task_type.into(),
            input: TaskInputBody {
                prompt,
                archive_id: Some(receipt.archive_id),
                source,
            },
            constraints: None,
            expected_output: None,
        })
        .await
        .context("creating the task")?;
    let created = client
        .create_run(&CreateRunRequest {
            task_id: task.task_id,
            executor: args.executor,
        })
        .await
        .context("starting the run")?;
    ctx.save_session()?;
    let exit = follow_created(&ctx, &created, args.detach, args.json).await?;
    match (repo, then_apply) {
        (Some(repo), Some(options)) if exit == Exit::Success => {
            let exit = apply::apply_run(&ctx, &repo, &created.run_id, &options, args.json).await;
            ctx.save_session()?;
            exit
        }
        (Some(_), Some(_)) => {
            output::warn(format!(
                "run {} did not complete: nothing was applied",
                created.run_id
            ));
            Ok(exit)
        }
        _ => Ok(exit),
    }
}

/// Follows the run just created (or only prints its id with `detach`), and exits
/// with its outcome.
pub async fn follow_created(
    ctx: &Context,
    created: &RunView,
    detach: bool,
    json: bool,
) -> anyhow::Result<Exit> {
    let client = &ctx.client;
    let run_id = created.run_id.clone();
    let console = format!("{}/console/runs/{run_id}", ctx.client.api_url());
    let args = FollowArgs { detach, json };

    if args.detach {
        if args.json {
            output::print_json(&created)?;
        } else {
            println!("{run_id}");
            output::note(format!(
                "queued on {}; follow it with `tlao logs --follow {run_id}` or at {console}",
                created.executor
            ));
        }
        return Ok(Exit::Success);
    }
    if !args.json {
        output::note(format!(
            "run {run_id} queued on {} (Ctrl-C stops following; the run goes on)\n  console: {console}",
            created.executor
        ));
    }
    let display = if args.json {
        Display::Quiet
    } else {
        Display::Human
    };
    let status = follow::follow(ctx, &run_id, 0, display).await?;
    let run = client
        .get_run(&run_id)
        .await
        .with_context(|| format!("reading run {run_id}"))?;
    ctx.save_session()?;
    if args.json {
        output::print_json(&run)?;
    } else {
        summarize(client, &run).await?;
    }
    Ok(exit_for(status))
}

/// How a created run is followed.
struct FollowArgs {
    detach: bool,
    json: bool,
}

/// Packages `dir` into a temporary file, with a spinner.
async fn package_dir(dir: &Path) -> anyhow::Result<(tempfile::NamedTempFile, Packaged)> {
    let shown = dir.display().to_string();
    let bar = progress::packaging(&shown);
    let mut archive = tempfile::Builder::new()
        .prefix("tlao-archive-")
        .suffix(".tar.gz")
        .tempfile()
        .context("creating a temporary file for the archive")?;
    let root = dir.to_path_buf();
    let ticker = bar.clone();
    let (archive, packaged) = tokio::task::spawn_blocking(move || {
        let packaged = package::package(&root, archive.as_file_mut(), |done| {
            ticker.set_position(done.bytes);
        });
        (archive, packaged)
    })
    .await
    .context("the packaging task failed")?;
    bar.finish_and_clear();
    let packaged = packaged.with_context(|| format!("packaging {shown}"))?;
    output::note(format!(
        "packaged {} files ({}) from {shown} into {}",
        packaged.files,
        human_bytes(packaged.content_bytes),
        human_bytes(packaged.archive_bytes)
    ));
    for (link, target) in &packaged.skipped_links {
        output::warn(format!(
            "left out {}: it links to {}, outside the directory",
            link.display(),
            target.display()
        ));
    }
    Ok((archive, packaged))
}

/// The refusal of an archive over the limit: the sizes and what to ignore.
fn too_large(dir: &Path, packaged: &Packaged, max_bytes: u64) -> String {
    let mut text = format!(
        "the workspace archive is {} ({} bytes), over the server's limit of {} ({max_bytes} bytes); nothing was uploaded",
        human_bytes(packaged.archive_bytes),
        packaged.archive_bytes,
        human_bytes(max_bytes),
    );
    let largest = packaged.largest_paths(LARGEST_SHOWN);
    if !largest.is_empty() {
        text.push_str("\n  largest paths (uncompressed):");
        for (path, size, is_dir) in &largest {
            let slash = if *is_dir { "/" } else { "" };
            text.push_str(&format!(
                "\n    {:>10}  {}{slash}",
                human_bytes(*size),
                path.display()
            ));
        }
        text.push_str(&format!(
            "\n  add what the agent does not need to {} (same syntax as .gitignore), e.g.:",
            dir.join(TLAOIGNORE).display()
        ));
        for (path, _, is_dir) in largest.iter().take(3) {
            let slash = if *is_dir { "/" } else { "" };
            text.push_str(&format!("\n    /{}{slash}", path.display()));
        }
    }
    text
}

/// Streams the archive at `path` to the workspace, with a progress bar.
async fn upload(
    client: &TlaoClient,
    workspace_id: &WorkspaceId,
    path: &Path,
    len: u64,
) -> Result<tlao_sdk::types::ArchiveView, ClientError> {
    let bar = progress::transfer("uploading", len);
    let result = client
        .upload_archive(workspace_id, len, || {
            bar.set_position(0);
            let file = tokio::fs::File::from_std(std::fs::File::open(path)?);
            let ticker = bar.clone();
            Ok(ReaderStream::with_capacity(file, UPLOAD_CHUNK)
                .inspect_ok(move |chunk| ticker.inc(chunk.len() as u64)))
        })
        .await;
    bar.finish_and_clear();
    result
}

/// What a finished run left, on stderr.
async fn summarize(client: &TlaoClient, run: &RunView) -> anyhow::Result<()> {
    let took = run
        .duration_ms
        .map(|ms| format!(" in {}", human_duration(ms)))
        .unwrap_or_default();
    let status = status_style(run.status)
        .for_stderr()
        .bold()
        .apply_to(run.status.as_str());
    eprintln!("{} {status}{took}", run.run_id);
    if let Some(error) = &run.error {
        let exit = error
            .exit_code
            .map(|c| format!(" (exit code {c})"))
            .unwrap_or_default();
        eprintln!("  {}: {}{exit}", error.code, error.message);
    }
    if run.artifact_ids.is_empty() {
        return Ok(());
    }
    let artifacts = client
        .run_artifacts(&run.run_id)
        .await
        .with_context(|| format!("listing the artifacts of {}", run.run_id))?;
    eprintln!("  artifacts:");
    for artifact in artifacts {
        eprintln!(
            "    {:<24} {:>10}  tlao artifact get {}",
            artifact.name,
            human_bytes(artifact.size),
            artifact.artifact_id
        );
    }
    Ok(())
}

async fn get(args: RunIdArgs, profile: &str) -> anyhow::Result<Exit> {
    let ctx = Context::load(profile)?;
    let run = ctx
        .client
        .get_run(&args.id)
        .await
        .with_context(|| format!("reading run {}", args.id))?;
    ctx.save_session()?;
    if args.json {
        output::print_json(&run)?;
        return Ok(Exit::Success);
    }
    let now = output::now();
    let status = status_style(run.status).apply_to(run.status.as_str());
    println!("{}  {status}", run.run_id);
    println!("  task:       {} ({})", run.task_id, run.task_type);
    println!("  executor:   {}", run.executor);
    println!("  workspace:  {}", run.workspace_id);
    if let Some(position) = run.queue_position {
        println!("  queue:      #{position}");
    }
    println!(
        "  created:    {} ({})",
        run.created_at,
        output::ago(run.created_at, now)
    );
    if let Some(at) = run.started_at {
        println!("  started:    {at}");
    }
    if let Some(at) = run.finished_at {
        println!("  finished:   {at}");
    }
    if let Some(ms) = run.duration_ms {
        println!("  duration:   {}", human_duration(ms));
    }
    if let Some(error) = &run.error {
        println!("  error:      {}: {}", error.code, error.message);
    }
    if let UsageView::Reported { summary, .. } = &run.usage {
        println!("  usage:      {summary}");
    }
    if run.logs_truncated {
        println!(
            "  logs:       truncated ({} dropped)",
            human_bytes(run.dropped_log_bytes)
        );
    }
    if !run.artifact_ids.is_empty() {
        let ids: Vec<String> = run.artifact_ids.iter().map(ToString::to_string).collect();
        println!("  artifacts:  {}", ids.join(", "));
    }
    Ok(Exit::Success)
}

async fn cancel(args: RunIdArgs, profile: &str) -> anyhow::Result<Exit> {
    let ctx = Context::load(profile)?;
    let run = ctx
        .client
        .cancel_run(&args.id)
        .await
        .with_context(|| format!("cancelling run {}", args.id))?;
    ctx.save_session()?;
    if args.json {
        output::print_json(&run)?;
    } else {
        output::success(format!("run {} is {}", run.run_id, run.status));
    }
    Ok(Exit::Success)
}
