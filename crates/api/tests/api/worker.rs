//! The worker protocol over HTTP: worker-token auth, long-poll leases, events with
//! sequence numbers, artifacts through presigned URLs, and completion; and fencing:
//! nothing is written under a lease once its run has ended.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::{TestApp, WORKER_TOKEN, problem};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

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
    // A third of the default 30 s heartbeat timeout, which is announced too.
    assert_eq!(assignment["heartbeatIntervalMs"], 10_000);
    assert_eq!(assignment["heartbeatTimeoutMs"], 30_000);
    assert_eq!(assignment["numberedEvents"], true);
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
                "sha256": hex_sha256(&body), "contentType": "application/json"}),
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

    // Another lease is told it does not hold the run.
    let late = worker_post(
        &app,
        &format!("/worker/runs/{run_id}/complete"),
        &json!({"leaseId": "lease_01ARZ3NDEKTSV4RRFFQ69G5FAV", "status": "completed"}),
    )
    .send()
    .await
    .unwrap();
    let body = problem(late, StatusCode::CONFLICT).await;
    assert_eq!(body["type"], "urn:tlao:problem:lease-revoked");
    assert_eq!(body["reason"], "lease_superseded");
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

/// A run leased through the API, with an artifact registered (pending) under its lease,
/// then cancelled by its owner: the run id, the lease, the artifact's id and upload URL,
/// and the owner's token.
async fn ended_with_a_pending_artifact(app: &TestApp) -> (String, String, String, String, String) {
    let user = app.user("alice").await;
    app.run(&user).await;
    let (run_id, lease) = app.lease().await;
    let slot: Value = app
        .worker_post(
            &format!("/worker/runs/{run_id}/artifacts"),
            &json!({"leaseId": lease, "name": "plan.json", "artifactType": "plan", "size": 2,
                    "sha256": "a".repeat(64), "contentType": "application/json"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let cancel = app
        .post(&format!("/runs/{run_id}/cancel"), &user.token, &json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), StatusCode::OK);
    (
        run_id,
        lease,
        slot["artifact"]["artifactId"].as_str().unwrap().to_owned(),
        slot["upload"]["url"].as_str().unwrap().to_owned(),
        user.token,
    )
}

/// Asserts `response` is the 409 of a lease whose run has ended `status`.
async fn revoked_after_the_end(response: reqwest::Response, status: &str) {
    let body = problem(response, StatusCode::CONFLICT).await;
    assert_eq!(body["type"], "urn:tlao:problem:lease-revoked", "{body}");
    assert_eq!(body["reason"], "run_ended", "{body}");
    assert_eq!(body["runStatus"], status, "{body}");
}

#[tokio::test]
async fn every_worker_write_after_the_run_ended_is_a_409_naming_why_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let (run_id, lease, artifact_id, _, token) = ended_with_a_pending_artifact(&app).await;
    let run: tlao_domain::RunId = run_id.parse().unwrap();
    let before = tlao_orchestrator::events::last_seq(&app.services.core, &run)
        .await
        .unwrap();

    let events = app
        .worker_post(
            &format!("/worker/runs/{run_id}/events"),
            &json!({"leaseId": lease, "firstSeq": 1, "events": [
                {"type": "log", "stream": "stdout", "text": "after the end"}
            ]}),
        )
        .await;
    revoked_after_the_end(events, "cancelled").await;
    let heartbeat = app
        .worker_post(
            &format!("/worker/runs/{run_id}/events"),
            &json!({"leaseId": lease, "events": []}),
        )
        .await;
    revoked_after_the_end(heartbeat, "cancelled").await;
    let artifact = app
        .worker_post(
            &format!("/worker/runs/{run_id}/artifacts"),
            &json!({"leaseId": lease, "name": "late.json", "artifactType": "plan", "size": 2,
                    "sha256": "a".repeat(64), "contentType": "application/json"}),
        )
        .await;
    revoked_after_the_end(artifact, "cancelled").await;
    let finalize = app
        .worker_post(
            &format!("/worker/runs/{run_id}/artifacts/{artifact_id}/finalize"),
            &json!({"leaseId": lease}),
        )
        .await;
    revoked_after_the_end(finalize, "cancelled").await;
    let assignment = app
        .client
        .get(app.url(&format!("/worker/runs/{run_id}/assignment?leaseId={lease}")))
        .bearer_auth(WORKER_TOKEN)
        .send()
        .await
        .unwrap();
    revoked_after_the_end(assignment, "cancelled").await;
    // Completing is answered with the outcome that stands; nothing is written.
    let complete = app
        .worker_post(
            &format!("/worker/runs/{run_id}/complete"),
            &json!({"leaseId": lease, "status": "completed"}),
        )
        .await;
    assert_eq!(complete.status(), StatusCode::OK);
    let ended: Value = complete.json().await.unwrap();
    assert_eq!(ended["status"], "cancelled");

    let after = tlao_orchestrator::events::last_seq(&app.services.core, &run)
        .await
        .unwrap();
    assert_eq!(after, before, "no event after the end");
    let artifact: Value = app
        .get_json(&format!("/artifacts/{artifact_id}"), &token)
        .await;
    assert_eq!(artifact["status"], "upload_failed", "{artifact}");
}

#[tokio::test]
async fn a_presigned_upload_after_the_run_ended_is_refused_and_the_artifact_never_becomes_available()
 {
    let app = TestApp::spawn().await;
    let (run_id, lease, artifact_id, upload_url, token) = ended_with_a_pending_artifact(&app).await;

    let put = app
        .client
        .put(&upload_url)
        .body(b"{}".to_vec())
        .send()
        .await
        .unwrap();
    revoked_after_the_end(put, "cancelled").await;
    let finalize = app
        .worker_post(
            &format!("/worker/runs/{run_id}/artifacts/{artifact_id}/finalize"),
            &json!({"leaseId": lease}),
        )
        .await;
    revoked_after_the_end(finalize, "cancelled").await;

    let artifact: Value = app
        .get_json(&format!("/artifacts/{artifact_id}"), &token)
        .await;
    assert_eq!(artifact["status"], "upload_failed", "{artifact}");
    assert_eq!(
        artifact["error"],
        "the run ended (cancelled) before this artifact's upload was finalized"
    );
    let key = upload_url
        .split_once("/blobs/")
        .and_then(|(_, rest)| rest.split_once('?'))
        .map(|(key, _)| tlao_ports::BlobKey::parse(key).unwrap())
        .unwrap();
    let stored = tlao_ports::BlobStore::head(app.blobs.as_ref(), &key).await;
    assert!(stored.is_err(), "no bytes were stored: {stored:?}");
}

#[tokio::test]
async fn a_presigned_upload_over_a_settled_artifact_is_refused() {
    let app = TestApp::spawn().await;
    let user = app.user("alice").await;
    app.run(&user).await;
    let (run_id, lease) = app.lease().await;
    let slot: Value = app
        .worker_post(
            &format!("/worker/runs/{run_id}/artifacts"),
            &json!({"leaseId": lease, "name": "plan.json", "artifactType": "plan", "size": 2,
                    "sha256": hex_sha256(b"{}"), "contentType": "application/json"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let url = slot["upload"]["url"].as_str().unwrap();
    let put = app
        .client
        .put(url)
        .body(b"{}".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    let artifact_id = slot["artifact"]["artifactId"].as_str().unwrap();
    let settled: Value = app
        .worker_post(
            &format!("/worker/runs/{run_id}/artifacts/{artifact_id}/finalize"),
            &json!({"leaseId": lease}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(settled["status"], "available");

    let again = app
        .client
        .put(url)
        .body(b"[]".to_vec())
        .send()
        .await
        .unwrap();

    let body = problem(again, StatusCode::CONFLICT).await;
    assert!(
        body["detail"].as_str().unwrap().contains("is available"),
        "{body}"
    );
}

/// A run leased through the API with one artifact registered under its lease, declared
/// as `declared`: the run id, the lease, the artifact's id and its upload URL, and the
/// owner's token.
async fn leased_with_an_artifact(
    app: &TestApp,
    declared: &[u8],
) -> (String, String, String, String, String) {
    let user = app.user("alice").await;
    app.run(&user).await;
    let (run_id, lease) = app.lease().await;
    let slot: Value = app
        .worker_post(
            &format!("/worker/runs/{run_id}/artifacts"),
            &json!({"leaseId": lease, "name": "plan.json", "artifactType": "plan",
                    "size": declared.len(), "sha256": hex_sha256(declared),
                    "contentType": "application/json"}),
        )
        .await
        .json()
        .await
        .unwrap();
    (
        run_id,
        lease,
        slot["artifact"]["artifactId"].as_str().unwrap().to_owned(),
        slot["upload"]["url"].as_str().unwrap().to_owned(),
        user.token,
    )
}

async fn finalize(app: &TestApp, run_id: &str, lease: &str, artifact_id: &str) -> Value {
    let response = app
        .worker_post(
            &format!("/worker/runs/{run_id}/artifacts/{artifact_id}/finalize"),
            &json!({"leaseId": lease}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// The artifact as its owner sees it, and the bytes its download URL serves.
async fn downloaded(app: &TestApp, artifact_id: &str, token: &str) -> (Value, Vec<u8>) {
    let artifact: Value = app
        .get_json(&format!("/artifacts/{artifact_id}"), token)
        .await;
    let download = app
        .client
        .get(artifact["downloadUrl"].as_str().expect("a download url"))
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    let bytes = download.bytes().await.unwrap().to_vec();
    (artifact, bytes)
}

const PLAN: &[u8] = br#"{"steps":["a"]}"#;
/// As long as [`PLAN`], other bytes.
const FORGED: &[u8] = br#"{"steps":["b"]}"#;

#[tokio::test]
async fn a_replayed_upload_url_after_finalize_is_refused_and_the_bytes_served_do_not_change() {
    let app = TestApp::spawn().await;
    let (run_id, lease, artifact_id, url, token) = leased_with_an_artifact(&app, PLAN).await;
    let put = app.client.put(&url).body(PLAN).send().await.unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    let settled = finalize(&app, &run_id, &lease, &artifact_id).await;
    assert_eq!(settled["status"], "available", "{settled}");

    // The same URL again, while the run still runs: with other bytes of the same size,
    // and with the same bytes.
    for body in [FORGED, PLAN] {
        let replay = app.client.put(&url).body(body).send().await.unwrap();
        problem(replay, StatusCode::CONFLICT).await;
    }

    let (artifact, bytes) = downloaded(&app, &artifact_id, &token).await;
    assert_eq!(artifact["status"], "available");
    assert_eq!(bytes, PLAN);
    assert_eq!(artifact["sha256"], hex_sha256(&bytes));
}

#[tokio::test]
async fn a_replayed_upload_url_after_the_run_ended_is_refused_and_the_bytes_do_not_change() {
    let app = TestApp::spawn().await;
    let (run_id, lease, artifact_id, url, token) = leased_with_an_artifact(&app, PLAN).await;
    let put = app.client.put(&url).body(PLAN).send().await.unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    assert_eq!(
        finalize(&app, &run_id, &lease, &artifact_id).await["status"],
        "available"
    );
    let done = app
        .worker_post(
            &format!("/worker/runs/{run_id}/complete"),
            &json!({"leaseId": lease, "status": "completed"}),
        )
        .await;
    assert_eq!(done.status(), StatusCode::OK);

    let replay = app.client.put(&url).body(FORGED).send().await.unwrap();
    revoked_after_the_end(replay, "completed").await;

    let (artifact, bytes) = downloaded(&app, &artifact_id, &token).await;
    assert_eq!(artifact["status"], "available");
    assert_eq!(bytes, PLAN);
    assert_eq!(artifact["sha256"], hex_sha256(PLAN));
}

#[tokio::test]
async fn other_bytes_of_the_declared_size_make_the_artifact_upload_failed_naming_the_hash() {
    let app = TestApp::spawn().await;
    let (run_id, lease, artifact_id, url, token) = leased_with_an_artifact(&app, PLAN).await;
    let put = app.client.put(&url).body(FORGED).send().await.unwrap();
    assert_eq!(put.status(), StatusCode::OK, "the store takes the bytes");
    // Nor can the right bytes be put over them now.
    let fix = app.client.put(&url).body(PLAN).send().await.unwrap();
    problem(fix, StatusCode::CONFLICT).await;

    let settled = finalize(&app, &run_id, &lease, &artifact_id).await;

    assert_eq!(settled["status"], "upload_failed", "{settled}");
    assert_eq!(
        settled["error"],
        format!(
            "the stored bytes have SHA-256 {}, {} was declared",
            hex_sha256(FORGED),
            hex_sha256(PLAN)
        )
    );
    let artifact: Value = app
        .get_json(&format!("/artifacts/{artifact_id}"), &token)
        .await;
    assert_eq!(artifact["status"], "upload_failed");
    assert!(artifact["downloadUrl"].is_null(), "{artifact}");
    // Finalizing again changes nothing: a settled artifact stays as it is.
    let again = finalize(&app, &run_id, &lease, &artifact_id).await;
    assert_eq!(again["status"], "upload_failed");
}

#[tokio::test]
async fn a_numbered_batch_sent_again_is_stored_once_and_a_declared_drop_marks_the_log() {
    let app = TestApp::spawn().await;
    let user = app.user("alice").await;
    app.run(&user).await;
    let (run_id, lease) = app.lease().await;
    let batch = json!({"leaseId": lease, "firstSeq": 1, "events": [
        {"type": "log", "stream": "stdout", "text": "one"},
        {"type": "log", "stream": "stdout", "text": "two"}
    ]});
    let path = format!("/worker/runs/{run_id}/events");

    let first: Value = app.worker_post(&path, &batch).await.json().await.unwrap();
    let again: Value = app.worker_post(&path, &batch).await.json().await.unwrap();
    let dropped: Value = app
        .worker_post(
            &path,
            &json!({"leaseId": lease, "firstSeq": 3, "events": [
                {"type": "dropped", "lines": 5, "bytes": 100},
                {"type": "log", "stream": "stdout", "text": "three"}
            ]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let gap = app
        .worker_post(
            &path,
            &json!({"leaseId": lease, "firstSeq": 9, "events": [
                {"type": "log", "stream": "stdout", "text": "nine"}
            ]}),
        )
        .await;

    assert_eq!(first["lastSeq"], 4);
    assert_eq!(again["lastSeq"], 4, "the batch sent again added nothing");
    assert_eq!(dropped["lastSeq"], 6);
    let body = problem(gap, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["errors"][0]["field"], "firstSeq", "{body}");
    let run: Value = app.get_json(&format!("/runs/{run_id}"), &user.token).await;
    assert_eq!(run["logsTruncated"], true, "{run}");
    assert_eq!(run["droppedLogBytes"], 100, "{run}");
    let logs = run["logs"].as_str().unwrap();
    assert!(
        logs.starts_with("one\ntwo\nthe worker dropped 5 events (100 log bytes)"),
        "{logs}"
    );
    assert!(logs.ends_with("three\n"), "{logs}");
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
