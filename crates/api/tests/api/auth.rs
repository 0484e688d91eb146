//! Authentication: API keys for tokens, and every way a bearer token is refused (401
//! with `WWW-Authenticate: Bearer`), plus the administrator-only routes (403).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{JWT_SECRET, TestApp, problem};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use serde_json::{Value, json};

async fn refused(app: &TestApp, authorization: Option<&str>) -> (String, Value) {
    let mut request = app.client.get(app.url("/workspaces"));
    if let Some(value) = authorization {
        request = request.header(AUTHORIZATION, value);
    }
    let response = request.send().await.unwrap();
    let challenge = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .expect("a 401 carries a challenge")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    let body = problem(response, StatusCode::UNAUTHORIZED).await;
    assert_eq!(body["type"], "urn:tlao:problem:unauthenticated");
    (challenge, body)
}

#[tokio::test]
async fn an_api_key_is_exchanged_for_a_token_that_opens_the_api() {
    let app = TestApp::spawn().await;

    let response = app
        .client
        .post(app.url("/auth/token"))
        .json(&json!({"apiKey": app.admin.api_key}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["userId"], app.admin.user_id.as_str());
    let expires_at = body["expiresAt"].as_str().unwrap();
    assert!(expires_at.ends_with('Z'), "{expires_at}");
    let token = body["token"].as_str().unwrap();
    let listed = app.get("/workspaces", token).send().await.unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_api_key_gets_no_token() {
    let app = TestApp::spawn().await;

    let response = app
        .client
        .post(app.url("/auth/token"))
        .json(&json!({"apiKey": "tlao_not-a-real-key"}))
        .send()
        .await
        .unwrap();

    let body = problem(response, StatusCode::UNAUTHORIZED).await;
    assert_eq!(body["detail"], "the API key is not valid");
}

#[tokio::test]
async fn a_request_without_a_token_is_401_with_a_bare_bearer_challenge() {
    let app = TestApp::spawn().await;

    let (challenge, body) = refused(&app, None).await;

    assert_eq!(challenge, "Bearer realm=\"tlao\"");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("Authorization header is missing")
    );
}

#[tokio::test]
async fn a_request_with_another_auth_scheme_is_401() {
    let app = TestApp::spawn().await;

    let (challenge, body) = refused(&app, Some("Basic YWRtaW46YWRtaW4=")).await;

    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(body["detail"].as_str().unwrap().contains("Bearer scheme"));
}

#[tokio::test]
async fn a_malformed_token_is_401() {
    let app = TestApp::spawn().await;

    let (_, body) = refused(&app, Some("Bearer not-a-jwt")).await;

    assert_eq!(body["detail"], "the bearer token is malformed");
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_401() {
    let app = TestApp::spawn().await;
    let now = app.now_seconds();
    let forged = TestApp::sign(
        &json!({"sub": app.admin.user_id, "adm": true, "iat": now, "exp": now + 600, "iss": "tlao"}),
        b"some-other-secret",
    );

    let (_, body) = refused(&app, Some(&format!("Bearer {forged}"))).await;

    assert_eq!(body["detail"], "the bearer token's signature is not valid");
}

#[tokio::test]
async fn an_expired_token_is_401_saying_when_it_expired() {
    let app = TestApp::spawn().await;
    let now = app.now_seconds();
    let expired = TestApp::sign(
        &json!({"sub": app.admin.user_id, "adm": true, "iat": now - 7200, "exp": now - 3600, "iss": "tlao"}),
        JWT_SECRET,
    );

    let (_, body) = refused(&app, Some(&format!("Bearer {expired}"))).await;

    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("the bearer token expired at"),
        "{body}"
    );
}

#[tokio::test]
async fn an_issued_token_stops_working_after_its_ttl() {
    let app = TestApp::spawn().await;
    let before = app
        .get("/workspaces", &app.admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(before.status(), StatusCode::OK);

    app.clock.advance_millis(12 * 3600 * 1000 + 10_000);

    let (_, body) = refused(&app, Some(&format!("Bearer {}", app.admin.token))).await;
    assert!(body["detail"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn a_token_from_another_issuer_is_401() {
    let app = TestApp::spawn().await;
    let now = app.now_seconds();
    let foreign = TestApp::sign(
        &json!({"sub": app.admin.user_id, "adm": true, "iat": now, "exp": now + 600, "iss": "someone-else"}),
        JWT_SECRET,
    );

    let (_, body) = refused(&app, Some(&format!("Bearer {foreign}"))).await;

    assert_eq!(body["detail"], "the bearer token was not issued by tlao");
}

#[tokio::test]
async fn creating_a_user_is_for_administrators_only() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;

    let response = app
        .post("/users", &alice.token, &json!({"name": "mallory"}))
        .send()
        .await
        .unwrap();

    let body = problem(response, StatusCode::FORBIDDEN).await;
    assert_eq!(body["type"], "urn:tlao:problem:forbidden");
}

#[tokio::test]
async fn creating_a_user_without_a_name_lists_the_field() {
    let app = TestApp::spawn().await;

    let response = app
        .post("/users", &app.admin.token, &json!({"nom": "x"}))
        .send()
        .await
        .unwrap();

    let body = problem(response, StatusCode::BAD_REQUEST).await;
    let fields = common::error_fields(&body);
    assert!(fields.contains(&"name".to_owned()), "{body}");
    assert!(fields.contains(&"nom".to_owned()), "{body}");
}
