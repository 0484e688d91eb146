//! `tlao rerun RUN` (a new run of the same task, so the same TaskSpec and workspace
//! archive, on the same executor or another) and `tlao diff RUN_A RUN_B` (how two runs'
//! patches differ: which files only one of them changes, which both change differently,
//! then the difference of the patches themselves).

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use anyhow::Context as _;
use serde_json::json;
use tlao_domain::RunId;
use tlao_sdk::types::CreateRunRequest;

use crate::commands::apply::fetch_patch;
use crate::commands::run::follow_created;
use crate::context::Context;
use crate::errors::Exit;
use crate::output;

/// Options of `tlao rerun`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    tlao rerun run_01J...                      # same task, same archive, same executor\n  \
    tlao rerun run_01J... --executor claude-code\n  \
    tlao diff run_01J...A run_01J...B          # then compare what they changed")]
pub struct RerunArgs {
    /// The run to run again (`run_...`).
    pub run: RunId,
    /// The executor [default: the run's].
    #[arg(long, value_name = "NAME")]
    pub executor: Option<String>,
    /// Print the new run's id and return at once instead of following it.
    #[arg(long)]
    pub detach: bool,
    /// Print the run as JSON (when it ends, or at once with --detach) instead of its logs.
    #[arg(long)]
    pub json: bool,
}

/// Options of `tlao diff`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    tlao diff run_01J...A run_01J...B\n  \
    tlao diff run_01J...A run_01J...B --json | jq .differ")]
pub struct DiffArgs {
    /// The first run (`run_...`).
    pub run_a: RunId,
    /// The second run (`run_...`).
    pub run_b: RunId,
    /// Print the comparison as JSON (the files in each group, and whether the patches
    /// are identical).
    #[arg(long)]
    pub json: bool,
}

/// `tlao rerun`.
pub async fn rerun(args: RerunArgs, profile: &str) -> anyhow::Result<Exit> {
    let ctx = Context::load(profile)?;
    let original = ctx
        .client
        .get_run(&args.run)
        .await
        .with_context(|| format!("reading run {}", args.run))?;
    let executor = args.executor.unwrap_or(original.executor);
    let created = ctx
        .client
        .create_run(&CreateRunRequest {
            task_id: original.task_id,
            executor: Some(executor),
        })
        .await
        .context("starting the run")?;
    ctx.save_session()?;
    if !args.json {
        output::note(format!(
            "run {} runs the task of {} again",
            created.run_id, args.run
        ));
    }
    let exit = follow_created(&ctx, &created, args.detach, args.json).await;
    ctx.save_session()?;
    exit
}

/// `tlao diff`.
pub async fn diff(args: DiffArgs, profile: &str) -> anyhow::Result<Exit> {
    let ctx = Context::load(profile)?;
    let mut patches = Vec::new();
    for run_id in [&args.run_a, &args.run_b] {
        let run = ctx
            .client
            .get_run(run_id)
            .await
            .with_context(|| format!("reading run {run_id}"))?;
        patches.push(fetch_patch(&ctx.client, &run).await?);
    }
    ctx.save_session()?;
    let (a, b) = (by_file(&patches[0]), by_file(&patches[1]));
    let mut same = Vec::new();
    let mut differ = Vec::new();
    let mut only_a = Vec::new();
    let mut only_b = Vec::new();
    for (path, section) in &a {
        match b.get(path) {
            Some(other) if other == section => same.push(path.clone()),
            Some(_) => differ.push(path.clone()),
            None => only_a.push(path.clone()),
        }
    }
    only_b.extend(b.keys().filter(|path| !a.contains_key(*path)).cloned());
    let identical = patches[0] == patches[1];
    if args.json {
        output::print_json(&json!({
            "runA": args.run_a,
            "runB": args.run_b,
            "identical": identical,
            "same": same,
            "differ": differ,
            "onlyA": only_a,
            "onlyB": only_b,
        }))?;
        return Ok(Exit::Success);
    }
    if identical {
        output::success(format!(
            "the patches of {} and {} are identical ({} files)",
            args.run_a,
            args.run_b,
            same.len()
        ));
        return Ok(Exit::Success);
    }
    for (mark, paths) in [("=", &same), ("≠", &differ), ("<", &only_a), (">", &only_b)] {
        for path in paths {
            println!("{mark} {path}");
        }
    }
    output::note(format!(
        "= same change in both, ≠ changed differently, < only in {}, > only in {}",
        args.run_a, args.run_b
    ));
    println!();
    print_patch_diff(&args.run_a, &patches[0], &args.run_b, &patches[1])?;
    Ok(Exit::Success)
}

/// A patch's sections (`diff --git` to the next one), by the path they change.
fn by_file(patch: &[u8]) -> BTreeMap<String, String> {
    let text = String::from_utf8_lossy(patch);
    let mut sections = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.split_inclusive('\n') {
        if let Some(header) = line.strip_prefix("diff --git ") {
            if let Some((path, body)) = current.take() {
                sections.insert(path, body);
            }
            // "a/<path> b/<path>": the new name, after the last " b/".
            let path = header
                .trim_end()
                .rsplit_once(" b/")
                .map(|(_, path)| path.to_owned())
                .unwrap_or_else(|| header.trim_end().to_owned());
            current = Some((path, String::new()));
        }
        if let Some((_, body)) = current.as_mut() {
            // The index line names blobs, which differ whenever anything around does.
            if !line.starts_with("index ") {
                body.push_str(line);
            }
        }
    }
    if let Some((path, body)) = current {
        sections.insert(path, body);
    }
    sections
}

/// The difference of the two patches, as `git diff --no-index` shows it.
fn print_patch_diff(run_a: &RunId, a: &[u8], run_b: &RunId, b: &[u8]) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let (path_a, path_b) = (
        dir.path().join(format!("{run_a}.patch")),
        dir.path().join(format!("{run_b}.patch")),
    );
    std::fs::write(&path_a, a)?;
    std::fs::write(&path_b, b)?;
    let color = if std::io::IsTerminal::is_terminal(&std::io::stdout())
        && std::env::var_os("NO_COLOR").is_none()
    {
        "--color=always"
    } else {
        "--color=never"
    };
    let shown = Command::new("git")
        .args(["diff", "--no-index", "--no-prefix", color, "--"])
        .arg(path_a.file_name().unwrap_or_default())
        .arg(path_b.file_name().unwrap_or_default())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .context("running git diff (is git installed and on PATH?)")?;
    // `git diff --no-index` exits 1 when the files differ, which they do here.
    if shown.status.code() != Some(1) && !shown.status.success() {
        anyhow::bail!(
            "git diff failed: {}",
            String::from_utf8_lossy(&shown.stderr).trim()
        );
    }
    print!("{}", String::from_utf8_lossy(&shown.stdout));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_splits_into_sections_by_path_without_index_lines() {
        let patch = b"diff --git a/x.txt b/x.txt\nindex 1..2 100644\n--- a/x.txt\n+++ b/x.txt\n@@ -1 +1 @@\n-a\n+b\ndiff --git a/y y b/y y\nnew file mode 100644\n";
        let sections = by_file(patch);
        assert_eq!(sections.keys().collect::<Vec<_>>(), ["x.txt", "y y"]);
        assert!(!sections["x.txt"].contains("index "));
        assert!(sections["x.txt"].ends_with("+b\n"));
    }
}
