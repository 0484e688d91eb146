//! The dashboard: what is running and what failed, the executors and how they have been
//! doing, and where the workspace stands against its limits.
//!
//! An executor's **health** is derived, not probed: from the last
//! [`HEALTH_WINDOW`] finished runs of the workspace on that executor (the outcome of the
//! last one, the failures among them, when it was last used), and from when a worker
//! last reported its program found (requirement 2.2: workers report at lease and
//! heartbeat, and `tlao dev`'s launcher probes its own `PATH`).
//!
//! When this server starts agents itself, the page also says whether they are
//! sandboxed: a notice when they are not, a line when they are.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use tlao_domain::{
    ExecutorDescriptor, ExecutorName, ExecutorSeen, NetworkPolicy, Run, RunStatus, SandboxGrants,
    Timestamp, Workspace, program_of,
};
use tlao_orchestrator::{RunFilter, WorkspaceSummary};

use super::page::{self, Ctx, Nav, PageError};
use super::runs::runs_table;
use super::session::ConsoleKeys;
use crate::app::AgentSandbox;
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
    /// Where each executor's program was last seen available.
    seen: HashMap<ExecutorName, ExecutorSeen>,
    /// Whether the agents this server starts are sandboxed.
    agents: Option<AgentSandbox>,
    /// How recent a sighting counts (`guardrails.executor_seen_within_seconds`).
    window_seconds: u64,
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
        let seen = services.executors.availability().await?;
        Ok(Dashboard {
            ws,
            summary,
            runs: recent.items.into_iter().map(|view| view.run).collect(),
            executors,
            seen,
            agents: state.agents.clone(),
            window_seconds: services.core.guardrails.executor_seen_within_seconds,
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
        (sandbox_notice(view.agents.as_ref()))
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
        (executors_section(view, &runs, now))
    }
}

/// Whether local agents are sandboxed: a notice when they are not, a line when they are,
/// nothing when this server starts no agents (remote workers say so in their own logs).
fn sandbox_notice(agents: Option<&AgentSandbox>) -> Markup {
    html! {
        @match agents {
            Some(AgentSandbox::NotSandboxed(text)) => {
                div class="notice notice-warn" role="alert" id="sandbox-notice" {
                    strong { "Local agents: " }
                    (text)
                }
            }
            Some(AgentSandbox::Sandboxed(text)) => {
                p class="muted" id="sandbox-status" { "Local agents: sandboxed (" (text) ")" }
            }
            None => {}
        }
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
fn executors_section(view: &Dashboard<'_>, runs: &[&Run], now: Timestamp) -> Markup {
    let executors: &[ExecutorDescriptor] = &view.executors;
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
                            (executor_row(executor, view.seen.get(&executor.name), view.window_seconds, runs, now))
                        }
                        @if executors.is_empty() {
                            tr { td colspan="5" class="empty" { "No executor is registered." } }
                        }
                    }
                }
            }
            p class="muted" {
                "Health comes from this workspace's last " (HEALTH_WINDOW) " finished runs on each executor "
                "and from when a worker last reported its program found on its PATH (workers report when they "
                "lease and heartbeat; the workers this server starts are probed at start and every minute). "
                "Missing means no report within " (view.window_seconds) " s."
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

/// Whether a worker reported the executor's program found within the window, and a
/// sentence saying where and when.
fn program_text(
    executor: &ExecutorDescriptor,
    seen: Option<&ExecutorSeen>,
    window_seconds: u64,
    now: Timestamp,
) -> (bool, String) {
    let program = program_of(executor).unwrap_or_else(|| "its program".into());
    match seen {
        Some(seen) if seen.workers > 0 => (
            true,
            format!(
                "{program} {}found by {} worker{} {}",
                seen.version
                    .as_deref()
                    .map(|v| format!("({v}) "))
                    .unwrap_or_default(),
                seen.workers,
                if seen.workers == 1 { "" } else { "s" },
                page::ago(seen.last_seen_at, now)
            ),
        ),
        Some(seen) => (
            false,
            format!(
                "{program} last found {}, not within {window_seconds} s",
                page::ago(seen.last_seen_at, now)
            ),
        ),
        None => (false, format!("no worker has reported {program} found")),
    }
}

fn health(
    executor: &ExecutorDescriptor,
    seen: Option<&ExecutorSeen>,
    window_seconds: u64,
    runs: &[&Run],
    now: Timestamp,
) -> Health {
    let (found, program_text) = program_text(executor, seen, window_seconds, now);
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

fn executor_row(
    executor: &ExecutorDescriptor,
    seen: Option<&ExecutorSeen>,
    window_seconds: u64,
    runs: &[&Run],
    now: Timestamp,
) -> Markup {
    let health = health(executor, seen, window_seconds, runs, now);
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
