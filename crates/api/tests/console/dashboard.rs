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

#[tokio::test]
async fn executor_health_comes_from_what_workers_reported_not_the_servers_path() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let session = sign_in(&app, &alice).await;

    let page = html_page(session.get(&app, "/console").await, StatusCode::OK).await;
    assert!(
        page.contains("no worker has reported kiro-cli found"),
        "{page}"
    );
    assert!(page.contains("program missing"), "{page}");

    let response = app
        .worker_post(
            "/worker/lease",
            &serde_json::json!({"waitSeconds": 0, "availability": {"worker": "host-a-1", "executors": [
                {"name": "kiro", "program": "kiro-cli", "found": true, "version": "kiro-cli 1.23.0"}]}}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let page = html_page(session.get(&app, "/console").await, StatusCode::OK).await;
    assert!(
        page.contains("kiro-cli (kiro-cli 1.23.0) found by 1 worker"),
        "{page}"
    );
    assert!(page.contains("no runs yet"), "{page}");
    assert!(!page.contains("program missing"), "{page}");
}

async fn dashboard_with(agents: Option<tlao_api::AgentSandbox>) -> String {
    let app = TestApp::spawn_with(crate::common::Options {
        agents,
        ..crate::common::Options::default()
    })
    .await;
    let alice = app.user("alice").await;
    let session = sign_in(&app, &alice).await;
    html_page(session.get(&app, "/console").await, StatusCode::OK).await
}

#[tokio::test]
async fn the_dashboard_says_whether_local_agents_are_sandboxed() {
    let page = dashboard_with(Some(tlao_api::AgentSandbox::NotSandboxed(
        "NOT sandboxed: Landlock is not supported by this kernel; they can read what this user can"
            .into(),
    )))
    .await;
    assert!(page.contains("id=\"sandbox-notice\""), "{page}");
    assert!(
        page.contains("<strong>Local agents: </strong>NOT sandboxed: Landlock"),
        "{page}"
    );
    assert!(
        page.contains("Landlock is not supported by this kernel"),
        "{page}"
    );

    let page = dashboard_with(Some(tlao_api::AgentSandbox::Sandboxed(
        "Landlock ABI 7".into(),
    )))
    .await;
    assert!(!page.contains("sandbox-notice"), "{page}");
    assert!(
        page.contains("Local agents: sandboxed (Landlock ABI 7)"),
        "{page}"
    );

    let page = dashboard_with(None).await;
    assert!(
        !page.contains("sandbox-notice") && !page.contains("sandbox-status"),
        "{page}"
    );
}
