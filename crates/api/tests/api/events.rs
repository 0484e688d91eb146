//! `GET /runs/{id}/events`: replay then live with no gap and no duplicate at the seam
//! while workers post, resuming with `Last-Event-ID` or `?after=`, one `end` event and a
//! close for every final status, streams on a second API instance over the same SQLite
//! file, the log cap's truncation marker, a subscriber that does not read, and the
//! errors (400, 401, 403, 404).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::sync::Arc;

use common::streams::{
    Leased, SecondInstance, SseReader, check_sequence, complete, data, leased_run, open_stream,
    post_logs,
};
use common::{Options, TestApp, error_fields, problem};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tlao_adapters_local::SqliteTable;
use tlao_domain::Guardrails;
use tlao_ports::Table;
use tokio::sync::Notify;

async fn stream(app: &TestApp, token: &str, run_id: &str) -> SseReader {
    SseReader::new(open_stream(&app.client, &app.address, token, run_id, "", None).await)
}

fn lines(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}-{i}")).collect()
}

/// The texts of the log events among `events`, in order.
fn log_texts(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == "log")
        .map(|e| e["text"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replay_then_live_has_no_gap_and_no_duplicate_while_two_workers_post_ten_thousand_events() {
    const PER_POSTER: usize = 5_000;
    const BATCH: usize = 50;
    let app = TestApp::spawn().await;
    let user = app.user("alice").await;
    let run = leased_run(&app, &user).await;
    let halfway = Notify::new();

    // Two posters race batches on the same run (the sequence is assigned atomically);
    // one subscriber is there from the start, another connects half way through.
    let poster = |name: &'static str| {
        let (app, run, halfway) = (&app, &run, &halfway);
        async move {
            for batch in 0..PER_POSTER / BATCH {
                post_logs(app, run, &lines(name, batch * BATCH..(batch + 1) * BATCH)).await;
                if name == "a" && batch == PER_POSTER / BATCH / 2 {
                    halfway.notify_one();
                }
            }
        }
    };
    let posting = async {
        tokio::join!(poster("a"), poster("b"));
        complete(&app, &run, "completed").await;
    };
    let early = async {
        let mut reader = stream(&app, &user.token, &run.run_id).await;
        reader.until_end().await
    };
    let late = async {
        halfway.notified().await;
        let mut reader = stream(&app, &user.token, &run.run_id).await;
        reader.until_end().await
    };
    let ((), early, late) = tokio::join!(posting, early, late);

    for messages in [early, late] {
        let (events, end) = check_sequence(&messages, 0);
        // queued, running, 10,000 lines, completed.
        assert_eq!(events.len(), 2 * PER_POSTER + 3);
        assert_eq!(
            end,
            json!({"status": "completed", "lastSeq": 2 * PER_POSTER + 3})
        );
        let texts = log_texts(&events);
        for name in ["a", "b"] {
            let mine: Vec<String> = texts
                .iter()
                .filter(|t| t.starts_with(&format!("{name}-")))
                .cloned()
                .collect();
            assert_eq!(mine, lines(name, 0..PER_POSTER), "poster {name}'s lines");
        }
    }
}

#[tokio::test]
async fn a_stream_resumes_after_last_event_id_or_the_after_parameter() {
    let app = TestApp::spawn().await;
    let user = app.user("alice").await;
    let run = leased_run(&app, &user).await;
    post_logs(&app, &run, &lines("line", 0..5)).await; // seq 3..=7
    complete(&app, &run, "completed").await; // seq 8

    let resume = |query: &'static str, header: Option<&'static str>| {
        let (app, user, run) = (&app, &user, &run);
        async move {
            let response = open_stream(
                &app.client,
                &app.address,
                &user.token,
                &run.run_id,
                query,
                header,
            )
            .await;
            SseReader::new(response).until_end().await
        }
    };
    for (query, header) in [("", Some("4")), ("?after=4", None), ("?after=1", Some("4"))] {
        let messages = resume(query, header).await;
        let (events, end) = check_sequence(&messages, 4);
        assert_eq!(
            log_texts(&events),
            lines("line", 2..5),
            "{query} {header:?}"
        );
        assert_eq!(end["lastSeq"], 8);
    }
    // An empty Last-Event-ID is no resume point; resuming at the end gets only the end.
    let messages = resume("?after=3", Some("")).await;
    check_sequence(&messages, 3);
    let messages = resume("", Some("8")).await;
    assert_eq!(messages.len(), 1);
    check_sequence(&messages, 8);
}

/// Streams a running run live, ends it with `finish`, and checks the stream ends with
/// the `final_status` event, one `end` event carrying it, and a close.
async fn assert_live_stream_ends<F, Fut>(final_status: &str, finish: F)
where
    F: FnOnce(TestApp, Leased, common::TestUser) -> Fut,
    Fut: std::future::Future<Output = TestApp>,
{
    let app = TestApp::spawn().await;
    let user = app.user("alice").await;
    let run = leased_run(&app, &user).await;
    post_logs(&app, &run, &lines("line", 0..3)).await; // seq 3..=5
    let mut reader = stream(&app, &user.token, &run.run_id).await;
    // The replay arrives before the run ends, so the rest is live.
    for seq in 1..=5 {
        assert_eq!(data(&reader.next().await.unwrap())["seq"], seq);
    }
    let app = finish(app, run.clone(), user.clone()).await;
    let messages = reader.until_end().await;
    let (events, end) = check_sequence(&messages, 5);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "status");
    assert_eq!(events[0]["status"], final_status);
    assert_eq!(end, json!({"status": final_status, "lastSeq": 6}));

    // Once finished, a new stream replays everything and closes at once.
    let messages = stream(&app, &user.token, &run.run_id)
        .await
        .until_end()
        .await;
    let (events, end) = check_sequence(&messages, 0);
    assert_eq!(events.len(), 6);
    assert_eq!(end["status"], final_status);
}

#[tokio::test]
async fn a_completed_run_ends_its_stream_with_one_end_event_and_a_close() {
    assert_live_stream_ends("completed", |app, run, _| async move {
        complete(&app, &run, "completed").await;
        app
    })
    .await;
}

#[tokio::test]
async fn a_failed_run_ends_its_stream_with_one_end_event_and_a_close() {
    assert_live_stream_ends("failed", |app, run, _| async move {
        complete(&app, &run, "failed").await;
        app
    })
    .await;
}

#[tokio::test]
async fn a_timed_out_run_ends_its_stream_with_one_end_event_and_a_close() {
    assert_live_stream_ends("timed_out", |app, run, _| async move {
        complete(&app, &run, "timed_out").await;
        app
    })
    .await;
}

#[tokio::test]
async fn a_cancelled_run_ends_its_stream_with_one_end_event_and_a_close() {
    assert_live_stream_ends("cancelled", |app, run, user| async move {
        let response = app
            .post(
                &format!("/runs/{}/cancel", run.run_id),
                &user.token,
                &json!({}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        app
    })
    .await;
}

#[tokio::test]
async fn a_run_cancelled_while_queued_streams_queued_cancelled_and_the_end() {
    let app = TestApp::spawn().await;
    let user = app.user("alice").await;
    let run_id = app.run(&user).await;
    let mut reader = stream(&app, &user.token, &run_id).await;
    assert_eq!(data(&reader.next().await.unwrap())["status"], "queued");
    let response = app
        .post(&format!("/runs/{run_id}/cancel"), &user.token, &json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let messages = reader.until_end().await;
    let (events, end) = check_sequence(&messages, 1);
    assert_eq!(events[0]["status"], "cancelled");
    assert_eq!(end, json!({"status": "cancelled", "lastSeq": 2}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_on_a_second_instance_over_the_same_sqlite_file_sees_events_posted_to_the_first() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("shared.db");
    let table_a: Arc<dyn Table> = Arc::new(SqliteTable::open(&path).await.unwrap());
    let table_b: Arc<dyn Table> = Arc::new(SqliteTable::open(&path).await.unwrap());
    let app = TestApp::spawn_with(Options {
        table: Some(table_a),
        ..Options::default()
    })
    .await;
    let other = SecondInstance::spawn(table_b, Guardrails::default());
    let user = app.user("alice").await;
    let run = leased_run(&app, &user).await;

    let response = open_stream(
        &app.client,
        &other.address,
        &user.token,
        &run.run_id,
        "",
        None,
    )
    .await;
    let mut reader = SseReader::new(response);
    for seq in 1..=2 {
        assert_eq!(data(&reader.next().await.unwrap())["seq"], seq);
    }
    // Posted to the first instance only: the second sees them by polling the table.
    for batch in 0..4 {
        post_logs(&app, &run, &lines("a", batch * 10..(batch + 1) * 10)).await;
        let message = reader.next().await.unwrap();
        assert_eq!(data(&message)["text"], format!("a-{}", batch * 10));
        for _ in 1..10 {
            reader.next().await.unwrap();
        }
    }
    complete(&app, &run, "completed").await;
    let messages = reader.until_end().await;
    let (events, end) = check_sequence(&messages, 42);
    assert_eq!(events[0]["status"], "completed");
    assert_eq!(end["lastSeq"], 43);

    // And the whole history replays from the second instance.
    let response = open_stream(
        &app.client,
        &other.address,
        &user.token,
        &run.run_id,
        "",
        None,
    )
    .await;
    let messages = SseReader::new(response).until_end().await;
    let (events, _) = check_sequence(&messages, 0);
    assert_eq!(log_texts(&events), lines("a", 0..40));
}

#[tokio::test]
async fn past_the_log_cap_the_stream_shows_one_truncated_marker_and_no_more_lines() {
    let app = TestApp::with_guardrails(Guardrails {
        max_log_bytes: 24,
        ..Guardrails::default()
    })
    .await;
    let user = app.user("alice").await;
    let run = leased_run(&app, &user).await;
    let mut reader = stream(&app, &user.token, &run.run_id).await;
    // Each line costs 8 bytes ("line-N" and a newline): three fit under 24.
    post_logs(&app, &run, &lines("line-", 0..5)).await;
    post_logs(&app, &run, &lines("line-", 5..9)).await;
    complete(&app, &run, "completed").await;

    let messages = reader.until_end().await;
    let (events, end) = check_sequence(&messages, 0);
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "status",
            "status",
            "log",
            "log",
            "log",
            "truncated",
            "status"
        ]
    );
    assert_eq!(messages[5].event, "truncated");
    assert_eq!(events[5]["maxLogBytes"], 24);
    assert_eq!(log_texts(&events), lines("line-", 0..3));
    assert_eq!(end["lastSeq"], 7);

    let run: Value = app
        .get_json(&format!("/runs/{}", run.run_id), &user.token)
        .await;
    assert_eq!(run["logsTruncated"], true);
    assert_eq!(run["droppedLogBytes"], 6 * 8);
    assert_eq!(run["logs"], "line--0\nline--1\nline--2\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscriber_that_reads_nothing_neither_blocks_the_worker_nor_misses_an_event() {
    const BATCHES: usize = 100;
    const BATCH: usize = 90;
    let app = TestApp::with_guardrails(Guardrails {
        max_log_bytes: 64 << 20,
        ..Guardrails::default()
    })
    .await;
    let user = app.user("alice").await;
    let run = leased_run(&app, &user).await;
    // Opened, then left unread while the worker posts about 5 MB: more than the bus
    // and, typically, the socket buffers hold.
    let mut stalled = stream(&app, &user.token, &run.run_id).await;
    let long = "x".repeat(500);
    for batch in 0..BATCHES {
        let texts: Vec<String> = (0..BATCH)
            .map(|i| format!("{}-{long}", batch * BATCH + i))
            .collect();
        post_logs(&app, &run, &texts).await;
    }
    complete(&app, &run, "completed").await;
    let messages = stalled.until_end().await;
    let (events, end) = check_sequence(&messages, 0);
    assert_eq!(events.len(), BATCHES * BATCH + 3);
    assert_eq!(end["status"], "completed");
}

#[tokio::test]
async fn an_idle_stream_sends_keep_alive_comments() {
    let app = TestApp::spawn().await;
    let user = app.user("alice").await;
    let run_id = app.run(&user).await;
    let mut reader = stream(&app, &user.token, &run_id).await;
    assert_eq!(data(&reader.next().await.unwrap())["status"], "queued");
    // The first keep-alive goes out as soon as the stream has nothing to send, then
    // one every 15 seconds.
    let messages = reader.read_until_raw(": keep-alive\n\n").await;
    assert!(messages.is_empty(), "{messages:?}");
}

#[tokio::test]
async fn the_stream_refuses_missing_tokens_non_members_and_unknown_runs() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let mallory = app.user("mallory").await;
    let run_id = app.run(&alice).await;

    let anonymous = app
        .client
        .get(app.url(&format!("/runs/{run_id}/events")))
        .send()
        .await
        .unwrap();
    assert!(anonymous.headers().contains_key("www-authenticate"));
    problem(anonymous, StatusCode::UNAUTHORIZED).await;

    let response = open_stream(&app.client, &app.address, &mallory.token, &run_id, "", None).await;
    problem(response, StatusCode::FORBIDDEN).await;

    let unknown = "run_01ARZ3NDEKTSV4RRFFQ69G5FAV";
    let response = open_stream(&app.client, &app.address, &alice.token, unknown, "", None).await;
    problem(response, StatusCode::NOT_FOUND).await;

    let response = open_stream(&app.client, &app.address, &alice.token, "nope", "", None).await;
    let body = problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error_fields(&body), ["runId"]);
}

#[tokio::test]
async fn a_malformed_resume_point_is_a_400_naming_it() {
    let app = TestApp::spawn().await;
    let user = app.user("alice").await;
    let run_id = app.run(&user).await;
    for (query, header, field) in [
        ("?after=abc", None, "after"),
        ("?after=-1", None, "after"),
        ("?after=1.5", None, "after"),
        ("", Some("seven"), "Last-Event-ID"),
        ("?after=2", Some("-3"), "Last-Event-ID"),
        // Last-Event-ID wins over `after`, but a malformed `after` is still refused.
        ("?after=abc", Some("2"), "after"),
        ("?after=18446744073709551616", Some("0"), "after"),
        // The document's `after` is an int64: one past its largest is refused, the
        // largest is not (below).
        ("?after=9223372036854775808", Some("4"), "after"),
    ] {
        let response = open_stream(
            &app.client,
            &app.address,
            &user.token,
            &run_id,
            query,
            header,
        )
        .await;
        let body = problem(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(error_fields(&body), [field], "{query} {header:?}");
    }
    let response = open_stream(
        &app.client,
        &app.address,
        &user.token,
        &run_id,
        "?after=x",
        Some("y"),
    )
    .await;
    let body = problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error_fields(&body), ["Last-Event-ID", "after"]);
    let response = open_stream(
        &app.client,
        &app.address,
        &user.token,
        &run_id,
        "?after=9223372036854775807",
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}
