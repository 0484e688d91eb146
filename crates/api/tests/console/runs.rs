//! The runs list, a run's page and its log (cut when long, whole in `log.txt`),
//! cancelling, and the cookie-authenticated event stream.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use serde_json::Value;

use crate::common::{TestApp, TestUser};
use crate::support::{browser, html_page, run_status, sign_in};

#[tokio::test]
async fn cancelling_with_the_token_cancels_and_returns_to_the_run() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let run_id = app.run(&alice).await;
    let session = sign_in(&app, &alice).await;

    let response = session
        .post(
            &app,
            &format!("/console/runs/{run_id}/cancel"),
            &[("csrf", &session.csrf)],
        )
        .await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()[LOCATION].to_str().unwrap(),
        format!("/console/runs/{run_id}")
    );
    assert_eq!(run_status(&app, &alice, &run_id).await, "cancelled");
}

#[tokio::test]
async fn a_foreign_workspaces_run_shows_the_403_page() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let run_id = app.run(&alice).await;
    let session = sign_in(&app, &bob).await;

    let page = html_page(
        session.get(&app, &format!("/console/runs/{run_id}")).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(page.contains("This run belongs to a workspace you are not a member of."));
    assert!(!page.contains("plan the work"), "the prompt is not shown");

    let events = session
        .get(&app, &format!("/console/runs/{run_id}/events"))
        .await;
    assert_eq!(events.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_run_events_stream_needs_the_session_cookie() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let run_id = app.run(&alice).await;
    let session = sign_in(&app, &alice).await;
    let path = format!("/console/runs/{run_id}/events");

    let anonymous = browser().get(app.url(&path)).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    // A bearer token is not a console session.
    let bearer = app.get(&path, &alice.token).send().await.unwrap();
    assert_eq!(bearer.status(), StatusCode::UNAUTHORIZED);

    let mut stream = session.get(&app, &path).await;
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(
        stream.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let first = stream.chunk().await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&first);
    assert!(text.contains("event: status"), "{text}");
    assert!(text.contains("\"queued\""), "{text}");
}

#[tokio::test]
async fn the_runs_list_pages_and_filters_by_task_type() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    for _ in 0..27 {
        app.run(&alice).await;
    }
    let doc_task = app.task_of_type(&alice, "doc.write").await;
    let doc_run: Value = app
        .create_run(&alice, &doc_task)
        .await
        .json()
        .await
        .unwrap();
    let doc_run = doc_run["runId"].as_str().unwrap().to_owned();
    let session = sign_in(&app, &alice).await;

    let first = html_page(session.get(&app, "/console/runs").await, StatusCode::OK).await;
    assert_eq!(first.matches("href=\"/console/runs/run_").count(), 25);
    assert!(first.contains(&doc_run), "newest first");
    let next = first
        .split('"')
        .find(|part| part.starts_with("/console/runs?cursor=run_"))
        .expect("a next page link")
        .to_owned();
    let second = html_page(session.get(&app, &next).await, StatusCode::OK).await;
    assert_eq!(second.matches("href=\"/console/runs/run_").count(), 3);
    assert!(!second.contains("rel=\"next\""));

    let docs = html_page(
        session
            .get(&app, "/console/runs?type=doc.write&executor=kiro")
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(docs.matches("href=\"/console/runs/run_").count(), 1);
    assert!(docs.contains(&doc_run));
}

/// A run of `user` that a worker ran to completion after logging `lines` stdout lines
/// (`line 0`, `line 1`, …).
async fn finished_run_with_log(app: &TestApp, user: &TestUser, lines: usize) -> String {
    let run_id = app.run(user).await;
    let (leased, lease) = app.lease().await;
    assert_eq!(leased, run_id);
    let all: Vec<usize> = (0..lines).collect();
    for batch in all.chunks(500) {
        let events: Vec<Value> = batch
            .iter()
            .map(|i| serde_json::json!({"type": "log", "stream": "stdout", "text": format!("\u{1b}[1mline {i}\u{1b}[0m")}))
            .collect();
        let report = app
            .worker_post(
                &format!("/worker/runs/{run_id}/events"),
                &serde_json::json!({"leaseId": lease, "events": events}),
            )
            .await;
        assert_eq!(report.status(), StatusCode::OK);
    }
    let done = app
        .worker_post(
            &format!("/worker/runs/{run_id}/complete"),
            &serde_json::json!({"leaseId": lease, "status": "completed"}),
        )
        .await;
    assert!(done.status().is_success(), "{}", done.status());
    run_id
}

#[tokio::test]
async fn a_long_finished_log_says_it_is_cut_and_offers_the_whole_log() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let run_id = finished_run_with_log(&app, &alice, 5200).await;
    let session = sign_in(&app, &alice).await;

    let page = html_page(
        session.get(&app, &format!("/console/runs/{run_id}")).await,
        StatusCode::OK,
    )
    .await;
    // queued, running, 5,200 lines, completed: 5,203 events, 5,000 rendered.
    assert!(
        page.contains("First 5000 of 5203 lines shown."),
        "{}",
        &page[page.len().saturating_sub(400)..]
    );
    assert!(page.contains(&format!("href=\"/console/runs/{run_id}/log.txt\"")));
    assert!(!page.contains("line 5199"));

    let response = session
        .get(&app, &format!("/console/runs/{run_id}/log.txt"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[CONTENT_TYPE],
        "text/plain; charset=utf-8"
    );
    assert_eq!(
        response.headers()["content-disposition"].to_str().unwrap(),
        format!("attachment; filename=\"{run_id}.log.txt\"")
    );
    let text = response.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5200, "every kept log line");
    assert_eq!(lines[0], "line 0", "ANSI sequences are removed");
    assert_eq!(lines[5199], "line 5199");
}

#[tokio::test]
async fn a_short_log_is_shown_whole_without_a_notice() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let run_id = finished_run_with_log(&app, &alice, 3).await;
    let session = sign_in(&app, &alice).await;

    let page = html_page(
        session.get(&app, &format!("/console/runs/{run_id}")).await,
        StatusCode::OK,
    )
    .await;
    assert!(!page.contains("lines shown"));
    assert!(page.contains("line 2"));
    let text = session
        .get(&app, &format!("/console/runs/{run_id}/log.txt"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(text, "line 0\nline 1\nline 2\n");
}

#[tokio::test]
async fn a_foreign_runs_log_download_is_refused_with_403() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let run_id = finished_run_with_log(&app, &alice, 3).await;
    let session = sign_in(&app, &bob).await;

    let response = session
        .get(&app, &format!("/console/runs/{run_id}/log.txt"))
        .await;
    let page = html_page(response, StatusCode::FORBIDDEN).await;
    assert!(!page.contains("line 0"));

    let anonymous = browser()
        .get(app.url(&format!("/console/runs/{run_id}/log.txt")))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn cancelling_a_foreign_workspaces_run_is_refused_with_403() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let run_id = app.run(&alice).await;
    let session = sign_in(&app, &bob).await;

    let response = session
        .post(
            &app,
            &format!("/console/runs/{run_id}/cancel"),
            &[("csrf", &session.csrf)],
        )
        .await;

    let page = html_page(response, StatusCode::FORBIDDEN).await;
    assert!(page.contains("This run belongs to a workspace you are not a member of."));
    assert_eq!(run_status(&app, &alice, &run_id).await, "queued");
}

#[tokio::test]
async fn the_run_page_shows_the_agents_plan_its_tool_calls_once_each_and_its_usage() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let run_id = app.run(&alice).await;
    let (_, lease) = app.lease().await;
    let call = |status: &str, exit: Option<i32>| {
        let mut call = serde_json::json!({"id": "call-1", "title": "cargo test", "kind": "execute", "status": status});
        if let Some(code) = exit {
            call["exitCode"] = code.into();
        }
        serde_json::json!({"type": "tool_call", "call": call})
    };
    let events = serde_json::json!([
        {"type": "plan", "entries": [
            {"content": "read the code", "status": "completed"},
            {"content": "write the test", "status": "in_progress"}
        ]},
        call("pending", None),
        call("in_progress", None),
        {"type": "tool_call", "call": {"id": "call-2", "title": "Write NEW_FILE.md", "kind": "edit",
            "status": "failed", "paths": ["NEW_FILE.md"], "diff": "+3 -0"}},
        call("completed", Some(0)),
        {"type": "message", "text": "All tests pass."},
        {"type": "usage", "usage": {"kind": "reported", "summary": "1204 input / 318 output tokens",
            "inputTokens": 1204, "outputTokens": 318}}
    ]);
    let report = app
        .worker_post(
            &format!("/worker/runs/{run_id}/events"),
            &serde_json::json!({"leaseId": lease, "events": events}),
        )
        .await;
    assert_eq!(report.status(), StatusCode::OK);
    let session = sign_in(&app, &alice).await;

    let page = html_page(
        session.get(&app, &format!("/console/runs/{run_id}")).await,
        StatusCode::OK,
    )
    .await;

    let activity = &page[page
        .find("id=\"run-activity\"")
        .expect("an activity section")..];
    let activity = &activity[..activity.find("</section>").unwrap()];
    assert!(
        activity.starts_with("id=\"run-activity\" aria-labelledby=\"activity-title\">"),
        "shown: {activity}"
    );
    assert!(
        activity.contains("Tool calls (2)"),
        "each call once: {activity}"
    );
    assert_eq!(activity.matches("cargo test").count(), 1, "{activity}");
    assert!(
        activity.contains("tool-status-completed"),
        "its latest state: {activity}"
    );
    assert!(activity.contains("· exit 0"), "{activity}");
    assert!(
        activity.contains("NEW_FILE.md") && activity.contains("+3 -0"),
        "{activity}"
    );
    assert!(activity.contains("tool-status-failed"), "{activity}");
    assert!(
        activity.contains("☑") && activity.contains("read the code"),
        "{activity}"
    );
    assert!(
        activity.contains("◐") && activity.contains("write the test"),
        "{activity}"
    );
    assert!(
        activity.contains("Usage so far: </strong>1204 input / 318 output tokens"),
        "{activity}"
    );
    // The raw log still has every event, the agent's words among them.
    assert!(page.contains("All tests pass."));
    assert!(page.contains("▸ cargo test [pending]"));

    // A run whose agent reports none of it has no activity to show.
    let quiet = finished_run_with_log(&app, &alice, 2).await;
    let page = html_page(
        session.get(&app, &format!("/console/runs/{quiet}")).await,
        StatusCode::OK,
    )
    .await;
    assert!(
        page.contains("id=\"run-activity\" aria-labelledby=\"activity-title\" hidden"),
        "{page}"
    );
}

#[tokio::test]
async fn the_run_page_links_the_run_bundle_which_only_members_download() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let run_id = finished_run_with_log(&app, &alice, 3).await;
    let session = sign_in(&app, &alice).await;

    let page = html_page(
        session.get(&app, &format!("/console/runs/{run_id}")).await,
        StatusCode::OK,
    )
    .await;
    assert!(page.contains(&format!("href=\"/console/runs/{run_id}/bundle.tar.gz\"")));

    let response = session
        .get(&app, &format!("/console/runs/{run_id}/bundle.tar.gz"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/gzip");
    assert_eq!(
        response.headers()["content-disposition"].to_str().unwrap(),
        format!("attachment; filename=\"{run_id}.bundle.tar.gz\"")
    );
    let bytes = response.bytes().await.unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let names: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|entry| {
            entry
                .unwrap()
                .path()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(names[0], format!("{run_id}/manifest.json"), "{names:?}");
    assert!(
        names.contains(&format!("{run_id}/events.jsonl")),
        "{names:?}"
    );

    let outsider = sign_in(&app, &bob).await;
    let refused = outsider
        .get(&app, &format!("/console/runs/{run_id}/bundle.tar.gz"))
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}
