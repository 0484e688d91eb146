//! Requirement 13.2's budget, counted on the wire: the adapters pointed at a local HTTP
//! endpoint that fails every request, with the requests it received counted. A logical
//! table write through the orchestrator's store is exactly three DynamoDB requests
//! (the SDK retries nothing, conflicts included); an S3 request, which only the SDK
//! retries, is exactly three as well.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use tlao_domain::Key;
use tlao_orchestrator::{RetryPolicy, Store, StoreError};
use tlao_ports::{
    AttrValue, BlobError, BlobKey, BlobStore, Condition, Item, Table, TableError, WriteOp,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::connection::AwsConnection;
use crate::{DynamoTable, S3BlobStore};

/// One canned HTTP response.
#[derive(Clone)]
struct Answer {
    status: &'static str,
    content_type: &'static str,
    body: String,
}

impl Answer {
    /// A DynamoDB error as DynamoDB sends it (awsJson 1.0, the code in `__type`).
    fn dynamodb(status: &'static str, code: &str, extra: &str) -> Answer {
        Answer {
            status,
            content_type: "application/x-amz-json-1.0",
            body: format!(
                r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"{code} (test endpoint)"{extra}}}"#
            ),
        }
    }

    /// An S3 error as S3 sends it (REST-XML).
    fn s3(status: &'static str, code: &str) -> Answer {
        Answer {
            status,
            content_type: "application/xml",
            body: format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{code} (test endpoint)</Message><RequestId>TEST</RequestId></Error>"#
            ),
        }
    }
}

/// A loopback HTTP endpoint that answers every request with the same [`Answer`] and
/// counts the requests.
struct FailingEndpoint {
    url: String,
    requests: Arc<AtomicUsize>,
}

impl FailingEndpoint {
    async fn start(answer: Answer) -> FailingEndpoint {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, answer.clone(), counted.clone()));
            }
        });
        FailingEndpoint { url, requests }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    fn connection(&self) -> AwsConnection {
        AwsConnection::new(Some(self.url.clone()), Some("us-east-1".into()))
    }

    async fn table(&self) -> DynamoTable {
        let config = self.connection().test_sdk_config().await;
        DynamoTable::with_config(&config, "tlao-retry-budget")
    }

    async fn blobs(&self) -> S3BlobStore {
        let config = self.connection().test_sdk_config().await;
        S3BlobStore::with_config(&config, true, "tlao-retry-budget")
    }
}

/// Reads one request (head and `Content-Length` body), counts it, answers and closes.
async fn serve(mut stream: TcpStream, answer: Answer, requests: Arc<AtomicUsize>) {
    let mut received = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => received.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&received[..head_end]).to_ascii_lowercase();
    let header = |name: &str| {
        head.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
            .map(str::to_owned)
    };
    if header("expect").as_deref() == Some("100-continue") {
        let _ = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await;
    }
    let length: usize = header("content-length").map_or(0, |n| n.parse().unwrap());
    while received.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => received.extend_from_slice(&chunk[..n]),
        }
    }
    requests.fetch_add(1, Ordering::SeqCst);
    let response = format!(
        "HTTP/1.1 {}\r\ncontent-type: {}\r\ncontent-length: {}\r\nx-amzn-requestid: TEST\r\nconnection: close\r\n\r\n{}",
        answer.status,
        answer.content_type,
        answer.body.len(),
        answer.body
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn item() -> Item {
    Item::new(Key {
        pk: "WS#1".into(),
        sk: "META".into(),
    })
    .with("v", AttrValue::N(1))
}

/// The orchestrator's store over the table, with its default retry policy.
fn store(table: DynamoTable) -> Store {
    Store::new(Arc::new(table), RetryPolicy::default())
}

fn unavailable<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    match result {
        Err(StoreError::Unavailable(TableError::Transient(_))) => {}
        other => panic!("expected Unavailable(Transient), got {other:?}"),
    }
}

#[tokio::test]
async fn a_table_write_answered_with_a_server_error_every_time_is_sent_exactly_three_times() {
    let endpoint = FailingEndpoint::start(Answer::dynamodb(
        "500 Internal Server Error",
        "InternalServerError",
        "",
    ))
    .await;
    unavailable(
        store(endpoint.table().await)
            .put_item(item(), Some(Condition::NotExists))
            .await,
    );
    assert_eq!(endpoint.requests(), 3);
}

#[tokio::test]
async fn a_throttled_table_write_is_sent_exactly_three_times() {
    let endpoint = FailingEndpoint::start(Answer::dynamodb(
        "400 Bad Request",
        "ThrottlingException",
        "",
    ))
    .await;
    unavailable(store(endpoint.table().await).put_item(item(), None).await);
    assert_eq!(endpoint.requests(), 3);
}

#[tokio::test]
async fn a_table_write_that_always_conflicts_with_a_transaction_is_sent_exactly_three_times() {
    let endpoint = FailingEndpoint::start(Answer::dynamodb(
        "400 Bad Request",
        "TransactionConflictException",
        "",
    ))
    .await;
    unavailable(
        store(endpoint.table().await)
            .delete(&item().key, Some(Condition::Exists))
            .await,
    );
    assert_eq!(endpoint.requests(), 3);
}

#[tokio::test]
async fn a_transaction_always_cancelled_by_a_conflict_is_sent_exactly_three_times() {
    let endpoint = FailingEndpoint::start(Answer::dynamodb(
        "400 Bad Request",
        "TransactionCanceledException",
        r#","CancellationReasons":[{"Code":"None"},{"Code":"TransactionConflict","Message":"Transaction is ongoing for the item"}]"#,
    ))
    .await;
    let other = Item::new(Key {
        pk: "WS#1".into(),
        sk: "OTHER".into(),
    });
    unavailable(
        store(endpoint.table().await)
            .transact(vec![
                WriteOp::Put {
                    item: item(),
                    condition: Some(Condition::NotExists),
                },
                WriteOp::Put {
                    item: other,
                    condition: None,
                },
            ])
            .await,
    );
    assert_eq!(endpoint.requests(), 3);
}

#[tokio::test]
async fn a_failed_condition_is_sent_once() {
    let endpoint = FailingEndpoint::start(Answer::dynamodb(
        "400 Bad Request",
        "ConditionalCheckFailedException",
        "",
    ))
    .await;
    let result = store(endpoint.table().await)
        .put_item(item(), Some(Condition::NotExists))
        .await;
    assert!(
        matches!(result, Err(StoreError::ConditionFailed { op: 0 })),
        "{result:?}"
    );
    assert_eq!(endpoint.requests(), 1);
}

#[tokio::test]
async fn a_table_call_alone_is_one_request() {
    let endpoint = FailingEndpoint::start(Answer::dynamodb(
        "500 Internal Server Error",
        "InternalServerError",
        "",
    ))
    .await;
    let result = endpoint.table().await.put(item(), None).await;
    assert!(
        matches!(result, Err(TableError::Transient(_))),
        "{result:?}"
    );
    assert_eq!(endpoint.requests(), 1);
}

fn blob_key() -> BlobKey {
    BlobKey::parse("workspaces/ws_1/runs/run_1/taskspec.json").unwrap()
}

fn transient<T: std::fmt::Debug>(result: Result<T, BlobError>) {
    match result {
        Err(BlobError::Transient(_)) => {}
        other => panic!("expected Transient, got {other:?}"),
    }
}

#[tokio::test]
async fn a_blob_write_answered_with_a_server_error_every_time_is_sent_exactly_three_times() {
    let endpoint =
        FailingEndpoint::start(Answer::s3("500 Internal Server Error", "InternalError")).await;
    transient(
        endpoint
            .blobs()
            .await
            .put(&blob_key(), Bytes::from_static(b"{}"), "application/json")
            .await,
    );
    assert_eq!(endpoint.requests(), 3);
}

#[tokio::test]
async fn a_blob_write_told_to_slow_down_every_time_is_sent_exactly_three_times() {
    let endpoint = FailingEndpoint::start(Answer::s3("503 Slow Down", "SlowDown")).await;
    transient(
        endpoint
            .blobs()
            .await
            .put(&blob_key(), Bytes::from_static(b"{}"), "application/json")
            .await,
    );
    assert_eq!(endpoint.requests(), 3);
}
