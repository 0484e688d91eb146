//! The one error mapping of the API: [`ApiError`] turns service errors, extractor
//! failures and routing misses into `application/problem+json` responses
//! (`{"type","title","status","detail","requestId"}` plus the fields a client acts on).
//!
//! No status code is chosen anywhere else. Details never carry internals: a 5xx says
//! only what the client can do, and the cause goes to the log (see
//! [`crate::request_id`], which logs every error once).

use std::fmt::Write as _;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpResponse, ResponseError, web};
use tlao_domain::{Fenced, Limit, TaskType, ValidationErrors};
use tlao_orchestrator::ServiceError;
use tlao_ports::StorageFault;

use crate::dto::{FieldErrorView, Problem, RunStatusName, TaskTypeName};
use crate::request_id;
use tlao_wire::FenceReason;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The prefix of every problem `type`.
const TYPE_PREFIX: &str = "urn:tlao:problem:";

/// The realm named in `WWW-Authenticate` challenges.
const REALM: &str = "tlao";

/// Why a request failed, as the API reports it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the input is invalid; every bad field is listed.
    #[error("{}", describe(.0))]
    Invalid(Vec<FieldErrorView>),
    /// 401: the caller could not be identified.
    #[error("{detail}")]
    Unauthenticated {
        /// What is wrong with the credentials.
        detail: String,
        /// The `error` code of the `WWW-Authenticate` challenge (`invalid_token`), absent
        /// when no credentials were sent at all (RFC 6750 §3.1).
        challenge_error: Option<&'static str>,
    },
    /// 403: the caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// 404: the thing or the route does not exist.
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists, but not for this method.
    #[error("method {method} is not allowed on this route; use {}", join_methods(.allowed))]
    MethodNotAllowed {
        /// The method used.
        method: Method,
        /// The methods the route serves.
        allowed: Vec<Method>,
    },
    /// 409: the request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// 409: a worker wrote under a lease that may not write the run any more (fencing);
    /// nothing was written.
    #[error("{detail}")]
    LeaseRevoked {
        /// What was refused and why.
        detail: String,
        /// Why the lease may not write the run.
        reason: FenceReason,
        /// The run's status, when it has ended.
        run_status: Option<RunStatusName>,
    },
    /// 413: the body is larger than allowed.
    #[error("the body exceeds the limit of {max_bytes} bytes")]
    TooLarge {
        /// The limit.
        max_bytes: u64,
    },
    /// 415: the body is not of a media type the route reads.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: no executor serves the task type.
    #[error("{detail}")]
    NoExecutor {
        /// What was looked for and what exists.
        detail: String,
        /// The task type nobody serves.
        task_type: TaskType,
    },
    /// 413 or 429: a guardrail refused the request (413 for an archive's size, entries
    /// or unpacked size; 429 for a daily run quota or the workspaces a user may own).
    #[error("{detail}")]
    LimitReached {
        /// The limit, its value and what to do.
        detail: String,
        /// Which guardrail.
        limit: Limit,
        /// Its value.
        max: u64,
        /// Seconds until it resets, for the limits time lifts (daily quotas).
        retry_after_seconds: Option<u64>,
    },
    /// 503: a dependency kept failing; retrying later may work.
    #[error("{detail}")]
    Unavailable {
        /// What the client can do.
        detail: String,
        /// Why, for the log only.
        #[source]
        cause: anyhow::Error,
    },
    /// 500: a bug or an unexpected failure.
    #[error("an unexpected error occurred; it was logged with the request id")]
    Internal(#[source] anyhow::Error),
    /// Any other status, for errors raised by the framework itself.
    #[error("{detail}")]
    Other {
        /// The status.
        status: StatusCode,
        /// What went wrong.
        detail: String,
    },
}

impl ApiError {
    /// A 400 about one field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Invalid(vec![FieldErrorView {
            field: field.into(),
            message: message.into(),
        }])
    }

    /// A 401 for credentials that were sent but are not valid.
    pub fn invalid_token(detail: impl Into<String>) -> Self {
        ApiError::Unauthenticated {
            detail: detail.into(),
            challenge_error: Some("invalid_token"),
        }
    }

    /// A 401 for a request that sent no credentials.
    pub fn missing_credentials(detail: impl Into<String>) -> Self {
        ApiError::Unauthenticated {
            detail: detail.into(),
            challenge_error: None,
        }
    }

    /// A 500 for an unexpected failure; `cause` is logged, never shown.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(cause.into())
    }

    /// The problem `type` slug, e.g. `quota-exceeded`.
    fn slug(&self) -> String {
        match self {
            ApiError::Invalid(_) => "invalid-request".into(),
            ApiError::Unauthenticated { .. } => "unauthenticated".into(),
            ApiError::Forbidden(_) => "forbidden".into(),
            ApiError::NotFound(_) => "not-found".into(),
            ApiError::MethodNotAllowed { .. } => "method-not-allowed".into(),
            ApiError::Conflict(_) => "conflict".into(),
            ApiError::LeaseRevoked { .. } => "lease-revoked".into(),
            ApiError::TooLarge { .. } => "too-large".into(),
            ApiError::UnsupportedMediaType(_) => "unsupported-media-type".into(),
            ApiError::NoExecutor { .. } => "no-executor".into(),
            ApiError::LimitReached { limit, .. } => match limit {
                Limit::DailyRunQuota | Limit::DailyRunQuotaPerUser => "quota-exceeded".into(),
                Limit::MaxWorkspacesPerUser => "limit-reached".into(),
                Limit::MaxArchiveBytes | Limit::MaxArchiveEntries | Limit::MaxUnpackedBytes => {
                    "too-large".into()
                }
            },
            ApiError::Unavailable { .. } => "unavailable".into(),
            ApiError::Internal(_) => "internal".into(),
            ApiError::Other { status, .. } => format!("http-{}", status.as_u16()),
        }
    }

    /// The short, fixed summary of the problem type.
    fn title(&self) -> &'static str {
        match self {
            ApiError::Invalid(_) => "Invalid request",
            ApiError::Unauthenticated { .. } => "Authentication required",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::NotFound(_) => "Not found",
            ApiError::MethodNotAllowed { .. } => "Method not allowed",
            ApiError::Conflict(_) => "Conflict",
            ApiError::LeaseRevoked { .. } => "Lease no longer valid",
            ApiError::TooLarge { .. } => "Payload too large",
            ApiError::UnsupportedMediaType(_) => "Unsupported media type",
            ApiError::NoExecutor { .. } => "No executor for the task type",
            ApiError::LimitReached { limit, .. } => match limit {
                Limit::DailyRunQuota | Limit::DailyRunQuotaPerUser => "Daily run quota exceeded",
                Limit::MaxWorkspacesPerUser => "Workspace limit reached",
                Limit::MaxArchiveBytes | Limit::MaxArchiveEntries | Limit::MaxUnpackedBytes => {
                    "Payload too large"
                }
            },
            ApiError::Unavailable { .. } => "Service unavailable",
            ApiError::Internal(_) => "Internal server error",
            ApiError::Other { status, .. } => status.canonical_reason().unwrap_or("Error"),
        }
    }

    /// The problem body, with the current request's id.
    pub fn problem(&self) -> Problem {
        let status = self.status_code();
        let mut problem = Problem {
            type_uri: format!("{TYPE_PREFIX}{}", self.slug()),
            title: self.title().to_owned(),
            status: status.as_u16(),
            detail: self.to_string(),
            request_id: request_id::current()
                .map(|id| id.to_string())
                .unwrap_or_else(|| "unknown".into()),
            errors: Vec::new(),
            max_bytes: None,
            limit: None,
            max: None,
            retry_after_seconds: None,
            task_type: None,
            reason: None,
            run_status: None,
        };
        match self {
            ApiError::Invalid(errors) => problem.errors = errors.clone(),
            ApiError::TooLarge { max_bytes } => problem.max_bytes = Some(*max_bytes),
            ApiError::LimitReached {
                limit,
                max,
                retry_after_seconds,
                ..
            } => {
                problem.limit = Some(limit.as_str().to_owned());
                problem.max = Some(*max);
                problem.retry_after_seconds = *retry_after_seconds;
                if matches!(limit, Limit::MaxArchiveBytes | Limit::MaxUnpackedBytes) {
                    problem.max_bytes = Some(*max);
                }
            }
            ApiError::NoExecutor { task_type, .. } => {
                problem.task_type = Some(TaskTypeName::from(*task_type));
            }
            ApiError::LeaseRevoked {
                reason, run_status, ..
            } => {
                problem.reason = Some(*reason);
                problem.run_status = *run_status;
            }
            _ => {}
        }
        problem
    }

    /// Writes this error to the log once: 5xx at error level with the whole cause
    /// chain, 4xx at info level. The request's span adds the request id, method, path and
    /// the workspace and run when known.
    pub(crate) fn log(&self, request_id: &str, operation: &str) {
        let status = self.status_code().as_u16();
        if self.status_code().is_server_error() {
            tracing::error!(
                requestId = request_id,
                operation,
                status,
                error = %cause_chain(self),
                "request failed"
            );
        } else {
            tracing::info!(
                requestId = request_id,
                operation,
                status,
                detail = %self,
                "request refused"
            );
        }
    }
}

/// `error: cause: cause...`, for logs.
fn cause_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

fn describe(errors: &[FieldErrorView]) -> String {
    match errors {
        [] => "the request is invalid".into(),
        [one] => format!("invalid {}: {}", one.field, one.message),
        many => format!(
            "{} invalid fields: {}; each is described in errors",
            many.len(),
            many.iter()
                .map(|e| e.field.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn join_methods(methods: &[Method]) -> String {
    methods
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) | ApiError::LeaseRevoked { .. } => StatusCode::CONFLICT,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NoExecutor { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::LimitReached { limit, .. } => match limit {
                Limit::MaxArchiveBytes | Limit::MaxArchiveEntries | Limit::MaxUnpackedBytes => {
                    StatusCode::PAYLOAD_TOO_LARGE
                }
                Limit::DailyRunQuota
                | Limit::DailyRunQuotaPerUser
                | Limit::MaxWorkspacesPerUser => StatusCode::TOO_MANY_REQUESTS,
            },
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Other { status, .. } => *status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let problem = self.problem();
        let body = serde_json::to_vec(&problem).unwrap_or_else(|_| {
            // Serialising plain strings and numbers cannot fail; keep a body regardless.
            br#"{"type":"urn:tlao:problem:internal","title":"Internal server error","status":500}"#
                .to_vec()
        });
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, PROBLEM_JSON));
        match self {
            ApiError::Unauthenticated {
                detail,
                challenge_error,
            } => {
                let challenge = match challenge_error {
                    Some(code) => format!(
                        "Bearer realm=\"{REALM}\", error=\"{code}\", error_description=\"{}\"",
                        quoted(detail)
                    ),
                    None => format!("Bearer realm=\"{REALM}\""),
                };
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    response.insert_header((header::WWW_AUTHENTICATE, value));
                } else {
                    response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
                }
            }
            ApiError::LimitReached {
                retry_after_seconds: Some(seconds),
                ..
            } => {
                response.insert_header((header::RETRY_AFTER, seconds.to_string()));
            }
            ApiError::MethodNotAllowed { allowed, .. } => {
                response.insert_header((header::ALLOW, join_methods(allowed)));
            }
            _ => {}
        }
        response.body(body)
    }
}

/// `text` made safe inside a quoted header parameter: visible ASCII, no quotes.
fn quoted(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            c if c.is_ascii_graphic() || c == ' ' => c,
            _ => '?',
        })
        .collect()
}

impl From<ValidationErrors> for ApiError {
    fn from(errors: ValidationErrors) -> Self {
        ApiError::Invalid(
            errors
                .errors()
                .iter()
                .map(|e| FieldErrorView {
                    // A problem with the document as a whole is reported as the body's.
                    field: if e.field.is_empty() {
                        "body".into()
                    } else {
                        e.field.clone()
                    },
                    message: e.message.clone(),
                })
                .collect(),
        )
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::Invalid(errors) => errors.into(),
            // An API key was refused, not a token: a bare challenge.
            ServiceError::Unauthenticated(detail) => ApiError::Unauthenticated {
                detail,
                challenge_error: None,
            },
            ServiceError::Forbidden(detail) => ApiError::Forbidden(detail),
            error @ ServiceError::NotFound { .. } => ApiError::NotFound(error.to_string()),
            ServiceError::Conflict(detail) => ApiError::Conflict(detail),
            error @ ServiceError::Fenced { fenced, .. } => ApiError::LeaseRevoked {
                detail: error.to_string(),
                reason: match fenced {
                    Fenced::LeaseSuperseded => FenceReason::LeaseSuperseded,
                    Fenced::RunEnded(_) => FenceReason::RunEnded,
                },
                run_status: match fenced {
                    Fenced::LeaseSuperseded => None,
                    Fenced::RunEnded(status) => Some(status.into()),
                },
            },
            // Only archives are refused for their size by a service.
            ServiceError::TooLarge { max_bytes } => ApiError::LimitReached {
                detail: format!(
                    "the archive exceeds the limit of {max_bytes} bytes ({})",
                    Limit::MaxArchiveBytes.setting()
                ),
                limit: Limit::MaxArchiveBytes,
                max: max_bytes,
                retry_after_seconds: None,
            },
            ServiceError::NoExecutor { task_type, message } => ApiError::NoExecutor {
                detail: message,
                task_type,
            },
            error @ ServiceError::QuotaExceeded {
                limit,
                quota,
                retry_after_seconds,
            } => ApiError::LimitReached {
                detail: error.to_string(),
                limit,
                max: u64::from(quota),
                retry_after_seconds: Some(retry_after_seconds),
            },
            error @ ServiceError::LimitReached { limit, max } => ApiError::LimitReached {
                detail: error.to_string(),
                limit,
                max,
                retry_after_seconds: None,
            },
            ServiceError::Unavailable(cause) => ApiError::Unavailable {
                // A fault an operator must fix is named (never a path); anything else is
                // a passing failure.
                detail: match StorageFault::find(cause.as_ref()) {
                    Some(fault) => format!("storage is unavailable: {fault}"),
                    None => "storage is unavailable, try again shortly".into(),
                },
                cause,
            },
            ServiceError::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<JsonPayloadError> for ApiError {
    fn from(error: JsonPayloadError) -> Self {
        match error {
            JsonPayloadError::OverflowKnownLength { limit, .. }
            | JsonPayloadError::Overflow { limit } => ApiError::TooLarge {
                max_bytes: limit as u64,
            },
            JsonPayloadError::ContentType => ApiError::UnsupportedMediaType(
                "the body must be JSON: send Content-Type: application/json".into(),
            ),
            JsonPayloadError::Deserialize(e) => {
                ApiError::invalid("body", format!("is not valid JSON: {e}"))
            }
            JsonPayloadError::Payload(e) => {
                ApiError::invalid("body", format!("could not be read: {e}"))
            }
            other => ApiError::internal(anyhow::anyhow!("reading a JSON body: {other}")),
        }
    }
}

/// The JSON extractor's configuration: the size limit, and problem+json for every
/// failure (bad JSON → 400 on `body`, too large → 413, not JSON → 415).
pub(crate) fn json_config(max_bytes: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(max_bytes)
        .error_handler(|error, _req| ApiError::from(error).into())
}

/// The path extractor's configuration: problem+json for parameters that do not decode.
pub(crate) fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|error: PathError, _req| {
        ApiError::invalid("path", format!("is not valid: {error}")).into()
    })
}

/// The query extractor's configuration: problem+json for query strings that do not
/// decode.
pub(crate) fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|error: QueryPayloadError, _req| {
        ApiError::invalid("query", format!("is not valid: {error}")).into()
    })
}
