//! Runs: the filtered, paged list; one run with its facts, error, artifacts and live
//! log; cancelling; and the run's events for the page's script.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, Responder, web};
use actix_web_lab::sse;
use futures::{StreamExt as _, TryStreamExt as _};
use maud::{Markup, html};
use tlao_domain::{
    EventPayload, ExecutorName, LogStream, Run, RunEvent, RunId, RunStatus, TaskType, Usage,
    WorkspaceId,
};
use tlao_orchestrator::{ArtifactView, RunFilter, ServiceError};

use super::form::{self, Form};
use super::page::{self, Ctx, Nav, PageError, maybe_time, status_badge, time};
use super::session::{self, ConsoleKeys};
use crate::routes::events::{EventsQuery, KEEP_ALIVE, messages, resume_point};
use crate::state::AppState;

/// Runs per page of the list.
const PAGE_SIZE: usize = 25;

/// The most events the run page renders before its script takes over.
const MAX_RENDERED_EVENTS: usize = 5000;

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
    let page = state
        .services
        .runs
        .list(
            &ctx.session.caller,
            RunFilter {
                workspace_id: Some(ws.workspace_id.clone()),
                status: query.status,
                executor: query.executor.clone(),
                task_type: query.task_type,
                limit: PAGE_SIZE,
                after: query.cursor.clone(),
            },
        )
        .await?;
    let executors = state.services.executors.list().await?;
    let now = state.now();
    let filters = query.filters();
    let with_filters = |extra: &str| -> String {
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
    };
    let filtered = query.status.is_some() || query.executor.is_some() || query.task_type.is_some();
    let body = html! {
        div class="page-head" {
            h1 { "Runs" }
            div class="actions" { a class="button" href="/console/runs/new" { "Start a task" } }
        }
        p class="muted" { "Newest first, in workspace " strong { (ws.name.as_str()) } "." }
        form class="filters" method="get" action="/console/runs" aria-label="Filter runs" {
            div class="field" {
                label for="filter-status" { "Status" }
                select id="filter-status" name="status" {
                    option value="" { "Any status" }
                    @for status in RunStatus::ALL {
                        option value=(status.as_str()) selected[query.status == Some(status)] { (page::status_label(status)) }
                    }
                }
            }
            div class="field" {
                label for="filter-executor" { "Executor" }
                select id="filter-executor" name="executor" {
                    option value="" { "Any executor" }
                    @for executor in executors.iter() {
                        option value=(executor.name) selected[query.executor.as_ref() == Some(&executor.name)] { (executor.name) }
                    }
                }
            }
            div class="field" {
                label for="filter-type" { "Task type" }
                select id="filter-type" name="type" {
                    option value="" { "Any task type" }
                    @for task_type in TaskType::ALL {
                        option value=(task_type.as_str()) selected[query.task_type == Some(task_type)] { (task_type.as_str()) }
                    }
                }
            }
            button type="submit" class="button secondary" { "Apply filters" }
            @if filtered {
                a href="/console/runs" { "Clear filters" }
            }
        }
        div id="runs-list" data-refresh {
            (runs_table(
                &page.items.iter().map(|view| &view.run).collect::<Vec<_>>(),
                now,
                "Runs",
                html! { "No runs match." },
            ))
        }
        nav class="pager" aria-label="Pages" {
            @if query.cursor.is_some() {
                a href=(with_filters("")) { "← First page" }
            }
            @if let Some(next) = &page.next_cursor {
                a href=(with_filters(&format!("cursor={next}"))) rel="next" { "Next page →" }
            }
        }
    };
    Ok(page::page(
        StatusCode::OK,
        Some(ctx),
        Nav::Runs,
        "Runs",
        body,
    ))
}

/// A table of runs; shared with the dashboard.
pub(crate) fn runs_table(
    runs: &[&Run],
    now: tlao_domain::Timestamp,
    caption: &str,
    empty: Markup,
) -> Markup {
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
fn run_duration(run: &Run, now: tlao_domain::Timestamp) -> String {
    run.duration_millis(now)
        .map_or_else(|| "—".into(), page::duration)
}

/// `GET /console/runs/{id}`.
pub(crate) async fn detail(
    req: HttpRequest,
    state: web::Data<AppState>,
    keys: web::Data<ConsoleKeys>,
    run_id: web::Path<String>,
) -> HttpResponse {
    page::respond(&req, &state, &keys, async |ctx| {
        detail_page(&state, ctx, &run_id).await
    })
    .await
}

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

async fn detail_page(state: &AppState, ctx: &Ctx, run_id: &str) -> Result<HttpResponse, PageError> {
    let run_id = parse_run_id(run_id)?;
    let caller = &ctx.session.caller;
    let services = &state.services;
    let (run, mut events) = services
        .events
        .after(
            caller,
            &run_id,
            0,
            tlao_orchestrator::events::MAX_EVENTS_PER_READ,
        )
        .await
        .map_err(run_access)?;
    crate::request_id::note_run(&run_id);
    while events.len() < MAX_RENDERED_EVENTS
        && events.len() % tlao_orchestrator::events::MAX_EVENTS_PER_READ == 0
        && let Some(last) = events.last().map(|event| event.seq)
    {
        let (_, more) = services
            .events
            .after(
                caller,
                &run_id,
                last,
                tlao_orchestrator::events::MAX_EVENTS_PER_READ,
            )
            .await?;
        if more.is_empty() {
            break;
        }
        events.extend(more);
    }
    let last_seq = events.last().map_or(0, |event| event.seq);
    // A finished run's page shows at most MAX_RENDERED_EVENTS lines and says so; a live
    // one's script fetches the rest from the stream.
    let total = if events.len() >= MAX_RENDERED_EVENTS {
        tlao_orchestrator::events::last_seq(&services.core, &run_id).await?
    } else {
        last_seq
    };
    let task = services.tasks.get(caller, &run.task_id).await?;
    let artifacts = services.artifacts.list_for_run(caller, &run_id).await?;
    let queue_position = if run.status == RunStatus::Queued {
        services.runs.get(caller, &run_id).await?.queue_position
    } else {
        None
    };
    let now = state.now();
    let in_other_workspace = ctx
        .current
        .as_ref()
        .is_some_and(|ws| ws.workspace_id != run.workspace_id);
    let workspace_name = workspace_name(ctx, &run.workspace_id);
    let live = !run.status.is_terminal();
    let title = format!("Run {}", run.run_id);
    let body = html! {
        p { a href="/console/runs" { "← All runs" } }
        div class="page-head" {
            h1 { "Run " span class="mono" { (run.run_id) } }
            div id="run-status" role="status" { (status_badge(run.status)) }
            (actions(ctx, &run))
        }
        @if in_other_workspace {
            p class="notice" { "This run belongs to workspace " strong { (workspace_name) } ", not the one selected in the switcher." }
        }
        div id="run-facts" {
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
            div class="overview" {
                section aria-labelledby="summary-title" {
                    h2 id="summary-title" { "Summary" }
                    dl class="facts" {
                        dt { "Workspace" } dd { (workspace_name) }
                        dt { "Task type" } dd { (run.task_type.as_str()) }
                        dt { "Executor" } dd { (run.executor) }
                        dt { "Created" } dd { (time(run.created_at)) }
                        dt { "Started" } dd { (maybe_time(run.started_at)) }
                        dt { "Finished" } dd { (maybe_time(run.finished_at)) }
                        dt { "Duration" }
                        @if run.status == RunStatus::Running && let Some(started) = run.started_at {
                            dd id="run-duration" data-started=(started.unix_millis()) { (run_duration(&run, now)) }
                        } @else {
                            dd { (run_duration(&run, now)) }
                        }
                        @if let Some(position) = queue_position {
                            dt { "Queue position" } dd { (position) }
                        }
                        dt { "Time limit" } dd { (run.max_run_seconds) " s" }
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
                        dt { "Task" } dd class="mono" { (task.task_id) }
                        dt { "Archive" } dd {
                            @match &task.spec.input.archive_id {
                                Some(archive) => span class="mono" { (archive) },
                                None => span class="muted" { "none" },
                            }
                        }
                    }
                }
                div {
                    section aria-labelledby="prompt-title" {
                        h2 id="prompt-title" { "Prompt" }
                        pre class="prompt" tabindex="0" aria-labelledby="prompt-title" { (task.spec.input.prompt.as_str()) }
                    }
                    section aria-labelledby="artifacts-title" {
                        h2 id="artifacts-title" { "Artifacts" }
                        (artifact_table(&artifacts))
                    }
                }
            }
        }
        section aria-labelledby="log-title" {
            h2 id="log-title" { "Log" }
            @if live {
                div id="live" data-events={ "/console/runs/" (run.run_id) "/events" } data-after=(last_seq) {
                    div class="log-toolbar" {
                        button type="button" id="log-pause" class="button secondary small" aria-pressed="false" aria-controls="log" hidden { "Pause auto-scroll" }
                        span id="live-state" class="live-state" role="status" { "Live updates need JavaScript; reload to see new output." }
                    }
                    ul id="live-artifacts" hidden aria-label="Artifacts stored during this view" {}
                }
            }
            @if !live && total > last_seq {
                p class="notice" id="log-cut" {
                    "First " (events.len()) " of " (total) " lines shown. "
                    a href={ "/console/runs/" (run.run_id) "/log.txt" } download { "Download the full log" }
                    " (plain text)."
                }
            }
            pre id="log" class="log" role="log" tabindex="0" aria-label="Run log" aria-live="off" {
                @for event in &events {
                    (log_line(event))
                }
            }
            @if !live && total <= last_seq && total > 0 {
                p { a href={ "/console/runs/" (run.run_id) "/log.txt" } download { "Download the log" } " (plain text)." }
            }
        }
    };
    Ok(page::page(
        StatusCode::OK,
        Some(ctx),
        Nav::Runs,
        &title,
        body,
    ))
}

fn workspace_name(ctx: &Ctx, ws: &WorkspaceId) -> String {
    ctx.workspaces
        .iter()
        .find(|w| w.workspace_id == *ws)
        .map_or_else(|| ws.to_string(), |w| w.name.as_str().to_owned())
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
        }
    }
}

fn error_code(code: tlao_domain::RunErrorCode) -> &'static str {
    use tlao_domain::RunErrorCode as C;
    match code {
        C::ExecutorFailed => "The executor exited with an error",
        C::ExecutorUnavailable => "The executor could not be started",
        C::WorkerLost => "The worker stopped responding",
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
    };
    html! { span class={ "line " (class) } { (text) "\n" } }
}

/// A table of artifacts with download links; shared with nothing else, but kept apart.
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
        // Checks access (the events read is one item).
        state
            .services
            .events
            .after(&ctx.session.caller, &run_id, 0, 1)
            .await
            .map_err(run_access)?;
        crate::request_id::note_run(&run_id);
        let file_name = format!("attachment; filename=\"{run_id}.log.txt\"");
        let core = state.services.core.clone();
        let pages = futures::stream::try_unfold(Some(0u64), move |after| {
            let core = core.clone();
            let run_id = run_id.clone();
            async move {
                let Some(after) = after else {
                    return Ok(None);
                };
                let events = tlao_orchestrator::events::read_after(
                    &core,
                    &run_id,
                    after,
                    tlao_orchestrator::events::MAX_EVENTS_PER_READ,
                )
                .await?;
                let next = (events.len() == tlao_orchestrator::events::MAX_EVENTS_PER_READ)
                    .then(|| events.last().map(|event| event.seq))
                    .flatten();
                let mut text = String::new();
                for event in &events {
                    if let EventPayload::Log { text: line, .. } = &event.payload {
                        text.push_str(&page::strip_ansi(line));
                        text.push('\n');
                    }
                }
                Ok::<_, ServiceError>(Some((web::Bytes::from(text), next)))
            }
        })
        .map_err(|error| {
            tracing::warn!(operation = "console_log_text", error = %error, "log download failed");
            std::io::Error::other(error.to_string())
        });
        Ok(HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .insert_header((actix_web::http::header::CONTENT_DISPOSITION, file_name))
            .streaming(pages))
    })
    .await
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

/// How often an open event stream checks that its session is still live.
pub(crate) const SESSION_CHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// Resolves once the session of `secret` is gone (checked every [`SESSION_CHECK`]; a
/// storage error is not taken for a signed-out session).
async fn session_ended(state: web::Data<AppState>, secret: String) {
    loop {
        tokio::time::sleep(SESSION_CHECK).await;
        if let Ok(None) = state.services.sessions.resolve(&secret).await {
            tracing::info!(
                operation = "console_events",
                "session ended; closing the event stream"
            );
            return;
        }
    }
}

/// `GET /console/runs/{id}/events`: the run's events as server-sent events for the run
/// page's script, authenticated by the session cookie. The same stream as the API's
/// `GET /runs/{id}/events`; failures before the stream are plain-text statuses (the
/// script reports them), not pages.
pub(crate) async fn events(
    req: HttpRequest,
    state: web::Data<AppState>,
    keys: web::Data<ConsoleKeys>,
    run_id: web::Path<String>,
    query: web::Query<EventsQuery>,
) -> HttpResponse {
    let plain = |status: StatusCode, text: &'static str| {
        HttpResponse::build(status)
            .content_type("text/plain; charset=utf-8")
            .body(text)
    };
    let session = match session::session(&req, &state, &keys).await {
        Ok(Some(session)) => session,
        Ok(None) => return plain(StatusCode::UNAUTHORIZED, "sign in again to follow this run"),
        Err(_) => {
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "the event stream is unavailable; retry shortly",
            );
        }
    };
    let Ok(run_id) = run_id.parse::<RunId>() else {
        return plain(StatusCode::NOT_FOUND, "no such run");
    };
    crate::request_id::note_run(&run_id);
    let Ok(after) = resume_point(&req, &query) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "the resume point is not a sequence number",
        );
    };
    let stream = match state
        .services
        .streams
        .open(&session.caller, &run_id, after)
        .await
    {
        Ok(stream) => stream,
        Err(ServiceError::NotFound { .. }) => return plain(StatusCode::NOT_FOUND, "no such run"),
        Err(ServiceError::Forbidden(_)) => {
            return plain(
                StatusCode::FORBIDDEN,
                "this run belongs to a workspace you are not a member of",
            );
        }
        Err(error) => {
            tracing::warn!(operation = "console_events", error = %error, "cannot open the event stream");
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "the event stream is unavailable; retry shortly",
            );
        }
    };
    // The stream ends within SESSION_CHECK of the session ending (signed out, expired).
    let ended = session_ended(state.clone(), session.secret.clone());
    let mut response = sse::Sse::from_stream(messages(stream).take_until(ended))
        .with_keep_alive(KEEP_ALIVE)
        .respond_to(&req);
    response.headers_mut().insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    response
}
