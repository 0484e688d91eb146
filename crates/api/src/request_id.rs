//! Request ids, the per-request span, and the one place errors are logged.
//!
//! The middleware takes `x-request-id` from the request when it is 1 to 128 visible
//! ASCII characters and otherwise makes one (`req_<ulid>`). It runs the rest of the app
//! inside a `tokio` task-local holding the id, so [`crate::ApiError`] can put it in
//! every problem body, and inside a `tracing` span carrying the id, method, path,
//! operation and, once known, the user, workspace and run. On the way out it sets the
//! header on every response (errors and unknown routes included), turns any error the
//! framework raised itself into problem+json, and logs each error once.

use std::fmt;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use actix_web::HttpResponse;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tlao_domain::Ulid;
use tracing::Instrument;
use tracing::field::Empty;

use crate::error::ApiError;
use crate::routes;

/// The header carrying the request id, both ways.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id taken from a client.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The path parameters recorded on the request span (under the same name) when a route
/// has them.
const TRACED_PARAMS: [&str; 2] = ["workspaceId", "runId"];

tokio::task_local! {
    static CURRENT: RequestId;
}

/// Identifies one request in responses and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// The client's id, when it is 1 to 128 visible ASCII characters.
    pub fn from_client(value: &str) -> Option<RequestId> {
        let valid = !value.is_empty()
            && value.len() <= MAX_REQUEST_ID_LEN
            && value.bytes().all(|b| b.is_ascii_graphic());
        valid.then(|| RequestId(value.into()))
    }

    /// A fresh id: `req_` and a ULID.
    pub fn generate() -> RequestId {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let ulid = Ulid::from_parts(millis, rand::random::<u128>());
        RequestId(format!("req_{ulid}").into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of the request being served, inside the middleware's scope.
pub(crate) fn current() -> Option<RequestId> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Records the workspace a request concerns on its span, for the logs.
pub(crate) fn note_workspace(workspace_id: &impl fmt::Display) {
    tracing::Span::current().record("workspaceId", tracing::field::display(workspace_id));
}

/// Records the run a request concerns on its span, for the logs.
pub(crate) fn note_run(run_id: &impl fmt::Display) {
    tracing::Span::current().record("runId", tracing::field::display(run_id));
}

/// Records the authenticated user on the request's span, for the logs.
pub(crate) fn note_user(user_id: &impl fmt::Display) {
    tracing::Span::current().record("userId", tracing::field::display(user_id));
}

/// The middleware; see the module documentation.
pub(crate) async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(RequestId::from_client)
        .unwrap_or_else(RequestId::generate);
    // The operation is known once the request is routed: matching the path here too
    // would run the router's patterns twice per request.
    let span = tracing::info_span!(
        "request",
        requestId = %id,
        method = %req.method(),
        path = %req.path(),
        operation = Empty,
        userId = Empty,
        workspaceId = Empty,
        runId = Empty,
    );
    let started = Instant::now();
    let served = {
        let recorder = span.clone();
        let id = id.clone();
        async move {
            let mut response = match next.call(req).await {
                Ok(response) => response.map_into_boxed_body(),
                Err(error) => {
                    // The app answers errors itself, so this is not expected; still, the
                    // client gets a problem with the request id. The request went with
                    // the error, so its operation is not known.
                    let operation = "unknown";
                    let text = error.to_string();
                    let mut response = match error.as_error::<ApiError>() {
                        Some(api_error) => {
                            api_error.log(id.as_str(), operation);
                            HttpResponse::from_error(error)
                        }
                        None => {
                            let problem = foreign(&error);
                            problem.log(id.as_str(), operation);
                            HttpResponse::from_error(problem)
                        }
                    };
                    set_header(response.headers_mut(), &id);
                    return Err(InternalError::from_response(text, response).into());
                }
            };
            let request = response.request();
            // After routing this reads the matched resource; it matches nothing again.
            let operation =
                routes::operation_of(request.method(), request.match_pattern().as_deref());
            recorder.record("operation", operation);
            for param in TRACED_PARAMS {
                if let Some(value) = response.request().match_info().get(param) {
                    recorder.record(param, tracing::field::display(value));
                }
            }
            response = as_problem(response);
            if let Some(error) = response.response().error()
                && let Some(api_error) = error.as_error::<ApiError>()
            {
                api_error.log(id.as_str(), operation);
            }
            tracing::debug!(
                status = response.status().as_u16(),
                elapsedMs = started.elapsed().as_millis() as u64,
                "request served"
            );
            set_header(response.headers_mut(), &id);
            Ok(response)
        }
        .instrument(span)
    };
    CURRENT.scope(id, served).await
}

fn set_header(headers: &mut HeaderMap, id: &RequestId) {
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        headers.insert(REQUEST_ID_HEADER, value);
    }
}

/// An error the framework raised itself, as an [`ApiError`] with its status.
fn foreign(error: &actix_web::Error) -> ApiError {
    ApiError::Other {
        status: error.as_response_error().status_code(),
        detail: error.to_string(),
    }
}

/// A response carrying an error the framework raised itself (not an [`ApiError`]),
/// rebuilt as problem+json with the same status; any other response unchanged. Must run
/// inside the request's scope so the body gets the request id.
fn as_problem(response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let problem = match response.response().error() {
        Some(error) if error.as_error::<ApiError>().is_none() => foreign(error),
        _ => return response,
    };
    response.into_response(HttpResponse::from_error(problem))
}
