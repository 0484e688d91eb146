//! Artifacts: downloads only for members of the artifact's workspace.

use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::Value;

use crate::common::{TestApp, TestUser};
use crate::support::{html_page, sign_in};

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A run of `user` that produced one available artifact, `plan.json`; the artifact's id.
async fn artifact_of(app: &TestApp, user: &TestUser) -> String {
    let run_id = app.run(user).await;
    let (leased, lease) = app.lease().await;
    assert_eq!(leased, run_id);
    let body = b"{\"steps\":[]}".to_vec();
    let slot: Value = app
        .worker_post(
            &format!("/worker/runs/{run_id}/artifacts"),
            &serde_json::json!({"leaseId": lease, "name": "plan.json", "artifactType": "plan",
                "size": body.len(), "sha256": hex_sha256(&body), "contentType": "application/json"}),
        )
        .await
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
    let artifact_id = slot["artifact"]["artifactId"].as_str().unwrap().to_owned();
    let settled = app
        .worker_post(
            &format!("/worker/runs/{run_id}/artifacts/{artifact_id}/finalize"),
            &serde_json::json!({"leaseId": lease}),
        )
        .await;
    assert!(settled.status().is_success());
    artifact_id
}

#[tokio::test]
async fn a_foreign_workspaces_artifact_download_is_refused_with_403() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let artifact_id = artifact_of(&app, &alice).await;
    let path = format!("/console/artifacts/{artifact_id}/download");

    // The owner is sent on to the bytes…
    let own = sign_in(&app, &alice).await.get(&app, &path).await;
    assert_eq!(own.status(), StatusCode::SEE_OTHER);
    assert!(
        own.headers()[LOCATION]
            .to_str()
            .unwrap()
            .contains("/blobs/")
    );
    // …another user is not, and learns nothing of where they are.
    let response = sign_in(&app, &bob).await.get(&app, &path).await;
    assert!(response.headers().get(LOCATION).is_none());
    let page = html_page(response, StatusCode::FORBIDDEN).await;
    assert!(page.contains("This artifact belongs to a workspace you are not a member of."));
    assert!(!page.contains("/blobs/"));
}
