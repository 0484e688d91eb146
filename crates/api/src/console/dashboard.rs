//! The dashboard: what is running and what failed, the executors and how they have been
//! doing, and where the workspace stands against its limits.
//!
//! An executor's **health** is derived, not probed: from the last
//! [`HEALTH_WINDOW`] finished runs of the workspace on that executor (the outcome of the
//! last one, the failures among them, when it was last used), and from whether its
//! binary is on this server's `PATH` — which is the `PATH` of the workers `tlao dev`
//! starts, but says nothing about remote workers.

use std::path::Path;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use tlao_domain::{
    ExecutorConfig, ExecutorDescriptor, NetworkPolicy, Run, RunStatus, SandboxGrants, Timestamp,
    Workspace,
};
use tlao_orchestrator::{RunFilter, WorkspaceSummary};

use super::page::{self, Ctx, Nav, PageError};
use super::runs::runs_table;
use super::session::ConsoleKeys;
use crate::state::AppState;

/// How many recent runs the dashboard lists.
const RECENT: usize = 10;
/// How many recent runs of the workspace health is judged from.
const SCANNED: usize = 100;
/// How many finished runs of one executor its failure count looks at.
pub(crate) const HEALTH_WINDOW: usize = 10;

/// `GET /console`.
pub(crate) async fn dashboard(
    req: HttpRequest,
    state: web::Data<AppState>,
    keys: web::Data<ConsoleKeys>,
) -> HttpResponse {
    page::respond(&req, &state, &keys, async |ctx| {
        let view = Dashboard::load(&state, ctx).await?;
        let body = dashboard_body(&view, state.now());
        Ok(page::page(
            StatusCode::OK,
            Some(ctx),
            Nav::Dashboard,
            "Dashboard",
            body,
        ))
    })
    .await
}

/// What the dashboard shows: the workspace's usage, its recent runs and the executors.
struct Dashboard<'a> {
    ws: &'a Workspace,
    summary: WorkspaceSummary,
    /// Up to [`SCANNED`] of the workspace's runs, newest first.
    runs: Vec<Run>,
    executors: Arc<Vec<ExecutorDescriptor>>,
}

impl<'a> Dashboard<'a> {
    async fn load(state: &AppState, ctx: &'a Ctx) -> Result<Self, PageError> {
        let ws = ctx.workspace()?;
        let caller = &ctx.session.caller;
        let services = &state.services;
        let summary = services
            .workspaces
            .summary(caller, &ws.workspace_id)
            .await?;
        let filter = RunFilter {
            workspace_id: Some(ws.workspace_id.clone()),
            status: None,
            executor: None,
            task_type: None,
            limit: SCANNED,
            after: None,
        };
        let recent = services.runs.list(caller, filter).await?;
        let executors = services.executors.list().await?;
        Ok(Dashboard {
            ws,
            summary,
            runs: recent.items.into_iter().map(|view| view.run).collect(),
            executors,
        })
    }
}

fn dashboard_body(view: &Dashboard<'_>, now: Timestamp) -> Markup {
    let runs: Vec<&Run> = view.runs.iter().collect();
    html! {
        div class="page-head" {
            h1 { "Dashboard" }
            div class="actions" { a class="button" href="/console/runs/new" { "Start a task" } }
        }
        (usage_section(view.ws, &view.summary, &runs))
        section aria-labelledby="recent-title" {
            h2 id="recent-title" { "Recent runs" }
            div id="recent-runs" data-refresh {
                (runs_table(
                    &runs.iter().take(RECENT).copied().collect::<Vec<_>>(),
                    now,
                    "Recent runs",
                    html! { "No runs yet. " a href="/console/runs/new" { "Start a task" } " to see it here." },
                ))
            }
            p class="muted" { "This page keeps itself up to date while it is open." }
            p class="pager" { a href="/console/runs" { "All runs →" } }
        }
        (executors_section(&view.executors, &runs, now))
    }
}

/// The workspace against its limits: runs today, running now, storage, recent failures.
fn usage_section(ws: &Workspace, summary: &WorkspaceSummary, runs: &[&Run]) -> Markup {
    let failed_recently = runs
        .iter()
        .take(RECENT)
        .filter(|run| matches!(run.status, RunStatus::Failed | RunStatus::TimedOut))
        .count();
    let storage = summary.artifact_bytes + summary.archive_bytes;
    html! {
        section aria-labelledby="usage-title" {
            h2 id="usage-title" class="visually-hidden" { "Workspace usage" }
            p class="muted" { "Workspace " strong { (ws.name.as_str()) } " · " span class="mono" { (ws.workspace_id) } }
            dl class="cards" id="usage" data-refresh {
                div class="card" {
                    dt { "Runs today (UTC)" }
                    dd { (summary.runs_today) " of " (summary.daily_quota)
                        (meter(summary.runs_today, u64::from(summary.daily_quota), "Runs today against the quota"))
                        small { "daily quota; resets at midnight UTC" } }
                }
                div class="card" {
                    dt { "Running now" }
                    dd { (summary.running) " of " (summary.max_concurrent)
                        (meter(summary.running, u64::from(summary.max_concurrent), "Running runs against the limit"))
                        small { (summary.queued) " queued" } }
                }
                div class="card" {
                    dt { "Storage used" }
                    dd { (page::bytes(storage))
                        small {
                            (page::bytes(summary.artifact_bytes)) " in " (summary.artifact_count) " artifacts, "
                            (page::bytes(summary.archive_bytes)) " in " (summary.archive_count) " archives"
                            @if summary.storage_partial { " (at least)" }
                        } }
                }
                div class="card" {
                    dt { "Failed recently" }
                    dd { (failed_recently)
                        small { "of the last " (runs.len().min(RECENT)) " runs · " a href="/console/runs?status=failed" { "see failed runs" } } }
                }
            }
        }
    }
}

/// The executors, their task types and their health.
fn executors_section(executors: &[ExecutorDescriptor], runs: &[&Run], now: Timestamp) -> Markup {
    html! {
        section aria-labelledby="executors-title" {
            h2 id="executors-title" { "Executors" }
            div class="table-wrap" {
                table {
                    caption class="visually-hidden" { "Executors" }
                    thead {
                        tr {
                            th scope="col" { "Executor" }
                            th scope="col" { "Kind" }
                            th scope="col" { "Task types" }
                            th scope="col" { "Sandbox grants" }
                            th scope="col" { "Health" }
                            th scope="col" { "Last used" }
                        }
                    }
                    tbody {
                        @for executor in executors {
                            (executor_row(executor, runs, now))
                        }
                        @if executors.is_empty() {
                            tr { td colspan="5" class="empty" { "No executor is registered." } }
                        }
                    }
                }
            }
            p class="muted" {
                "Health comes from this workspace's last " (HEALTH_WINDOW) " finished runs on each executor "
                "and from whether its program is on this server's PATH (the PATH of the workers this server starts; "
                "remote workers may differ). It is not a live probe."
            }
        }
    }
}

fn meter(value: u64, limit: u64, label: &str) -> Markup {
    html! {
        meter class="meter" min="0" max=(limit.max(1)) value=(value.min(limit.max(1))) aria-label=(label) {
            (value) " of " (limit)
        }
    }
}

/// How an executor has been doing, in a word (the badge) and a sentence.
struct Health {
    class: &'static str,
    label: &'static str,
    detail: String,
}

impl Health {
    /// An executor without finished runs in the window: idle, or missing its program.
    fn unused(found: bool, detail: String) -> Health {
        let (class, label) = if found {
            ("health-idle", "no runs yet")
        } else {
            ("health-missing", "program missing")
        };
        Health {
            class,
            label,
            detail,
        }
    }
}

/// The program an executor starts, and whether this server can find it.
fn program_text(executor: &ExecutorDescriptor) -> (bool, String) {
    let stream_argv;
    let program = match &executor.config {
        ExecutorConfig::Kiro(config) => Some(config.binary.as_str()),
        ExecutorConfig::Command(config) => config.command.first().map(String::as_str),
        ExecutorConfig::Stream(config) => {
            stream_argv = config.argv();
            stream_argv.first().map(String::as_str)
        }
    };
    let found = program.is_some_and(on_path);
    let text = match (program, found) {
        (Some(program), true) => format!("{program} found on PATH"),
        (Some(program), false) => format!("{program} not found on this server's PATH"),
        (None, _) => "no program configured".into(),
    };
    (found, text)
}

fn health(executor: &ExecutorDescriptor, runs: &[&Run], now: Timestamp) -> Health {
    let (found, program_text) = program_text(executor);
    let finished: Vec<&&Run> = runs
        .iter()
        .filter(|run| run.executor == executor.name && run.status.is_terminal())
        .take(HEALTH_WINDOW)
        .collect();
    let Some(last) = finished.first() else {
        return Health::unused(found, program_text);
    };
    let failures = finished
        .iter()
        .filter(|run| matches!(run.status, RunStatus::Failed | RunStatus::TimedOut))
        .count();
    let last_text = format!(
        "last run {} {}",
        page::status_label(last.status),
        page::ago(last.finished_at.unwrap_or(last.created_at), now)
    );
    let detail = format!(
        "{last_text}; {failures} of the last {} failed; {program_text}",
        finished.len()
    );
    let (class, label) = if !found {
        ("health-missing", "program missing")
    } else if matches!(last.status, RunStatus::Failed | RunStatus::TimedOut) {
        ("health-failing", "last run failed")
    } else if failures > 0 {
        ("health-warn", "recent failures")
    } else {
        ("health-ok", "healthy")
    };
    Health {
        class,
        label,
        detail,
    }
}

fn executor_row(executor: &ExecutorDescriptor, runs: &[&Run], now: Timestamp) -> Markup {
    let health = health(executor, runs, now);
    let last_used = runs
        .iter()
        .find(|run| run.executor == executor.name)
        .map(|run| run.created_at);
    html! {
        tr {
            th scope="row" { (executor.name) }
            td { (executor.config.kind()) }
            td { (executor.task_types.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")) }
            td { (grants(&executor.sandbox)) }
            td {
                span class={ "badge " (health.class) } { (health.label) }
                br;
                span class="muted" { (health.detail) }
            }
            td { (page::maybe_time(last_used)) }
        }
    }
}

/// What a record grants its agent beyond its run, one line per kind; "none" when it
/// grants nothing more (the network line shows only when it is restricted).
fn grants(grants: &SandboxGrants) -> Markup {
    let list = |items: Vec<String>| items.join(", ");
    let network = match &grants.network {
        NetworkPolicy::Any => None,
        NetworkPolicy::None => Some("none".to_owned()),
        NetworkPolicy::TcpPorts(ports) => Some(format!(
            "TCP ports {}",
            list(ports.iter().map(u16::to_string).collect())
        )),
    };
    let lines = [
        (
            "read",
            list(grants.read_paths.iter().map(ToString::to_string).collect()),
        ),
        (
            "write",
            list(grants.write_paths.iter().map(ToString::to_string).collect()),
        ),
        (
            "env",
            list(grants.env.iter().map(ToString::to_string).collect()),
        ),
        ("network", network.unwrap_or_default()),
    ];
    html! {
        @if grants.is_default() {
            span class="muted" { "none" }
        }
        @for (label, text) in lines.iter().filter(|(_, text)| !text.is_empty()) {
            span class="grant" { span class="muted" { (label) ": " } code { (text) } }
            br;
        }
    }
}

/// Whether `program` (a path, or a name looked up on `PATH`) is an existing file.
fn on_path(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}
