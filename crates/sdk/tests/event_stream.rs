//! `EventStream` against a scripted SSE server: events and the end are decoded, a
//! dropped connection is resumed with `Last-Event-ID` (events sent again are dropped, a
//! message cut in half is asked for again), 5xx is retried while 4xx is not, retries
//! give up after the policy's attempts, and unknown message types are ignored.
//! (Against the real server through a connection-cutting proxy: the API's tests.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tlao_domain::{RunId, Ulid};
use tlao_sdk::wire::{LogStreamName, RunEventMessage, RunStatusName, StreamEndMessage};
use tlao_sdk::{EventStream, EventStreamError, EventStreamItem, RetryPolicy, stream_run_events};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One scripted answer to one connection.
#[derive(Clone)]
enum Answer {
    /// `200 text/event-stream` with this body, then close.
    Sse(String),
    /// This status with a problem body.
    Problem(u16),
    /// `200` with another content type.
    Html,
}

/// A server answering connections from a script (the last answer repeats), recording
/// each request's head.
struct Scripted {
    url: String,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    async fn start(script: Vec<Answer>) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let heads = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let recorded = heads.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut head = Vec::new();
                let mut chunk = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = socket.read(&mut chunk).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    head.extend_from_slice(&chunk[..n]);
                }
                recorded
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).to_lowercase());
                let answer = {
                    let mut script = script.lock().unwrap();
                    if script.len() > 1 {
                        script.pop_front().unwrap()
                    } else {
                        script.front().unwrap().clone()
                    }
                };
                let response = match answer {
                    Answer::Sse(body) => format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n{body}"
                    ),
                    Answer::Problem(status) => {
                        let body = format!(
                            r#"{{"type":"urn:tlao:problem:x","title":"Nope","status":{status},"detail":"not for you","requestId":"req_1"}}"#
                        );
                        format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    }
                    Answer::Html => "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi".to_owned(),
                };
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        Scripted { url, heads }
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    fn stream(&self, after: u64) -> EventStream {
        stream_run_events(&self.url, "user-token", &run_id(), after)
            .unwrap()
            .with_reconnect(fast(5))
    }
}

fn fast(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        attempts,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
    }
}

fn run_id() -> RunId {
    RunId::new(Ulid::from_parts(1_700_000_000_000, 1))
}

fn log(seq: u64) -> String {
    format!(
        "id: {seq}\nevent: log\ndata: {{\"seq\":{seq},\"at\":\"2026-11-26T10:00:00.000Z\",\"type\":\"log\",\"stream\":\"stdout\",\"text\":\"line {seq}\"}}\n\n"
    )
}

fn end(last_seq: u64) -> String {
    format!(
        "id: {last_seq}\nevent: end\ndata: {{\"status\":\"completed\",\"lastSeq\":{last_seq}}}\n\n"
    )
}

/// Every item until the stream stops, or the error that stopped it.
async fn collect(stream: EventStream) -> Vec<Result<EventStreamItem, EventStreamError>> {
    tokio::time::timeout(Duration::from_secs(30), stream.into_stream().collect())
        .await
        .expect("the stream stops in time")
}

fn seqs(items: &[Result<EventStreamItem, EventStreamError>]) -> Vec<u64> {
    items
        .iter()
        .filter_map(|item| match item {
            Ok(EventStreamItem::Event(event)) => Some(event.seq()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn events_and_the_end_are_decoded_and_the_request_carries_the_token() {
    let server = Scripted::start(vec![Answer::Sse(format!(
        ": keep-alive\n\n{}{}{}",
        log(1),
        log(2),
        end(2)
    ))])
    .await;
    let items = collect(server.stream(0)).await;
    assert_eq!(seqs(&items), [1, 2]);
    let Some(Ok(EventStreamItem::Event(first))) = items.first() else {
        panic!("{items:?}");
    };
    assert!(
        matches!(first, RunEventMessage::Log { stream: LogStreamName::Stdout, text, .. } if text == "line 1"),
        "{first:?}"
    );
    assert!(matches!(
        items.last(),
        Some(Ok(EventStreamItem::End(StreamEndMessage {
            status: RunStatusName::Completed,
            last_seq: 2
        })))
    ));
    let heads = server.heads();
    assert_eq!(heads.len(), 1);
    assert!(heads[0].starts_with(&format!("get /runs/{}/events ", run_id()).to_lowercase()));
    assert!(heads[0].contains("authorization: bearer user-token"));
    assert!(heads[0].contains("accept: text/event-stream"));
    assert!(!heads[0].contains("last-event-id"));
}

#[tokio::test]
async fn a_dropped_connection_resumes_after_the_last_event_and_drops_what_is_sent_again() {
    let cut_mid_message = format!("{}{}id: 3\nevent: log\ndata: {{\"seq\":3,", log(1), log(2));
    let server = Scripted::start(vec![
        Answer::Sse(cut_mid_message),
        Answer::Sse(format!("{}{}{}{}", log(2), log(3), log(4), end(4))),
    ])
    .await;
    let stream = server.stream(0);
    let items = collect(stream).await;
    assert_eq!(seqs(&items), [1, 2, 3, 4]);
    assert!(matches!(items.last(), Some(Ok(EventStreamItem::End(_)))));
    let heads = server.heads();
    assert_eq!(heads.len(), 2);
    assert!(heads[1].contains("last-event-id: 2\r\n"), "{}", heads[1]);
}

#[tokio::test]
async fn a_stream_started_after_a_sequence_number_asks_for_what_follows_it() {
    let server = Scripted::start(vec![Answer::Sse(format!("{}{}", log(8), end(8)))]).await;
    let items = collect(server.stream(7)).await;
    assert_eq!(seqs(&items), [8]);
    assert!(server.heads()[0].contains("last-event-id: 7\r\n"));
}

#[tokio::test]
async fn server_errors_are_retried() {
    let server = Scripted::start(vec![
        Answer::Problem(503),
        Answer::Problem(502),
        Answer::Sse(format!("{}{}", log(1), end(1))),
    ])
    .await;
    let mut stream = server.stream(0);
    assert!(matches!(
        stream.next().await,
        Some(Ok(EventStreamItem::Event(_)))
    ));
    assert!(matches!(
        stream.next().await,
        Some(Ok(EventStreamItem::End(_)))
    ));
    assert!(stream.next().await.is_none());
    assert_eq!(stream.connections(), 3);
}

#[tokio::test]
async fn client_errors_end_the_stream_at_once() {
    for status in [401, 403, 404] {
        let server = Scripted::start(vec![Answer::Problem(status)]).await;
        let mut stream = server.stream(0);
        match stream.next().await {
            Some(Err(EventStreamError::Api {
                status: got,
                detail,
                request_id,
                ..
            })) => {
                assert_eq!(got, status);
                assert_eq!(detail, "not for you");
                assert_eq!(request_id.as_deref(), Some("req_1"));
            }
            other => panic!("{status}: {other:?}"),
        }
        assert!(stream.next().await.is_none());
        assert_eq!(server.heads().len(), 1, "{status} is not retried");
    }
}

#[tokio::test]
async fn a_server_that_keeps_dropping_without_progress_is_given_up_on() {
    let server = Scripted::start(vec![Answer::Sse(String::new())]).await;
    let stream = server.stream(0).with_reconnect(fast(3));
    let items = collect(stream).await;
    assert_eq!(items.len(), 1);
    assert!(
        matches!(&items[0], Err(EventStreamError::Connection { .. })),
        "{items:?}"
    );
    assert_eq!(server.heads().len(), 3);
}

#[tokio::test]
async fn progress_resets_the_failure_count() {
    // Five connections that each deliver one event, with a policy of two attempts.
    let script: Vec<Answer> = (1..=5)
        .map(|seq| Answer::Sse(log(seq)))
        .chain([Answer::Sse(end(5))])
        .collect();
    let server = Scripted::start(script).await;
    let items = collect(server.stream(0).with_reconnect(fast(2))).await;
    assert_eq!(seqs(&items), [1, 2, 3, 4, 5]);
    assert!(matches!(items.last(), Some(Ok(EventStreamItem::End(_)))));
}

#[tokio::test]
async fn unknown_message_types_are_ignored_and_bad_data_is_a_protocol_error() {
    let server = Scripted::start(vec![Answer::Sse(format!(
        "event: hint\ndata: {{\"new\":true}}\n\n{}event: log\ndata: not json\n\n",
        log(1)
    ))])
    .await;
    let items = collect(server.stream(0)).await;
    assert_eq!(seqs(&items), [1]);
    assert!(matches!(
        items.last(),
        Some(Err(EventStreamError::Protocol { .. }))
    ));
}

#[tokio::test]
async fn an_answer_that_is_not_an_event_stream_is_a_protocol_error() {
    let server = Scripted::start(vec![Answer::Html]).await;
    let items = collect(server.stream(0)).await;
    assert!(matches!(
        items.as_slice(),
        [Err(EventStreamError::Protocol { .. })]
    ));
}
