//! Executor availability over HTTP (requirement 2.2): workers report which executor
//! programs they found when they lease and with heartbeats; `GET /executors` shows
//! when each was last seen available; run creation prefers a seen executor and the run
//! says why; `GET /executors/presets` lists the documented records.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{TestApp, problem};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn executors(app: &TestApp) -> Vec<Value> {
    app.get_json("/executors", &app.admin.token).await["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn named<'a>(items: &'a [Value], name: &str) -> &'a Value {
    items.iter().find(|e| e["name"] == name).unwrap()
}

async fn register_claude(app: &TestApp) {
    let record = json!({"name": "claude", "kind": "command", "taskTypes": ["code.change"],
                        "config": {"command": ["claude", "-p", "{prompt}"]}});
    let response = app
        .post("/executors", &app.admin.token, &record)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_lease_reports_availability_and_get_executors_shows_it() {
    let app = TestApp::spawn().await;
    register_claude(&app).await;
    let before = executors(&app).await;
    assert!(
        named(&before, "kiro").get("availability").is_none(),
        "never seen"
    );

    let response = app
        .worker_post(
            "/worker/lease",
            &json!({"waitSeconds": 0, "availability": {"worker": "host-a-17", "executors": [
                {"name": "kiro", "program": "kiro-cli", "found": true, "version": "kiro-cli 1.23.0"},
                {"name": "claude", "program": "claude", "found": false},
                {"name": "not-registered", "program": "x", "found": true}
            ]}}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let after = executors(&app).await;
    let kiro = &named(&after, "kiro")["availability"];
    assert_eq!(kiro["workers"], 1);
    assert_eq!(kiro["version"], "kiro-cli 1.23.0");
    assert!(
        kiro["lastSeenAt"].as_str().unwrap().ends_with('Z'),
        "{kiro}"
    );
    assert!(
        named(&after, "claude").get("availability").is_none(),
        "not found is not available"
    );
    assert_eq!(after.len(), 2, "an unregistered name adds nothing");
}

#[tokio::test]
async fn a_heartbeat_reports_availability_too() {
    let app = TestApp::spawn().await;
    register_claude(&app).await;
    let user = app.user("alice").await;
    app.run(&user).await;
    let (run_id, lease_id) = app.lease().await;

    let response = app
        .worker_post(
            &format!("/worker/runs/{run_id}/events"),
            &json!({"leaseId": lease_id, "events": [], "availability": {"worker": "host-b-2",
                "executors": [{"name": "claude", "program": "claude", "found": true, "version": "2.1.332 (Claude Code)"}]}}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    let items = executors(&app).await;
    let claude = &named(&items, "claude")["availability"];
    assert_eq!(claude["workers"], 1);
    assert_eq!(claude["version"], "2.1.332 (Claude Code)");
}

#[tokio::test]
async fn a_malformed_report_is_refused_by_field() {
    let app = TestApp::spawn().await;
    let unknown = json!({"waitSeconds": 0, "availability": {"worker": "w", "executors": [
        {"name": "kiro", "program": "kiro-cli", "found": true, "extra": 1}]}});
    let body = problem(
        app.worker_post("/worker/lease", &unknown).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(body.to_string().contains("unknown field `extra`"), "{body}");
    for availability in [
        json!({"worker": "bad worker#id", "executors": []}),
        json!({"worker": "", "executors": []}),
        json!({"worker": "w", "executors": [{"name": "kiro", "program": "k".repeat(1025), "found": true}]}),
    ] {
        let response = app
            .worker_post(
                "/worker/lease",
                &json!({"waitSeconds": 0, "availability": availability}),
            )
            .await;
        let body = problem(response, StatusCode::BAD_REQUEST).await;
        assert!(body.to_string().contains("availability"), "{body}");
    }
}

#[tokio::test]
async fn run_creation_prefers_a_seen_executor_and_the_run_says_why() {
    let app = TestApp::spawn().await;
    register_claude(&app).await;
    let user = app.user("alice").await;
    let task = app.task_of_type(&user, "code.change").await;

    // The registry lists by name: claude, then kiro.
    let first: Value = app.create_run(&user, &task).await.json().await.unwrap();
    assert_eq!(first["executor"], "claude");
    assert!(
        first["selection"]
            .as_str()
            .unwrap()
            .contains("first registered executor serving code.change"),
        "{first}"
    );

    app.worker_post(
        "/worker/lease",
        &json!({"waitSeconds": 0, "executors": ["deploy-only"], "availability": {"worker": "w-1",
            "executors": [{"name": "kiro", "program": "kiro-cli", "found": true}]}}),
    )
    .await;
    let second: Value = app.create_run(&user, &task).await.json().await.unwrap();
    assert_eq!(second["executor"], "kiro");
    let read = app
        .get_json(
            &format!("/runs/{}", second["runId"].as_str().unwrap()),
            &user.token,
        )
        .await;
    let reason = read["selection"].as_str().unwrap();
    assert!(
        reason.contains("kiro serves code.change and was seen available by 1 worker"),
        "{reason}"
    );
    assert!(
        reason.contains("skipped, not seen available: claude"),
        "{reason}"
    );
}

#[tokio::test]
async fn the_presets_are_listed() {
    let app = TestApp::spawn().await;
    let user = app.user("alice").await;
    let presets = app.get_json("/executors/presets", &user.token).await;
    let names: Vec<&str> = presets["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["preset"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "kiro",
            "kiro-acp",
            "claude-code",
            "claude-code-acp",
            "codex",
            "codex-acp",
            "gemini",
            "gemini-acp",
            "opencode",
            "goose"
        ]
    );
    let claude = &presets["items"][2]["record"];
    assert_eq!(claude["sandbox"]["env"], json!(["ANTHROPIC_*", "CLAUDE_*"]));
    let kiro_acp = &presets["items"][1]["record"];
    assert_eq!(kiro_acp["kind"], "acp");
    assert_eq!(
        kiro_acp["config"]["command"],
        json!(["kiro-cli", "acp", "--trust-all-tools"])
    );
}
