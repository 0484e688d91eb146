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
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tlao_domain::{ArtifactId, LeaseId, RunId};
use tlao_wire::{ArtifactView, Problem, RunView};

use crate::http::{
    Http, HttpError, Request, TRANSFER_STALL_TIMEOUT, Transient, presigned_body, read_json,
    request_id_suffix,
};
use crate::retry::RetryPolicy;
use crate::worker::{
    ArtifactRequest, ArtifactUploadSlot, Assignment, CompleteRequest, EventBatch, EventReport,
    FinalizeRequest, LeaseRequest, SignedUrl,
};

/// How much longer than its `waitSeconds` a long-poll lease may take.
const LEASE_GRACE: Duration = Duration::from_secs(30);
/// Which answers a protocol call or a download tries again after: the server may shed
/// load with a `429`.
const PROTOCOL_TRANSIENT: Transient = Transient::AlsoThrottled;

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

/// The worker protocol client.
#[derive(Debug, Clone)]
pub struct WorkerClient {
    http: Http,
    token: String,
    retry: RetryPolicy,
}

impl From<HttpError> for WorkerClientError {
    fn from(error: HttpError) -> Self {
        match error {
            HttpError::Answer(answer) if answer.status == 409 => WorkerClientError::LeaseLost {
                detail: answer.detail,
                problem: answer.problem,
            },
            HttpError::Answer(answer) => WorkerClientError::Api {
                status: answer.status,
                title: answer.title,
                detail: answer.detail,
                request_id: answer.request_id,
            },
            HttpError::Connection { url, source } => WorkerClientError::Connection { url, source },
            HttpError::Unexpected { url, message } => WorkerClientError::Protocol { url, message },
        }
    }
}

impl WorkerClient {
    /// A client of the API at `api_url` (e.g. `http://127.0.0.1:7411`), authenticating
    /// with the worker token `token`.
    pub fn new(
        api_url: impl Into<String>,
        token: impl Into<String>,
    ) -> Result<WorkerClient, WorkerClientError> {
        let http = Http::new(
            &api_url.into(),
            concat!("tlao-worker/", env!("CARGO_PKG_VERSION")),
            TRANSFER_STALL_TIMEOUT,
        )?;
        Ok(WorkerClient {
            http,
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
        self.http.base_url()
    }

    /// `POST /worker/lease`: leases the oldest leasable run, waiting up to
    /// `request.wait_seconds` for one; `None` (`204`) when there is none.
    pub async fn lease(
        &self,
        request: &LeaseRequest,
    ) -> Result<Option<Assignment>, WorkerClientError> {
        let timeout = Duration::from_secs(u64::from(request.wait_seconds)) + LEASE_GRACE;
        let call = self
            .protocol(Method::POST, "/worker/lease")
            .json(request)?
            .timeout(timeout);
        let response = self.http.fetch(call).await?;
        if response.status() == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        Ok(Some(read_json(response).await?))
    }

    /// `GET /worker/runs/{id}/assignment?leaseId=`: the assignment of a run leased for
    /// this worker (by the local dispatcher). `LeaseLost` when the lease is not current.
    pub async fn assignment(
        &self,
        run_id: &RunId,
        lease_id: &LeaseId,
    ) -> Result<Assignment, WorkerClientError> {
        let path = format!("/worker/runs/{run_id}/assignment?leaseId={lease_id}");
        Ok(self
            .http
            .fetch_json(self.protocol(Method::GET, &path))
            .await?)
    }

    /// `POST /worker/runs/{id}/events`: stores a batch of events (an empty batch is a
    /// heartbeat) and says whether to stop.
    pub async fn report(
        &self,
        run_id: &RunId,
        batch: &EventBatch,
    ) -> Result<EventReport, WorkerClientError> {
        self.post(&format!("/worker/runs/{run_id}/events"), batch)
            .await
    }

    /// `POST /worker/runs/{id}/artifacts`: registers a pending artifact and returns
    /// where to upload its bytes.
    pub async fn create_artifact(
        &self,
        run_id: &RunId,
        request: &ArtifactRequest,
    ) -> Result<ArtifactUploadSlot, WorkerClientError> {
        self.post(&format!("/worker/runs/{run_id}/artifacts"), request)
            .await
    }

    /// `PUT`s `len` bytes from `body` to a presigned upload URL, streaming them, with
    /// the URL's own headers and no `Authorization` header. Not retried here, since the
    /// stream is consumed by the first try: the caller retries with a fresh stream. An
    /// upload URL stores once: a `409` (the presigned gateway, as
    /// [`WorkerClientError::LeaseLost`]) or `412` (S3) answers a `PUT` to a key that
    /// already holds bytes.
    pub async fn upload<S>(
        &self,
        url: &SignedUrl,
        body: S,
        len: u64,
    ) -> Result<(), WorkerClientError>
    where
        S: Stream<Item = io::Result<Bytes>> + Send + 'static,
    {
        let mut request = Request::presigned(Method::PUT, self.http.absolute(&url.url));
        for (name, value) in &url.headers {
            request = request.header(name, value);
        }
        let request = request.stream(
            "application/octet-stream",
            len,
            reqwest::Body::wrap_stream(body),
        );
        self.http.fetch(request).await?;
        Ok(())
    }

    /// `GET`s a presigned download URL (no `Authorization` header) and streams the
    /// body. Retried like the protocol calls until the body starts; a failure while
    /// streaming is a [`WorkerClientError::Connection`] item of the stream.
    pub async fn download(&self, url: &SignedUrl) -> Result<ByteStream, WorkerClientError> {
        let request = Request::presigned(Method::GET, self.http.absolute(&url.url))
            .retried(self.retry, PROTOCOL_TRANSIENT);
        let response = self.http.fetch(request).await?;
        Ok(presigned_body(response)
            .map_err(WorkerClientError::from)
            .boxed())
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
        self.post(&path, request).await
    }

    /// `POST /worker/runs/{id}/complete`: ends the run as the worker saw it end, and
    /// returns the run as stored (an outcome reached elsewhere first stands).
    pub async fn complete(
        &self,
        run_id: &RunId,
        request: &CompleteRequest,
    ) -> Result<RunView, WorkerClientError> {
        self.post(&format!("/worker/runs/{run_id}/complete"), request)
            .await
    }

    /// A protocol call: authenticated, and retried like every protocol call (see the
    /// module documentation).
    fn protocol(&self, method: Method, path: &str) -> Request {
        Request::call(method, self.http.url(path))
            .bearer(&self.token)
            .retried(self.retry, PROTOCOL_TRANSIENT)
    }

    /// A protocol `POST` of `body` with a JSON answer.
    async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, WorkerClientError> {
        let request = self.protocol(Method::POST, path).json(body)?;
        Ok(self.http.fetch_json(request).await?)
    }
}
