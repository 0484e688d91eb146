//! Helpers for the event stream tests: a leased run and a worker posting to it, a raw
//! SSE reader over `GET /runs/{id}/events`, and a second API instance over the same
//! table (no bootstrap: the first instance did it).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use reqwest::header::AUTHORIZATION;
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tlao_adapters_local::{FsBlobStore, LocalEventBus};
use tlao_api::{ApiConfig, AppDeps};
use tlao_domain::{Guardrails, Timestamp};
use tlao_orchestrator::Services;
use tlao_ports::{ManualClock, Table};
use tlao_sdk::sse::{SseMessage, SseParser};

use super::{JWT_SECRET, TestApp, TestUser, WORKER_TOKEN};

/// How long a test waits for the next message of a stream before failing.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A run a test worker holds.
#[derive(Debug, Clone)]
pub struct Leased {
    pub run_id: String,
    pub lease_id: String,
}

/// A POST with the worker token.
pub fn worker_post(app: &TestApp, path: &str, body: &Value) -> RequestBuilder {
    app.client
        .post(app.url(path))
        .bearer_auth(WORKER_TOKEN)
        .json(body)
}

/// A new run of the user's, leased by a test worker (so it is `running`).
pub async fn leased_run(app: &TestApp, user: &TestUser) -> Leased {
    let run_id = app.run(user).await;
    let assignment: Value = worker_post(app, "/worker/lease", &json!({"waitSeconds": 0}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(assignment["run"]["runId"], run_id.as_str());
    Leased {
        run_id,
        lease_id: assignment["leaseId"].as_str().unwrap().to_owned(),
    }
}

/// Posts `texts` as stdout log lines in one batch; the report.
pub async fn post_logs(app: &TestApp, run: &Leased, texts: &[String]) -> Value {
    let events: Vec<Value> = texts
        .iter()
        .map(|text| json!({"type": "log", "stream": "stdout", "text": text}))
        .collect();
    let response = worker_post(
        app,
        &format!("/worker/runs/{}/events", run.run_id),
        &json!({"leaseId": run.lease_id, "events": events}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// Ends the run through the worker's complete route with `status` (`completed`,
/// `failed`, `timed_out`, `cancelled`).
pub async fn complete(app: &TestApp, run: &Leased, status: &str) {
    let mut body = json!({"leaseId": run.lease_id, "status": status});
    if status == "failed" {
        body["error"] = json!({"code": "executor_failed", "message": "exit 1", "exitCode": 1});
    }
    let response = worker_post(app, &format!("/worker/runs/{}/complete", run.run_id), &body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// `GET /runs/{id}/events{query}` at `address` with `token` and, when given,
/// `Last-Event-ID`.
pub async fn open_stream(
    client: &reqwest::Client,
    address: &str,
    token: &str,
    run_id: &str,
    query: &str,
    last_event_id: Option<&str>,
) -> Response {
    let mut request = client
        .get(format!("{address}/runs/{run_id}/events{query}"))
        .header(AUTHORIZATION, format!("Bearer {token}"));
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id);
    }
    request.send().await.unwrap()
}

/// Reads an SSE response message by message, keeping the raw text too.
pub struct SseReader {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    parser: SseParser,
    ready: std::collections::VecDeque<SseMessage>,
    /// Everything received, as text.
    pub raw: String,
}

impl SseReader {
    /// A reader of a `200 text/event-stream` response.
    pub fn new(response: Response) -> SseReader {
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert_eq!(content_type, "text/event-stream");
        assert!(response.headers().contains_key("x-request-id"));
        SseReader {
            body: Box::pin(response.bytes_stream()),
            parser: SseParser::new(),
            ready: Default::default(),
            raw: String::new(),
        }
    }

    /// The next message; `None` when the server closed the stream.
    pub async fn next(&mut self) -> Option<SseMessage> {
        loop {
            if let Some(message) = self.ready.pop_front() {
                return Some(message);
            }
            self.read_chunk().await?;
        }
    }

    /// Reads until the raw text received contains `needle` (a comment, say); returns
    /// the messages that arrived meanwhile.
    pub async fn read_until_raw(&mut self, needle: &str) -> Vec<SseMessage> {
        while !self.raw.contains(needle) {
            self.read_chunk()
                .await
                .expect("the stream stays open while waiting");
        }
        self.ready.drain(..).collect()
    }

    /// Reads one chunk into `raw` and the parser; `None` when the server closed.
    async fn read_chunk(&mut self) -> Option<()> {
        let chunk = tokio::time::timeout(PATIENCE, self.body.next())
            .await
            .expect("the stream sends its next bytes in time")?
            .expect("the stream does not fail");
        self.raw.push_str(&String::from_utf8_lossy(&chunk));
        self.ready.extend(self.parser.feed(&chunk));
        Some(())
    }

    /// Every message up to and including `end`, checking that the server then closes.
    pub async fn until_end(&mut self) -> Vec<SseMessage> {
        let mut messages = Vec::new();
        loop {
            let message = self
                .next()
                .await
                .expect("the server closes only after the end event");
            let end = message.event == "end";
            messages.push(message);
            if end {
                assert!(self.next().await.is_none(), "nothing follows the end event");
                return messages;
            }
        }
    }
}

/// The JSON data of a message, with its `id:` checked against its `seq` (events) or
/// `lastSeq` (the end).
pub fn data(message: &SseMessage) -> Value {
    let data: Value = serde_json::from_str(&message.data).unwrap();
    let id: u64 = message.id.as_deref().unwrap().parse().unwrap();
    if message.event == "end" {
        assert_eq!(data["lastSeq"], id, "{message:?}");
    } else {
        assert_eq!(data["seq"], id, "{message:?}");
        assert_eq!(data["type"], message.event.as_str(), "{message:?}");
        assert!(data["at"].is_string(), "{message:?}");
    }
    data
}

/// Checks `messages` are the events `after + 1 ..= N` in order, each once, then one
/// `end` with `lastSeq: N`; returns the events' data and the end's.
pub fn check_sequence(messages: &[SseMessage], after: u64) -> (Vec<Value>, Value) {
    let (end, events) = messages.split_last().expect("at least the end event");
    assert_eq!(end.event, "end");
    let mut expected = after + 1;
    let mut datas = Vec::with_capacity(events.len());
    for message in events {
        let data = data(message);
        assert_eq!(
            data["seq"], expected,
            "expected seq {expected}, got {message:?}"
        );
        expected += 1;
        datas.push(data);
    }
    let end = data(end);
    assert_eq!(end["lastSeq"], expected - 1, "{end}");
    (datas, end)
}

/// A second API instance over `table` (already bootstrapped by the first), with its own
/// services, bus and blob directory, signing tokens with the same secret.
pub struct SecondInstance {
    /// `http://127.0.0.1:{port}`.
    pub address: String,
    _dir: TempDir,
}

impl SecondInstance {
    /// Starts it.
    pub fn spawn(table: Arc<dyn Table>, guardrails: Guardrails) -> SecondInstance {
        let dir = TempDir::new().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let clock = Arc::new(ManualClock::new(Timestamp::from_unix_millis(now)));
        let blobs = Arc::new(
            FsBlobStore::new(
                dir.path().join("blobs"),
                address.clone(),
                b"presign-secret".to_vec(),
                clock.clone(),
            )
            .unwrap(),
        );
        let services = Arc::new(Services::new(
            table,
            blobs.clone(),
            clock,
            guardrails,
            Arc::new(LocalEventBus::new()),
        ));
        let mut config = ApiConfig::new(JWT_SECRET);
        config.worker_token = Some(WORKER_TOKEN.into());
        let server = tlao_api::build(
            config,
            AppDeps {
                services,
                presigned: Some(blobs),
                maintenance: None,
            },
            listener,
        )
        .unwrap();
        tokio::spawn(server);
        SecondInstance { address, _dir: dir }
    }
}
