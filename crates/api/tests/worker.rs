//! The worker protocol over HTTP: worker-token auth, long-poll leases, events with
//! sequence numbers, artifacts through presigned URLs, and completion.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{TestApp, WORKER_TOKEN, problem};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn worker_post(app: &TestApp, path: &str, body: &Value) -> reqwest::RequestBuilder {
    app.client
        .post(app.url(path))
        .bearer_auth(WORKER_TOKEN)
        .json(body)
}

#[tokio::test]
async fn worker_routes_refuse_user_tokens_and_wrong_worker_tokens() {
    let app = TestApp::spawn().await;
    let user_token = app.admin.token.clone();
    let response = app
        .post("/worker/lease", &user_token, &json!({}))
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::UNAUTHORIZED).await;
    let response = app
        .client
        .post(app.url("/worker/lease"))
        .bearer_auth("not-the-token")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let body = problem(response, StatusCode::UNAUTHORIZED).await;
    assert!(body["detail"].as_str().unwrap().contains("worker token"));
}

#[tokio::test]
async fn a_lease_with_nothing_queued_answers_204_after_waiting() {
    let app = TestApp::spawn().await;
    let started = Instant::now();
    let response = worker_post(&app, "/worker/lease", &json!({"waitSeconds": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(started.elapsed() >= Duration::from_millis(900));
    let response = worker_post(&app, "/worker/lease", &json!({"waitSeconds": 31}))
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn a_waiting_lease_wakes_as_soon_as_a_run_is_queued() {
    let app = TestApp::spawn().await;
    let user = app.user("alice").await;
    let task = app.task(&user).await;
    let lease = worker_post(&app, "/worker/lease", &json!({"waitSeconds": 10})).send();
    let create = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        app.create_run(&user, &task).await
    };
    let started = Instant::now();
    let (leased, created) = tokio::join!(lease, create);
    assert_eq!(created.status(), StatusCode::CREATED);
    let leased = leased.unwrap();
    assert_eq!(leased.status(), StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "woken by the queue, not by a timeout"
    );
}

#[tokio::test]
async fn a_worker_runs_a_run_from_lease_to_completion() {
    let app = TestApp::spawn().await;
    let user = app.user("alice").await;
    let run_id = app.run(&user).await;

    let assignment: Value = worker_post(&app, "/worker/lease", &json!({"waitSeconds": 0}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(assignment["run"]["runId"], run_id.as_str());
    assert_eq!(assignment["run"]["status"], "running");
    // A third of the default 30 s heartbeat timeout.
    assert_eq!(assignment["heartbeatIntervalMs"], 10_000);
    let lease = assignment["leaseId"].as_str().unwrap().to_owned();
    let spec = app
        .client
        .get(assignment["taskSpecUrl"]["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(spec.status(), StatusCode::OK);
    let spec: Value = spec.json().await.unwrap();
    assert!(spec["taskType"].is_string());

    let fetched: Value = app
        .client
        .get(app.url(&format!("/worker/runs/{run_id}/assignment?leaseId={lease}")))
        .bearer_auth(WORKER_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["leaseId"], lease.as_str());

    let report: Value = worker_post(
        &app,
        &format!("/worker/runs/{run_id}/events"),
        &json!({"leaseId": lease, "events": [
            {"type": "log", "stream": "stdout", "text": "hello"},
            {"type": "progress", "message": "half way", "percent": 50}
        ]}),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(report["stop"], false);
    assert_eq!(report["lastSeq"], 4, "queued, running, then the two events");

    let body = b"{\"steps\":[]}".to_vec();
    let slot: Value = worker_post(
        &app,
        &format!("/worker/runs/{run_id}/artifacts"),
        &json!({"leaseId": lease, "name": "plan.json", "artifactType": "plan", "size": body.len(),
                "sha256": "a".repeat(64), "contentType": "application/json"}),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let put = app
        .client
        .put(slot["upload"]["url"].as_str().unwrap())
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success());
    let artifact_id = slot["artifact"]["artifactId"].as_str().unwrap();
    let settled: Value = worker_post(
        &app,
        &format!("/worker/runs/{run_id}/artifacts/{artifact_id}/finalize"),
        &json!({"leaseId": lease}),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(settled["status"], "available");

    let done = worker_post(
        &app,
        &format!("/worker/runs/{run_id}/complete"),
        &json!({"leaseId": lease, "status": "completed", "usage": {"kind": "reported", "credits": "0.42", "summary": "Credits: 0.42"}}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(done.status(), StatusCode::OK);

    let run: Value = app.get_json(&format!("/runs/{run_id}"), &user.token).await;
    assert_eq!(run["status"], "completed");
    assert_eq!(run["logs"], "hello\n");
    assert_eq!(run["artifactIds"].as_array().unwrap().len(), 1);

    // The lease is spent: later calls are told to stop.
    let late = worker_post(
        &app,
        &format!("/worker/runs/{run_id}/complete"),
        &json!({"leaseId": "lease_01ARZ3NDEKTSV4RRFFQ69G5FAV", "status": "completed"}),
    )
    .send()
    .await
    .unwrap();
    problem(late, StatusCode::CONFLICT).await;
}

#[tokio::test]
async fn failing_without_an_error_is_400() {
    let app = TestApp::spawn().await;
    let user = app.user("alice").await;
    let run_id = app.run(&user).await;
    let assignment: Value = worker_post(&app, "/worker/lease", &json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let response = worker_post(
        &app,
        &format!("/worker/runs/{run_id}/complete"),
        &json!({"leaseId": assignment["leaseId"], "status": "failed"}),
    )
    .send()
    .await
    .unwrap();
    let body = problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["errors"][0]["field"], "error");
}

#[tokio::test]
async fn worker_bodies_are_read_as_the_document_describes_them() {
    let app = TestApp::spawn().await;
    let user = app.user("alice").await;
    let run_id = app.run(&user).await;

    // A struct is an object, not the array of its fields that serde would also take.
    let response = worker_post(&app, "/worker/lease", &json!([]))
        .send()
        .await
        .unwrap();
    let body = problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["errors"][0]["field"], "body");

    // An integer may be written as a whole float, as JSON Schema reads it.
    let assignment: Value = worker_post(&app, "/worker/lease", &json!({"waitSeconds": 0.0}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(assignment["run"]["runId"], run_id.as_str());
    let lease_id = &assignment["leaseId"];
    let events = format!("/worker/runs/{run_id}/events");
    let progress = |percent: Value| json!({"leaseId": lease_id, "events": [{"type": "progress", "message": "m", "percent": percent}]});
    let response = worker_post(&app, &events, &progress(json!(50.0)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    for refused in [json!(50.5), json!(101), json!("50")] {
        let response = worker_post(&app, &events, &progress(refused.clone()))
            .send()
            .await
            .unwrap();
        let body = problem(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(body["errors"][0]["field"], "body", "{refused}");
    }

    // `error` is an object too.
    let response = worker_post(
        &app,
        &format!("/worker/runs/{run_id}/complete"),
        &json!({"leaseId": lease_id, "status": "failed", "error": ["internal", "boom"]}),
    )
    .send()
    .await
    .unwrap();
    let body = problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["errors"][0]["field"], "body");
}
