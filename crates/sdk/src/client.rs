//! [`TlaoClient`]: the user-facing API over HTTP, one method per endpoint, typed
//! answers ([`crate::types`]) and one error type ([`ClientError`]).
//!
//! Authentication: the client holds a session token, an API key, or both
//! ([`Credentials`]). With a key it exchanges it for a token (`POST /auth/token`) when it
//! has none or knows it expired, and once more when a call answers `401` (the token
//! expired, or the server's signing secret changed); [`TlaoClient::session`] hands the
//! current token back so a caller can store it.
//!
//! Retries: only requests that can be repeated without effect are retried — `GET`s,
//! `POST /auth/token` (which stores nothing), and `POST /tasks` and `POST /runs`, which
//! carry an `Idempotency-Key` made once per call (so a retry after a lost answer returns
//! the first run instead of starting a second).
//! A connection error or a `5xx` is retried with exponential backoff and jitter
//! ([`RetryPolicy`]); a `4xx` never is. Uploads, cancels and registry changes are tried
//! once.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use rand::RngCore;
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tlao_domain::{ArtifactId, RunId, TaskId, Timestamp, WorkspaceId};

use crate::event_stream::{EventStream, EventStreamError};
use crate::retry::RetryPolicy;
use crate::types::{
    ArchiveView, ArtifactList, ArtifactView, CreateRunRequest, CreateTaskRequest, ExecutorList,
    ExecutorView, Problem, RunList, RunQuery, RunView, TaskView, TokenResponse, WorkspaceList,
    WorkspaceView,
};

/// How long to wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an ordinary call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a streamed body (upload answer, download) may stall.
const READ_TIMEOUT: Duration = Duration::from_secs(120);
/// A token this close to its expiry is renewed before use, when a key is at hand.
const EXPIRY_MARGIN_MILLIS: i64 = 30_000;
/// How much of an error body that is not a problem is kept as the detail.
const MAX_DETAIL_CHARS: usize = 512;
/// The header that makes a `POST` safe to retry.
const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// Bytes of a streamed download.
pub type DownloadStream = Pin<Box<dyn Stream<Item = Result<Bytes, ClientError>> + Send>>;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error status; from its `application/problem+json`
    /// body when it had one.
    #[error("{title} (HTTP {status}): {detail}{}", request_id_suffix(.request_id))]
    Api {
        /// The HTTP status.
        status: u16,
        /// The problem's title (or the status's reason phrase).
        title: String,
        /// The problem's detail (or the start of the body).
        detail: String,
        /// The request id the server logged it under.
        request_id: Option<String>,
        /// The whole problem body, when it was one (field errors, `maxBytes`, ...).
        problem: Option<Box<Problem>>,
    },
    /// The server could not be reached, or the connection broke, after every retry.
    #[error("cannot reach {url}: {}", error_chain(.source))]
    Connection {
        /// The URL tried (without its query string).
        url: String,
        /// What failed.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with a success status but not the JSON this client expects.
    #[error("unexpected answer from {url}: {message}")]
    Decode {
        /// The URL called.
        url: String,
        /// What was wrong with the answer.
        message: String,
    },
    /// A local body (an archive being uploaded) could not be read.
    #[error("{context}: {source}")]
    Io {
        /// What was being read.
        context: String,
        /// The error.
        #[source]
        source: io::Error,
    },
}

fn request_id_suffix(request_id: &Option<String>) -> String {
    request_id
        .as_ref()
        .map(|id| format!(" (request {id})"))
        .unwrap_or_default()
}

/// A reqwest error with its causes ("error sending request: connection refused").
fn error_chain(error: &reqwest::Error) -> String {
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

impl ClientError {
    /// The HTTP status of an [`ClientError::Api`] error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The problem body of an [`ClientError::Api`] error, when there was one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            ClientError::Api { problem, .. } => problem.as_deref(),
            _ => None,
        }
    }
}

/// What the client authenticates with: a session token, an API key, or both (the key
/// renews the token).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    api_key: Option<String>,
    token: Option<String>,
    expires_at: Option<Timestamp>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets stay out of logs and panics.
        f.debug_struct("Credentials")
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl Credentials {
    /// A session token (from `POST /auth/token`, or `TLAO_TOKEN`); it is not renewed.
    pub fn token(token: impl Into<String>) -> Self {
        Credentials {
            token: Some(token.into()),
            ..Credentials::default()
        }
    }

    /// An API key, exchanged for a token on first use and whenever that expires.
    pub fn api_key(api_key: impl Into<String>) -> Self {
        Credentials {
            api_key: Some(api_key.into()),
            ..Credentials::default()
        }
    }

    /// A stored session: a token (with its expiry when known) and the key that renews
    /// it.
    pub fn session(
        token: impl Into<String>,
        expires_at: Option<Timestamp>,
        api_key: impl Into<String>,
    ) -> Self {
        Credentials {
            api_key: Some(api_key.into()),
            token: Some(token.into()),
            expires_at,
        }
    }

    /// Whether an API key is at hand to renew the token.
    pub fn can_renew(&self) -> bool {
        self.api_key.is_some()
    }
}

/// The session token in use, to store between invocations.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    /// The bearer token.
    pub token: String,
    /// When it expires, when known.
    pub expires_at: Option<Timestamp>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A download in progress.
pub struct Download {
    /// The body's length, when the server declared it.
    pub content_length: Option<u64>,
    /// The body.
    pub body: DownloadStream,
}

/// The client of the user-facing API; see the module documentation. Cheap to clone:
/// clones share the connection pool and the session.
#[derive(Debug, Clone)]
pub struct TlaoClient {
    http: reqwest::Client,
    base_url: String,
    retry: RetryPolicy,
    credentials: Arc<Mutex<Credentials>>,
}

/// Whether a request may be sent again after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// A `GET`, or a `POST` with an `Idempotency-Key`.
    Safe,
    /// Anything else: one try.
    Once,
}

/// A request body.
#[derive(Clone)]
enum Payload {
    None,
    Json(Bytes),
}

/// The retry policy of [`TlaoClient`] unless told otherwise: four tries, 200 ms doubling
/// up to 2 s (at most 1.4 s of waiting), so an unreachable server is reported quickly.
pub fn default_retry_policy() -> RetryPolicy {
    RetryPolicy {
        attempts: 4,
        initial_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(2),
    }
}

/// A fresh idempotency key: 128 random bits, hex.
pub fn new_idempotency_key() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("tlao-{hex}")
}

fn now() -> Timestamp {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Timestamp::from_unix_millis(millis)
}

impl TlaoClient {
    /// A client of the API at `api_url` (e.g. `http://127.0.0.1:7411`).
    pub fn new(
        api_url: impl Into<String>,
        credentials: Credentials,
    ) -> Result<TlaoClient, ClientError> {
        let base_url = api_url.into().trim_end_matches('/').to_owned();
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .user_agent(concat!("tlao/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| ClientError::Connection {
                url: base_url.clone(),
                source,
            })?;
        Ok(TlaoClient {
            http,
            base_url,
            retry: default_retry_policy(),
            credentials: Arc::new(Mutex::new(credentials)),
        })
    }

    /// The same client with another retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> TlaoClient {
        self.retry = retry;
        self
    }

    /// The API's base URL, without a trailing `/`.
    pub fn api_url(&self) -> &str {
        &self.base_url
    }

    /// The session token in use, if one was given or obtained.
    pub fn session(&self) -> Option<Session> {
        let credentials = self.lock_credentials();
        credentials.token.as_ref().map(|token| Session {
            token: token.clone(),
            expires_at: credentials.expires_at,
        })
    }

    /// `POST /auth/token`: exchanges `api_key` for a token. Does not change the
    /// client's credentials.
    pub async fn exchange_key(&self, api_key: &str) -> Result<TokenResponse, ClientError> {
        let url = self.url("/auth/token");
        let body = json_bytes(&url, &json!({ "apiKey": api_key }))?;
        let response = self
            .send(&url, Repeat::Safe, || {
                self.http
                    .post(&url)
                    .timeout(CALL_TIMEOUT)
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone())
            })
            .await?;
        decode(checked(response).await?).await
    }

    /// Exchanges the client's API key for a fresh token and keeps it; returns it. A
    /// client without a key returns its token unchanged.
    pub async fn renew(&self) -> Result<Session, ClientError> {
        let api_key = self.lock_credentials().api_key.clone();
        let Some(api_key) = api_key else {
            return self.session().ok_or_else(|| self.no_credentials());
        };
        let grant = self.exchange_key(&api_key).await?;
        let mut credentials = self.lock_credentials();
        credentials.token = Some(grant.token.clone());
        credentials.expires_at = Some(grant.expires_at);
        Ok(Session {
            token: grant.token,
            expires_at: Some(grant.expires_at),
        })
    }

    /// The token to send: the current one, or a new one when there is none or it is
    /// known to have expired and a key can renew it.
    pub async fn bearer(&self) -> Result<String, ClientError> {
        let (token, stale, renewable) = {
            let credentials = self.lock_credentials();
            let stale = credentials
                .expires_at
                .is_some_and(|at| at.millis_since(now()) < EXPIRY_MARGIN_MILLIS);
            (
                credentials.token.clone(),
                stale,
                credentials.api_key.is_some(),
            )
        };
        match token {
            Some(token) if !(stale && renewable) => Ok(token),
            _ if renewable => Ok(self.renew().await?.token),
            Some(token) => Ok(token),
            None => Err(self.no_credentials()),
        }
    }

    // --- workspaces -------------------------------------------------------------

    /// `POST /workspaces`.
    pub async fn create_workspace(&self, name: &str) -> Result<WorkspaceView, ClientError> {
        self.json(
            Method::POST,
            "/workspaces",
            Some(&json!({ "name": name })),
            None,
        )
        .await
    }

    /// `GET /workspaces`: the caller's workspaces, oldest first.
    pub async fn list_workspaces(&self) -> Result<Vec<WorkspaceView>, ClientError> {
        let list: WorkspaceList = self
            .json(Method::GET, "/workspaces", None::<&()>, None)
            .await?;
        Ok(list.items)
    }

    /// `GET /workspaces/{id}`.
    pub async fn get_workspace(&self, id: &WorkspaceId) -> Result<WorkspaceView, ClientError> {
        self.json(Method::GET, &format!("/workspaces/{id}"), None::<&()>, None)
            .await
    }

    /// `POST /workspaces/{id}/archives`: streams a tar.gz of `len` bytes. `body` makes
    /// the byte stream; it is called again (once) when the token had to be renewed,
    /// since the first stream was consumed. Not retried otherwise: an upload is not
    /// idempotent.
    pub async fn upload_archive<F, S>(
        &self,
        workspace_id: &WorkspaceId,
        len: u64,
        body: F,
    ) -> Result<ArchiveView, ClientError>
    where
        F: Fn() -> io::Result<S>,
        S: Stream<Item = io::Result<Bytes>> + Send + 'static,
    {
        let url = self.url(&format!("/workspaces/{workspace_id}/archives"));
        let mut renewed = false;
        loop {
            let token = self.bearer().await?;
            let stream = body().map_err(|source| ClientError::Io {
                context: "opening the archive".into(),
                source,
            })?;
            let result = self
                .http
                .post(&url)
                .header(AUTHORIZATION, format!("Bearer {token}"))
                .header(CONTENT_TYPE, "application/gzip")
                .header(CONTENT_LENGTH, len)
                .body(reqwest::Body::wrap_stream(stream))
                .send()
                .await;
            let response = result.map_err(|source| connection(&url, source))?;
            if response.status() == StatusCode::UNAUTHORIZED && !renewed && self.can_renew() {
                renewed = true;
                self.renew().await?;
                continue;
            }
            return decode(checked(response).await?).await;
        }
    }

    // --- tasks and runs ---------------------------------------------------------

    /// `POST /tasks`, with an `Idempotency-Key` made for this call.
    pub async fn create_task(&self, task: &CreateTaskRequest) -> Result<TaskView, ClientError> {
        let key = new_idempotency_key();
        self.json(Method::POST, "/tasks", Some(task), Some(&key))
            .await
    }

    /// `GET /tasks/{id}`.
    pub async fn get_task(&self, id: &TaskId) -> Result<TaskView, ClientError> {
        self.json(Method::GET, &format!("/tasks/{id}"), None::<&()>, None)
            .await
    }

    /// `POST /runs`, with an `Idempotency-Key` made for this call, so however often it
    /// is retried, one run is started.
    pub async fn create_run(&self, run: &CreateRunRequest) -> Result<RunView, ClientError> {
        let key = new_idempotency_key();
        self.create_run_with_key(run, &key).await
    }

    /// `POST /runs` with the caller's `Idempotency-Key` (the same key and body return
    /// the first run again).
    pub async fn create_run_with_key(
        &self,
        run: &CreateRunRequest,
        key: &str,
    ) -> Result<RunView, ClientError> {
        self.json(Method::POST, "/runs", Some(run), Some(key)).await
    }

    /// `GET /runs/{id}`, logs included.
    pub async fn get_run(&self, id: &RunId) -> Result<RunView, ClientError> {
        self.json(Method::GET, &format!("/runs/{id}"), None::<&()>, None)
            .await
    }

    /// `GET /runs`: one page.
    pub async fn list_runs(&self, query: &RunQuery) -> Result<RunList, ClientError> {
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(ws) = &query.workspace_id {
            params.push(("workspaceId", ws.to_string()));
        }
        if let Some(status) = query.status {
            params.push(("status", status.as_str().to_owned()));
        }
        if let Some(executor) = &query.executor {
            params.push(("executor", executor.clone()));
        }
        if let Some(task_type) = query.task_type {
            params.push(("taskType", task_type.as_str().to_owned()));
        }
        if let Some(limit) = query.limit {
            params.push(("limit", limit.to_string()));
        }
        if let Some(cursor) = &query.cursor {
            params.push(("cursor", cursor.clone()));
        }
        let mut path = "/runs".to_owned();
        if !params.is_empty() {
            let query = params
                .iter()
                .map(|(name, value)| format!("{name}={}", encode_query_value(value)))
                .collect::<Vec<_>>()
                .join("&");
            path = format!("{path}?{query}");
        }
        self.json(Method::GET, &path, None::<&()>, None).await
    }

    /// `POST /runs/{id}/cancel`.
    pub async fn cancel_run(&self, id: &RunId) -> Result<RunView, ClientError> {
        self.json(
            Method::POST,
            &format!("/runs/{id}/cancel"),
            None::<&()>,
            None,
        )
        .await
    }

    /// `GET /runs/{id}/events` after sequence number `after`, as a resumable
    /// [`EventStream`] authenticated with the current token.
    pub async fn run_events(&self, id: &RunId, after: u64) -> Result<EventStream, ClientError> {
        let token = self.bearer().await?;
        EventStream::new(&self.base_url, &token, id, after).map_err(|e| match e {
            EventStreamError::Connection { url, message } => ClientError::Decode { url, message },
            other => ClientError::Decode {
                url: self.url(&format!("/runs/{id}/events")),
                message: other.to_string(),
            },
        })
    }

    // --- artifacts --------------------------------------------------------------

    /// `GET /runs/{id}/artifacts`.
    pub async fn run_artifacts(&self, id: &RunId) -> Result<Vec<ArtifactView>, ClientError> {
        let list: ArtifactList = self
            .json(
                Method::GET,
                &format!("/runs/{id}/artifacts"),
                None::<&()>,
                None,
            )
            .await?;
        Ok(list.items)
    }

    /// `GET /artifacts/{id}`, with a fresh presigned `downloadUrl` while available.
    pub async fn get_artifact(&self, id: &ArtifactId) -> Result<ArtifactView, ClientError> {
        self.json(Method::GET, &format!("/artifacts/{id}"), None::<&()>, None)
            .await
    }

    /// `GET`s a presigned URL (absolute, or a path on the API) without credentials,
    /// and streams the body. Retried until the body starts.
    pub async fn download(&self, url: &str) -> Result<Download, ClientError> {
        let target = if url.starts_with('/') {
            self.url(url)
        } else {
            url.to_owned()
        };
        let response = self
            .send(&target, Repeat::Safe, || self.http.get(&target))
            .await?;
        let response = checked(response).await?;
        let content_length = response.content_length();
        let shown = redact(&target);
        let body = response
            .bytes_stream()
            .map_err(move |source| ClientError::Connection {
                url: shown.clone(),
                source: source.without_url(),
            })
            .boxed();
        Ok(Download {
            content_length,
            body,
        })
    }

    // --- executors --------------------------------------------------------------

    /// `GET /executors`.
    pub async fn list_executors(&self) -> Result<Vec<ExecutorView>, ClientError> {
        let list: ExecutorList = self
            .json(Method::GET, "/executors", None::<&()>, None)
            .await?;
        Ok(list.items)
    }

    /// `POST /executors` (administrators): registers the record `{"name","kind",
    /// "taskTypes","config"}`.
    pub async fn register_executor(&self, record: &Value) -> Result<ExecutorView, ClientError> {
        self.json(Method::POST, "/executors", Some(record), None)
            .await
    }

    /// `DELETE /executors/{name}` (administrators).
    pub async fn remove_executor(&self, name: &str) -> Result<(), ClientError> {
        let path = format!("/executors/{}", encode_query_value(name));
        self.call(Method::DELETE, &path, Payload::None, None)
            .await
            .map(drop)
    }

    // --- plumbing ---------------------------------------------------------------

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    fn lock_credentials(&self) -> std::sync::MutexGuard<'_, Credentials> {
        // A poisoned lock only means a panic elsewhere mid-update of plain strings.
        self.credentials
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the client holds an API key to renew its token with.
    pub fn can_renew(&self) -> bool {
        self.lock_credentials().can_renew()
    }

    fn no_credentials(&self) -> ClientError {
        ClientError::Api {
            status: 401,
            title: "Not authenticated".into(),
            detail: "no token or API key was given".into(),
            request_id: None,
            problem: None,
        }
    }

    /// An authenticated call with a JSON answer.
    async fn json<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        idempotency_key: Option<&str>,
    ) -> Result<T, ClientError> {
        let payload = match body {
            None => Payload::None,
            Some(body) => Payload::Json(json_bytes(&self.url(path), body)?),
        };
        let response = self.call(method, path, payload, idempotency_key).await?;
        decode(response).await
    }

    /// An authenticated call: renews the token once on a `401` when a key is at hand;
    /// retries as the module documentation says. Returns a success answer.
    async fn call(
        &self,
        method: Method,
        path: &str,
        payload: Payload,
        idempotency_key: Option<&str>,
    ) -> Result<Response, ClientError> {
        let url = self.url(path);
        let repeat = if method == Method::GET || idempotency_key.is_some() {
            Repeat::Safe
        } else {
            Repeat::Once
        };
        let mut renewed = false;
        loop {
            let token = self.bearer().await?;
            let response = self
                .send(&url, repeat, || {
                    let mut request = self
                        .http
                        .request(method.clone(), &url)
                        .timeout(CALL_TIMEOUT)
                        .header(AUTHORIZATION, format!("Bearer {token}"));
                    if let Some(key) = idempotency_key {
                        request = request.header(IDEMPOTENCY_KEY, key);
                    }
                    match &payload {
                        Payload::None => request,
                        Payload::Json(bytes) => request
                            .header(CONTENT_TYPE, "application/json")
                            .body(bytes.clone()),
                    }
                })
                .await?;
            if response.status() == StatusCode::UNAUTHORIZED && !renewed && self.can_renew() {
                renewed = true;
                self.renew().await?;
                continue;
            }
            return checked(response).await;
        }
    }

    /// Sends what `build` makes; when `repeat` allows, again after a connection error
    /// or a `5xx`, with backoff. Returns the last answer, whatever its status.
    async fn send<F>(&self, url: &str, repeat: Repeat, build: F) -> Result<Response, ClientError>
    where
        F: Fn() -> RequestBuilder,
    {
        let attempts = match repeat {
            Repeat::Safe => self.retry.attempts.max(1),
            Repeat::Once => 1,
        };
        let mut failed = 0;
        loop {
            let outcome = build().send().await;
            let retryable = match &outcome {
                Err(_) => true,
                Ok(response) => response.status().is_server_error(),
            };
            failed += 1;
            if !retryable || failed >= attempts {
                return outcome.map_err(|source| connection(url, source));
            }
            let delay = self.retry.delay(failed);
            tracing::debug!(url = %redact(url), attempt = failed, ?delay, "retrying");
            tokio::time::sleep(delay).await;
        }
    }
}

fn connection(url: &str, source: reqwest::Error) -> ClientError {
    ClientError::Connection {
        url: redact(url),
        source: source.without_url(),
    }
}

fn json_bytes<B: Serialize + ?Sized>(url: &str, body: &B) -> Result<Bytes, ClientError> {
    serde_json::to_vec(body)
        .map(Bytes::from)
        .map_err(|e| ClientError::Decode {
            url: redact(url),
            message: format!("the request body cannot be encoded: {e}"),
        })
}

/// Percent-encodes a query value or path segment (everything but unreserved
/// characters).
fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte));
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// A URL as messages show it: without the query string when that carries a
/// signature (a presigned URL's signature is a credential).
fn redact(url: &str) -> String {
    match url.split_once('?') {
        Some((path, query))
            if query.to_ascii_lowercase().contains("signature")
                || query.to_ascii_lowercase().contains("x-amz-") =>
        {
            format!("{path}?…")
        }
        _ => url.to_owned(),
    }
}

/// The answer when its status is a success, else [`ClientError::Api`].
async fn checked(response: Response) -> Result<Response, ClientError> {
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(error_from(response).await)
    }
}

/// Decodes a success answer's JSON body.
async fn decode<T: DeserializeOwned>(response: Response) -> Result<T, ClientError> {
    let url = redact(response.url().as_str());
    let bytes = response
        .bytes()
        .await
        .map_err(|source| connection(&url, source))?;
    serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
        url,
        message: format!("the body is not the expected JSON: {e}"),
    })
}

/// An error answer as [`ClientError::Api`], from its problem+json body when it has one.
async fn error_from(response: Response) -> ClientError {
    let status = response.status();
    let header_request_id = request_id_header(response.headers());
    let text = response.text().await.unwrap_or_default();
    let problem: Option<Problem> = serde_json::from_str(&text).ok();
    let title = problem
        .as_ref()
        .map(|p| p.title.clone())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("Unexpected status")
                .to_owned()
        });
    let detail = problem
        .as_ref()
        .map(|p| p.detail.clone())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| {
            let trimmed = text.trim();
            if trimmed.is_empty() {
                "no details were given".to_owned()
            } else {
                trimmed.chars().take(MAX_DETAIL_CHARS).collect()
            }
        });
    let request_id = problem
        .as_ref()
        .map(|p| p.request_id.clone())
        .filter(|id| !id.is_empty())
        .or(header_request_id);
    ClientError::Api {
        status: status.as_u16(),
        title,
        detail,
        request_id,
        problem: problem.map(Box::new),
    }
}

fn request_id_header(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_fresh_per_call() {
        let (a, b) = (new_idempotency_key(), new_idempotency_key());
        assert_ne!(a, b);
        assert_eq!(a.len(), "tlao-".len() + 32);
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode_query_value("a b/c&d"), "a%20b%2Fc%26d");
        assert_eq!(encode_query_value("run_01AB"), "run_01AB");
    }

    #[test]
    fn signed_queries_stay_out_of_messages_and_others_stay_in() {
        assert_eq!(
            redact("http://h/blobs/k?expires=1&signature=abc"),
            "http://h/blobs/k?…"
        );
        assert_eq!(redact("http://h/runs?limit=5"), "http://h/runs?limit=5");
    }

    #[test]
    fn credentials_never_show_their_secrets() {
        let shown = format!("{:?}", Credentials::session("tok", None, "tlao_key"));
        assert!(
            !shown.contains("tok\"") && !shown.contains("tlao_key"),
            "{shown}"
        );
    }
}
