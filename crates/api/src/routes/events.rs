//! A run's events as server-sent events (`GET /runs/{id}/events`), with actix-web-lab's
//! SSE responder over the orchestrator's [`RunStream`].
//!
//! The stream decides what is sent (replay, live, catch-up, end); this module only
//! reads the resume point, checks access before the `200` (so 401/403/404 are ordinary
//! problems), and writes each item in the format of [`tlao_wire::events`]. A failure
//! mid-stream closes the connection without an `end`, so the client reconnects and
//! resumes with `Last-Event-ID`.

use std::time::Duration;

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, Responder, web};
use actix_web_lab::sse;
use serde::Deserialize;
use tlao_domain::RunId;
use tlao_domain::validation::Collector;
use tlao_orchestrator::{RunStream, ServiceError, StreamItem};
use tlao_wire::{END_EVENT, RunEventMessage, StreamEndMessage};
use utoipa::IntoParams;

use crate::auth::Authenticated;
use crate::dto::Problem;
use crate::error::ApiError;
use crate::params::path_id;
use crate::request_id;
use crate::state::AppState;

/// How often an idle stream sends a comment, so proxies and clients keep it open.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The header a client resumes with: the last sequence number it received.
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// The query of `GET /runs/{id}/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(rename_all = "camelCase", parameter_in = Query)]
pub(crate) struct EventsQuery {
    /// Send only events after this sequence number (`Last-Event-ID` wins when both are
    /// given); 0 or absent: from the first event.
    #[param(value_type = Option<u64>, minimum = 0, maximum = 9223372036854775807_u64)]
    pub(crate) after: Option<String>,
}

/// Streams a run's events as `text/event-stream`: `id:` is the sequence number, the
/// event name its type (`log`, `progress`, `status`, `artifact`, `truncated`), the data
/// the event as JSON. Stored events after the resume point are replayed, then live
/// ones follow; once the run is over and everything was sent, one `end` event carries
/// the final status and the server closes.
#[utoipa::path(
    get,
    path = "/runs/{runId}/events",
    tag = "runs",
    params(
        ("runId" = String, Path, pattern = "^run_[0-7][0-9A-HJKMNP-TV-Z]{25}$", description = "The run (`run_...`)"),
        ("Last-Event-ID" = Option<String>, Header, nullable = false, pattern = "^[0-9]{0,19}$", description = "Resume after this sequence number (the last `id:` received); empty is the same as absent, as an event source that has seen no `id:` yet sends it"),
        EventsQuery,
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The event stream: one message per stored event (`id:` its \
                                      `seq`, `event:` its `type`, `data:` a `RunEvent`), then one `end` \
                                      message whose data is a `StreamEnd`; `: keep-alive` comments in between. \
                                      The schema describes each message (`StreamMessage`).",
            content_type = "text/event-stream", body = tlao_wire::events::StreamMessage),
        (status = 400, description = "The id, `after` or `Last-Event-ID` is malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not a member of its workspace", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn stream_run_events(
    state: web::Data<AppState>,
    caller: Authenticated,
    req: HttpRequest,
    run_id: web::Path<String>,
    query: web::Query<EventsQuery>,
) -> Result<HttpResponse, ApiError> {
    let run_id: RunId = path_id("runId", &run_id)?;
    request_id::note_run(&run_id);
    let after = resume_point(&req, &query)?;
    let stream = state.services.streams.open(&caller, &run_id, after).await?;
    let mut response = sse::Sse::from_stream(messages(stream))
        .with_keep_alive(KEEP_ALIVE)
        .respond_to(&req);
    // Reverse proxies (nginx) would otherwise buffer the stream.
    response.headers_mut().insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    Ok(response)
}

/// Where to resume: `Last-Event-ID` when present and not empty, else `?after=`, else 0.
/// Both are checked whichever wins, and each malformed one is named.
pub(crate) fn resume_point(req: &HttpRequest, query: &EventsQuery) -> Result<u64, ApiError> {
    let mut errors = Collector::new();
    let header = match req.headers().get(LAST_EVENT_ID).map(|value| value.to_str()) {
        None => Some(None),
        Some(Ok(text)) if text.trim().is_empty() => Some(None),
        Some(Ok(text)) => sequence_number(&mut errors, "Last-Event-ID", text, u64::MAX).map(Some),
        Some(Err(_)) => {
            errors.push("Last-Event-ID", "must be a sequence number (0 or more)");
            None
        }
    };
    let after = match query.after.as_deref() {
        None => Some(None),
        // An integer in the document, so no larger than its format allows.
        Some(text) => {
            sequence_number(&mut errors, "after", text, tlao_domain::MAX_API_INTEGER).map(Some)
        }
    };
    let point = header
        .zip(after)
        .map(|(header, after)| header.or(after).unwrap_or(0));
    Ok(errors.finish(point)?)
}

/// `text` as a sequence number of at most `max`.
fn sequence_number(errors: &mut Collector, field: &str, text: &str, max: u64) -> Option<u64> {
    match text.trim().parse::<u64>() {
        Ok(number) if number <= max => Some(number),
        Ok(_) => {
            errors.push(field, format!("must be at most {max}"));
            None
        }
        Err(_) => {
            errors.push(
                field,
                format!("{text:?} is not a sequence number (a whole number, 0 or more)"),
            );
            None
        }
    }
}

/// The SSE messages of a run stream, ending after `end` or at the first error.
pub(crate) fn messages(
    stream: RunStream,
) -> impl futures::Stream<Item = Result<sse::Event, ServiceError>> + 'static {
    futures::stream::unfold(Some(stream), |stream| async move {
        let mut stream = stream?;
        match stream.next().await {
            Ok(Some(item)) => Some((message(item), Some(stream))),
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(
                    run_id = %stream.run_id(), last_seq = stream.last_seq(),
                    operation = "stream_run_events", error = %error,
                    "event stream failed; the client will resume"
                );
                Some((Err(error), None))
            }
        }
    })
}

fn message(item: StreamItem) -> Result<sse::Event, ServiceError> {
    let encode = |e: serde_json::Error| ServiceError::Internal(e.into());
    let data = match item {
        StreamItem::Event(event) => {
            let event = RunEventMessage::from(event);
            sse::Data::new_json(&event)
                .map_err(encode)?
                .event(event.name())
                .id(event.seq().to_string())
        }
        StreamItem::End { status, last_seq } => sse::Data::new_json(StreamEndMessage {
            status: status.into(),
            last_seq,
        })
        .map_err(encode)?
        .event(END_EVENT)
        .id(last_seq.to_string()),
    };
    Ok(sse::Event::Data(data))
}
