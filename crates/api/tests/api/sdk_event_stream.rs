//! The SDK's `EventStream` against the real server, through a proxy that cuts the
//! connection after a number of bytes (inside the response head, inside a message,
//! between messages) several times while a worker keeps posting: the client resumes
//! each time and receives every event exactly once, in order, then the end.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::TestApp;
use common::streams::{complete, leased_run, post_logs};
use futures::StreamExt;
use tlao_domain::{RunId, RunStatus};
use tlao_sdk::wire::RunEventMessage;
use tlao_sdk::{EventStreamError, EventStreamItem, RetryPolicy, stream_run_events};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Forwards connections to `upstream`; the `n`-th connection is cut after `cuts[n]`
/// bytes from the server, later ones are left alone.
struct CuttingProxy {
    url: String,
    connections: Arc<AtomicUsize>,
}

impl CuttingProxy {
    async fn start(upstream: SocketAddr, cuts: Vec<usize>) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        tokio::spawn(async move {
            loop {
                let (client, _) = listener.accept().await.unwrap();
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let limit = cuts.get(n).copied();
                tokio::spawn(forward(client, upstream, limit));
            }
        });
        CuttingProxy { url, connections }
    }
}

async fn forward(client: TcpStream, upstream: SocketAddr, limit: Option<usize>) {
    let server = TcpStream::connect(upstream).await.unwrap();
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up = tokio::io::copy(&mut client_read, &mut server_write);
    let down = async {
        let mut remaining = limit.unwrap_or(usize::MAX);
        let mut buffer = vec![0u8; 8192];
        while remaining > 0 {
            let n = match server_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n.min(remaining),
            };
            if client_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
            remaining -= n;
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
    // Dropping both halves of both sockets cuts the connection.
}

fn fast_reconnect() -> RetryPolicy {
    RetryPolicy {
        attempts: 10,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
    }
}

fn lines(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("line {i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sdk_stream_survives_cut_connections_and_receives_every_event_once_in_order() {
    let app = TestApp::spawn().await;
    let user = app.user("alice").await;
    let run = leased_run(&app, &user).await;
    // 300 events stored before the stream starts, 300 posted while it runs.
    for batch in 0..10 {
        post_logs(&app, &run, &lines(batch * 30..(batch + 1) * 30)).await;
    }
    let upstream: SocketAddr = app.address.trim_start_matches("http://").parse().unwrap();
    let cuts = vec![40, 1_500, 777, 6_000, 20_000, 3_333];
    let proxy = CuttingProxy::start(upstream, cuts.clone()).await;
    let run_id: RunId = run.run_id.parse().unwrap();
    let stream = stream_run_events(&proxy.url, &user.token, &run_id, 0)
        .unwrap()
        .with_reconnect(fast_reconnect());

    let reading = async {
        tokio::time::timeout(
            Duration::from_secs(60),
            stream.into_stream().collect::<Vec<_>>(),
        )
        .await
        .expect("the stream ends in time")
    };
    let writing = async {
        for batch in 0..30 {
            post_logs(&app, &run, &lines(300 + batch * 10..310 + batch * 10)).await;
        }
        complete(&app, &run, "completed").await;
    };
    let (items, ()) = tokio::join!(reading, writing);

    let mut expected_seq = 1;
    let mut texts = Vec::new();
    let (last, events) = items.split_last().unwrap();
    for item in events {
        let Ok(EventStreamItem::Event(event)) = item else {
            panic!("{item:?}");
        };
        assert_eq!(event.seq(), expected_seq, "exactly once, in order");
        expected_seq += 1;
        if let RunEventMessage::Log { text, .. } = event {
            texts.push(text.clone());
        }
    }
    assert_eq!(texts, lines(0..600));
    let Ok(EventStreamItem::End(end)) = last else {
        panic!("{last:?}");
    };
    assert_eq!(end.status, RunStatus::Completed.into());
    // queued, running, 600 lines, completed.
    assert_eq!(end.last_seq, 603);
    assert_eq!(expected_seq, 604);
    assert!(
        proxy.connections.load(Ordering::SeqCst) > cuts.len(),
        "every cut forced a reconnection"
    );
}

#[tokio::test]
async fn the_sdk_stream_starts_after_a_sequence_number_and_reports_refusals_at_once() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let mallory = app.user("mallory").await;
    let run = leased_run(&app, &alice).await;
    post_logs(&app, &run, &lines(0..5)).await;
    complete(&app, &run, "failed").await;
    let run_id: RunId = run.run_id.parse().unwrap();

    let mut stream = stream_run_events(&app.address, &alice.token, &run_id, 5).unwrap();
    let mut seqs = Vec::new();
    while let Some(item) = stream.next().await {
        match item.unwrap() {
            EventStreamItem::Event(event) => seqs.push(event.seq()),
            EventStreamItem::End(end) => {
                assert_eq!(end.status, RunStatus::Failed.into());
                assert_eq!(end.last_seq, 8);
            }
        }
    }
    assert_eq!(seqs, [6, 7, 8]);
    assert_eq!(stream.last_seq(), 8);

    for (token, id, status) in [
        (&mallory.token, run_id.clone(), 403),
        (
            &alice.token,
            "run_01ARZ3NDEKTSV4RRFFQ69G5FAV".parse().unwrap(),
            404,
        ),
        (&"not-a-token".to_owned(), run_id.clone(), 401),
    ] {
        let mut refused = stream_run_events(&app.address, token, &id, 0).unwrap();
        let error = refused.next().await.unwrap().unwrap_err();
        assert!(
            matches!(error, EventStreamError::Api { status: s, .. } if s == status),
            "{error}"
        );
        assert_eq!(refused.connections(), 1);
        assert!(refused.next().await.is_none());
    }
}
