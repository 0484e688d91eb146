//! Runs: the workspace's runs, filtered and paged, and the table of runs the dashboard
//! shares. One run's page is [`super::run`]; its event stream [`super::run_events`].

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use tlao_domain::{
    ExecutorDescriptor, ExecutorName, Run, RunId, RunStatus, TaskType, Timestamp, Workspace,
};
use tlao_orchestrator::RunFilter;

use super::page::{self, Ctx, Nav, PageError, maybe_time, status_badge, time};
use super::session::ConsoleKeys;
use crate::state::AppState;

/// Runs per page of the list.
const PAGE_SIZE: usize = 25;

/// The query of `GET /console/runs`.
#[derive(Debug, Default)]
struct ListQuery {
    status: Option<RunStatus>,
    executor: Option<ExecutorName>,
    task_type: Option<TaskType>,
    cursor: Option<RunId>,
}

impl ListQuery {
    /// Unknown or malformed values are ignored: a filter a person cannot type wrongly
    /// from the form, and a hand-edited URL still shows a page.
    fn parse(query: &str) -> ListQuery {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
        let mut parsed = ListQuery::default();
        for (key, value) in pairs {
            match key.as_str() {
                "status" => parsed.status = value.parse().ok(),
                "executor" => parsed.executor = value.parse().ok(),
                "type" => parsed.task_type = value.parse().ok(),
                "cursor" => parsed.cursor = value.parse().ok(),
                _ => {}
            }
        }
        parsed
    }

    /// The page of `ws`'s runs these filters ask for.
    fn filter(&self, ws: &Workspace) -> RunFilter {
        RunFilter {
            workspace_id: Some(ws.workspace_id.clone()),
            status: self.status,
            executor: self.executor.clone(),
            task_type: self.task_type,
            limit: PAGE_SIZE,
            after: self.cursor.clone(),
        }
    }

    /// Whether any filter is set.
    fn filtered(&self) -> bool {
        self.status.is_some() || self.executor.is_some() || self.task_type.is_some()
    }

    /// The query string of these filters (without the cursor).
    fn filters(&self) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(status) = self.status {
            pairs.push(("status", status.as_str().into()));
        }
        if let Some(executor) = &self.executor {
            pairs.push(("executor", executor.to_string()));
        }
        if let Some(task_type) = self.task_type {
            pairs.push(("type", task_type.as_str().into()));
        }
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }

    /// The list's address with these filters and `extra` (e.g. a cursor).
    fn href(&self, extra: &str) -> String {
        let filters = self.filters();
        let joined = [filters.as_str(), extra]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join("&");
        if joined.is_empty() {
            "/console/runs".into()
        } else {
            format!("/console/runs?{joined}")
        }
    }
}

/// `GET /console/runs`.
pub(crate) async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    keys: web::Data<ConsoleKeys>,
) -> HttpResponse {
    page::respond(&req, &state, &keys, async |ctx| {
        list_page(&req, &state, ctx).await
    })
    .await
}

async fn list_page(
    req: &HttpRequest,
    state: &AppState,
    ctx: &Ctx,
) -> Result<HttpResponse, PageError> {
    let ws = ctx.workspace()?;
    let query = ListQuery::parse(req.query_string());
    let found = state
        .services
        .runs
        .list(&ctx.session.caller, query.filter(ws))
        .await?;
    let executors = state.services.executors.list().await?;
    let runs: Vec<&Run> = found.items.iter().map(|view| &view.run).collect();
    let body = html! {
        div class="page-head" {
            h1 { "Runs" }
            div class="actions" { a class="button" href="/console/runs/new" { "Start a task" } }
        }
        p class="muted" { "Newest first, in workspace " strong { (ws.name.as_str()) } "." }
        (filters_form(&query, &executors))
        div id="runs-list" data-refresh {
            (runs_table(&runs, state.now(), "Runs", html! { "No runs match." }))
        }
        (pager(&query, found.next_cursor.as_ref()))
    };
    Ok(page::page(
        StatusCode::OK,
        Some(ctx),
        Nav::Runs,
        "Runs",
        body,
    ))
}

/// The filters, as a form that asks for the list again.
fn filters_form(query: &ListQuery, executors: &[ExecutorDescriptor]) -> Markup {
    let statuses = RunStatus::ALL.into_iter().map(|status| {
        let selected = query.status == Some(status);
        (status.as_str(), page::status_label(status), selected)
    });
    let names = executors.iter().map(|executor| {
        let selected = query.executor.as_ref() == Some(&executor.name);
        (executor.name.as_str(), executor.name.as_str(), selected)
    });
    let task_types = TaskType::ALL.into_iter().map(|task_type| {
        let selected = query.task_type == Some(task_type);
        (task_type.as_str(), task_type.as_str(), selected)
    });
    html! {
        form class="filters" method="get" action="/console/runs" aria-label="Filter runs" {
            (filter_field("status", "Status", "Any status", statuses))
            (filter_field("executor", "Executor", "Any executor", names))
            (filter_field("type", "Task type", "Any task type", task_types))
            button type="submit" class="button secondary" { "Apply filters" }
            @if query.filtered() {
                a href="/console/runs" { "Clear filters" }
            }
        }
    }
}

/// One filter: a choice of `(value, label, selected)` options after "any".
fn filter_field<'a>(
    name: &str,
    label: &str,
    any: &str,
    options: impl Iterator<Item = (&'a str, &'a str, bool)>,
) -> Markup {
    html! {
        div class="field" {
            label for={ "filter-" (name) } { (label) }
            select id={ "filter-" (name) } name=(name) {
                option value="" { (any) }
                @for (value, text, selected) in options {
                    option value=(value) selected[selected] { (text) }
                }
            }
        }
    }
}

/// Links to the first page (when not on it) and the next (when there is one).
fn pager(query: &ListQuery, next: Option<&RunId>) -> Markup {
    html! {
        nav class="pager" aria-label="Pages" {
            @if query.cursor.is_some() {
                a href=(query.href("")) { "← First page" }
            }
            @if let Some(next) = next {
                a href=(query.href(&format!("cursor={next}"))) rel="next" { "Next page →" }
            }
        }
    }
}

/// A table of runs; shared with the dashboard.
pub(crate) fn runs_table(runs: &[&Run], now: Timestamp, caption: &str, empty: Markup) -> Markup {
    html! {
        div class="table-wrap" {
            table {
                caption class="visually-hidden" { (caption) }
                thead {
                    tr {
                        th scope="col" { "Run" }
                        th scope="col" { "Status" }
                        th scope="col" { "Task type" }
                        th scope="col" { "Executor" }
                        th scope="col" { "Created" }
                        th scope="col" { "Started" }
                        th scope="col" class="num" { "Duration" }
                    }
                }
                tbody {
                    @for run in runs {
                        tr {
                            th scope="row" { a class="mono" href={ "/console/runs/" (run.run_id) } { (run.run_id) } }
                            td { (status_badge(run.status)) }
                            td { (run.task_type.as_str()) }
                            td { (run.executor) }
                            td { (time(run.created_at)) }
                            td { (maybe_time(run.started_at)) }
                            td class="num" { (run_duration(run, now)) }
                        }
                    }
                    @if runs.is_empty() {
                        tr { td colspan="7" class="empty" { (empty) } }
                    }
                }
            }
        }
    }
}

/// How long a run ran (or has been running); `—` before it started.
pub(crate) fn run_duration(run: &Run, now: Timestamp) -> String {
    run.duration_millis(now)
        .map_or_else(|| "—".into(), page::duration)
}
