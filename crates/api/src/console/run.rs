//! One run: its page (facts, why it failed, the prompt, artifacts, and the log, which
//! the page's script then follows live), its whole log as `log.txt`, and cancelling it.
//!
//! The page's data comes from the services in one place ([`RunPage::load`]); the log
//! from the event service's paged read, so a finished run's page shows the first
//! [`MAX_RENDERED_EVENTS`] lines and says how many there are, and `log.txt` streams the
//! rest page by page.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures::{Stream, TryStreamExt as _};
use maud::{Markup, html};
use tlao_domain::{
    EventPayload, LogStream, PlanEntry, PlanStatus, Run, RunEvent, RunId, RunStatus, Task,
    ToolCall, ToolKind, ToolStatus, Usage,
};
use tlao_orchestrator::events::MAX_EVENTS_PER_READ;
use tlao_orchestrator::{ArtifactView, Caller, EventService, LogPage, ServiceError};

use super::form::{self, Form};
use super::page::{self, Ctx, Nav, PageError, maybe_time, status_badge, time};
use super::runs::run_duration;
use super::session::ConsoleKeys;
use crate::state::AppState;

/// The most events the run page renders before its script takes over.
const MAX_RENDERED_EVENTS: usize = 5000;

/// How many events each page of `log.txt` reads (one table read).
const LOG_TEXT_PAGE: usize = MAX_EVENTS_PER_READ;

/// The run named by a path, or the 404 page when the id cannot name one.
fn parse_run_id(text: &str) -> Result<RunId, PageError> {
    text.parse::<RunId>().map_err(|_| {
        PageError::NotFound(format!(
            "{text:?} is not a run id; run ids look like run_01J…."
        ))
    })
}

/// A run's access errors, worded for a person.
fn run_access(error: ServiceError) -> PageError {
    match error {
        ServiceError::Forbidden(_) => {
            PageError::Forbidden("This run belongs to a workspace you are not a member of.".into())
        }
        other => other.into(),
    }
}

/// What the run page shows: the run and the start of its log, its task, its artifacts,
/// and its place in the queue while queued.
struct RunPage {
    log: LogPage,
    task: Task,
    artifacts: Vec<ArtifactView>,
    queue_position: Option<u32>,
}

impl RunPage {
    async fn load(state: &AppState, caller: &Caller, run_id: &RunId) -> Result<Self, PageError> {
        let services = &state.services;
        let log = services
            .events
            .log_page(caller, run_id, 0, MAX_RENDERED_EVENTS)
            .await
            .map_err(run_access)?;
        crate::request_id::note_run(run_id);
        let task = services.tasks.get(caller, &log.run.task_id).await?;
        let artifacts = services.artifacts.list_for_run(caller, run_id).await?;
        let queue_position = if log.run.status == RunStatus::Queued {
            services.runs.get(caller, run_id).await?.queue_position
        } else {
            None
        };
        Ok(RunPage {
            log,
            task,
            artifacts,
            queue_position,
        })
    }
}

/// `GET /console/runs/{id}`.
pub(crate) async fn detail(
    req: HttpRequest,
    state: web::Data<AppState>,
    keys: web::Data<ConsoleKeys>,
    run_id: web::Path<String>,
) -> HttpResponse {
    page::respond(&req, &state, &keys, async |ctx| {
        let run_id = parse_run_id(&run_id)?;
        let view = RunPage::load(&state, &ctx.session.caller, &run_id).await?;
        let title = format!("Run {run_id}");
        let body = run_body(ctx, &view, state.now());
        Ok(page::page(
            StatusCode::OK,
            Some(ctx),
            Nav::Runs,
            &title,
            body,
        ))
    })
    .await
}

/// The name of the run's workspace, as the user knows it.
fn workspace_name(ctx: &Ctx, run: &Run) -> String {
    ctx.workspaces
        .iter()
        .find(|w| w.workspace_id == run.workspace_id)
        .map_or_else(
            || run.workspace_id.to_string(),
            |w| w.name.as_str().to_owned(),
        )
}

fn run_body(ctx: &Ctx, view: &RunPage, now: tlao_domain::Timestamp) -> Markup {
    let run = &view.log.run;
    let in_other_workspace = ctx
        .current
        .as_ref()
        .is_some_and(|ws| ws.workspace_id != run.workspace_id);
    let workspace_name = workspace_name(ctx, run);
    html! {
        p { a href="/console/runs" { "← All runs" } }
        div class="page-head" {
            h1 { "Run " span class="mono" { (run.run_id) } }
            div id="run-status" role="status" { (status_badge(run.status)) }
            (actions(ctx, run))
        }
        @if in_other_workspace {
            p class="notice" { "This run belongs to workspace " strong { (workspace_name) } ", not the one selected in the switcher." }
        }
        div id="run-facts" {
            (failure(run))
            div class="overview" {
                (summary(view, &workspace_name, now))
                div {
                    section aria-labelledby="prompt-title" {
                        h2 id="prompt-title" { "Prompt" }
                        pre class="prompt" tabindex="0" aria-labelledby="prompt-title" { (view.task.spec.input.prompt.as_str()) }
                    }
                    section aria-labelledby="artifacts-title" {
                        h2 id="artifacts-title" { "Artifacts" }
                        (artifact_table(&view.artifacts))
                    }
                }
            }
        }
        (activity(&view.log.events))
        (log_section(&view.log))
    }
}

/// What the agent is doing, from its events: its current plan, its tool calls (each
/// once, as it stands now), and what it has cost so far. Nothing for agents that report
/// none of it (their log says what they did).
fn activity(events: &[RunEvent]) -> Markup {
    let mut calls: Vec<&ToolCall> = Vec::new();
    let mut plan: Option<&[PlanEntry]> = None;
    let mut usage: Option<&Usage> = None;
    for event in events {
        match &event.payload {
            EventPayload::ToolCall(call) => match calls.iter_mut().find(|c| c.id == call.id) {
                Some(known) => *known = call,
                None => calls.push(call),
            },
            EventPayload::Plan { entries } => plan = Some(entries),
            EventPayload::Usage { usage: reported } => usage = Some(reported),
            _ => {}
        }
    }
    let empty = calls.is_empty() && plan.is_none() && usage.is_none();
    html! {
        section id="run-activity" aria-labelledby="activity-title" hidden[empty] {
            h2 id="activity-title" { "Activity" }
            @if let Some(entries) = plan {
                h3 { "Plan" }
                ul class="plan" {
                    @for entry in entries {
                        li class={ "plan-" (plan_status(entry.status)) } {
                            span aria-hidden="true" { (plan_mark(entry.status)) " " }
                            (page::strip_ansi(&entry.content))
                            span class="visually-hidden" { " (" (plan_status(entry.status).replace('_', " ")) ")" }
                        }
                    }
                }
            }
            @if !calls.is_empty() {
                h3 { "Tool calls (" (calls.len()) ")" }
                ol class="tool-calls" {
                    @for call in &calls { (tool_call_item(call)) }
                }
            }
            @if let Some(Usage::Reported { summary, .. }) = usage {
                p { strong { "Usage so far: " } (page::strip_ansi(summary)) }
            }
        }
    }
}

fn tool_call_item(call: &ToolCall) -> Markup {
    let status = tool_status(call.status);
    html! {
        li class={ "tool-call tool-" (status) } {
            span class={ "badge tool-status-" (status) } { (status.replace('_', " ")) }
            " " span class="muted" { (tool_kind(call.kind)) } " "
            (page::strip_ansi(&call.title))
            @if !call.paths.is_empty() {
                " " span class="mono muted" { (call.paths.iter().map(|p| page::strip_ansi(p)).collect::<Vec<_>>().join(", ")) }
            }
            @if let Some(code) = call.exit_code { " · exit " (code) }
            @if let Some(diff) = &call.diff { " · " span class="mono" { (page::strip_ansi(diff)) } }
        }
    }
}

fn tool_status(status: ToolStatus) -> &'static str {
    match status {
        ToolStatus::Pending => "pending",
        ToolStatus::InProgress => "in_progress",
        ToolStatus::Completed => "completed",
        ToolStatus::Failed => "failed",
    }
}

fn tool_kind(kind: ToolKind) -> &'static str {
    match kind {
        ToolKind::Edit => "edit",
        ToolKind::Read => "read",
        ToolKind::Execute => "execute",
        ToolKind::Search => "search",
        ToolKind::Fetch => "fetch",
        ToolKind::Other => "other",
    }
}

fn plan_status(status: PlanStatus) -> &'static str {
    match status {
        PlanStatus::Pending => "pending",
        PlanStatus::InProgress => "in_progress",
        PlanStatus::Completed => "completed",
    }
}

fn plan_mark(status: PlanStatus) -> &'static str {
    match status {
        PlanStatus::Pending => "☐",
        PlanStatus::InProgress => "◐",
        PlanStatus::Completed => "☑",
    }
}

/// Why the run failed or ran out of time; nothing otherwise.
fn failure(run: &Run) -> Markup {
    html! {
        @if let Some(error) = &run.error {
            section class="error-box" aria-labelledby="error-title" {
                h2 id="error-title" { "Why it failed" }
                p { strong { (error_code(error.code)) } @if let Some(code) = error.exit_code { " · exit code " (code) } }
                pre { (page::strip_ansi(&error.message)) }
            }
        }
        @if run.status == RunStatus::TimedOut {
            section class="error-box" aria-labelledby="error-title" {
                h2 id="error-title" { "It ran out of time" }
                p { "The run passed its limit of " (run.max_run_seconds) " seconds and was stopped." }
            }
        }
    }
}

/// The run's facts.
fn summary(view: &RunPage, workspace_name: &str, now: tlao_domain::Timestamp) -> Markup {
    let (run, task) = (&view.log.run, &view.task);
    html! {
        section aria-labelledby="summary-title" {
            h2 id="summary-title" { "Summary" }
            dl class="facts" {
                dt { "Workspace" } dd { (workspace_name) }
                dt { "Task type" } dd { (run.task_type.as_str()) }
                dt { "Executor" } dd {
                    (run.executor)
                    @if let Some(reason) = &run.selection {
                        br;
                        span class="muted" id="executor-selection" { (reason) }
                    }
                }
                dt { "Created" } dd { (time(run.created_at)) }
                dt { "Started" } dd { (maybe_time(run.started_at)) }
                dt { "Finished" } dd { (maybe_time(run.finished_at)) }
                dt { "Duration" }
                @if run.status == RunStatus::Running && let Some(started) = run.started_at {
                    dd id="run-duration" data-started=(started.unix_millis()) { (run_duration(run, now)) }
                } @else {
                    dd { (run_duration(run, now)) }
                }
                @if let Some(position) = view.queue_position {
                    dt { "Queue position" } dd { (position) }
                }
                dt { "Time limit" } dd { (run.max_run_seconds) " s" }
                (usage_and_log(run))
                dt { "Task" } dd class="mono" { (task.task_id) }
                dt { "Archive" } dd {
                    @match &task.spec.input.archive_id {
                        Some(archive) => span class="mono" { (archive) },
                        None => span class="muted" { "none" },
                    }
                }
            }
        }
    }
}

/// What the run cost and how much log it kept.
fn usage_and_log(run: &Run) -> Markup {
    html! {
        dt { "Usage" } dd {
            @match &run.usage {
                Usage::Reported { summary, .. } => (summary),
                Usage::Unmeasured => span class="muted" { "not reported by the executor" },
            }
        }
        dt { "Log kept" } dd {
            (page::bytes(run.log_bytes))
            @if run.logs_truncated { " (limit reached; " (page::bytes(run.dropped_log_bytes)) " dropped)" }
        }
    }
}

/// The log: the lines read so far, where the script follows a live run, and the links
/// to the whole log of a finished one.
fn log_section(log: &LogPage) -> Markup {
    let run = &log.run;
    let live = !run.status.is_terminal();
    html! {
        section aria-labelledby="log-title" {
            h2 id="log-title" { "Log" }
            @if live {
                div id="live" data-events={ "/console/runs/" (run.run_id) "/events" } data-after=(log.next_seq) {
                    div class="log-toolbar" {
                        button type="button" id="log-pause" class="button secondary small" aria-pressed="false" aria-controls="log" hidden { "Pause auto-scroll" }
                        span id="live-state" class="live-state" role="status" { "Live updates need JavaScript; reload to see new output." }
                    }
                    ul id="live-artifacts" hidden aria-label="Artifacts stored during this view" {}
                }
            }
            @if !live && log.truncated {
                p class="notice" id="log-cut" {
                    "First " (log.events.len()) " of " (log.total) " lines shown. "
                    a href={ "/console/runs/" (run.run_id) "/log.txt" } download { "Download the full log" }
                    " (plain text)."
                }
            }
            pre id="log" class="log" role="log" tabindex="0" aria-label="Run log" aria-live="off" {
                @for event in &log.events {
                    (log_line(event))
                }
            }
            @if !live && !log.truncated && log.total > 0 {
                p { a href={ "/console/runs/" (run.run_id) "/log.txt" } download { "Download the log" } " (plain text)." }
            }
        }
    }
}

fn actions(ctx: &Ctx, run: &Run) -> Markup {
    html! {
        div class="actions" id="run-actions" {
            @if !run.status.is_terminal() {
                form method="post" action={ "/console/runs/" (run.run_id) "/cancel" }
                    data-confirm={ "Cancel run " (run.run_id) "? Its agent is stopped and the run ends as cancelled." } {
                    (ctx.csrf_input())
                    button type="submit" class="button danger" { "Cancel run" }
                }
            }
            a class="button secondary" href={ "/console/runs/" (run.run_id) "/bundle.tar.gz" } download
                title="The TaskSpec, executor, archive hash, events, log, artifacts and their hashes, with a manifest" {
                "Download the run bundle"
            }
        }
    }
}

fn error_code(code: tlao_domain::RunErrorCode) -> &'static str {
    use tlao_domain::RunErrorCode as C;
    match code {
        C::ExecutorFailed => "The executor exited with an error",
        C::ExecutorUnavailable => "The executor could not be started",
        C::WorkerLost => "The worker stopped responding",
        C::QueueTimeout => "No worker picked the run up in time",
        C::InvalidArchive => "The workspace archive was refused",
        C::UploadFailed => "An artifact could not be stored",
        C::Internal => "An internal error occurred",
    }
}

/// One event as a line of the log.
fn log_line(event: &RunEvent) -> Markup {
    let (class, text) = match &event.payload {
        EventPayload::Log { stream, text } => (
            match stream {
                LogStream::Stdout => "stdout",
                LogStream::Stderr => "stderr",
                LogStream::System => "system",
            },
            page::strip_ansi(text),
        ),
        EventPayload::Progress { message, percent } => (
            "meta",
            match percent {
                Some(percent) => format!("▸ {} ({percent}%)", page::strip_ansi(message)),
                None => format!("▸ {}", page::strip_ansi(message)),
            },
        ),
        EventPayload::Status { status } => {
            ("meta", format!("— status: {}", page::status_label(*status)))
        }
        EventPayload::Artifact { name, .. } => ("meta", format!("— artifact stored: {name}")),
        EventPayload::Truncated { max_log_bytes } => (
            "meta",
            format!(
                "— the log reached its limit of {max_log_bytes} bytes; later lines are counted, not kept"
            ),
        ),
        EventPayload::ToolCall(call) => (
            "meta",
            format!(
                "▸ {} [{}]",
                page::strip_ansi(&call.title),
                tool_status(call.status).replace('_', " ")
            ),
        ),
        EventPayload::Plan { entries } => ("meta", format!("▸ plan: {} entries", entries.len())),
        EventPayload::Message { text } => ("stdout", page::strip_ansi(text)),
        EventPayload::Usage { usage } => (
            "meta",
            match usage {
                tlao_domain::Usage::Unmeasured => "— usage: unmeasured".to_owned(),
                tlao_domain::Usage::Reported { summary, .. } => {
                    format!("— usage: {}", page::strip_ansi(summary))
                }
            },
        ),
    };
    html! { span class={ "line " (class) } { (text) "\n" } }
}

/// A table of artifacts with download links.
fn artifact_table(artifacts: &[ArtifactView]) -> Markup {
    html! {
        @if artifacts.is_empty() {
            p class="muted" { "No artifacts yet." }
        } @else {
            div class="table-wrap" {
                table {
                    caption class="visually-hidden" { "Artifacts of this run" }
                    thead {
                        tr {
                            th scope="col" { "Name" }
                            th scope="col" { "Type" }
                            th scope="col" class="num" { "Size" }
                            th scope="col" { "State" }
                        }
                    }
                    tbody {
                        @for view in artifacts {
                            @let artifact = &view.artifact;
                            tr {
                                th scope="row" {
                                    @if view.download.is_some() {
                                        a href={ "/console/artifacts/" (artifact.artifact_id) "/download" } download { (artifact.name.as_str()) }
                                    } @else {
                                        (artifact.name.as_str())
                                    }
                                }
                                td { (artifact.artifact_type.as_str()) }
                                td class="num" { (page::bytes(artifact.size)) }
                                td { (artifact.status.as_str().replace('_', " ")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /console/runs/{id}/log.txt`: every kept log line of the run, as plain text to
/// save (ANSI sequences and control characters removed, as on the page), streamed page
/// by page; the same access checks as the run's page.
pub(crate) async fn log_text(
    req: HttpRequest,
    state: web::Data<AppState>,
    keys: web::Data<ConsoleKeys>,
    run_id: web::Path<String>,
) -> HttpResponse {
    page::respond(&req, &state, &keys, async |ctx| {
        let run_id = parse_run_id(&run_id)?;
        let caller = ctx.session.caller.clone();
        let events = state.services.events.clone();
        // The first page is read before answering: it checks access.
        let first = events
            .log_page(&caller, &run_id, 0, LOG_TEXT_PAGE)
            .await
            .map_err(run_access)?;
        crate::request_id::note_run(&run_id);
        let file_name = format!("attachment; filename=\"{run_id}.log.txt\"");
        Ok(HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .insert_header((actix_web::http::header::CONTENT_DISPOSITION, file_name))
            .streaming(log_pages(events, caller, run_id, first)))
    })
    .await
}

/// `GET /console/runs/{id}/bundle.tar.gz`: the run's bundle, as `GET
/// /runs/{id}/bundle` serves it (without the archive's bytes); the same access checks
/// as the run's page.
pub(crate) async fn bundle(
    req: HttpRequest,
    state: web::Data<AppState>,
    keys: web::Data<ConsoleKeys>,
    run_id: web::Path<String>,
) -> HttpResponse {
    page::respond(&req, &state, &keys, async |ctx| {
        let run_id = parse_run_id(&run_id)?;
        let record = state
            .services
            .bundles
            .record(&ctx.session.caller, &run_id, false)
            .await
            .map_err(run_access)?;
        crate::request_id::note_run(&run_id);
        let now = state.now();
        let bytes = web::block(move || crate::bundle::pack(record, now, false))
            .await
            .map_err(|e| PageError::Internal(anyhow::anyhow!("packing the bundle: {e}")))?
            .map_err(|e| PageError::Internal(anyhow::anyhow!("packing the bundle: {e}")))?;
        let file_name = format!("attachment; filename=\"{run_id}.bundle.tar.gz\"");
        Ok(HttpResponse::Ok()
            .content_type("application/gzip")
            .insert_header((actix_web::http::header::CONTENT_DISPOSITION, file_name))
            .body(bytes))
    })
    .await
}

/// Where the download of a log stands.
enum Next {
    /// This page is read and is sent next.
    Page(Box<LogPage>),
    /// The next page starts after this sequence number.
    After(u64),
    /// Every page was sent.
    Done,
}

/// The log's lines as text, `first` then page after page as the download goes.
fn log_pages(
    events: Arc<EventService>,
    caller: Caller,
    run_id: RunId,
    first: LogPage,
) -> impl Stream<Item = Result<web::Bytes, std::io::Error>> {
    futures::stream::try_unfold(Next::Page(Box::new(first)), move |next| {
        let (events, caller, run_id) = (events.clone(), caller.clone(), run_id.clone());
        async move {
            let log = match next {
                Next::Done => return Ok(None),
                Next::Page(log) => *log,
                Next::After(after) => {
                    events
                        .log_page(&caller, &run_id, after, LOG_TEXT_PAGE)
                        .await?
                }
            };
            let next = if log.truncated {
                Next::After(log.next_seq)
            } else {
                Next::Done
            };
            let mut text = String::new();
            for line in log.log_lines() {
                text.push_str(&page::strip_ansi(line));
                text.push('\n');
            }
            Ok::<_, ServiceError>(Some((web::Bytes::from(text), next)))
        }
    })
    .map_err(|error| {
        tracing::warn!(operation = "console_log_text", error = %error, "log download failed");
        std::io::Error::other(error.to_string())
    })
}

/// `POST /console/runs/{id}/cancel`.
pub(crate) async fn cancel(
    req: HttpRequest,
    state: web::Data<AppState>,
    keys: web::Data<ConsoleKeys>,
    run_id: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let form = body.map(|body| Form::parse(&body)).unwrap_or_default();
    page::respond(&req, &state, &keys, async |ctx| {
        form::verify(&req, &ctx.session, form::csrf(&form))?;
        let run_id = parse_run_id(&run_id)?;
        match state
            .services
            .runs
            .cancel(&ctx.session.caller, &run_id)
            .await
        {
            // Finished meanwhile: the run page shows how it ended.
            Ok(_) | Err(ServiceError::Conflict(_)) => {}
            Err(error) => return Err(run_access(error)),
        }
        Ok(page::see_other(&format!("/console/runs/{run_id}")))
    })
    .await
}
