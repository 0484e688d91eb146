//! API keys over HTTP: `GET/POST /users/{userId}/keys` and `DELETE
//! /users/{userId}/keys/{keyId}`, for the user themself or an administrator; a revoked
//! key gets no token, while a token it got before works until it expires.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{TestApp, TestUser, error_fields, problem};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn exchange(app: &TestApp, api_key: &str) -> reqwest::Response {
    app.client
        .post(app.url("/auth/token"))
        .json(&json!({"apiKey": api_key}))
        .send()
        .await
        .unwrap()
}

async fn create_key(app: &TestApp, token: &str, user_id: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/users/{user_id}/keys")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn revoke(app: &TestApp, token: &str, user_id: &str, key_id: &str) -> reqwest::Response {
    app.client
        .delete(app.url(&format!("/users/{user_id}/keys/{key_id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn list(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let response = app
        .get(&format!("/users/{}/keys", user.user_id), &user.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_revoked_key_cannot_get_a_token() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann").await;
    let created = create_key(&app, &ann.token, &ann.user_id).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    let (key_id, api_key) = (
        created["keyId"].as_str().unwrap().to_owned(),
        created["apiKey"].as_str().unwrap().to_owned(),
    );
    let before = app.token_for(&api_key).await;

    let revoked = revoke(&app, &ann.token, &ann.user_id, &key_id).await;

    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let refused = exchange(&app, &api_key).await;
    assert!(refused.headers().contains_key("www-authenticate"));
    problem(refused, StatusCode::UNAUTHORIZED).await;
    // The first key still works, and so does the token the revoked key got before, until
    // it expires.
    assert_eq!(exchange(&app, &ann.api_key).await.status(), StatusCode::OK);
    let workspaces = app.get("/workspaces", &before).send().await.unwrap();
    assert_eq!(workspaces.status(), StatusCode::OK);
    let listed: Vec<String> = list(&app, &ann)
        .await
        .iter()
        .map(|k| k["keyId"].as_str().unwrap().to_owned())
        .collect();
    assert!(!listed.contains(&key_id), "{listed:?}");
    let again = revoke(&app, &ann.token, &ann.user_id, &key_id).await;
    problem(again, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn a_users_keys_are_listed_by_id_with_their_last_use_and_never_the_key() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann").await;
    let created: Value = create_key(&app, &ann.token, &ann.user_id)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(created["userId"], ann.user_id.as_str());
    assert!(created["createdAt"].is_string());

    let keys = list(&app, &ann).await;

    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_eq!(keys[1]["keyId"], created["keyId"]);
    // The first key got ann's token; the new one was never used.
    assert!(keys[0]["lastUsedAt"].is_string(), "{keys:?}");
    assert!(keys[1]["lastUsedAt"].is_null(), "{keys:?}");
    let text = serde_json::to_string(&keys).unwrap();
    assert!(
        !text.contains(&ann.api_key) && !text.contains("tlao_"),
        "{text}"
    );
    for key in &keys {
        let mut fields: Vec<&String> = key.as_object().unwrap().keys().collect();
        fields.sort();
        assert_eq!(fields, ["createdAt", "keyId", "lastUsedAt"]);
    }
}

#[tokio::test]
async fn creating_a_user_answers_the_id_of_its_first_key() {
    let app = TestApp::spawn().await;
    let created: Value = app
        .post("/users", &app.admin.token, &json!({"name": "ann"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let keys: Value = app
        .get_json(
            &format!("/users/{}/keys", created["userId"].as_str().unwrap()),
            &app.admin.token,
        )
        .await;

    assert_eq!(keys["items"][0]["keyId"], created["keyId"]);
}

#[tokio::test]
async fn only_the_user_or_an_administrator_manages_a_users_keys() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann").await;
    let bob = app.user("bob").await;
    let ann_keys = list(&app, &ann).await;
    let ann_key = ann_keys[0]["keyId"].as_str().unwrap();

    let listed = app
        .get(&format!("/users/{}/keys", ann.user_id), &bob.token)
        .send()
        .await
        .unwrap();
    problem(listed, StatusCode::FORBIDDEN).await;
    problem(
        create_key(&app, &bob.token, &ann.user_id).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        revoke(&app, &bob.token, &ann.user_id, ann_key).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    // bob cannot revoke ann's key through his own user either.
    problem(
        revoke(&app, &bob.token, &bob.user_id, ann_key).await,
        StatusCode::NOT_FOUND,
    )
    .await;

    let by_admin = create_key(&app, &app.admin.token, &ann.user_id).await;
    assert_eq!(by_admin.status(), StatusCode::CREATED);
    let revoked = revoke(&app, &app.admin.token, &ann.user_id, ann_key).await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    problem(exchange(&app, &ann.api_key).await, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn an_unknown_user_is_404_and_malformed_ids_are_400_naming_them() {
    let app = TestApp::spawn().await;
    let nobody = "usr_01ARZ3NDEKTSV4RRFFQ69G5FAV";

    problem(
        create_key(&app, &app.admin.token, nobody).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let response = revoke(
        &app,
        &app.admin.token,
        "nope",
        "key_01ARZ3NDEKTSV4RRFFQ69G5FAV",
    )
    .await;
    let body = problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error_fields(&body), ["userId"]);
    let response = revoke(&app, &app.admin.token, &app.admin.user_id, "nope").await;
    let body = problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error_fields(&body), ["keyId"]);
    let response = app
        .client
        .get(app.url(&format!("/users/{nobody}/keys")))
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::UNAUTHORIZED).await;
}
