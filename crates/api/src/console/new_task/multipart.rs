//! Reading the start form's multipart body as it arrives: text fields into the
//! [`Draft`] (each and all of them bounded), and the archive streamed into the archive
//! service — accepted only after the form's CSRF token, only one, only with a valid
//! draft, and only into a workspace the user belongs to.

use std::io;

use actix_multipart::{Field, Multipart};
use actix_web::{HttpRequest, web};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tlao_domain::{ArchiveId, Workspace};
use tlao_orchestrator::ServiceError;
use tlao_ports::ByteStream;
use tokio::sync::mpsc;

use super::template::FieldErrors;
use super::{Draft, Failure, Target, validate};
use crate::console::form;
use crate::console::page::{self, Ctx, PageError};
use crate::console::session;
use crate::state::AppState;

/// The longest text field read from the form (the prompt's limit, with room to say it
/// is too long rather than cut it).
const MAX_TEXT_FIELD: usize = tlao_domain::task_spec::MAX_PROMPT_BYTES + 1024;

/// The most bytes all text fields of one form may add up to (the form's own fields
/// need a fraction of this); more is refused with 413.
const MAX_TEXT_TOTAL: usize = 256 * 1024;

/// What the form sent, as far as it was read.
#[derive(Default)]
pub(super) struct Submission {
    /// The text fields.
    pub(super) draft: Draft,
    /// The archive, once stored.
    pub(super) archive: Option<ArchiveId>,
    /// What is wrong with the archive field.
    pub(super) upload_errors: FieldErrors,
    /// How many text bytes arrived.
    text_bytes: usize,
    /// How many archive fields arrived.
    archive_parts: usize,
}

/// Reads the whole body into `sub`, storing its archive in the form's workspace
/// (resolved into `target`).
pub(super) async fn read_form(
    req: &HttpRequest,
    state: &AppState,
    ctx: &Ctx,
    payload: web::Payload,
    sub: &mut Submission,
    target: &mut Target,
) -> Result<(), Failure> {
    let max_archive = state.services.core.guardrails.max_archive_bytes;
    let mut multipart = Multipart::new(req.headers(), payload);
    while let Some(field) = multipart.next().await {
        let Ok(mut field) = field else {
            return Err(Failure::Form(vec![(
                "",
                "The form could not be read; please try again.".into(),
            )]));
        };
        if sub.text_bytes > MAX_TEXT_TOTAL {
            // Refused already: read the rest only so the browser sees the page.
            drain(&mut field, max_archive).await;
        } else if field.name() == Some("archive") {
            read_archive(req, state, ctx, field, sub, target).await?;
        } else {
            read_text_field(&mut field, sub).await;
        }
    }
    if sub.text_bytes > MAX_TEXT_TOTAL {
        return Err(Failure::TooLarge(vec![(
            "",
            format!(
                "The form's text fields add up to more than {}; shorten the prompt.",
                page::bytes(MAX_TEXT_TOTAL as u64)
            ),
        )]));
    }
    Ok(())
}

/// A text field into the draft, unless the text fields are over their total.
async fn read_text_field(field: &mut Field, sub: &mut Submission) {
    let name = field.name().unwrap_or("").to_owned();
    let (text, received) = read_text(field).await;
    sub.text_bytes = sub.text_bytes.saturating_add(received);
    if sub.text_bytes > MAX_TEXT_TOTAL {
        return;
    }
    let draft = &mut sub.draft;
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

/// The archive field: stored when it may be, else read and dropped.
async fn read_archive(
    req: &HttpRequest,
    state: &AppState,
    ctx: &Ctx,
    mut field: Field,
    sub: &mut Submission,
    target: &mut Target,
) -> Result<(), Failure> {
    let max_archive = state.services.core.guardrails.max_archive_bytes;
    sub.archive_parts += 1;
    // The form sends its token first: no archive byte is accepted before it.
    if form::verify(req, &ctx.session, sub.draft.csrf.as_deref()).is_err() {
        drain(&mut field, max_archive).await;
        return Err(PageError::Csrf.into());
    }
    if sub.archive_parts > 1 {
        drain(&mut field, max_archive).await;
        sub.upload_errors
            .push(("archive", "Send one archive at most.".into()));
        return Ok(());
    }
    let has_file = field
        .content_disposition()
        .and_then(|cd| cd.get_filename())
        .is_some_and(|name| !name.is_empty());
    if !has_file || validate(&sub.draft).is_err() {
        drain(&mut field, max_archive).await;
        return Ok(());
    }
    let ws = match target.resolve(state, ctx, &sub.draft).await {
        Ok(ws) => ws,
        Err(failure) => {
            drain(&mut field, max_archive).await;
            return Err(failure);
        }
    };
    match upload(state, ctx, &ws, field, max_archive).await {
        Ok(id) => sub.archive = Some(id),
        Err(UploadError::Field(message)) => sub.upload_errors.push(("archive", message)),
        Err(UploadError::Service(error)) => return Err(PageError::from(error).into()),
    }
    Ok(())
}

/// A text field, at most [`MAX_TEXT_FIELD`] bytes (the rest is read and dropped, up to
/// a generous bound), as UTF-8, and how many bytes arrived.
async fn read_text(field: &mut Field) -> (String, usize) {
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
    field: Field,
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
    stored
        .map(|archive| archive.archive_id)
        .map_err(upload_error)
}

/// An upload's failure, worded for the file input when the user can act on it.
fn upload_error(error: ServiceError) -> UploadError {
    match error {
        ServiceError::TooLarge { max_bytes } => UploadError::Field(format!(
            "The archive is larger than this workspace's limit of {}. Leave out build outputs and dependencies, or add them to .tlaoignore.",
            page::bytes(max_bytes)
        )),
        ServiceError::LimitReached { limit, max } => UploadError::Field(match limit {
            tlao_domain::Limit::MaxArchiveEntries => format!(
                "The archive has more than {max} files and directories. Leave out generated files and dependencies."
            ),
            _ => format!(
                "The archive unpacks to more than {}. Leave out build outputs and dependencies.",
                page::bytes(max)
            ),
        }),
        ServiceError::Invalid(_) => {
            UploadError::Field("The file is not a gzip-compressed tar archive (.tar.gz).".into())
        }
        other => UploadError::Service(other),
    }
}
