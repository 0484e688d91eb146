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
//! ([`RetryPolicy`]); a `4xx` never is. Uploads, cancels, registry changes and API key
//! creation and revocation are tried once.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use rand::RngCore;
use reqwest::{Method, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tlao_domain::{ArtifactId, KeyId, RunId, TaskId, Timestamp, UserId, WorkspaceId};

use crate::event_stream::{EventStream, EventStreamError};
use crate::http::{
    Http, HttpError, Request, TRANSFER_STALL_TIMEOUT, Transient, checked, error_chain,
    presigned_body, read_json, request_id_suffix, to_json,
};
use crate::retry::RetryPolicy;
use crate::types::{
    ApiKeyList, ApiKeyView, ArchiveView, ArtifactList, ArtifactView, CreateRunRequest,
    CreateTaskRequest, CreatedApiKey, ExecutorList, ExecutorView, Problem, RunList, RunQuery,
    RunView, TaskView, TokenResponse, WorkspaceList, WorkspaceView,
};

/// A token this close to its expiry is renewed before use, when a key is at hand.
const EXPIRY_MARGIN_MILLIS: i64 = 30_000;
/// The header that makes a `POST` safe to retry.
const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// Which answers a repeatable request is tried again after: a `5xx`, not a `429` (the
/// user API's only `429` is a daily quota, which seconds of backoff cannot lift).
const USER_TRANSIENT: Transient = Transient::ServerError;

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

impl From<HttpError> for ClientError {
    fn from(error: HttpError) -> Self {
        match error {
            HttpError::Answer(answer) => ClientError::Api {
                status: answer.status,
                title: answer.title,
                detail: answer.detail,
                request_id: answer.request_id,
                problem: answer.problem,
            },
            HttpError::Connection { url, source } => ClientError::Connection { url, source },
            HttpError::Unexpected { url, message } => ClientError::Decode { url, message },
        }
    }
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
    http: Http,
    retry: RetryPolicy,
    credentials: Arc<Mutex<Credentials>>,
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
        let http = Http::new(
            &api_url.into(),
            concat!("tlao/", env!("CARGO_PKG_VERSION")),
            TRANSFER_STALL_TIMEOUT,
        )?;
        Ok(TlaoClient {
            http,
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
        self.http.base_url()
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
        // Retried although a POST: an exchange stores nothing.
        let request = Request::call(Method::POST, self.http.url("/auth/token"))
            .json(&json!({ "apiKey": api_key }))?
            .retried(self.retry, USER_TRANSIENT);
        Ok(self.http.fetch_json(request).await?)
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

    /// `GET /workspaces`, every page: all the caller's workspaces, oldest first.
    pub async fn list_workspaces(&self) -> Result<Vec<WorkspaceView>, ClientError> {
        let mut workspaces = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self.list_workspaces_page(None, cursor.as_deref()).await?;
            workspaces.extend(page.items);
            match page.next_cursor {
                // A cursor that does not move would page forever.
                Some(next) if cursor.as_deref() != Some(next.as_str()) => cursor = Some(next),
                _ => return Ok(workspaces),
            }
        }
    }

    /// `GET /workspaces`: one page of the caller's workspaces, oldest first — at most
    /// `limit` (the server's default, 100, when `None`) after the previous page's
    /// `nextCursor`.
    pub async fn list_workspaces_page(
        &self,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<WorkspaceList, ClientError> {
        let mut params = Vec::new();
        if let Some(limit) = limit {
            params.push(format!("limit={limit}"));
        }
        if let Some(cursor) = cursor {
            params.push(format!("cursor={}", encode_query_value(cursor)));
        }
        let path = if params.is_empty() {
            "/workspaces".to_owned()
        } else {
            format!("/workspaces?{}", params.join("&"))
        };
        self.json(Method::GET, &path, None::<&()>, None).await
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
        let url = self
            .http
            .url(&format!("/workspaces/{workspace_id}/archives"));
        let response = self
            .authenticated(|| {
                let stream = body().map_err(|source| ClientError::Io {
                    context: "opening the archive".into(),
                    source,
                })?;
                Ok(Request::call(Method::POST, url.clone()).stream(
                    "application/gzip",
                    len,
                    reqwest::Body::wrap_stream(stream),
                ))
            })
            .await?;
        Ok(read_json(response).await?)
    }

    // --- API keys ---------------------------------------------------------------

    /// `GET /users/{id}/keys`: a user's API keys (ids, creation, last use; never the
    /// keys), oldest first. The user themself or an administrator.
    pub async fn list_keys(&self, user_id: &UserId) -> Result<Vec<ApiKeyView>, ClientError> {
        let list: ApiKeyList = self
            .json(
                Method::GET,
                &format!("/users/{user_id}/keys"),
                None::<&()>,
                None,
            )
            .await?;
        Ok(list.items)
    }

    /// `POST /users/{id}/keys`: issues a new API key to a user; the answer holds its
    /// only copy. Tried once.
    pub async fn create_key(&self, user_id: &UserId) -> Result<CreatedApiKey, ClientError> {
        self.json(
            Method::POST,
            &format!("/users/{user_id}/keys"),
            None::<&()>,
            None,
        )
        .await
    }

    /// `DELETE /users/{id}/keys/{keyId}`: revokes a key; it gets no more tokens (tokens
    /// it already got work until they expire). Tried once.
    pub async fn revoke_key(&self, user_id: &UserId, key_id: &KeyId) -> Result<(), ClientError> {
        let url = self.http.url(&format!("/users/{user_id}/keys/{key_id}"));
        self.authenticated(|| Ok(Request::call(Method::DELETE, url.clone())))
            .await
            .map(drop)
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
        EventStream::new(self.http.base_url(), &token, id, after).map_err(|e| match e {
            EventStreamError::Connection { url, message } => ClientError::Decode { url, message },
            other => ClientError::Decode {
                url: self.http.url(&format!("/runs/{id}/events")),
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

    /// `GET /runs/{id}/bundle`: the run's bundle (a `tar.gz` with a `manifest.json`),
    /// streamed; with the workspace archive inside when `with_archive`.
    pub async fn run_bundle(
        &self,
        id: &RunId,
        with_archive: bool,
    ) -> Result<Download, ClientError> {
        let url = self.http.url(&format!(
            "/runs/{id}/bundle{}",
            if with_archive {
                "?withArchive=true"
            } else {
                ""
            }
        ));
        let response = self
            .authenticated(|| {
                Ok(Request::call(Method::GET, url.clone())
                    .streaming()
                    .retried(self.retry, USER_TRANSIENT))
            })
            .await?;
        Ok(Download {
            content_length: response.content_length(),
            body: presigned_body(response).map_err(ClientError::from).boxed(),
        })
    }

    /// `GET`s a presigned URL (absolute, or a path on the API) without credentials,
    /// and streams the body. Retried until the body starts.
    pub async fn download(&self, url: &str) -> Result<Download, ClientError> {
        let request = Request::presigned(Method::GET, self.http.absolute(url))
            .retried(self.retry, USER_TRANSIENT);
        let response = self.http.fetch(request).await?;
        Ok(Download {
            content_length: response.content_length(),
            body: presigned_body(response).map_err(ClientError::from).boxed(),
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
        let url = self
            .http
            .url(&format!("/executors/{}", encode_query_value(name)));
        self.authenticated(|| Ok(Request::call(Method::DELETE, url.clone())))
            .await
            .map(drop)
    }

    // --- plumbing ---------------------------------------------------------------

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

    /// An authenticated call with a JSON answer. Retried as the module documentation
    /// says: a `GET`, or a `POST` whose `Idempotency-Key` makes a second try return
    /// the first one's result.
    async fn json<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        idempotency_key: Option<&str>,
    ) -> Result<T, ClientError> {
        let url = self.http.url(path);
        let body = body.map(|body| to_json(&url, body)).transpose()?;
        let repeatable = method == Method::GET || idempotency_key.is_some();
        let response = self
            .authenticated(|| {
                let mut request = Request::call(method.clone(), url.clone());
                if let Some(bytes) = &body {
                    request = request.json_bytes(bytes.clone());
                }
                if let Some(key) = idempotency_key {
                    request = request.header(IDEMPOTENCY_KEY, key);
                }
                if repeatable {
                    request = request.retried(self.retry, USER_TRANSIENT);
                }
                Ok(request)
            })
            .await?;
        Ok(read_json(response).await?)
    }

    /// Sends the request `make` makes with the current token; when it answers `401`
    /// and a key is at hand, renews the token and sends a new one, once. Returns a
    /// success answer.
    async fn authenticated<F>(&self, make: F) -> Result<Response, ClientError>
    where
        F: Fn() -> Result<Request, ClientError>,
    {
        let mut renewed = false;
        loop {
            let token = self.bearer().await?;
            let response = self.http.send(make()?.bearer(&token)).await?;
            if response.status() == StatusCode::UNAUTHORIZED && !renewed && self.can_renew() {
                renewed = true;
                self.renew().await?;
                continue;
            }
            return Ok(checked(response).await?);
        }
    }
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
    fn credentials_never_show_their_secrets() {
        let shown = format!("{:?}", Credentials::session("tok", None, "tlao_key"));
        assert!(
            !shown.contains("tok\"") && !shown.contains("tlao_key"),
            "{shown}"
        );
    }
}
