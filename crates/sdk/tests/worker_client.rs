//! `WorkerClient` against a scripted HTTP server: answers are decoded, 204 is no run,
//! 409 is a lost lease, problem+json becomes `Api`, 5xx/429 and connection errors are
//! retried with backoff while 4xx never is, and presigned transfers carry no token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Scripted, answer, fast_retry, run_id, unreachable_url};
use futures::StreamExt;
use tlao_domain::{LeaseId, RunStatus, Timestamp, Ulid};
use tlao_sdk::worker::{EventBatch, LeaseRequest, SignedUrl};
use tlao_sdk::{WorkerClient, WorkerClientError};

/// A worker client of `server` with quick retries.
fn client(server: &Scripted) -> WorkerClient {
    WorkerClient::new(&server.url, "secret-token")
        .unwrap()
        .with_retry(fast_retry())
}

fn batch() -> EventBatch {
    EventBatch {
        lease_id: LeaseId::new(Ulid::from_parts(1_700_000_000_000, 2)),
        first_seq: None,
        events: Vec::new(),
        availability: None,
    }
}

const REPORT: &str = r#"{"status":"running","stop":false,"lastSeq":3}"#;

fn signed(url: String) -> SignedUrl {
    SignedUrl {
        url,
        method: "PUT".into(),
        expires_at: Timestamp::from_unix_millis(0),
        headers: Default::default(),
    }
}

#[tokio::test]
async fn a_report_is_decoded_and_carries_the_worker_token() {
    let server = Scripted::start(vec![answer(200, REPORT)]).await;
    let report = client(&server).report(&run_id(), &batch()).await.unwrap();
    assert_eq!(report.status, RunStatus::Running.into());
    assert_eq!(report.last_seq, 3);
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, format!("/worker/runs/{}/events", run_id()));
    assert_eq!(seen[0].header("authorization"), Some("Bearer secret-token"));
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(body["events"], serde_json::json!([]));
}

#[tokio::test]
async fn no_content_on_lease_means_no_run() {
    let server = Scripted::start(vec![answer(204, "")]).await;
    let request = LeaseRequest {
        executors: None,
        wait_seconds: 0,
        availability: None,
    };
    assert!(client(&server).lease(&request).await.unwrap().is_none());
    assert_eq!(server.seen()[0].path, "/worker/lease");
}

#[tokio::test]
async fn a_conflict_means_the_lease_is_lost_and_is_not_retried() {
    let problem = r#"{"type":"about:blank","title":"Conflict","status":409,"detail":"lease does not hold run; stop working on it","requestId":"r1"}"#;
    let server = Scripted::start(vec![answer(409, problem)]).await;
    let error = client(&server)
        .report(&run_id(), &batch())
        .await
        .unwrap_err();
    assert!(error.is_lease_lost(), "{error:?}");
    assert!(error.to_string().contains("stop working on it"));
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn a_problem_becomes_an_api_error_without_retries() {
    let problem = r#"{"type":"about:blank","title":"Not Found","status":404,"detail":"run run_x does not exist","requestId":"req-42"}"#;
    let server = Scripted::start(vec![answer(404, problem)]).await;
    let error = client(&server)
        .report(&run_id(), &batch())
        .await
        .unwrap_err();
    match &error {
        WorkerClientError::Api {
            status,
            title,
            detail,
            request_id,
        } => {
            assert_eq!(*status, 404);
            assert_eq!(title, "Not Found");
            assert_eq!(detail, "run run_x does not exist");
            assert_eq!(request_id.as_deref(), Some("req-42"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        error.to_string(),
        "Not Found (HTTP 404): run run_x does not exist (request req-42)"
    );
    assert_eq!(server.seen().len(), 1, "4xx is never retried");
}

#[tokio::test]
async fn a_body_that_is_not_a_problem_is_still_explained() {
    let mut plain = answer(400, "bad things");
    plain.content_type = "text/plain";
    plain.extra = vec![("x-request-id", "hdr-7")];
    let server = Scripted::start(vec![plain]).await;
    let error = client(&server)
        .report(&run_id(), &batch())
        .await
        .unwrap_err();
    match error {
        WorkerClientError::Api {
            status,
            title,
            detail,
            request_id,
        } => {
            assert_eq!(status, 400);
            assert_eq!(title, "Bad Request");
            assert_eq!(detail, "bad things");
            assert_eq!(request_id.as_deref(), Some("hdr-7"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn server_errors_and_throttling_are_retried_until_success() {
    let server = Scripted::start(vec![
        answer(503, "{}"),
        answer(429, "{}"),
        answer(500, "{}"),
        answer(200, REPORT),
    ])
    .await;
    let report = client(&server).report(&run_id(), &batch()).await.unwrap();
    assert_eq!(report.last_seq, 3);
    assert_eq!(server.seen().len(), 4);
}

#[tokio::test]
async fn retries_stop_after_the_last_attempt() {
    let server = Scripted::start(vec![answer(
        502,
        r#"{"title":"Bad Gateway","detail":"upstream down"}"#,
    )])
    .await;
    let error = client(&server)
        .report(&run_id(), &batch())
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(502));
    assert_eq!(server.seen().len(), 5);
}

#[tokio::test]
async fn an_unreachable_api_is_a_connection_error_after_retries() {
    let url = unreachable_url();
    let client = WorkerClient::new(&url, "t")
        .unwrap()
        .with_retry(fast_retry());
    let started = std::time::Instant::now();
    let error = client.report(&run_id(), &batch()).await.unwrap_err();
    assert!(
        matches!(error, WorkerClientError::Connection { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with(&format!("cannot reach {url}/worker/runs/")),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn uploads_stream_the_body_with_its_length_and_no_token() {
    let server = Scripted::start(vec![answer(200, "")]).await;
    let chunks = vec![
        Ok(Bytes::from_static(b"hello ")),
        Ok(Bytes::from_static(b"world")),
    ];
    let url = signed(format!("{}/blobs/k?signature=s", server.url));
    client(&server)
        .upload(&url, futures::stream::iter(chunks), 11)
        .await
        .unwrap();
    let seen = &server.seen()[0];
    assert_eq!(seen.method, "PUT");
    assert_eq!(seen.path, "/blobs/k?signature=s");
    assert_eq!(seen.body, b"hello world");
    assert_eq!(seen.header("content-length"), Some("11"));
    assert_eq!(seen.header("authorization"), None);
}

#[tokio::test]
async fn a_failed_upload_is_not_retried_by_the_client() {
    let server = Scripted::start(vec![answer(500, "{}")]).await;
    let url = signed(format!("{}/blobs/k", server.url));
    let body = futures::stream::iter(vec![Ok(Bytes::from_static(b"x"))]);
    let error = client(&server).upload(&url, body, 1).await.unwrap_err();
    assert_eq!(error.status(), Some(500));
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn downloads_stream_the_bytes_without_a_token() {
    let mut blob = answer(200, "the task spec");
    blob.content_type = "application/octet-stream";
    let server = Scripted::start(vec![answer(503, "{}"), blob]).await;
    let url = signed(format!("{}/blobs/spec?signature=s", server.url));
    let mut stream = client(&server).download(&url).await.unwrap();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(bytes, b"the task spec");
    let seen = server.seen();
    assert_eq!(seen.len(), 2, "a 503 before the body starts is retried");
    assert!(seen.iter().all(|s| s.header("authorization").is_none()));
}

#[tokio::test]
async fn a_signature_never_appears_in_an_error_message() {
    let server = Scripted::start(vec![answer(
        403,
        r#"{"title":"Forbidden","detail":"expired"}"#,
    )])
    .await;
    let url = signed(format!("{}/blobs/spec?signature=very-secret", server.url));
    let error = match client(&server).download(&url).await {
        Ok(_) => panic!("expected an error"),
        Err(error) => error,
    };
    assert!(!format!("{error} {error:?}").contains("very-secret"));
}

#[tokio::test]
async fn a_signature_never_appears_in_a_connection_error() {
    let base = unreachable_url();
    let client = WorkerClient::new(&base, "t")
        .unwrap()
        .with_retry(fast_retry());
    let url = signed(format!("{base}/blobs/spec?signature=very-secret"));
    let error = match client.download(&url).await {
        Ok(_) => panic!("expected an error"),
        Err(error) => error,
    };
    assert!(matches!(error, WorkerClientError::Connection { .. }));
    let mut text = format!("{error} {error:?}");
    let mut source = std::error::Error::source(&error);
    while let Some(inner) = source {
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    assert!(!text.contains("very-secret"), "{text}");
}
