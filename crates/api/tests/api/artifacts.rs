//! Artifacts over HTTP. A worker produces one through the orchestrator's worker
//! protocol (lease, create, presigned PUT through `/blobs`, finalize); the API then
//! shows it with a download URL that serves the same bytes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{TestApp, TestUser, error_fields, problem};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tlao_domain::{ArtifactName, ArtifactType, RunId};
use tlao_orchestrator::NewArtifact;

const PLAN: &[u8] = br#"{"steps": ["read", "plan", "write"]}"#;

struct Produced {
    run_id: String,
    artifact_id: String,
}

/// A run of `user` with one `plan.json` artifact, uploaded and finalized (or left
/// pending when `finalize` is false).
async fn produce(app: &TestApp, user: &TestUser, finalize: bool) -> Produced {
    let run_id = app.run(user).await;
    let assignment = app
        .services
        .workers
        .lease_next(None)
        .await
        .unwrap()
        .expect("the queued run is leased");
    let run: RunId = run_id.parse().unwrap();
    assert_eq!(assignment.run.run_id, run);
    let upload = app
        .services
        .workers
        .create_artifact(
            &run,
            &assignment.lease_id,
            NewArtifact {
                name: ArtifactName::try_from("plan.json".to_owned()).unwrap(),
                artifact_type: ArtifactType::Plan,
                size: PLAN.len() as u64,
                sha256: Sha256::digest(PLAN)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect(),
                content_type: "application/json".into(),
            },
        )
        .await
        .unwrap();
    if finalize {
        let put = app
            .client
            .put(&upload.upload.url)
            .body(PLAN.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), StatusCode::OK);
        app.services
            .workers
            .finalize_artifact(
                &run,
                &assignment.lease_id,
                &upload.artifact.artifact_id,
                None,
            )
            .await
            .unwrap();
    }
    Produced {
        run_id,
        artifact_id: upload.artifact.artifact_id.to_string(),
    }
}

#[tokio::test]
async fn an_available_artifact_has_a_download_url_that_serves_its_bytes() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let produced = produce(&app, &alice, true).await;

    let response = app
        .get(
            &format!("/artifacts/{}", produced.artifact_id),
            &alice.token,
        )
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let artifact: Value = response.json().await.unwrap();
    assert_eq!(artifact["artifactId"], produced.artifact_id.as_str());
    assert_eq!(artifact["runId"], produced.run_id.as_str());
    assert_eq!(artifact["workspaceId"], alice.workspace_id.as_str());
    assert_eq!(artifact["artifactType"], "plan");
    assert_eq!(artifact["name"], "plan.json");
    assert_eq!(artifact["size"], PLAN.len());
    assert_eq!(artifact["contentType"], "application/json");
    assert_eq!(artifact["status"], "available");
    assert!(artifact["key"].as_str().unwrap().starts_with(&format!(
        "workspaces/{}/runs/{}/artifacts/",
        alice.workspace_id, produced.run_id
    )));
    assert!(artifact["downloadUrlExpiresAt"].is_string());
    let download = app
        .client
        .get(artifact["downloadUrl"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(download.bytes().await.unwrap().as_ref(), PLAN);
}

#[tokio::test]
async fn a_pending_artifact_has_no_download_url() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let produced = produce(&app, &alice, false).await;

    let artifact: Value = app
        .get_json(
            &format!("/artifacts/{}", produced.artifact_id),
            &alice.token,
        )
        .await;

    assert_eq!(artifact["status"], "pending");
    assert_eq!(artifact["downloadUrl"], Value::Null);
    assert_eq!(artifact["downloadUrlExpiresAt"], Value::Null);
}

#[tokio::test]
async fn a_runs_artifacts_are_listed_in_the_order_they_were_produced() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let produced = produce(&app, &alice, true).await;

    let response = app
        .get(
            &format!("/runs/{}/artifacts", produced.run_id),
            &alice.token,
        )
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let ids: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["artifactId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [produced.artifact_id.as_str()]);
    let run: Value = app
        .get_json(&format!("/runs/{}", produced.run_id), &alice.token)
        .await;
    assert_eq!(run["status"], "running");
    assert_eq!(run["artifactIds"][0], produced.artifact_id.as_str());
}

#[tokio::test]
async fn reading_another_users_artifacts_is_403() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let produced = produce(&app, &alice, true).await;

    let one = app
        .get(&format!("/artifacts/{}", produced.artifact_id), &bob.token)
        .send()
        .await
        .unwrap();
    let listed = app
        .get(&format!("/runs/{}/artifacts", produced.run_id), &bob.token)
        .send()
        .await
        .unwrap();

    problem(one, StatusCode::FORBIDDEN).await;
    problem(listed, StatusCode::FORBIDDEN).await;
}

#[tokio::test]
async fn an_unknown_artifact_is_404_and_a_malformed_one_is_400() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;

    let unknown = app
        .get("/artifacts/art_01ARZ3NDEKTSV4RRFFQ69G5FAV", &alice.token)
        .send()
        .await
        .unwrap();
    let malformed = app
        .get("/artifacts/run_01ARZ3NDEKTSV4RRFFQ69G5FAV", &alice.token)
        .send()
        .await
        .unwrap();
    let unknown_run = app
        .get(
            "/runs/run_01ARZ3NDEKTSV4RRFFQ69G5FAV/artifacts",
            &alice.token,
        )
        .send()
        .await
        .unwrap();

    problem(unknown, StatusCode::NOT_FOUND).await;
    problem(unknown_run, StatusCode::NOT_FOUND).await;
    let body = problem(malformed, StatusCode::BAD_REQUEST).await;
    assert_eq!(error_fields(&body), ["artifactId"]);
}

#[tokio::test]
async fn blob_downloads_are_attachments_that_never_render_on_the_apis_origin() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let produced = produce(&app, &alice, true).await;
    let artifact: Value = app
        .get_json(
            &format!("/artifacts/{}", produced.artifact_id),
            &alice.token,
        )
        .await;

    let download = app
        .client
        .get(artifact["downloadUrl"].as_str().unwrap())
        .send()
        .await
        .unwrap();

    assert_eq!(download.status(), StatusCode::OK);
    let headers = download.headers();
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"plan.json\""
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["content-security-policy"], "sandbox");
}
