//! Archive uploads (streamed, size-limited) and the presigned `/blobs/*` URLs that
//! serve them back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::Duration;

use bytes::Bytes;
use common::{Options, TestApp, error_fields, gzip_like, problem};
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH};
use reqwest::{Body, StatusCode};
use serde_json::Value;
use tlao_domain::Guardrails;
use tlao_ports::{BlobKey, BlobStore};

fn small_archives() -> Guardrails {
    Guardrails {
        max_archive_bytes: 1024,
        ..Guardrails::default()
    }
}

async fn upload(app: &TestApp, token: &str, workspace_id: &str, body: Body) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/workspaces/{workspace_id}/archives")))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header("content-type", "application/gzip")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// A body of `chunks` chunks of `size` bytes, streamed without a Content-Length.
fn chunked(chunks: usize, size: usize) -> Body {
    let data = gzip_like(chunks * size);
    let parts: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(size)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Body::wrap_stream(futures::stream::iter(parts))
}

#[tokio::test]
async fn an_uploaded_archive_is_stored_and_served_back_through_a_presigned_url() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bytes = gzip_like(5000);

    let response = upload(
        &app,
        &alice.token,
        &alice.workspace_id,
        Body::from(bytes.clone()),
    )
    .await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let archive: Value = response.json().await.unwrap();
    let archive_id = archive["archiveId"].as_str().unwrap();
    assert_eq!(
        archive["key"],
        format!(
            "workspaces/{}/archives/{archive_id}.tar.gz",
            alice.workspace_id
        )
    );
    assert_eq!(archive["size"], 5000);
    assert_eq!(archive["sha256"].as_str().unwrap().len(), 64);
    let key = BlobKey::parse(archive["key"].as_str().unwrap()).unwrap();
    let url = app
        .blobs
        .presign_get(&key, Duration::from_secs(60))
        .await
        .unwrap();
    let download = app.client.get(&url.url).send().await.unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(download.headers()[CONTENT_LENGTH], "5000");
    assert_eq!(download.bytes().await.unwrap().as_ref(), bytes.as_slice());
}

#[tokio::test]
async fn an_archive_streamed_without_a_length_within_the_limit_is_stored() {
    let app = TestApp::with_guardrails(small_archives()).await;
    let alice = app.user("alice").await;

    let response = upload(&app, &alice.token, &alice.workspace_id, chunked(4, 256)).await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let archive: Value = response.json().await.unwrap();
    assert_eq!(archive["size"], 1024);
}

#[tokio::test]
async fn a_tampered_presigned_url_is_403() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let response = upload(
        &app,
        &alice.token,
        &alice.workspace_id,
        Body::from(gzip_like(100)),
    )
    .await;
    let archive: Value = response.json().await.unwrap();
    let key = BlobKey::parse(archive["key"].as_str().unwrap()).unwrap();
    let url = app
        .blobs
        .presign_get(&key, Duration::from_secs(60))
        .await
        .unwrap()
        .url;
    let (head, last) = url.split_at(url.len() - 1);
    let tampered = format!("{head}{}", if last == "0" { "1" } else { "0" });

    let response = app.client.get(&tampered).send().await.unwrap();

    let body = problem(response, StatusCode::FORBIDDEN).await;
    assert!(
        body["detail"].as_str().unwrap().contains("signature"),
        "{body}"
    );
}

#[tokio::test]
async fn an_expired_presigned_url_is_403() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let response = upload(
        &app,
        &alice.token,
        &alice.workspace_id,
        Body::from(gzip_like(100)),
    )
    .await;
    let archive: Value = response.json().await.unwrap();
    let key = BlobKey::parse(archive["key"].as_str().unwrap()).unwrap();
    let url = app
        .blobs
        .presign_get(&key, Duration::from_secs(60))
        .await
        .unwrap()
        .url;

    app.clock.advance_millis(61_000);

    let response = app.client.get(&url).send().await.unwrap();
    let body = problem(response, StatusCode::FORBIDDEN).await;
    assert!(
        body["detail"].as_str().unwrap().contains("expired"),
        "{body}"
    );
}

#[tokio::test]
async fn a_presigned_url_without_its_signature_is_400() {
    let app = TestApp::spawn().await;

    let response = app
        .client
        .get(app.url("/blobs/workspaces/x/archives/y.tar.gz"))
        .send()
        .await
        .unwrap();

    problem(response, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn without_a_presigned_gateway_blobs_are_not_routed() {
    let app = TestApp::spawn_with(Options {
        presigned: false,
        ..Options::default()
    })
    .await;

    let response = app
        .client
        .get(app.url("/blobs/workspaces/x/archives/y.tar.gz?expires=1&signature=00"))
        .send()
        .await
        .unwrap();

    let body = problem(response, StatusCode::NOT_FOUND).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("no route matches")
    );
}

#[tokio::test]
async fn a_workspace_shows_the_archive_limit_so_clients_can_refuse_before_uploading() {
    let app = TestApp::with_guardrails(small_archives()).await;
    let alice = app.user("alice").await;

    let one = app
        .get(&format!("/workspaces/{}", alice.workspace_id), &alice.token)
        .send()
        .await
        .unwrap();
    let listed = app.get("/workspaces", &alice.token).send().await.unwrap();

    assert_eq!(one.status(), StatusCode::OK);
    let one: Value = one.json().await.unwrap();
    assert_eq!(one["limits"]["maxArchiveBytes"], 1024);
    let listed: Value = listed.json().await.unwrap();
    assert_eq!(listed["items"][0]["limits"]["maxArchiveBytes"], 1024);
}

#[tokio::test]
async fn an_archive_declared_larger_than_the_limit_is_413_with_max_bytes() {
    let app = TestApp::with_guardrails(small_archives()).await;
    let alice = app.user("alice").await;

    let response = upload(
        &app,
        &alice.token,
        &alice.workspace_id,
        Body::from(gzip_like(2048)),
    )
    .await;

    let body = problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(body["type"], "urn:tlao:problem:too-large");
    assert_eq!(body["maxBytes"], 1024);
}

#[tokio::test]
async fn an_archive_streamed_without_a_length_past_the_limit_is_413_with_max_bytes() {
    let app = TestApp::with_guardrails(small_archives()).await;
    let alice = app.user("alice").await;

    let response = upload(&app, &alice.token, &alice.workspace_id, chunked(8, 256)).await;

    let body = problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(body["maxBytes"], 1024);
}

#[tokio::test]
async fn an_archive_that_is_not_gzip_is_400_on_the_body() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;

    let response = upload(
        &app,
        &alice.token,
        &alice.workspace_id,
        Body::from("plain text, not an archive"),
    )
    .await;

    let body = problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error_fields(&body), ["body"]);
}

#[tokio::test]
async fn uploading_into_another_users_workspace_is_403() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;

    let response = upload(
        &app,
        &bob.token,
        &alice.workspace_id,
        Body::from(gzip_like(100)),
    )
    .await;

    problem(response, StatusCode::FORBIDDEN).await;
}

#[tokio::test]
async fn uploading_into_an_unknown_workspace_is_404() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;

    let response = upload(
        &app,
        &alice.token,
        "ws_01ARZ3NDEKTSV4RRFFQ69G5FAV",
        Body::from(gzip_like(100)),
    )
    .await;

    problem(response, StatusCode::NOT_FOUND).await;
}
