//! Starting a task from the console (requirement 14.5): a form with the task type, the
//! prompt, the executor and an optional workspace archive; the archive is streamed
//! into the archive service as it arrives (the workspace's size limit enforced, see
//! [`multipart`]), then the orchestrator's start use case creates the task and its run
//! and the browser lands on the run's page.
//!
//! The form carries a nonce, the key under which the start is idempotent, so a form
//! sent twice (a double click, a reload of the POST) starts one run; and the id of the
//! workspace it showed (`workspaceId`), so the task starts where the page said it would
//! even if the switcher was used in another tab meanwhile (membership is checked again,
//! and the id is part of what the key is bound to).

mod multipart;
mod template;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use tlao_domain::{
    Constraints, ExecutorName, Prompt, TaskInput, TaskSpec, TaskType, Workspace, WorkspaceId,
};
use tlao_orchestrator::{ServiceError, StartTask};

use super::form;
use super::page::{self, Ctx, Nav, PageError};
use super::session::{self, ConsoleKeys};
use crate::state::AppState;
use multipart::Submission;
use template::{FieldErrors, FormData};

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

/// The form page for `ws`, with `draft` and `errors`, answered with `status`.
async fn render(
    state: &AppState,
    ctx: &Ctx,
    ws: &Workspace,
    draft: &Draft,
    errors: &[(&'static str, String)],
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let executors = state.services.executors.list().await?;
    let data = FormData {
        ws,
        executors: &executors,
        max_archive: state.services.core.guardrails.max_archive_bytes,
    };
    let body = template::form_body(ctx, &data, draft, errors);
    Ok(page::page(
        status,
        Some(ctx),
        Nav::NewTask,
        "Start a task",
        body,
    ))
}

/// `POST /console/runs`: uploads the archive if one was chosen, starts the task and its
/// run, and redirects to the run's page; or shows the form again, saying what is wrong.
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
    let mut sub = Submission::default();
    let mut target = Target::default();
    let (status, errors) = match start_run(&req, &state, &ctx, payload, &mut sub, &mut target).await
    {
        Ok(response) => return response,
        Err(Failure::Page(error)) => return error.render(Some(&ctx)),
        Err(Failure::Form(errors)) => (StatusCode::UNPROCESSABLE_ENTITY, errors),
        Err(Failure::TooLarge(errors)) => (StatusCode::PAYLOAD_TOO_LARGE, errors),
    };
    // The form comes back for the workspace it was sent for, when that was valid.
    let shown = match (&target.0, ctx.workspace()) {
        (Some(ws), _) => ws,
        (None, Ok(ws)) => ws,
        (None, Err(error)) => return error.render(Some(&ctx)),
    };
    render(&state, &ctx, shown, &sub.draft, &errors, status)
        .await
        .unwrap_or_else(|error| error.render(Some(&ctx)))
}

/// Why the form did not start a run.
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

/// Reads the form (storing its archive), checks it, and starts the task and its run.
async fn start_run(
    req: &HttpRequest,
    state: &AppState,
    ctx: &Ctx,
    payload: web::Payload,
    sub: &mut Submission,
    target: &mut Target,
) -> Result<HttpResponse, Failure> {
    if !session::same_origin(req) {
        return Err(PageError::Csrf.into());
    }
    multipart::read_form(req, state, ctx, payload, sub, target).await?;
    form::verify(req, &ctx.session, sub.draft.csrf.as_deref())?;
    let ws = target.resolve(state, ctx, &sub.draft).await?;
    let valid = validate(&sub.draft).map_err(|mut errors| {
        errors.extend(sub.upload_errors.clone());
        Failure::Form(errors)
    })?;
    if !sub.upload_errors.is_empty() {
        return Err(Failure::Form(sub.upload_errors.clone()));
    }
    let request = valid.into_request(ws.workspace_id, sub.archive.take());
    let started = state
        .services
        .start
        .start(&ctx.session.caller, request, nonce_key(&sub.draft.nonce))
        .await
        .map_err(service_failure)?;
    state.dispatch_created().await;
    Ok(page::see_other(&format!(
        "/console/runs/{}",
        started.run.run.run_id
    )))
}

/// The workspace the form names in `workspaceId`, once resolved.
#[derive(Default)]
struct Target(Option<Workspace>);

impl Target {
    /// The workspace the form names, once the user's membership of it is checked
    /// (resolved once, then kept).
    async fn resolve(
        &mut self,
        state: &AppState,
        ctx: &Ctx,
        draft: &Draft,
    ) -> Result<Workspace, Failure> {
        if let Some(ws) = &self.0 {
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
        self.0 = Some(ws.clone());
        Ok(ws)
    }
}

/// The parsed, valid parts of a draft.
struct Valid {
    task_type: TaskType,
    prompt: Prompt,
    executor: Option<ExecutorName>,
}

impl Valid {
    /// The start of this task in `workspace_id`, with its archive if one was stored.
    fn into_request(
        self,
        workspace_id: WorkspaceId,
        archive_id: Option<tlao_domain::ArchiveId>,
    ) -> StartTask {
        let input = TaskInput {
            prompt: self.prompt,
            archive_id,
            source: None,
        };
        let spec = TaskSpec {
            task_type: self.task_type,
            input,
            constraints: Constraints::default(),
            expected_output: None,
        };
        StartTask {
            workspace_id,
            spec,
            executor: self.executor,
        }
    }
}

/// Parses the draft, naming each bad field.
fn validate(draft: &Draft) -> Result<Valid, FieldErrors> {
    let mut errors = FieldErrors::new();
    let task_type = draft.task_type.parse::<TaskType>().ok();
    if task_type.is_none() {
        errors.push(("taskType", "Choose a task type.".into()));
    }
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
        let parsed = draft.executor.parse::<ExecutorName>().ok();
        if parsed.is_none() {
            errors.push(("executor", "Choose an executor from the list.".into()));
        }
        parsed.map(Some)
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

/// The form's nonce as the start's idempotency key; none when it is not one this page
/// writes (the start then happens without one).
fn nonce_key(nonce: &str) -> Option<&str> {
    let usable = !nonce.is_empty()
        && nonce.len() <= 128
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    usable.then_some(nonce)
}

/// A refusal of the start use case, on the form when the user can act on it.
fn service_failure(error: ServiceError) -> Failure {
    let whole_form = |message: String| Failure::Form(vec![("", message)]);
    match error {
        ServiceError::NoExecutor { message, .. } => Failure::Form(vec![(
            "executor",
            format!("No executor can run this: {message}."),
        )]),
        ServiceError::QuotaExceeded { quota, limit, .. } => {
            whole_form(if limit == tlao_domain::Limit::DailyRunQuotaPerUser {
                format!(
                    "You have used your daily quota of {quota} runs across your workspaces; it resets at midnight UTC."
                )
            } else {
                format!(
                    "This workspace has used its daily quota of {quota} runs; it resets at midnight UTC."
                )
            })
        }
        ServiceError::Conflict(_) => whole_form(
            "This form was already sent with other values. Check the runs list, or send it again."
                .into(),
        ),
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
