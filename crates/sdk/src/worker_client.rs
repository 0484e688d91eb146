//! [`WorkerClient`]: the worker protocol over HTTP, one method per call.
//!
//! Every protocol call carries `Authorization: Bearer <worker token>`; presigned URLs
//! (downloads, uploads) carry no credentials, their signature is the credential. A
//! connection error, a `5xx` or a `429` is retried with exponential backoff and jitter
//! (five attempts within a few seconds, see [`RetryPolicy`]); a `4xx` never is: `409`
//! becomes [`WorkerClientError::LeaseLost`] and any other error status
//! [`WorkerClientError::Api`], parsed from the `application/problem+json` body.

use std::io;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use rand::Rng;
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap};
use reqwest::{Method, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tlao_domain::{ArtifactId, LeaseId, RunId};
use tlao_wire::{ArtifactView, Problem, RunView};

use crate::worker::{
    ArtifactRequest, ArtifactUploadSlot, Assignment, CompleteRequest, EventBatch, EventReport,
    FinalizeRequest, LeaseRequest, SignedUrl,
};

/// How long an ordinary protocol call may take, retries aside.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How much longer than its `waitSeconds` a long-poll lease may take.
const LEASE_GRACE: Duration = Duration::from_secs(30);
/// How long to wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a read of a streamed body (download, upload answer) may stall.
const READ_TIMEOUT: Duration = Duration::from_secs(120);
/// How much of an unparseable error body is kept as the detail.
const MAX_DETAIL_CHARS: usize = 512;

/// A stream of downloaded bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, WorkerClientError>> + Send>>;

/// Why a worker protocol call failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkerClientError {
    /// `409`: the lease is gone (the run was cancelled, timed out or failed elsewhere);
    /// the worker must stop working on the run.
    #[error("the lease is no longer held: {detail}")]
    LeaseLost {
        /// The server's explanation.
        detail: String,
        /// The problem body, when it was one: `reason` and `runStatus` say why.
        problem: Option<Box<Problem>>,
    },
    /// Any other error status, from the `application/problem+json` body.
    #[error("{title} (HTTP {status}): {detail}{}", request_id_suffix(.request_id))]
    Api {
        /// The HTTP status.
        status: u16,
        /// The problem's title.
        title: String,
        /// The problem's detail (or the start of the body, when it was not a problem).
        detail: String,
        /// The request id the server logged it under.
        request_id: Option<String>,
    },
    /// The server could not be reached, or the connection failed mid-way, after every
    /// retry.
    #[error("cannot reach {url}: {source}")]
    Connection {
        /// The URL called.
        url: String,
        /// What failed.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with a success status but a body that is not what the
    /// protocol says.
    #[error("unexpected answer from {url}: {message}")]
    Protocol {
        /// The URL called.
        url: String,
        /// What was wrong with it.
        message: String,
    },
}

fn request_id_suffix(request_id: &Option<String>) -> String {
    request_id
        .as_ref()
        .map(|id| format!(" (request {id})"))
        .unwrap_or_default()
}

impl WorkerClientError {
    /// Whether this is [`WorkerClientError::LeaseLost`].
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, WorkerClientError::LeaseLost { .. })
    }

    /// The HTTP status of an [`WorkerClientError::Api`] error.
    pub fn status(&self) -> Option<u16> {
        match self {
            WorkerClientError::Api { status, .. } => Some(*status),
            WorkerClientError::LeaseLost { .. } => Some(409),
            _ => None,
        }
    }
}

/// How failed calls are retried: up to `attempts` tries, sleeping between them for a
/// delay that starts at `initial_backoff` and doubles up to `max_backoff`, each delay
/// drawn between half and all of it (jitter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How many tries in all, at least 1.
    pub attempts: u32,
    /// The delay before the second try.
    pub initial_backoff: Duration,
    /// The longest delay between two tries.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// Five tries, 250 ms doubling up to 4 s: at most 3.75 s of waiting in all.
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(4),
        }
    }
}

impl RetryPolicy {
    /// The delay after the `failed`-th failed try (1-based), with jitter.
    pub fn delay(&self, failed: u32) -> Duration {
        let factor = 2u32.saturating_pow(failed.saturating_sub(1));
        let full = self
            .initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        let half = full / 2;
        let jitter_millis = rand::thread_rng().gen_range(0..=half.as_millis() as u64);
        half + Duration::from_millis(jitter_millis)
    }
}

/// The worker protocol client.
#[derive(Debug, Clone)]
pub struct WorkerClient {
    http: reqwest::Client,
    base_url: String,
    token: String,
    retry: RetryPolicy,
}

/// The answer to one attempt: retry it, or settle.
enum Attempt {
    Retry(WorkerClientError),
    Done(Result<Response, WorkerClientError>),
}

impl WorkerClient {
    /// A client of the API at `api_url` (e.g. `http://127.0.0.1:7411`), authenticating
    /// with the worker token `token`.
    pub fn new(
        api_url: impl Into<String>,
        token: impl Into<String>,
    ) -> Result<WorkerClient, WorkerClientError> {
        let base_url = api_url.into().trim_end_matches('/').to_owned();
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .user_agent(concat!("tlao-worker/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| WorkerClientError::Connection {
                url: base_url.clone(),
                source,
            })?;
        Ok(WorkerClient {
            http,
            base_url,
            token: token.into(),
            retry: RetryPolicy::default(),
        })
    }

    /// The same client with another retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> WorkerClient {
        self.retry = retry;
        self
    }

    /// The API's base URL, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `POST /worker/lease`: leases the oldest leasable run, waiting up to
    /// `request.wait_seconds` for one; `None` (`204`) when there is none.
    pub async fn lease(
        &self,
        request: &LeaseRequest,
    ) -> Result<Option<Assignment>, WorkerClientError> {
        let timeout = Duration::from_secs(u64::from(request.wait_seconds)) + LEASE_GRACE;
        let response = self
            .call(Method::POST, "/worker/lease", Some(request), timeout)
            .await?;
        if response.status() == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        decode(response).await.map(Some)
    }

    /// `GET /worker/runs/{id}/assignment?leaseId=`: the assignment of a run leased for
    /// this worker (by the local dispatcher). `LeaseLost` when the lease is not current.
    pub async fn assignment(
        &self,
        run_id: &RunId,
        lease_id: &LeaseId,
    ) -> Result<Assignment, WorkerClientError> {
        let path = format!("/worker/runs/{run_id}/assignment?leaseId={lease_id}");
        let response = self
            .call(Method::GET, &path, None::<&()>, CALL_TIMEOUT)
            .await?;
        decode(response).await
    }

    /// `POST /worker/runs/{id}/events`: stores a batch of events (an empty batch is a
    /// heartbeat) and says whether to stop.
    pub async fn report(
        &self,
        run_id: &RunId,
        batch: &EventBatch,
    ) -> Result<EventReport, WorkerClientError> {
        let path = format!("/worker/runs/{run_id}/events");
        let response = self
            .call(Method::POST, &path, Some(batch), CALL_TIMEOUT)
            .await?;
        decode(response).await
    }

    /// `POST /worker/runs/{id}/artifacts`: registers a pending artifact and returns
    /// where to upload its bytes.
    pub async fn create_artifact(
        &self,
        run_id: &RunId,
        request: &ArtifactRequest,
    ) -> Result<ArtifactUploadSlot, WorkerClientError> {
        let path = format!("/worker/runs/{run_id}/artifacts");
        let response = self
            .call(Method::POST, &path, Some(request), CALL_TIMEOUT)
            .await?;
        decode(response).await
    }

    /// `PUT`s `len` bytes from `body` to a presigned upload URL, streaming them, with
    /// no `Authorization` header. Not retried here, since the stream is consumed by
    /// the first try: the caller retries with a fresh stream.
    pub async fn upload<S>(
        &self,
        url: &SignedUrl,
        body: S,
        len: u64,
    ) -> Result<(), WorkerClientError>
    where
        S: Stream<Item = io::Result<Bytes>> + Send + 'static,
    {
        let target = self.absolute(&url.url);
        let result = self
            .http
            .put(&target)
            .header(CONTENT_LENGTH, len)
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await;
        match result {
            Err(source) => Err(WorkerClientError::Connection {
                url: redact(&target),
                source: source.without_url(),
            }),
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(error_from(response).await),
        }
    }

    /// `GET`s a presigned download URL (no `Authorization` header) and streams the
    /// body. Retried like the protocol calls until the body starts; a failure while
    /// streaming is a [`WorkerClientError::Connection`] item of the stream.
    pub async fn download(&self, url: &SignedUrl) -> Result<ByteStream, WorkerClientError> {
        let target = self.absolute(&url.url);
        let response = self
            .with_retries(&target, || self.http.get(&target))
            .await?;
        let shown = redact(&target);
        let stream = response
            .bytes_stream()
            .map_err(move |source| WorkerClientError::Connection {
                url: shown.clone(),
                source: source.without_url(),
            });
        Ok(stream.boxed())
    }

    /// `POST /worker/runs/{id}/artifacts/{artifactId}/finalize`: settles an artifact,
    /// `available` or (with `error`) `upload_failed`.
    pub async fn finalize(
        &self,
        run_id: &RunId,
        artifact_id: &ArtifactId,
        request: &FinalizeRequest,
    ) -> Result<ArtifactView, WorkerClientError> {
        let path = format!("/worker/runs/{run_id}/artifacts/{artifact_id}/finalize");
        let response = self
            .call(Method::POST, &path, Some(request), CALL_TIMEOUT)
            .await?;
        decode(response).await
    }

    /// `POST /worker/runs/{id}/complete`: ends the run as the worker saw it end, and
    /// returns the run as stored (an outcome reached elsewhere first stands).
    pub async fn complete(
        &self,
        run_id: &RunId,
        request: &CompleteRequest,
    ) -> Result<RunView, WorkerClientError> {
        let path = format!("/worker/runs/{run_id}/complete");
        let response = self
            .call(Method::POST, &path, Some(request), CALL_TIMEOUT)
            .await?;
        decode(response).await
    }

    /// One authenticated protocol call with a JSON body, retried.
    async fn call<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        timeout: Duration,
    ) -> Result<Response, WorkerClientError> {
        let url = format!("{}{path}", self.base_url);
        let body = match body {
            None => None,
            Some(body) => Some(Bytes::from(serde_json::to_vec(body).map_err(|e| {
                WorkerClientError::Protocol {
                    url: url.clone(),
                    message: format!("the request body cannot be encoded: {e}"),
                }
            })?)),
        };
        let response = self
            .with_retries(&url, || {
                let request = self
                    .http
                    .request(method.clone(), &url)
                    .header(AUTHORIZATION, format!("Bearer {}", self.token))
                    .timeout(timeout);
                match &body {
                    Some(bytes) => request
                        .header(CONTENT_TYPE, "application/json")
                        .body(bytes.clone()),
                    None => request,
                }
            })
            .await?;
        Ok(response)
    }

    /// Sends the request `build` makes until it succeeds, fails for good, or the tries
    /// run out. Success is any `2xx`.
    async fn with_retries<F>(&self, url: &str, build: F) -> Result<Response, WorkerClientError>
    where
        F: Fn() -> reqwest::RequestBuilder,
    {
        let attempts = self.retry.attempts.max(1);
        let mut failed = 0;
        loop {
            let attempt = match build().send().await {
                Err(source) => Attempt::Retry(WorkerClientError::Connection {
                    url: redact(url),
                    source: source.without_url(),
                }),
                Ok(response) if response.status().is_success() => Attempt::Done(Ok(response)),
                Ok(response) => {
                    let status = response.status();
                    let error = error_from(response).await;
                    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                        Attempt::Retry(error)
                    } else {
                        Attempt::Done(Err(error))
                    }
                }
            };
            match attempt {
                Attempt::Done(result) => return result,
                Attempt::Retry(error) => {
                    failed += 1;
                    if failed >= attempts {
                        return Err(error);
                    }
                    let delay = self.retry.delay(failed);
                    tracing::debug!(url = %redact(url), error = %error, attempt = failed, ?delay, "retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// A presigned URL as given, or joined to the API's base URL when it is a path.
    fn absolute(&self, url: &str) -> String {
        if url.starts_with('/') {
            format!("{}{url}", self.base_url)
        } else {
            url.to_owned()
        }
    }
}

/// A URL without its query string, for messages: a presigned URL's signature is a
/// credential and does not belong in logs.
fn redact(url: &str) -> String {
    match url.split_once('?') {
        Some((path, _)) => format!("{path}?…"),
        None => url.to_owned(),
    }
}

/// Decodes a success answer's JSON body.
async fn decode<T: DeserializeOwned>(response: Response) -> Result<T, WorkerClientError> {
    let url = redact(response.url().as_str());
    let bytes = response
        .bytes()
        .await
        .map_err(|source| WorkerClientError::Connection {
            url: url.clone(),
            source: source.without_url(),
        })?;
    serde_json::from_slice(&bytes).map_err(|e| WorkerClientError::Protocol {
        url,
        message: format!("the body is not the expected JSON: {e}"),
    })
}

/// Turns an error answer into [`WorkerClientError::LeaseLost`] (409) or
/// [`WorkerClientError::Api`], reading the problem+json body when there is one.
async fn error_from(response: Response) -> WorkerClientError {
    let status = response.status();
    let header_request_id = request_id_header(response.headers());
    let text = response.text().await.unwrap_or_default();
    let problem: Option<serde_json::Value> = serde_json::from_str(&text).ok();
    let field = |name: &str| {
        problem
            .as_ref()
            .and_then(|p| p.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let detail = field("detail").unwrap_or_else(|| {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            "no details were given".to_owned()
        } else {
            trimmed.chars().take(MAX_DETAIL_CHARS).collect()
        }
    });
    if status == StatusCode::CONFLICT {
        return WorkerClientError::LeaseLost {
            detail,
            problem: serde_json::from_str(&text).ok().map(Box::new),
        };
    }
    WorkerClientError::Api {
        status: status.as_u16(),
        title: field("title").unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("Unexpected status")
                .to_owned()
        }),
        detail,
        request_id: field("requestId").or(header_request_id),
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
    fn backoff_doubles_with_jitter_and_stays_bounded() {
        let policy = RetryPolicy::default();
        let mut total = Duration::ZERO;
        for failed in 1..policy.attempts {
            let delay = policy.delay(failed);
            let full = (policy.initial_backoff * 2u32.pow(failed - 1)).min(policy.max_backoff);
            assert!(delay >= full / 2 && delay <= full, "{delay:?} for {full:?}");
            total += delay;
        }
        assert!(total <= Duration::from_secs(10));
    }

    #[test]
    fn presigned_signatures_stay_out_of_messages() {
        assert_eq!(
            redact("http://h/blobs/k?expires=1&signature=abc"),
            "http://h/blobs/k?…"
        );
        assert_eq!(redact("http://h/worker/lease"), "http://h/worker/lease");
    }
}
