//! Starting a task from the console (requirement 14.5): a form with the task type, the
//! prompt, the executor and an optional workspace archive; the archive is streamed
//! into the archive service as it arrives (the workspace's size limit enforced), then
//! the task and its run are created and the browser lands on the run's page.
//!
//! The form carries a nonce used as the idempotency key of the task and of the run, so
//! a form sent twice (a double click, a reload of the POST) starts one run; and the id
//! of the workspace it showed (`workspaceId`), so the task starts where the page said it
//! would even if the switcher was used in another tab meanwhile (membership is checked
//! again, and the id is part of the idempotency fingerprint).

use std::io;

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use maud::html;
use serde::Serialize;
use tlao_domain::{
    ArchiveId, Constraints, ExecutorName, NewTask, Prompt, TaskInput, TaskSpec, TaskType,
    Workspace, WorkspaceId,
};
use tlao_orchestrator::{CreateRun, Idempotency, ServiceError};
use tlao_ports::ByteStream;
use tokio::sync::mpsc;

use super::form;
use super::page::{self, Ctx, Nav, PageError};
use super::session::{self, ConsoleKeys};
use crate::state::AppState;

/// The longest text field read from the form (the prompt's limit, with room to say it
/// is too long rather than cut it).
const MAX_TEXT_FIELD: usize = tlao_domain::task_spec::MAX_PROMPT_BYTES + 1024;

/// The most bytes all text fields of one form may add up to (the form's own fields
/// need a fraction of this); more is refused with 413.
const MAX_TEXT_TOTAL: usize = 256 * 1024;

/// What the user typed, kept to show the form again.
#[derive(Debug, Default)]
struct Draft {
    csrf: Option<String>,
    nonce: String,
    workspace_id: String,
    task_type: String,
    prompt: String,
    executor: String,
}

/// What is wrong with the form: `(field id, message)`; an empty id is about the whole form.
type FieldErrors = Vec<(&'static str, String)>;

/// `GET /console/new`: the contract's address of this page, which lives under the runs
/// it starts; a `303` to `/console/runs/new`.
pub(crate) async fn contract_address() -> HttpResponse {
    page::see_other("/console/runs/new")
}

/// `GET /console/runs/new`.
pub(crate) async fn form(
    req: HttpRequest,
    state: web::Data<AppState>,
    keys: web::Data<ConsoleKeys>,
) -> HttpResponse {
    let draft = Draft {
        task_type: TaskType::SpecGenerate.as_str().into(),
        ..Draft::default()
    };
    page::respond(&req, &state, &keys, async |ctx| {
        render(&state, ctx, ctx.workspace()?, &draft, &[], StatusCode::OK).await
    })
    .await
}

async fn render(
    state: &AppState,
    ctx: &Ctx,
    ws: &Workspace,
    draft: &Draft,
    errors: &[(&'static str, String)],
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let executors = state.services.executors.list().await?;
    let max_archive = state.services.core.guardrails.max_archive_bytes;
    let error_of = |id: &str| {
        errors
            .iter()
            .find(|(field, _)| *field == id)
            .map(|(_, m)| m.as_str())
    };
    let described = |id: &str, hint: &str| -> String {
        if error_of(id).is_some() {
            format!("{id}-error {hint}")
        } else {
            hint.to_owned()
        }
    };
    let body = html! {
        h1 { "Start a task" }
        p class="muted" { "The task runs in workspace " strong { (ws.name.as_str()) } "; you will see it live on its run page." }
        @if !errors.is_empty() {
            div class="error-summary" role="alert" aria-labelledby="error-summary-title" id="error-summary" tabindex="-1" {
                h2 id="error-summary-title" { "The task was not started" }
                ul {
                    @for (field, message) in errors {
                        @if field.is_empty() {
                            li { (message) }
                        } @else {
                            li { a href={ "#" (field) } { (message) } }
                        }
                    }
                }
            }
        }
        form class="stacked" method="post" action="/console/runs" enctype="multipart/form-data" {
            (ctx.csrf_input())
            input type="hidden" name="nonce" value=(session::random_token());
            input type="hidden" name="workspaceId" value=(ws.workspace_id);
            div class="field" {
                label for="taskType" { "Task type" }
                span class="hint" id="taskType-hint" { "What kind of work the agent should do." }
                @if let Some(message) = error_of("taskType") { span class="field-error" id="taskType-error" { (message) } }
                select id="taskType" name="taskType" required aria-describedby=(described("taskType", "taskType-hint")) aria-invalid=[error_of("taskType").map(|_| "true")] {
                    @for task_type in TaskType::ALL {
                        option value=(task_type.as_str()) selected[draft.task_type == task_type.as_str()] {
                            (task_type.as_str()) " — " (describe(task_type))
                        }
                    }
                }
            }
            div class="field" {
                label for="prompt" { "Prompt" }
                span class="hint" id="prompt-hint" { "The instruction to the agent, up to 64 KiB." }
                @if let Some(message) = error_of("prompt") { span class="field-error" id="prompt-error" { (message) } }
                textarea id="prompt" name="prompt" required rows="8" aria-describedby=(described("prompt", "prompt-hint")) aria-invalid=[error_of("prompt").map(|_| "true")] { (draft.prompt) }
            }
            div class="field" {
                label for="executor" { "Executor" }
                span class="hint" id="executor-hint" { "Leave on default to use the first executor that serves the task type." }
                @if let Some(message) = error_of("executor") { span class="field-error" id="executor-error" { (message) } }
                select id="executor" name="executor" aria-describedby=(described("executor", "executor-hint")) aria-invalid=[error_of("executor").map(|_| "true")] {
                    option value="" selected[draft.executor.is_empty()] { "Default (chosen by task type)" }
                    @for executor in executors.iter() {
                        option value=(executor.name) selected[draft.executor == executor.name.as_str()] {
                            (executor.name) " — " (executor.task_types.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", "))
                        }
                    }
                }
            }
            div class="field" {
                label for="archive" { "Workspace archive (optional)" }
                span class="hint" id="archive-hint" {
                    "A .tar.gz of the repository to work in, up to " (page::bytes(max_archive)) ". "
                    "Without one the agent starts in an empty directory."
                }
                @if let Some(message) = error_of("archive") { span class="field-error" id="archive-error" { (message) } }
                input type="file" id="archive" name="archive" accept=".tar.gz,.tgz,application/gzip"
                    aria-describedby=(described("archive", "archive-hint")) aria-invalid=[error_of("archive").map(|_| "true")];
                @if error_of("archive").is_none() && !errors.is_empty() {
                    span class="hint" { "If you chose an archive, choose it again: browsers do not keep files across submissions." }
                }
            }
            button type="submit" class="button" { "Start run" }
        }
    };
    Ok(page::page(
        status,
        Some(ctx),
        Nav::NewTask,
        "Start a task",
        body,
    ))
}

fn describe(task_type: TaskType) -> &'static str {
    match task_type {
        TaskType::SpecGenerate => "write a plan or specification",
        TaskType::CodeChange => "change the code (returns a patch)",
        TaskType::DocWrite => "write documentation",
        TaskType::DeployRun => "deploy infrastructure",
    }
}

/// The parsed, valid parts of a draft.
struct Valid {
    task_type: TaskType,
    prompt: Prompt,
    executor: Option<ExecutorName>,
}

fn validate(draft: &Draft) -> Result<Valid, FieldErrors> {
    let mut errors = FieldErrors::new();
    let task_type = match draft.task_type.parse::<TaskType>() {
        Ok(task_type) => Some(task_type),
        Err(_) => {
            errors.push(("taskType", "Choose a task type.".into()));
            None
        }
    };
    let prompt = match Prompt::try_from(draft.prompt.clone()) {
        Ok(prompt) => Some(prompt),
        Err(error) => {
            errors.push(("prompt", format!("The prompt {error}.")));
            None
        }
    };
    let executor = if draft.executor.is_empty() {
        Some(None)
    } else {
        match draft.executor.parse::<ExecutorName>() {
            Ok(name) => Some(Some(name)),
            Err(_) => {
                errors.push(("executor", "Choose an executor from the list.".into()));
                None
            }
        }
    };
    match (task_type, prompt, executor) {
        (Some(task_type), Some(prompt), Some(executor)) if errors.is_empty() => Ok(Valid {
            task_type,
            prompt,
            executor,
        }),
        _ => Err(errors),
    }
}

/// `POST /console/runs`: uploads the archive if one was chosen, creates the task and
/// its run, and redirects to the run's page.
pub(crate) async fn start(
    req: HttpRequest,
    state: web::Data<AppState>,
    keys: web::Data<ConsoleKeys>,
    payload: web::Payload,
) -> HttpResponse {
    let ctx = match Ctx::load(&req, &state, &keys).await {
        Ok(ctx) => ctx,
        Err(error) => return error.render(None),
    };
    let mut draft = Draft::default();
    let mut target: Option<Workspace> = None;
    let (status, errors) =
        match start_run(&req, &state, &ctx, payload, &mut draft, &mut target).await {
            Ok(response) => return response,
            Err(Failure::Page(error)) => return error.render(Some(&ctx)),
            Err(Failure::Form(errors)) => (StatusCode::UNPROCESSABLE_ENTITY, errors),
            Err(Failure::TooLarge(errors)) => (StatusCode::PAYLOAD_TOO_LARGE, errors),
        };
    // The form comes back for the workspace it was sent for, when that was valid.
    let shown = match (&target, ctx.workspace()) {
        (Some(ws), _) => ws,
        (None, Ok(ws)) => ws,
        (None, Err(error)) => return error.render(Some(&ctx)),
    };
    match render(&state, &ctx, shown, &draft, &errors, status).await {
        Ok(response) => response,
        Err(error) => error.render(Some(&ctx)),
    }
}

enum Failure {
    /// An error page.
    Page(PageError),
    /// The form again, with these errors (422).
    Form(FieldErrors),
    /// The form again: its text fields were too large (413).
    TooLarge(FieldErrors),
}

impl From<PageError> for Failure {
    fn from(error: PageError) -> Self {
        Failure::Page(error)
    }
}

/// The workspace the form names in `workspaceId`, once the user's membership of it is
/// checked (kept in `target`, so it is resolved once).
async fn form_workspace(
    state: &AppState,
    ctx: &Ctx,
    draft: &Draft,
    target: &mut Option<Workspace>,
) -> Result<Workspace, Failure> {
    if let Some(ws) = target {
        return Ok(ws.clone());
    }
    let Ok(id) = draft.workspace_id.parse::<WorkspaceId>() else {
        return Err(Failure::Form(vec![(
            "",
            "The form does not say which workspace to start the task in; reload the page and try again."
                .into(),
        )]));
    };
    let ws = state
        .services
        .workspaces
        .get(&ctx.session.caller, &id)
        .await
        .map_err(|error| match error {
            ServiceError::Forbidden(_) => PageError::Forbidden(
                "The form names a workspace you are not a member of, so the task was not started."
                    .into(),
            ),
            other => other.into(),
        })?;
    *target = Some(ws.clone());
    Ok(ws)
}

async fn start_run(
    req: &HttpRequest,
    state: &AppState,
    ctx: &Ctx,
    payload: web::Payload,
    draft: &mut Draft,
    target: &mut Option<Workspace>,
) -> Result<HttpResponse, Failure> {
    if !session::same_origin(req) {
        return Err(PageError::Csrf.into());
    }
    let max_archive = state.services.core.guardrails.max_archive_bytes;
    let mut multipart = Multipart::new(req.headers(), payload);
    let mut archive: Option<ArchiveId> = None;
    let mut upload_errors = FieldErrors::new();
    let mut archive_parts = 0usize;
    let mut text_bytes = 0usize;
    while let Some(field) = multipart.next().await {
        let Ok(mut field) = field else {
            return Err(Failure::Form(vec![(
                "",
                "The form could not be read; please try again.".into(),
            )]));
        };
        let name = field.name().unwrap_or("").to_owned();
        if text_bytes > MAX_TEXT_TOTAL {
            // Refused already: read the rest only so the browser sees the page.
            drain(&mut field, max_archive).await;
            continue;
        }
        if name == "archive" {
            archive_parts += 1;
            // The form sends its token first: no archive byte is accepted before it.
            if form::verify(req, &ctx.session, draft.csrf.as_deref()).is_err() {
                drain(&mut field, max_archive).await;
                return Err(PageError::Csrf.into());
            }
            if archive_parts > 1 {
                drain(&mut field, max_archive).await;
                upload_errors.push(("archive", "Send one archive at most.".into()));
                continue;
            }
            let has_file = field
                .content_disposition()
                .and_then(|cd| cd.get_filename())
                .is_some_and(|name| !name.is_empty());
            if !has_file || validate(draft).is_err() {
                drain(&mut field, max_archive).await;
                continue;
            }
            let ws = match form_workspace(state, ctx, draft, target).await {
                Ok(ws) => ws,
                Err(failure) => {
                    drain(&mut field, max_archive).await;
                    return Err(failure);
                }
            };
            match upload(state, ctx, &ws, field, max_archive).await {
                Ok(id) => archive = Some(id),
                Err(UploadError::Field(message)) => upload_errors.push(("archive", message)),
                Err(UploadError::Service(error)) => return Err(PageError::from(error).into()),
            }
            continue;
        }
        let (text, received) = read_text(&mut field).await;
        text_bytes = text_bytes.saturating_add(received);
        if text_bytes > MAX_TEXT_TOTAL {
            continue;
        }
        match name.as_str() {
            session::CSRF_FIELD => draft.csrf = Some(text),
            "nonce" => draft.nonce = text,
            "workspaceId" => draft.workspace_id = text,
            "taskType" => draft.task_type = text,
            "prompt" => draft.prompt = text,
            "executor" => draft.executor = text,
            _ => {}
        }
    }
    if text_bytes > MAX_TEXT_TOTAL {
        return Err(Failure::TooLarge(vec![(
            "",
            format!(
                "The form's text fields add up to more than {}; shorten the prompt.",
                page::bytes(MAX_TEXT_TOTAL as u64)
            ),
        )]));
    }
    form::verify(req, &ctx.session, draft.csrf.as_deref())?;
    let ws = form_workspace(state, ctx, draft, target).await?;
    let valid = validate(draft).map_err(|mut errors| {
        errors.extend(upload_errors.clone());
        Failure::Form(errors)
    })?;
    if !upload_errors.is_empty() {
        return Err(Failure::Form(upload_errors));
    }
    let caller = &ctx.session.caller;
    // Refuse an executor that cannot serve the task before anything is created.
    if let Err(error) = state
        .services
        .executors
        .select(valid.task_type, valid.executor.as_ref())
        .await
    {
        return Err(service_failure(error));
    }
    let nonce_ok = !draft.nonce.is_empty()
        && draft.nonce.len() <= 128
        && draft
            .nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let fingerprint = Fingerprint {
        workspace_id: ws.workspace_id.as_str(),
        task_type: valid.task_type.as_str(),
        prompt: valid.prompt.as_str(),
        executor: valid.executor.as_ref().map(ExecutorName::as_str),
    };
    let idempotency = |what: &str| -> Option<Idempotency> {
        nonce_ok
            .then(|| {
                Idempotency::new(
                    &format!("console-{what}-{}", draft.nonce),
                    &format!("console {what}"),
                    &fingerprint,
                )
                .ok()
            })
            .flatten()
    };
    let (task_idempotency, run_idempotency) = (idempotency("task"), idempotency("run"));
    let task = state
        .services
        .tasks
        .create(
            caller,
            NewTask {
                workspace_id: ws.workspace_id.clone(),
                spec: TaskSpec {
                    task_type: valid.task_type,
                    input: TaskInput {
                        prompt: valid.prompt,
                        archive_id: archive,
                    },
                    constraints: Constraints::default(),
                    expected_output: None,
                },
            },
            task_idempotency.as_ref(),
        )
        .await
        .map_err(service_failure)?;
    let run = state
        .services
        .runs
        .create(
            caller,
            CreateRun {
                task_id: task.task_id,
                executor: valid.executor,
            },
            run_idempotency.as_ref(),
        )
        .await
        .map_err(service_failure)?;
    Ok(page::see_other(&format!(
        "/console/runs/{}",
        run.run.run_id
    )))
}

/// What the idempotency keys are bound to (not the archive: a resent form uploads it
/// again under a new id, and must still be recognised).
#[derive(Serialize)]
struct Fingerprint<'a> {
    workspace_id: &'a str,
    task_type: &'a str,
    prompt: &'a str,
    executor: Option<&'a str>,
}

fn service_failure(error: ServiceError) -> Failure {
    match error {
        ServiceError::NoExecutor { message, .. } => Failure::Form(vec![(
            "executor",
            format!("No executor can run this: {message}."),
        )]),
        ServiceError::QuotaExceeded { quota, limit, .. } => Failure::Form(vec![(
            "",
            if limit == tlao_domain::Limit::DailyRunQuotaPerUser {
                format!(
                    "You have used your daily quota of {quota} runs across your workspaces; it resets at midnight UTC."
                )
            } else {
                format!(
                    "This workspace has used its daily quota of {quota} runs; it resets at midnight UTC."
                )
            },
        )]),
        ServiceError::Conflict(_) => Failure::Form(vec![(
            "",
            "This form was already sent with other values. Check the runs list, or send it again."
                .into(),
        )]),
        ServiceError::Invalid(errors) => Failure::Form(
            errors
                .errors()
                .iter()
                .map(|e| ("", format!("{}: {}", e.field, e.message)))
                .collect(),
        ),
        other => Failure::Page(other.into()),
    }
}

/// A text field, at most [`MAX_TEXT_FIELD`] bytes (the rest is read and dropped, up to
/// a generous bound), as UTF-8, and how many bytes arrived.
async fn read_text(field: &mut actix_multipart::Field) -> (String, usize) {
    const BOUND: usize = 64 * 1024 * 1024;
    let mut text = BytesMut::new();
    let mut received = 0usize;
    while let Some(chunk) = field.next().await {
        let Ok(chunk) = chunk else { break };
        received = received.saturating_add(chunk.len());
        let room = MAX_TEXT_FIELD.saturating_sub(text.len());
        text.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if received > BOUND {
            break;
        }
    }
    // Browsers send CRLF line ends in text areas.
    (
        String::from_utf8_lossy(&text).replace("\r\n", "\n"),
        received,
    )
}

/// Reads and drops the rest of a field, so the browser finishes sending and sees the
/// page; gives up after a generous bound (the connection is then closed).
async fn drain<S, E>(field: &mut S, max_archive: u64)
where
    S: futures::Stream<Item = Result<Bytes, E>> + Unpin,
{
    let bound = max_archive.saturating_mul(4).max(64 * 1024 * 1024);
    let mut seen = 0u64;
    while let Some(Ok(chunk)) = field.next().await {
        seen += chunk.len() as u64;
        if seen > bound {
            break;
        }
    }
}

enum UploadError {
    /// Shown next to the file input.
    Field(String),
    /// Anything else.
    Service(ServiceError),
}

/// Streams the file field into the archive service.
async fn upload(
    state: &AppState,
    ctx: &Ctx,
    ws: &Workspace,
    field: actix_multipart::Field,
    max_archive: u64,
) -> Result<ArchiveId, UploadError> {
    // Fused: a field must not be polled again once it has ended.
    let mut field = field.fuse();
    let (sender, receiver) = mpsc::channel::<io::Result<Bytes>>(8);
    let pump = async {
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| io::Error::other(format!("reading the upload: {e}")));
            let failed = chunk.is_err();
            if sender.send(chunk).await.is_err() || failed {
                break;
            }
        }
        drop(sender);
    };
    let body: ByteStream = Box::pin(futures::stream::unfold(
        receiver,
        |mut receiver| async move { receiver.recv().await.map(|chunk| (chunk, receiver)) },
    ));
    let stored = state
        .services
        .archives
        .upload(&ctx.session.caller, &ws.workspace_id, None, body);
    let ((), stored) = futures::join!(pump, stored);
    // Whatever the service did not read is read and dropped, so the page can be sent.
    drain(&mut field, max_archive).await;
    match stored {
        Ok(archive) => Ok(archive.archive_id),
        Err(ServiceError::TooLarge { max_bytes }) => Err(UploadError::Field(format!(
            "The archive is larger than this workspace's limit of {}. Leave out build outputs and dependencies, or add them to .tlaoignore.",
            page::bytes(max_bytes)
        ))),
        Err(ServiceError::LimitReached { limit, max }) => Err(UploadError::Field(match limit {
            tlao_domain::Limit::MaxArchiveEntries => format!(
                "The archive has more than {max} files and directories. Leave out generated files and dependencies."
            ),
            _ => format!(
                "The archive unpacks to more than {}. Leave out build outputs and dependencies.",
                page::bytes(max)
            ),
        })),
        Err(ServiceError::Invalid(_)) => Err(UploadError::Field(
            "The file is not a gzip-compressed tar archive (.tar.gz).".into(),
        )),
        Err(other) => Err(UploadError::Service(other)),
    }
}
