//! `tlao apply RUN`: the change a `code.change` run made, brought into the developer's
//! repository. The run's `changes.patch` is downloaded and checked against its size and
//! SHA-256; the repository is checked against the commit the run's archive was packed
//! from (recorded on the task as `input.source`); the patch is applied in a scratch
//! copy first (see [`crate::git`]), with a 3-way merge when it does not apply as it is.
//! A patch that would leave conflicts is refused and nothing changes, unless
//! `--conflicts` asks for the conflict markers. `--branch` commits the change on a new
//! branch. `tlao run change --apply` ends here too.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use futures::StreamExt;
use serde_json::json;
use sha2::{Digest, Sha256};
use tlao_domain::RunId;
use tlao_sdk::types::{ArtifactView, RunView};
use tlao_sdk::wire::{ArtifactStatusName, ArtifactTypeName, RunEventMessage, UsageView};
use tlao_sdk::{EventStreamItem, TlaoClient};

use crate::context::Context;
use crate::errors::{CliError, Exit};
use crate::git::{Fit, Plan, Repo};
use crate::output;

/// The name of the patch artifact a `code.change` run leaves.
pub const PATCH_NAME: &str = "changes.patch";
/// The most of the agent's messages a commit message quotes, in bytes.
const MAX_SUMMARY_BYTES: usize = 4096;
/// The longest first line of a commit message, in characters.
const SUBJECT_CHARS: usize = 72;

/// Options of `tlao apply`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    tlao apply run_01J...                    # apply the run's patch here\n  \
    tlao apply run_01J... --check            # only say whether it would apply\n  \
    tlao apply run_01J... --branch           # commit it on a new branch tlao/<run id>\n  \
    tlao apply run_01J... --conflicts        # keep a 3-way merge's conflict markers\n\n\
    Exit codes: 0 applied (or, with --check, would apply); 1 refused (conflicts, no\n\
    patch, the run is not completed, the repository is not at the run's base) or\n\
    another error, nothing changed; 2 usage error; 3 cannot reach the API; 4 not allowed.")]
pub struct ApplyArgs {
    /// The run (`run_...`), a completed `code.change` run.
    pub run: RunId,
    /// The directory of the repository the run's archive was packed from.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub path: PathBuf,
    #[command(flatten)]
    pub options: ApplyOptions,
    /// Print what was applied as JSON.
    #[arg(long)]
    pub json: bool,
}

/// How to apply: shared by `tlao apply` and `tlao run change --apply`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ApplyOptions {
    /// Only say whether the patch would apply; change nothing.
    #[arg(long)]
    pub check: bool,
    /// Apply even when a 3-way merge leaves conflicts, writing conflict markers.
    #[arg(long, conflicts_with = "branch")]
    pub conflicts: bool,
    /// Create a branch (default `tlao/<run id>`), apply there, and commit the change.
    #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "")]
    pub branch: Option<String>,
    /// The agent's identity for a `Co-authored-by` trailer, `Name <email>`
    /// [default: git config tlao.coauthor, else none].
    #[arg(long, value_name = "IDENT", requires = "branch")]
    pub co_author: Option<String>,
}

impl ApplyOptions {
    /// Checks what can be checked before a run exists: the repository at `dir`, the
    /// branch name, the identity to commit with. Returns the repository.
    pub fn preflight(&self, dir: &Path, run: Option<&RunId>) -> anyhow::Result<Repo> {
        let repo = Repo::require(dir)?;
        if let Some(branch) = &self.branch {
            if !branch.is_empty() || run.is_some() {
                repo.check_branch_name(&self.branch_name(run.map(RunId::as_str)))?;
            }
            repo.identity()?;
            if let Some(co_author) = &self.co_author {
                check_co_author(co_author)?;
            }
        }
        Ok(repo)
    }

    fn branch_name(&self, run: Option<&str>) -> String {
        match self.branch.as_deref() {
            Some(name) if !name.is_empty() => name.to_owned(),
            _ => format!("tlao/{}", run.unwrap_or_default()),
        }
    }
}

/// A `Co-authored-by` identity must be one line, `Name <email>`.
fn check_co_author(ident: &str) -> anyhow::Result<()> {
    let ok = !ident.contains(['\n', '\r'])
        && ident
            .trim()
            .strip_suffix('>')
            .and_then(|rest| rest.split_once('<'))
            .is_some_and(|(name, email)| !name.trim().is_empty() && email.contains('@'));
    if ok {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "--co-author {ident:?} is not `Name <email>` on one line"
        ))
        .into())
    }
}

/// `tlao apply`.
pub async fn apply(args: ApplyArgs, profile: &str) -> anyhow::Result<Exit> {
    let dir = canonical_dir(&args.path)?;
    let repo = args.options.preflight(&dir, Some(&args.run))?;
    let ctx = Context::load(profile)?;
    let exit = apply_run(&ctx, &repo, &args.run, &args.options, args.json).await;
    ctx.save_session()?;
    exit
}

/// The directory `path` names, canonical; a usage error when it is not one.
pub fn canonical_dir(path: &Path) -> anyhow::Result<PathBuf> {
    let dir = path
        .canonicalize()
        .map_err(|e| CliError::Usage(format!("--path {}: {e}", path.display())))?;
    if !dir.is_dir() {
        return Err(CliError::Usage(format!("--path {} is not a directory", dir.display())).into());
    }
    Ok(dir)
}

/// Applies the patch of `run_id` to `repo` as `options` say.
pub async fn apply_run(
    ctx: &Context,
    repo: &Repo,
    run_id: &RunId,
    options: &ApplyOptions,
    json: bool,
) -> anyhow::Result<Exit> {
    let client = &ctx.client;
    let run = client
        .get_run(run_id)
        .await
        .with_context(|| format!("reading run {run_id}"))?;
    let status = run.status;
    if status != tlao_sdk::wire::RunStatusName::Completed {
        bail!(
            "run {run_id} is {}, not completed: only a completed run's patch is applied; nothing was changed",
            status.as_str()
        );
    }
    let patch = fetch_patch(client, &run).await?;
    let task = client
        .get_task(&run.task_id)
        .await
        .with_context(|| format!("reading task {}", run.task_id))?;
    let source = task.spec.input.source.as_ref();
    check_base(repo, source)?;
    let patch = match source {
        Some(source) => repo.with_preimages(&patch, &source.commit)?,
        None => patch,
    };

    if patch.is_empty() {
        output::note(format!("run {run_id}'s patch is empty: nothing to apply"));
        return Ok(Exit::Success);
    }
    let plan = repo.plan(&patch)?;
    let refused = plan.fit == Fit::Conflicts && !options.conflicts;
    if options.check {
        report(&plan, run_id, None, json, true)?;
        return Ok(if refused {
            Exit::Failure
        } else {
            Exit::Success
        });
    }
    if refused {
        bail!(
            "the patch of run {run_id} conflicts with your changes in {}: nothing was changed\n  \
             `tlao apply {run_id} --conflicts` writes the conflict markers for you to resolve",
            plan.conflicts.join(", ")
        );
    }
    let commit = match &options.branch {
        None => {
            repo.write(&plan)?;
            None
        }
        Some(_) => {
            let branch = options.branch_name(Some(run_id.as_str()));
            Some(commit_on_branch(ctx, repo, &run, &task, &plan, &branch, options).await?)
        }
    };
    report(&plan, run_id, commit.as_ref(), json, false)?;
    Ok(Exit::Success)
}

/// Refuses a repository that is not at the archive's base (or a descendant of it).
fn check_base(
    repo: &Repo,
    source: Option<&tlao_sdk::wire::SourceRevisionBody>,
) -> anyhow::Result<()> {
    let Some(source) = source else {
        output::warn(
            "the run's task does not record the commit its archive was packed from; applying to the working tree as it is",
        );
        return Ok(());
    };
    let base = &source.commit;
    if !repo.has_commit(base)? {
        bail!(
            "the run's archive was packed from commit {base}, which this repository does not have: \
             fetch it, or apply in the repository the run was started from; nothing was changed"
        );
    }
    let head = repo.head()?;
    match head {
        Some(head) if head == *base => {}
        Some(head) if repo.is_ancestor(base, &head)? => output::note(format!(
            "HEAD ({}) has moved on from the archive's base ({}); merging where needed",
            short(head.as_str()),
            short(base.as_str())
        )),
        Some(head) => bail!(
            "HEAD ({head}) does not contain the commit the run's archive was packed from ({base}): \
             check out {} (or a branch that contains it) and apply again; nothing was changed",
            short(base.as_str())
        ),
        None => bail!("the repository has no commit checked out; nothing was changed"),
    }
    if source.dirty {
        output::note(
            "the archive was packed with uncommitted changes; the patch is relative to them",
        );
    }
    Ok(())
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// The run's patch, downloaded and checked against its size and SHA-256.
pub async fn fetch_patch(client: &TlaoClient, run: &RunView) -> anyhow::Result<Vec<u8>> {
    let run_id = &run.run_id;
    let artifacts = client
        .run_artifacts(run_id)
        .await
        .with_context(|| format!("listing the artifacts of {run_id}"))?;
    let Some(listed) = artifacts
        .iter()
        .find(|a| a.artifact_type == ArtifactTypeName::Patch && a.name == PATCH_NAME)
    else {
        bail!("run {run_id} produced no {PATCH_NAME}; nothing was changed");
    };
    let artifact = client
        .get_artifact(&listed.artifact_id)
        .await
        .with_context(|| format!("reading artifact {}", listed.artifact_id))?;
    download_verified(client, &artifact).await
}

/// Downloads an available artifact into memory, checked against its size and SHA-256.
pub async fn download_verified(
    client: &TlaoClient,
    artifact: &ArtifactView,
) -> anyhow::Result<Vec<u8>> {
    let url = match (&artifact.status, &artifact.download_url) {
        (ArtifactStatusName::Available, Some(url)) => url.clone(),
        _ => bail!(
            "artifact {} ({}) is not available for download",
            artifact.artifact_id,
            artifact.name
        ),
    };
    let mut download = client
        .download(&url)
        .await
        .with_context(|| format!("downloading {}", artifact.name))?;
    let mut bytes = Vec::with_capacity(usize::try_from(artifact.size).unwrap_or(0).min(1 << 26));
    while let Some(chunk) = download.body.next().await {
        let chunk = chunk.with_context(|| format!("downloading {}", artifact.name))?;
        bytes.extend_from_slice(&chunk);
        if bytes.len() as u64 > artifact.size {
            break;
        }
    }
    if bytes.len() as u64 != artifact.size {
        bail!(
            "the download of {} has {} bytes, but the artifact has {}",
            artifact.name,
            bytes.len(),
            artifact.size
        );
    }
    let sha256 = hex::encode(Sha256::digest(&bytes));
    if sha256 != artifact.sha256 {
        bail!(
            "the download of {} has SHA-256 {sha256}, but the artifact's is {}",
            artifact.name,
            artifact.sha256
        );
    }
    Ok(bytes)
}

/// Creates `branch`, writes the change, and commits exactly the patch's files.
async fn commit_on_branch(
    ctx: &Context,
    repo: &Repo,
    run: &RunView,
    task: &tlao_sdk::types::TaskView,
    plan: &Plan,
    branch: &str,
    options: &ApplyOptions,
) -> anyhow::Result<(String, String)> {
    repo.check_branch_name(branch)?;
    let changed = repo.changed_paths()?;
    let touched: Vec<&String> = plan
        .files
        .iter()
        .map(|(path, _)| path)
        .filter(|path| changed.contains(path))
        .collect();
    if !touched.is_empty() {
        bail!(
            "--branch commits exactly the run's change, but {} has local changes: commit or stash them first; nothing was changed",
            touched
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let co_author = match &options.co_author {
        Some(ident) => Some(ident.clone()),
        None => repo.config("tlao.coauthor")?,
    };
    if let Some(ident) = &co_author {
        check_co_author(ident).context("git config tlao.coauthor")?;
    }
    let summary = agent_summary(ctx, &run.run_id).await?;
    let message = commit_message(
        run,
        task.spec.input.prompt.as_str(),
        summary.as_deref(),
        co_author.as_deref(),
    );
    repo.create_branch(branch)?;
    repo.write(plan)?;
    let paths: Vec<String> = plan.files.iter().map(|(path, _)| path.clone()).collect();
    let commit = repo.commit_paths(&paths, &message)?;
    Ok((branch.to_owned(), commit.to_string()))
}

/// What the agent told the user (its `message` events), when it said anything.
async fn agent_summary(ctx: &Context, run_id: &RunId) -> anyhow::Result<Option<String>> {
    let mut stream = ctx
        .client
        .run_events(run_id, 0)
        .await
        .context("opening the run's event stream")?;
    let mut text = String::new();
    while let Some(item) = stream.next().await {
        match item.context("reading the run's events")? {
            EventStreamItem::Event(RunEventMessage::Message { text: said, .. }) => {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(&said);
            }
            EventStreamItem::Event(_) => {}
            EventStreamItem::End(_) => break,
        }
    }
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let mut cut = text.len().min(MAX_SUMMARY_BYTES);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    Ok(Some(text[..cut].to_owned()))
}

/// The commit message of a run's change: the prompt (its first line the subject), the
/// agent's summary, then trailers naming the run, its executor and usage, and the
/// agent as co-author when one is configured.
pub fn commit_message(
    run: &RunView,
    prompt: &str,
    summary: Option<&str>,
    co_author: Option<&str>,
) -> String {
    message_of(
        run.run_id.as_str(),
        &run.executor,
        &run.usage,
        prompt,
        summary,
        co_author,
    )
}

fn message_of(
    run_id: &str,
    executor: &str,
    usage: &UsageView,
    prompt: &str,
    summary: Option<&str>,
    co_author: Option<&str>,
) -> String {
    let prompt = prompt.trim();
    let first = prompt.lines().next().unwrap_or_default().trim();
    let mut subject: String = first.chars().take(SUBJECT_CHARS).collect();
    if subject.len() < first.len() {
        subject.pop();
        subject.push('…');
    }
    let mut message = subject;
    if message.len() < prompt.len() {
        message.push_str("\n\n");
        message.push_str(prompt);
    }
    if let Some(summary) = summary {
        message.push_str("\n\nThe agent's summary:\n\n");
        message.push_str(summary);
    }
    message.push_str(&format!(
        "\n\nTlao-Run: {run_id}\nTlao-Executor: {executor}"
    ));
    if let UsageView::Reported { summary, .. } = usage {
        let usage = summary.replace(['\n', '\r'], " ");
        message.push_str(&format!("\nTlao-Usage: {}", usage.trim()));
    }
    if let Some(ident) = co_author {
        message.push_str(&format!("\nCo-authored-by: {}", ident.trim()));
    }
    message.push('\n');
    message
}

/// Says what was (or, with `check`, would be) applied.
fn report(
    plan: &Plan,
    run_id: &RunId,
    commit: Option<&(String, String)>,
    json: bool,
    check: bool,
) -> anyhow::Result<()> {
    if json {
        let files: Vec<_> = plan
            .files
            .iter()
            .map(|(path, change)| json!({"path": path, "change": change}))
            .collect();
        let mut value = json!({
            "runId": run_id,
            "applied": !check,
            "fit": plan.fit,
            "files": files,
            "conflicts": plan.conflicts,
        });
        if let Some((branch, commit)) = commit {
            value["branch"] = json!(branch);
            value["commit"] = json!(commit);
        }
        return output::print_json(&value);
    }
    let how = match plan.fit {
        Fit::Clean => "applies cleanly",
        Fit::Merged => "applies with a 3-way merge",
        Fit::Conflicts => "applies with conflicts",
    };
    for (path, change) in &plan.files {
        let mark = if plan.conflicts.contains(path) {
            'U'
        } else {
            change.mark()
        };
        println!("{mark} {path}");
    }
    let count = plan.files.len();
    let files = if count == 1 { "file" } else { "files" };
    if check {
        output::note(format!(
            "the patch of run {run_id} {how} ({count} {files}); nothing was changed (--check)"
        ));
    } else if plan.fit == Fit::Conflicts {
        output::warn(format!(
            "applied the patch of run {run_id} with conflicts in {}: resolve the markers",
            plan.conflicts.join(", ")
        ));
    } else {
        let committed = commit
            .map(|(branch, commit)| format!(", committed {} on {branch}", short(commit)))
            .unwrap_or_default();
        output::success(format!(
            "applied the patch of run {run_id} ({how}): {count} {files} changed{committed}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_co_author_is_a_name_and_an_email_on_one_line() {
        assert!(check_co_author("Kiro <kiro@example.com>").is_ok());
        for bad in [
            "kiro",
            "<a@b>",
            "Kiro <nope>",
            "Kiro <a@b>\nSigned-off-by: x",
        ] {
            assert!(check_co_author(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn a_commit_message_has_the_prompt_as_subject_then_the_summary_and_trailers() {
        let usage = UsageView::Reported {
            credits: Some("0.42".into()),
            summary: "Credits: 0.42\n• Time: 1s".into(),
            input_tokens: None,
            output_tokens: None,
            cached_tokens: None,
            cost: None,
        };
        let message = message_of(
            "run_1",
            "kiro",
            &usage,
            "  fix the bug  ",
            Some("Fixed it."),
            Some("Kiro <k@example.com>"),
        );
        assert_eq!(
            message,
            "fix the bug\n\nThe agent's summary:\n\nFixed it.\n\nTlao-Run: run_1\n\
             Tlao-Executor: kiro\nTlao-Usage: Credits: 0.42 • Time: 1s\n\
             Co-authored-by: Kiro <k@example.com>\n"
        );

        let long = "é".repeat(100);
        let message = message_of("run_1", "kiro", &UsageView::Unmeasured, &long, None, None);
        let subject = message.lines().next().unwrap();
        assert_eq!(subject.chars().count(), SUBJECT_CHARS);
        assert!(subject.ends_with('…'));
        assert!(message.contains(&format!("\n\n{long}\n\nTlao-Run: run_1\n")));
        assert!(!message.contains("Tlao-Usage"));
    }

    #[test]
    fn the_branch_defaults_to_the_run_id() {
        let options = ApplyOptions {
            branch: Some(String::new()),
            ..ApplyOptions::default()
        };
        assert_eq!(options.branch_name(Some("run_1")), "tlao/run_1");
        let named = ApplyOptions {
            branch: Some("fix".into()),
            ..ApplyOptions::default()
        };
        assert_eq!(named.branch_name(Some("run_1")), "fix");
    }
}
