//! `tlao runs`: a workspace's runs, newest first, as a table (status coloured on a
//! terminal) or JSON. `--all` follows the server's cursors to the last page.

use anyhow::Context as _;
use tlao_domain::WorkspaceId;
use tlao_sdk::types::{RunQuery, RunView};
use tlao_sdk::wire::{RunStatusName, TaskTypeName};

use crate::context::Context;
use crate::errors::Exit;
use crate::output::{self, Table, human_duration, status_style};

/// The most runs one page of `GET /runs` holds.
const MAX_PAGE: u32 = 100;

/// Options of `tlao runs`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    tlao runs\n  \
    tlao runs --status failed --limit 5\n  \
    tlao runs --executor kiro --task-type code.change\n  \
    tlao runs --all --json | jq -r '.[] | select(.status == \"completed\") | .runId'")]
pub struct RunsArgs {
    /// Only runs with this status.
    #[arg(long, value_name = "STATUS", value_parser = parse_status)]
    pub status: Option<RunStatusName>,
    /// Only runs on this executor.
    #[arg(long, value_name = "NAME")]
    pub executor: Option<String>,
    /// Only runs of this task type (spec.generate, code.change, doc.write, deploy.run).
    #[arg(long, value_name = "TYPE", value_parser = parse_task_type)]
    pub task_type: Option<TaskTypeName>,
    /// How many runs to show.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,
    /// Show every run (follows the pages to the end; --limit is ignored).
    #[arg(long)]
    pub all: bool,
    /// The workspace [default: the profile's, else your first].
    #[arg(long, value_name = "ID")]
    pub workspace: Option<WorkspaceId>,
    /// Print the runs as a JSON array.
    #[arg(long)]
    pub json: bool,
}

fn parse_status(text: &str) -> Result<RunStatusName, String> {
    RunStatusName::ALL
        .iter()
        .copied()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| {
            let names: Vec<&str> = RunStatusName::ALL.iter().map(|s| s.as_str()).collect();
            format!("{text:?} is not one of {}", names.join(", "))
        })
}

fn parse_task_type(text: &str) -> Result<TaskTypeName, String> {
    TaskTypeName::ALL
        .iter()
        .copied()
        .find(|t| t.as_str() == text)
        .ok_or_else(|| {
            let names: Vec<&str> = TaskTypeName::ALL.iter().map(|t| t.as_str()).collect();
            format!("taskType {text:?} is not one of {}", names.join(", "))
        })
}

/// `tlao runs`.
pub async fn runs(args: RunsArgs, profile: &str) -> anyhow::Result<Exit> {
    let ctx = Context::load(profile)?;
    let workspace_id = match &args.workspace {
        Some(ws) => Some(ws.clone()),
        None => ctx
            .profile
            .workspace_id
            .as_deref()
            .and_then(|ws| ws.parse().ok()),
    };
    let wanted = if args.all { None } else { Some(args.limit) };
    let mut runs: Vec<RunView> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page_size = wanted.map_or(MAX_PAGE, |w| (w - runs.len() as u32).min(MAX_PAGE));
        let page = ctx
            .client
            .list_runs(&RunQuery {
                workspace_id: workspace_id.clone(),
                status: args.status,
                executor: args.executor.clone(),
                task_type: args.task_type,
                limit: Some(page_size),
                cursor: cursor.take(),
            })
            .await
            .context("listing runs")?;
        runs.extend(page.items);
        let full = wanted.is_some_and(|w| runs.len() as u32 >= w);
        match page.next_cursor {
            Some(next) if !full => cursor = Some(next),
            _ => break,
        }
    }
    ctx.save_session()?;
    if args.json {
        output::print_json(&runs)?;
        return Ok(Exit::Success);
    }
    if runs.is_empty() {
        output::note("no runs yet: start one with `tlao run plan \"...\"`");
        return Ok(Exit::Success);
    }
    let now = output::now();
    let mut table = Table::new(&["RUN", "STATUS", "TYPE", "EXECUTOR", "STARTED", "DURATION"]);
    for run in &runs {
        let started = match (run.started_at, run.queue_position) {
            (Some(at), _) => output::ago(at, now),
            (None, Some(position)) => format!("queued #{position}"),
            (None, None) => "-".to_owned(),
        };
        table.styled_row(vec![
            (run.run_id.to_string(), None),
            (
                run.status.as_str().to_owned(),
                Some(status_style(run.status)),
            ),
            (run.task_type.to_string(), None),
            (run.executor.clone(), None),
            (started, None),
            (
                run.duration_ms
                    .map(human_duration)
                    .unwrap_or_else(|| "-".into()),
                None,
            ),
        ]);
    }
    table.print()?;
    Ok(Exit::Success)
}
