//! The HTTP core under [`crate::TlaoClient`], [`crate::WorkerClient`] and
//! [`crate::EventStream`]: how a request is built and sent, which failures are tried
//! again, and how an error answer is read. Each client names its own rules with it
//! (which requests repeat, on which answers); none re-implements them.
//!
//! - Building: a URL on the API's base URL with `Authorization: Bearer <token>`, or a
//!   presigned URL without credentials (its signature is the credential).
//! - Timeouts: [`CONNECT_TIMEOUT`] to connect; an ordinary call [`CALL_TIMEOUT`] in
//!   all; a streamed body (an upload, a download, an event stream) has no limit in all,
//!   only the client's read timeout, how long it may stall.
//! - Retries: a request is sent again only when its caller allows it
//!   ([`Request::retried`]) and its body can be sent again (a streamed body cannot);
//!   then a connection error (a timeout included) or an answer its [`Transient`] names
//!   is retried after the [`RetryPolicy`]'s backoff with jitter. `Retry-After` is not
//!   waited for: the user API's only `429` is a daily quota, which is not retried.
//! - Error answers: one [`ErrorAnswer`], from the `application/problem+json` body when
//!   there is one, else from the status and a bounded excerpt of the body.
//! - Messages: a presigned URL's query never appears in an error or a log line.

use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap};
use reqwest::{Method, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tlao_wire::Problem;

use crate::retry::RetryPolicy;

/// How long to wait for a connection.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an ordinary call may take in all, retries aside.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a transfer (an upload's answer, a download) may stall.
pub(crate) const TRANSFER_STALL_TIMEOUT: Duration = Duration::from_secs(120);
/// How much of an error body is read: a problem is far smaller, a proxy's error page
/// may not be.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
/// How much of an error body that is not a problem is kept as the detail.
const MAX_DETAIL_CHARS: usize = 512;

/// Why a request failed, before a client names it in its own error type.
#[derive(Debug)]
pub(crate) enum HttpError {
    /// The server answered with an error status.
    Answer(ErrorAnswer),
    /// No answer: the server could not be reached, or the connection broke.
    Connection {
        /// The URL, as messages may show it.
        url: String,
        /// What failed, without the URL.
        source: reqwest::Error,
    },
    /// A success answer that is not what was expected, or a request body that cannot
    /// be encoded.
    Unexpected {
        /// The URL, as messages may show it.
        url: String,
        /// What was wrong.
        message: String,
    },
}

/// An error answer, read the same way for every client.
#[derive(Debug)]
pub(crate) struct ErrorAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The problem's title, else the status's reason phrase.
    pub title: String,
    /// The problem's detail, else a bounded excerpt of the body.
    pub detail: String,
    /// The problem's `requestId`, else the `x-request-id` header.
    pub request_id: Option<String>,
    /// The whole problem, when the body was one.
    pub problem: Option<Box<Problem>>,
}

/// Which answers are worth another try: a `5xx` always, as is a connection error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transient {
    /// A `5xx` only: the user API, where a `429` is a daily quota a retry cannot lift.
    ServerError,
    /// A `5xx` or a `429`: the worker protocol.
    AlsoThrottled,
    /// A `5xx`, a `429` or a `408`: the event stream, which reconnects.
    AlsoThrottledOrTimedOut,
}

impl Transient {
    /// Whether an answer with `status` is worth another try.
    pub fn covers(self, status: StatusCode) -> bool {
        status.is_server_error()
            || match self {
                Transient::ServerError => false,
                Transient::AlsoThrottled => status == StatusCode::TOO_MANY_REQUESTS,
                Transient::AlsoThrottledOrTimedOut => {
                    status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT
                }
            }
    }
}

/// A connection pool bound to one API.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    base_url: String,
}

/// What a request carries.
enum Body {
    Empty,
    Json(Bytes),
    /// Sent once: the stream is consumed by the first try.
    Stream {
        content_type: &'static str,
        len: u64,
        body: Option<reqwest::Body>,
    },
}

/// One request, built anew for each try.
pub(crate) struct Request {
    method: Method,
    url: String,
    /// A presigned URL: its query stays out of messages.
    presigned: bool,
    bearer: Option<String>,
    headers: Vec<(String, String)>,
    body: Body,
    timeout: Option<Duration>,
    retry: Option<(RetryPolicy, Transient)>,
}

impl Http {
    /// A pool for the API at `base_url` (a trailing `/` is dropped), introducing itself
    /// as `user_agent`, whose streamed bodies may stall for `read_timeout`.
    pub fn new(
        base_url: &str,
        user_agent: &str,
        read_timeout: Duration,
    ) -> Result<Http, HttpError> {
        let base_url = base_url.trim_end_matches('/').to_owned();
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(read_timeout)
            .user_agent(user_agent)
            .build()
            .map_err(|source| HttpError::Connection {
                url: base_url.clone(),
                source,
            })?;
        Ok(Http { client, base_url })
    }

    /// The API's base URL, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `path` (starting with `/`) on the API.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// A presigned URL as given, or joined to the base URL when it is a path.
    pub fn absolute(&self, url: &str) -> String {
        if url.starts_with('/') {
            self.url(url)
        } else {
            url.to_owned()
        }
    }

    /// Sends `request`, again after a transient failure when it allows; returns the
    /// last answer, whatever its status, or the last connection error.
    pub async fn send(&self, mut request: Request) -> Result<Response, HttpError> {
        let retry = request.retry.filter(|_| request.body.repeatable());
        let attempts = retry.map_or(1, |(policy, _)| policy.attempts.max(1));
        let mut failed = 0;
        loop {
            // The URL leaves the error at once: a presigned one must not reach a log.
            let outcome = request
                .build(&self.client)
                .send()
                .await
                .map_err(reqwest::Error::without_url);
            failed += 1;
            let transient = match &outcome {
                // A request that cannot be built fails the same way every time.
                Err(error) => !error.is_builder(),
                Ok(answer) => retry.is_some_and(|(_, on)| on.covers(answer.status())),
            };
            let policy = match retry {
                Some((policy, _)) if transient && failed < attempts => policy,
                _ => return outcome.map_err(|source| request.connection_error(source)),
            };
            let reason = match &outcome {
                Ok(answer) => format!("HTTP {}", answer.status().as_u16()),
                Err(error) => error_chain(error),
            };
            let delay = policy.delay(failed);
            tracing::debug!(
                url = %request.shown_url(), %reason, attempt = failed, ?delay, "retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// [`Http::send`], then [`checked`]: a success answer or the error it is.
    pub async fn fetch(&self, request: Request) -> Result<Response, HttpError> {
        checked(self.send(request).await?).await
    }

    /// [`Http::fetch`], then [`read_json`].
    pub async fn fetch_json<T: DeserializeOwned>(&self, request: Request) -> Result<T, HttpError> {
        read_json(self.fetch(request).await?).await
    }
}

impl Request {
    /// A call to the API: [`CALL_TIMEOUT`] in all, tried once unless
    /// [`Request::retried`].
    pub fn call(method: Method, url: String) -> Request {
        Request {
            method,
            url,
            presigned: false,
            bearer: None,
            headers: Vec::new(),
            body: Body::Empty,
            timeout: Some(CALL_TIMEOUT),
            retry: None,
        }
    }

    /// A transfer to or from a presigned URL: no credentials, no limit in all (only
    /// the read timeout), its query kept out of messages.
    pub fn presigned(method: Method, url: String) -> Request {
        Request {
            presigned: true,
            timeout: None,
            ..Request::call(method, url)
        }
    }

    /// With `Authorization: Bearer <token>`.
    pub fn bearer(mut self, token: &str) -> Request {
        self.bearer = Some(token.to_owned());
        self
    }

    /// With the header `name: value`.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// With `body` as JSON.
    pub fn json<B: Serialize + ?Sized>(self, body: &B) -> Result<Request, HttpError> {
        let bytes = to_json(&self.shown_url(), body)?;
        Ok(self.json_bytes(bytes))
    }

    /// With `bytes`, already JSON ([`to_json`]), as the body.
    pub fn json_bytes(mut self, bytes: Bytes) -> Request {
        self.body = Body::Json(bytes);
        self
    }

    /// With a streamed body of `len` bytes: sent once, with no limit in all.
    pub fn stream(mut self, content_type: &'static str, len: u64, body: reqwest::Body) -> Request {
        self.body = Body::Stream {
            content_type,
            len,
            body: Some(body),
        };
        self.timeout = None;
        self
    }

    /// With no limit in all, for an answer read as a stream (only the read timeout).
    pub fn streaming(mut self) -> Request {
        self.timeout = None;
        self
    }

    /// With another limit in all (a long poll).
    pub fn timeout(mut self, timeout: Duration) -> Request {
        self.timeout = Some(timeout);
        self
    }

    /// Sent again after a connection error or an answer `on` covers, as `policy` says.
    pub fn retried(mut self, policy: RetryPolicy, on: Transient) -> Request {
        self.retry = Some((policy, on));
        self
    }

    /// The URL as messages show it.
    pub fn shown_url(&self) -> String {
        shown(&self.url, self.presigned)
    }

    fn build(&mut self, client: &reqwest::Client) -> reqwest::RequestBuilder {
        let mut builder = client.request(self.method.clone(), &self.url);
        if let Some(token) = &self.bearer {
            builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(timeout) = self.timeout {
            builder = builder.timeout(timeout);
        }
        match &mut self.body {
            Body::Empty => builder,
            Body::Json(bytes) => builder
                .header(CONTENT_TYPE, "application/json")
                .body(bytes.clone()),
            Body::Stream {
                content_type,
                len,
                body,
            } => {
                let builder = builder
                    .header(CONTENT_TYPE, *content_type)
                    .header(CONTENT_LENGTH, *len);
                match body.take() {
                    Some(body) => builder.body(body),
                    None => builder,
                }
            }
        }
    }

    fn connection_error(&self, source: reqwest::Error) -> HttpError {
        HttpError::Connection {
            url: self.shown_url(),
            source,
        }
    }
}

impl Body {
    fn repeatable(&self) -> bool {
        !matches!(self, Body::Stream { .. })
    }
}

/// The answer when its status is a success, else the [`ErrorAnswer`] it is.
pub(crate) async fn checked(response: Response) -> Result<Response, HttpError> {
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(HttpError::Answer(ErrorAnswer::read(response).await))
    }
}

/// `body` as JSON, for a request to `url`.
pub(crate) fn to_json<B: Serialize + ?Sized>(url: &str, body: &B) -> Result<Bytes, HttpError> {
    serde_json::to_vec(body)
        .map(Bytes::from)
        .map_err(|e| HttpError::Unexpected {
            url: url.to_owned(),
            message: format!("the request body cannot be encoded: {e}"),
        })
}

/// Decodes a success answer's JSON body (an API answer: its URL is shown whole).
pub(crate) async fn read_json<T: DeserializeOwned>(response: Response) -> Result<T, HttpError> {
    let url = shown(response.url().as_str(), false);
    let bytes = response
        .bytes()
        .await
        .map_err(|source| HttpError::Connection {
            url: url.clone(),
            source: source.without_url(),
        })?;
    serde_json::from_slice(&bytes).map_err(|e| HttpError::Unexpected {
        url,
        message: format!("the body is not the expected JSON: {e}"),
    })
}

/// A presigned download's body; a failure while it streams is a
/// [`HttpError::Connection`] item.
pub(crate) fn presigned_body(
    response: Response,
) -> impl Stream<Item = Result<Bytes, HttpError>> + Send + 'static {
    let url = shown(response.url().as_str(), true);
    response
        .bytes_stream()
        .map_err(move |source| HttpError::Connection {
            url: url.clone(),
            source: source.without_url(),
        })
}

impl ErrorAnswer {
    /// Reads an error answer (at most [`MAX_ERROR_BODY_BYTES`] of its body).
    pub async fn read(mut response: Response) -> ErrorAnswer {
        let status = response.status();
        let header_request_id = request_id_header(response.headers());
        let mut body = Vec::new();
        while body.len() < MAX_ERROR_BODY_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        body.truncate(MAX_ERROR_BODY_BYTES);
        ErrorAnswer::parse(status, header_request_id, &body)
    }

    /// The answer a status, its `x-request-id` header and its body make. A field of
    /// the problem counts when it is a non-empty string, so a JSON body that is not
    /// quite a problem still lends its title and detail.
    fn parse(status: StatusCode, header_request_id: Option<String>, body: &[u8]) -> ErrorAnswer {
        let text = String::from_utf8_lossy(body);
        let fields = match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(fields)) => Some(fields),
            _ => None,
        };
        let field = |name: &str| {
            fields
                .as_ref()
                .and_then(|f| f.get(name))
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        ErrorAnswer {
            status: status.as_u16(),
            title: field("title").unwrap_or_else(|| {
                status
                    .canonical_reason()
                    .unwrap_or("Unexpected status")
                    .to_owned()
            }),
            detail: field("detail").unwrap_or_else(|| excerpt(&text)),
            request_id: field("requestId").or(header_request_id),
            problem: serde_json::from_str::<Problem>(&text).ok().map(Box::new),
        }
    }
}

/// The start of a body that explains nothing by itself.
fn excerpt(text: &str) -> String {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return "no details were given".to_owned();
    }
    let mut chars = trimmed.chars();
    let mut kept: String = chars.by_ref().take(MAX_DETAIL_CHARS).collect();
    if chars.next().is_some() {
        kept.push('…');
    }
    kept
}

fn request_id_header(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// A URL as messages show it: a presigned URL without its query (the signature is a
/// credential); an API URL whole (its credentials travel in a header).
fn shown(url: &str, presigned: bool) -> String {
    match url.split_once('?') {
        Some((path, _)) if presigned => format!("{path}?…"),
        _ => url.to_owned(),
    }
}

/// How an error's message names the request id the server logged it under.
pub(crate) fn request_id_suffix(request_id: &Option<String>) -> String {
    request_id
        .as_ref()
        .map(|id| format!(" (request {id})"))
        .unwrap_or_default()
}

/// A reqwest error with its causes ("error sending request: connection refused").
pub(crate) fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(status: u16, header: Option<&str>, body: &str) -> ErrorAnswer {
        ErrorAnswer::parse(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            header.map(str::to_owned),
            body.as_bytes(),
        )
    }

    #[test]
    fn a_problem_body_gives_its_title_detail_request_id_and_extra_fields() {
        let answer = parse(
            413,
            Some("from-header"),
            r#"{"type":"urn:tlao:problem:too-large","title":"Too large","status":413,
                "detail":"the archive is over 50 MiB","requestId":"req_1","maxBytes":52428800}"#,
        );
        assert_eq!(answer.status, 413);
        assert_eq!(answer.title, "Too large");
        assert_eq!(answer.detail, "the archive is over 50 MiB");
        assert_eq!(answer.request_id.as_deref(), Some("req_1"));
        assert_eq!(answer.problem.and_then(|p| p.max_bytes), Some(52_428_800));
    }

    #[test]
    fn a_problem_without_a_request_id_takes_the_header_one() {
        let answer = parse(
            404,
            Some("hdr-7"),
            r#"{"title":"Not Found","status":404,"detail":"no such run"}"#,
        );
        assert_eq!(answer.request_id.as_deref(), Some("hdr-7"));
        assert!(answer.problem.is_some());
    }

    #[test]
    fn a_json_body_that_is_not_quite_a_problem_still_lends_its_fields() {
        let answer = parse(
            502,
            None,
            r#"{"title":"Bad Gateway","detail":"upstream down"}"#,
        );
        assert_eq!(answer.title, "Bad Gateway");
        assert_eq!(answer.detail, "upstream down");
        assert!(answer.problem.is_none(), "a problem has a status");
    }

    #[test]
    fn a_body_that_is_not_json_is_kept_as_a_bounded_excerpt() {
        let page = format!("<html>{}</html>", "x".repeat(2_000));
        let answer = parse(502, None, &page);
        assert_eq!(answer.title, "Bad Gateway");
        assert_eq!(answer.detail.chars().count(), MAX_DETAIL_CHARS + 1);
        assert!(answer.detail.starts_with("<html>xxx") && answer.detail.ends_with('…'));
        assert_eq!(answer.request_id, None);
        assert!(answer.problem.is_none());
    }

    #[test]
    fn an_empty_body_says_no_details_were_given() {
        let answer = parse(503, None, "  \n");
        assert_eq!(answer.title, "Service Unavailable");
        assert_eq!(answer.detail, "no details were given");
    }

    #[test]
    fn empty_problem_fields_fall_back_like_missing_ones() {
        let answer = parse(
            500,
            Some("hdr"),
            r#"{"title":"","status":500,"requestId":""}"#,
        );
        assert_eq!(answer.title, "Internal Server Error");
        assert_eq!(answer.request_id.as_deref(), Some("hdr"));
    }

    #[test]
    fn each_caller_names_which_answers_are_transient() {
        let statuses = [500, 503, 429, 408, 404, 409, 401];
        let covered = |on: Transient| -> Vec<u16> {
            statuses
                .into_iter()
                .filter(|s| on.covers(StatusCode::from_u16(*s).unwrap_or(StatusCode::OK)))
                .collect()
        };
        assert_eq!(covered(Transient::ServerError), [500, 503]);
        assert_eq!(covered(Transient::AlsoThrottled), [500, 503, 429]);
        assert_eq!(
            covered(Transient::AlsoThrottledOrTimedOut),
            [500, 503, 429, 408]
        );
    }

    #[test]
    fn a_presigned_query_stays_out_of_messages_and_an_api_query_stays_in() {
        let presigned = Request::presigned(
            Method::GET,
            "http://h/blobs/k?expires=1&signature=abc".into(),
        );
        assert_eq!(presigned.shown_url(), "http://h/blobs/k?…");
        let call = Request::call(Method::GET, "http://h/runs?limit=5".into());
        assert_eq!(call.shown_url(), "http://h/runs?limit=5");
        let plain = Request::presigned(Method::GET, "http://h/blobs/k".into());
        assert_eq!(plain.shown_url(), "http://h/blobs/k");
    }
}
