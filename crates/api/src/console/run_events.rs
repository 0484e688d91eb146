//! A run's events for the run page's script: the API's event stream
//! (`GET /runs/{id}/events`), authenticated by the session cookie and closed when the
//! session ends. Failures before the stream are plain-text statuses (the script reports
//! them), not pages.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, Responder, web};
use actix_web_lab::sse;
use futures::StreamExt as _;
use tlao_domain::RunId;
use tlao_orchestrator::ServiceError;

use super::session::{self, ConsoleKeys};
use crate::routes::events::{EventsQuery, KEEP_ALIVE, messages, resume_point};
use crate::state::AppState;

/// How often an open event stream checks that its session is still live.
pub(crate) const SESSION_CHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// What the script is told when the stream cannot be served now.
const UNAVAILABLE: &str = "the event stream is unavailable; retry shortly";

/// A plain-text answer for the script.
fn plain(status: StatusCode, text: &'static str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(text)
}

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

/// Why a stream could not be opened, for the script.
fn refusal(error: ServiceError) -> HttpResponse {
    match error {
        ServiceError::NotFound { .. } => plain(StatusCode::NOT_FOUND, "no such run"),
        ServiceError::Forbidden(_) => plain(
            StatusCode::FORBIDDEN,
            "this run belongs to a workspace you are not a member of",
        ),
        error => {
            tracing::warn!(operation = "console_events", error = %error, "cannot open the event stream");
            plain(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE)
        }
    }
}

/// `GET /console/runs/{id}/events`: the run's events as server-sent events, the same
/// stream as the API's `GET /runs/{id}/events`.
pub(crate) async fn events(
    req: HttpRequest,
    state: web::Data<AppState>,
    keys: web::Data<ConsoleKeys>,
    run_id: web::Path<String>,
    query: web::Query<EventsQuery>,
) -> HttpResponse {
    let session = match session::session(&req, &state, &keys).await {
        Ok(Some(session)) => session,
        Ok(None) => return plain(StatusCode::UNAUTHORIZED, "sign in again to follow this run"),
        Err(_) => return plain(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE),
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
    let opened = state.services.streams.open(&session.caller, &run_id, after);
    let stream = match opened.await {
        Ok(stream) => stream,
        Err(error) => return refusal(error),
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
