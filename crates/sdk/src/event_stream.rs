//! [`EventStream`]: a run's events as a user follows them (`tlao logs --follow`, the
//! console's SDK twin), over `GET /runs/{id}/events`.
//!
//! It yields every event exactly once and in order, then the terminal
//! [`EventStreamItem::End`], then nothing. A connection that drops, stalls (no byte,
//! not even a keep-alive comment, for [`STALL_TIMEOUT`]) or is refused with a `5xx` or
//! `429` is reopened after a backoff with jitter, resuming with `Last-Event-ID` set to
//! the last sequence number received; events the server sends again anyway are
//! dropped. A `4xx` (bad token, no access, no such run) ends the stream with
//! [`EventStreamError::Api`] at once. Failures are counted while no event arrives;
//! after [`RetryPolicy::attempts`] in a row the stream gives up with the last error.

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use tlao_domain::RunId;

use crate::events::{END_EVENT, EVENT_NAMES, EventStreamItem, RunEventMessage, StreamEndMessage};
use crate::http::{Http, HttpError, Request, Transient, checked, error_chain};
use crate::retry::RetryPolicy;
use crate::sse::{SseMessage, SseParser};

/// How long a connection may stay silent before it is presumed dead (the server sends a
/// keep-alive comment every 15 seconds).
pub const STALL_TIMEOUT: Duration = Duration::from_secs(45);
/// Which refusals are reconnected after rather than final.
const RECONNECT_ON: Transient = Transient::AlsoThrottledOrTimedOut;

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// Why an event stream ended without its `end` event.
#[derive(Debug, thiserror::Error)]
pub enum EventStreamError {
    /// The server refused the stream (`401`, `403`, `404`, `400`, ...), from the
    /// `application/problem+json` body. Not retried.
    #[error("{title} (HTTP {status}): {detail}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The problem's title.
        title: String,
        /// The problem's detail.
        detail: String,
        /// The request id the server logged it under.
        request_id: Option<String>,
    },
    /// The server could not be reached, or kept dropping the connection, through every
    /// retry.
    #[error("cannot stream from {url}: {message}")]
    Connection {
        /// The URL called.
        url: String,
        /// What failed last.
        message: String,
    },
    /// The server sent something that is not the event stream format.
    #[error("unexpected answer from {url}: {message}")]
    Protocol {
        /// The URL called.
        url: String,
        /// What was wrong with it.
        message: String,
    },
}

impl From<HttpError> for EventStreamError {
    fn from(error: HttpError) -> Self {
        match error {
            HttpError::Answer(answer) => EventStreamError::Api {
                status: answer.status,
                title: answer.title,
                detail: answer.detail,
                request_id: answer.request_id,
            },
            HttpError::Connection { url, source } => EventStreamError::Connection {
                url,
                message: error_chain(&source),
            },
            HttpError::Unexpected { url, message } => EventStreamError::Protocol { url, message },
        }
    }
}

impl EventStreamError {
    /// The HTTP status of an [`EventStreamError::Api`] error.
    pub fn status(&self) -> Option<u16> {
        match self {
            EventStreamError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The reconnection policy unless told otherwise: ten failures in a row (without an
/// event in between), 250 ms doubling up to 5 s, so about half a minute of outage.
pub fn default_reconnect_policy() -> RetryPolicy {
    RetryPolicy {
        attempts: 10,
        initial_backoff: Duration::from_millis(250),
        max_backoff: Duration::from_secs(5),
    }
}

/// Opens the event stream of `run_id` at `api_url` (e.g. `http://127.0.0.1:7411`) with
/// the bearer `token`, after sequence number `after` (0: from the first event). The
/// connection is made on the first [`EventStream::next`].
pub fn stream_run_events(
    api_url: &str,
    token: &str,
    run_id: &RunId,
    after: u64,
) -> Result<EventStream, EventStreamError> {
    EventStream::new(api_url, token, run_id, after)
}

/// A resumable stream of a run's events; see the module documentation.
pub struct EventStream {
    http: Http,
    url: String,
    token: String,
    reconnect: RetryPolicy,
    /// The last sequence number received (or the one the stream started after).
    last_seq: u64,
    /// The open connection's body, if any.
    body: Option<Body>,
    parser: SseParser,
    /// Parsed, not yet yielded.
    ready: VecDeque<EventStreamItem>,
    /// A protocol error, yielded once the items parsed before it were.
    broken: Option<EventStreamError>,
    /// Failures since the last event.
    failures: u32,
    /// How many connections were opened.
    connections: u32,
    finished: bool,
}

/// What went wrong with one connection attempt.
enum Failure {
    /// Try again after a backoff.
    Retry(EventStreamError),
    /// Give up.
    Fatal(EventStreamError),
}

impl EventStream {
    /// A stream of `run_id`'s events after `after`; see [`stream_run_events`].
    pub fn new(
        api_url: &str,
        token: &str,
        run_id: &RunId,
        after: u64,
    ) -> Result<EventStream, EventStreamError> {
        let http = Http::new(
            api_url,
            concat!("tlao-sdk/", env!("CARGO_PKG_VERSION")),
            STALL_TIMEOUT,
        )?;
        let url = http.url(&format!("/runs/{run_id}/events"));
        Ok(EventStream {
            http,
            url,
            token: token.to_owned(),
            reconnect: default_reconnect_policy(),
            last_seq: after,
            body: None,
            parser: SseParser::new(),
            ready: VecDeque::new(),
            broken: None,
            failures: 0,
            connections: 0,
            finished: false,
        })
    }

    /// The same stream with another reconnection policy.
    pub fn with_reconnect(mut self, policy: RetryPolicy) -> EventStream {
        self.reconnect = policy;
        self
    }

    /// The last sequence number received (or the one the stream started after): where
    /// a new stream would resume.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// How many connections were opened so far (reconnections included).
    pub fn connections(&self) -> u32 {
        self.connections
    }

    /// The next item: an event, or the end; `None` after the end or an error.
    pub async fn next(&mut self) -> Option<Result<EventStreamItem, EventStreamError>> {
        loop {
            if self.finished {
                return None;
            }
            if let Some(item) = self.ready.pop_front() {
                match item {
                    EventStreamItem::Event(event) if event.seq() <= self.last_seq => continue,
                    EventStreamItem::Event(event) => {
                        self.last_seq = event.seq();
                        self.failures = 0;
                        return Some(Ok(EventStreamItem::Event(event)));
                    }
                    EventStreamItem::End(end) => {
                        self.finish();
                        return Some(Ok(EventStreamItem::End(end)));
                    }
                }
            }
            if let Some(error) = self.broken.take() {
                self.finish();
                return Some(Err(error));
            }
            let failure = match self.body.as_mut() {
                None => match self.connect().await {
                    Ok(body) => {
                        self.body = Some(body);
                        self.parser.reset();
                        continue;
                    }
                    Err(failure) => failure,
                },
                Some(body) => match body.next().await {
                    Some(Ok(chunk)) => {
                        for message in self.parser.feed(&chunk) {
                            match decode(&self.url, message) {
                                Ok(Some(item)) => self.ready.push_back(item),
                                Ok(None) => {}
                                Err(error) => {
                                    self.broken = Some(error);
                                    break;
                                }
                            }
                        }
                        continue;
                    }
                    Some(Err(error)) => {
                        Failure::Retry(self.connection_error(error_chain(&error.without_url())))
                    }
                    None => Failure::Retry(
                        self.connection_error("the server closed the stream before its end"),
                    ),
                },
            };
            self.body = None;
            match failure {
                Failure::Fatal(error) => {
                    self.finish();
                    return Some(Err(error));
                }
                Failure::Retry(error) => {
                    self.failures += 1;
                    if self.failures >= self.reconnect.attempts.max(1) {
                        self.finish();
                        return Some(Err(error));
                    }
                    let delay = self.reconnect.delay(self.failures);
                    tracing::debug!(
                        url = %self.url, error = %error, failures = self.failures, ?delay,
                        last_seq = self.last_seq, "event stream interrupted; reconnecting"
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// The stream as a [`futures::Stream`].
    pub fn into_stream(
        self,
    ) -> impl Stream<Item = Result<EventStreamItem, EventStreamError>> + Send {
        futures::stream::unfold(self, |mut stream| async move {
            stream.next().await.map(|item| (item, stream))
        })
    }

    fn finish(&mut self) {
        self.finished = true;
        self.body = None;
        self.ready.clear();
    }

    fn connection_error(&self, message: impl Into<String>) -> EventStreamError {
        EventStreamError::Connection {
            url: self.url.clone(),
            message: message.into(),
        }
    }

    /// Opens one connection, resuming after `last_seq`.
    async fn connect(&mut self) -> Result<Body, Failure> {
        self.connections += 1;
        let mut request = Request::call(Method::GET, self.url.clone())
            .bearer(&self.token)
            .header("Accept", "text/event-stream")
            .streaming();
        if self.last_seq > 0 {
            request = request.header("Last-Event-ID", self.last_seq.to_string());
        }
        let response = self
            .http
            .send(request)
            .await
            .map_err(|e| Failure::Retry(e.into()))?;
        let status = response.status();
        let response = checked(response).await.map_err(|refusal| {
            if RECONNECT_ON.covers(status) {
                Failure::Retry(refusal.into())
            } else {
                Failure::Fatal(refusal.into())
            }
        })?;
        let media_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if !media_type.starts_with("text/event-stream") {
            return Err(Failure::Fatal(EventStreamError::Protocol {
                url: self.url.clone(),
                message: format!("the content type is {media_type:?}, not text/event-stream"),
            }));
        }
        Ok(Box::pin(response.bytes_stream()))
    }
}

/// The item a message carries: an event, the end, or nothing (a message type this
/// client does not know, which later servers may add).
fn decode(url: &str, message: SseMessage) -> Result<Option<EventStreamItem>, EventStreamError> {
    let invalid = |e: serde_json::Error| EventStreamError::Protocol {
        url: url.to_owned(),
        message: format!(
            "the data of a {:?} message is not valid: {e}",
            message.event
        ),
    };
    if message.event == END_EVENT {
        let end: StreamEndMessage = serde_json::from_str(&message.data).map_err(invalid)?;
        return Ok(Some(EventStreamItem::End(end)));
    }
    if EVENT_NAMES.contains(&message.event.as_str()) {
        let event: RunEventMessage = serde_json::from_str(&message.data).map_err(invalid)?;
        return Ok(Some(EventStreamItem::Event(event)));
    }
    Ok(None)
}
