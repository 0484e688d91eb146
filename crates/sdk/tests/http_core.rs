//! The HTTP core as every client sees it, one suite over `TlaoClient`, `WorkerClient`
//! and `EventStream`: an error answer reads the same whoever made the request (a
//! problem's fields, the request id from the body or else the `x-request-id` header, a
//! bounded excerpt of a body that is not JSON), and so does an unreachable server. Then
//! the rules each client keeps: which requests are retried on which answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Answer, Scripted, answer, fast_retry, run_id, unreachable_url};
use tlao_domain::{LeaseId, TaskId, Ulid, WorkspaceId};
use tlao_sdk::types::CreateRunRequest;
use tlao_sdk::worker::EventBatch;
use tlao_sdk::{
    ClientError, Credentials, EventStreamError, TlaoClient, WorkerClient, WorkerClientError,
    stream_run_events,
};

/// What every client's error says about an error answer.
#[derive(Debug, PartialEq, Eq)]
struct Reported {
    status: u16,
    title: String,
    detail: String,
    request_id: Option<String>,
}

/// The [`Reported`] fields of a client's `Api` error (named by `$api`), or a panic.
macro_rules! reported {
    ($error:expr, $api:path) => {
        match $error {
            $api {
                status,
                title,
                detail,
                request_id,
                ..
            } => Reported {
                status,
                title,
                detail,
                request_id,
            },
            other => panic!("not an API error: {other:?}"),
        }
    };
}

/// The client that made a request, and how to make one that reads an error answer.
#[derive(Debug, Clone, Copy)]
enum Client {
    User,
    Worker,
    Stream,
}

const CLIENTS: [Client; 3] = [Client::User, Client::Worker, Client::Stream];

impl Client {
    /// A `GET` from this client to a server answering `script`: what its error
    /// reports, and how many requests the server saw.
    async fn get(self, script: Vec<Answer>) -> (Reported, usize) {
        let server = Scripted::start(script).await;
        let reported = match self {
            Client::User => {
                let error = user(&server.url).get_run(&run_id()).await.unwrap_err();
                reported!(error, ClientError::Api)
            }
            Client::Worker => {
                let lease = LeaseId::new(Ulid::from_parts(1_700_000_000_000, 2));
                let worker = worker(&server.url);
                let error = worker.assignment(&run_id(), &lease).await.unwrap_err();
                reported!(error, WorkerClientError::Api)
            }
            Client::Stream => {
                let mut stream = stream_run_events(&server.url, "t", &run_id(), 0)
                    .unwrap()
                    .with_reconnect(fast_retry());
                let error = stream.next().await.unwrap().unwrap_err();
                reported!(error, EventStreamError::Api)
            }
        };
        (reported, server.seen().len())
    }
}

fn user(url: &str) -> TlaoClient {
    TlaoClient::new(url, Credentials::token("t"))
        .unwrap()
        .with_retry(fast_retry())
}

fn worker(url: &str) -> WorkerClient {
    WorkerClient::new(url, "t")
        .unwrap()
        .with_retry(fast_retry())
}

fn problem(status: u16, body: &str, extra: Vec<(&'static str, &'static str)>) -> Answer {
    Answer {
        status,
        content_type: "application/problem+json",
        body: body.to_owned(),
        extra,
    }
}

#[tokio::test]
async fn a_problem_with_a_request_id_is_reported_the_same_by_every_client() {
    for client in CLIENTS {
        let body = r#"{"type":"urn:tlao:problem:not-found","title":"Not found","status":404,
                       "detail":"run run_x does not exist","requestId":"req_body"}"#;
        let answer = problem(404, body, vec![("x-request-id", "req_header")]);

        let (reported, requests) = client.get(vec![answer]).await;

        assert_eq!(
            reported,
            Reported {
                status: 404,
                title: "Not found".into(),
                detail: "run run_x does not exist".into(),
                request_id: Some("req_body".into()),
            },
            "{client:?}"
        );
        assert_eq!(requests, 1, "{client:?}: a 404 is not retried");
    }
}

#[tokio::test]
async fn a_problem_without_a_request_id_takes_it_from_the_x_request_id_header() {
    for client in CLIENTS {
        let body = r#"{"type":"urn:tlao:problem:forbidden","title":"Forbidden","status":403,
                       "detail":"not your workspace"}"#;
        let answer = problem(403, body, vec![("x-request-id", "req_header")]);

        let (reported, _) = client.get(vec![answer]).await;

        assert_eq!(reported.detail, "not your workspace", "{client:?}");
        assert_eq!(
            reported.request_id.as_deref(),
            Some("req_header"),
            "{client:?}"
        );
    }
}

#[tokio::test]
async fn a_502_page_that_is_not_json_is_reported_as_a_bounded_excerpt_after_every_retry() {
    let page = format!("<html><body>{}</body></html>", "bad gateway ".repeat(200));
    for client in CLIENTS {
        let mut html = answer(502, &page);
        html.content_type = "text/html";

        let (reported, requests) = client.get(vec![html]).await;

        assert_eq!(reported.status, 502, "{client:?}");
        assert_eq!(reported.title, "Bad Gateway", "{client:?}");
        assert!(reported.detail.starts_with("<html><body>bad gateway"));
        assert!(
            reported.detail.ends_with('…'),
            "{client:?}: cut, and says so"
        );
        assert_eq!(reported.detail.chars().count(), 513, "{client:?}");
        assert_eq!(reported.request_id, None, "{client:?}");
        assert_eq!(
            requests, 5,
            "{client:?}: a 502 is tried the policy's 5 times"
        );
    }
}

#[tokio::test]
async fn an_unreachable_server_is_a_connection_error_naming_the_url_for_every_client() {
    let url = unreachable_url();
    let events = format!("{url}/runs/{}/events", run_id());
    let tried = [
        match user(&url).get_run(&run_id()).await.unwrap_err() {
            ClientError::Connection { url, .. } => url,
            other => panic!("user: {other:?}"),
        },
        match worker(&url).report(&run_id(), &batch()).await.unwrap_err() {
            WorkerClientError::Connection { url, .. } => url,
            other => panic!("worker: {other:?}"),
        },
        match stream_run_events(&url, "t", &run_id(), 0)
            .unwrap()
            .with_reconnect(fast_retry())
            .next()
            .await
        {
            Some(Err(EventStreamError::Connection { url, message })) => {
                assert!(message.starts_with("error sending request"), "{message}");
                url
            }
            other => panic!("stream: {other:?}"),
        },
    ];

    assert_eq!(
        tried,
        [
            format!("{url}/runs/{}", run_id()),
            format!("{url}/worker/runs/{}/events", run_id()),
            events,
        ]
    );
}

#[tokio::test]
async fn a_post_is_retried_only_when_it_carries_an_idempotency_key() {
    let busy = || {
        answer(
            503,
            r#"{"title":"Unavailable","status":503,"detail":"busy"}"#,
        )
    };
    let server = Scripted::start(vec![busy()]).await;
    let client = user(&server.url);

    let with_key = client
        .create_run_with_key(&run_request(), "key-1")
        .await
        .unwrap_err();
    let tries_with_key = server.seen().len();
    let without_key = client.create_workspace("w").await.unwrap_err();
    let tries_without_key = server.seen().len() - tries_with_key;

    assert_eq!(
        (with_key.status(), without_key.status()),
        (Some(503), Some(503))
    );
    assert_eq!(
        tries_with_key, 5,
        "POST /runs carries a key: every try is made"
    );
    assert!(
        server.seen()[..5]
            .iter()
            .all(|seen| seen.header("idempotency-key") == Some("key-1"))
    );
    assert_eq!(tries_without_key, 1, "POST /workspaces has no key: one try");
}

#[tokio::test]
async fn a_429_with_retry_after_is_final_for_the_user_api_and_its_wait_reaches_the_caller() {
    let quota = problem(
        429,
        r#"{"type":"urn:tlao:problem:quota-exceeded","title":"Quota exceeded","status":429,
            "detail":"the workspace used its 50 runs of the day","retryAfterSeconds":3600}"#,
        vec![("retry-after", "3600")],
    );
    let server = Scripted::start(vec![quota]).await;

    let error = user(&server.url)
        .create_run_with_key(&run_request(), "key-1")
        .await
        .unwrap_err();

    assert_eq!(error.status(), Some(429));
    assert_eq!(
        error.problem().and_then(|p| p.retry_after_seconds),
        Some(3600)
    );
    assert_eq!(server.seen().len(), 1, "a daily quota is not retried");
}

#[tokio::test]
async fn a_429_is_retried_by_the_worker_on_its_own_backoff_not_its_retry_after() {
    let mut throttled = answer(429, r#"{"title":"Too Many Requests","status":429}"#);
    throttled.extra = vec![("retry-after", "3600")];
    let report = answer(200, r#"{"status":"running","stop":false,"lastSeq":0}"#);
    let server = Scripted::start(vec![throttled, report]).await;
    let started = Instant::now();

    worker(&server.url)
        .report(&run_id(), &batch())
        .await
        .unwrap();

    assert_eq!(server.seen().len(), 2);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_streamed_upload_is_sent_once_even_to_a_server_that_is_busy() {
    let server = Scripted::start(vec![answer(503, "{}")]).await;
    let workspace = WorkspaceId::new(Ulid::from_parts(1_700_000_000_000, 4));

    let error = user(&server.url)
        .upload_archive(&workspace, 3, || {
            Ok(futures::stream::iter(vec![Ok(bytes::Bytes::from_static(
                b"tgz",
            ))]))
        })
        .await
        .unwrap_err();

    assert_eq!(error.status(), Some(503));
    assert_eq!(server.seen().len(), 1);
    assert_eq!(server.seen()[0].body, b"tgz");
}

fn run_request() -> CreateRunRequest {
    CreateRunRequest {
        task_id: TaskId::new(Ulid::from_parts(1_700_000_000_000, 3)),
        executor: None,
    }
}

fn batch() -> EventBatch {
    EventBatch {
        lease_id: LeaseId::new(Ulid::from_parts(1_700_000_000_000, 2)),
        first_seq: None,
        events: Vec::new(),
        availability: None,
    }
}
