//! The dashboard: workspace usage against its limits.

use reqwest::StatusCode;

use crate::common::TestApp;
use crate::support::{html_page, sign_in};

#[tokio::test]
async fn the_dashboard_counts_todays_runs_against_the_quota() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    app.run(&alice).await;
    app.run(&alice).await;
    let session = sign_in(&app, &alice).await;

    let page = html_page(session.get(&app, "/console").await, StatusCode::OK).await;

    assert!(page.contains("2 of 100"), "runs today of the quota");
    assert!(page.contains("2 queued"));
    assert!(page.contains("0 of 2"), "running of the concurrency limit");
}

#[tokio::test]
async fn the_dashboard_shows_what_each_executor_is_granted_beyond_its_run() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let record = serde_json::json!({
        "name": "claude",
        "kind": "command",
        "taskTypes": ["code.change"],
        "config": {"command": ["claude", "-p", "{prompt}"]},
        "sandbox": {"readPaths": ["~/.claude"], "env": ["ANTHROPIC_API_KEY"], "network": {"tcpPorts": [443]}}
    });
    let registered = app
        .post("/executors", &app.admin.token, &record)
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
    let session = sign_in(&app, &alice).await;

    let page = html_page(session.get(&app, "/console").await, StatusCode::OK).await;

    assert!(page.contains("Sandbox grants"), "{page}");
    assert!(page.contains("<code>~/.claude</code>"), "{page}");
    assert!(page.contains("<code>ANTHROPIC_API_KEY</code>"), "{page}");
    assert!(page.contains("<code>TCP ports 443</code>"), "{page}");
}
