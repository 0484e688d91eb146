//! `TlaoClient` against a scripted HTTP server: an API key is exchanged for a token and
//! renewed once when a call answers 401; a created run is retried after a 5xx with the
//! same `Idempotency-Key`, while a cancel (no key) is tried once; problem+json bodies
//! become `Api` errors with their fields; an unreachable server is a `Connection` error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Answer, Scripted, answer, fast_retry, run_id, unreachable_url};
use tlao_domain::{RunId, TaskId, Ulid};
use tlao_sdk::types::CreateRunRequest;
use tlao_sdk::{ClientError, Credentials, TlaoClient};

/// A client of `server` with `credentials` and quick retries.
fn client(server: &Scripted, credentials: Credentials) -> TlaoClient {
    TlaoClient::new(&server.url, credentials)
        .unwrap()
        .with_retry(fast_retry())
}

fn run_json(run_id: &RunId) -> String {
    format!(
        r#"{{"runId":"{run_id}","taskId":"{}","workspaceId":"ws_01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "taskType":"doc.write","executor":"shell","status":"queued","queuePosition":1,
            "createdAt":"2026-11-26T13:57:50.123Z","startedAt":null,"finishedAt":null,
            "deadline":null,"maxRunSeconds":480,"durationMs":null,"logsTruncated":false,
            "droppedLogBytes":0,"error":null,"usage":{{"kind":"unmeasured"}},"artifactIds":[]}}"#,
        task_id()
    )
}

fn task_id() -> TaskId {
    TaskId::new(Ulid::from_parts(1_700_000_000_000, 2))
}

const TOKEN_A: &str = r#"{"token":"token-a","expiresAt":"2099-01-01T00:00:00.000Z","userId":"usr_01ARZ3NDEKTSV4RRFFQ69G5FAV"}"#;
const TOKEN_B: &str = r#"{"token":"token-b","expiresAt":"2099-01-01T00:00:00.000Z","userId":"usr_01ARZ3NDEKTSV4RRFFQ69G5FAV"}"#;
const EXPIRED: &str = r#"{"type":"urn:tlao:problem:unauthenticated","title":"Unauthenticated","status":401,"detail":"the bearer token expired at 2026-01-01T00:00:00.000Z","requestId":"req_1"}"#;

#[tokio::test]
async fn an_api_key_is_exchanged_for_a_token_and_renewed_once_when_a_call_answers_401() {
    let server = Scripted::start(vec![
        answer(200, TOKEN_A),
        answer(401, EXPIRED),
        answer(200, TOKEN_B),
        answer(200, r#"{"items":[]}"#),
    ])
    .await;
    let client = client(&server, Credentials::api_key("tlao_key"));

    let workspaces = client.list_workspaces().await.unwrap();

    assert!(workspaces.is_empty());
    let seen = server.seen();
    let calls: Vec<(&str, &str)> = seen
        .iter()
        .map(|s| (s.method.as_str(), s.path.as_str()))
        .collect();
    assert_eq!(
        calls,
        [
            ("POST", "/auth/token"),
            ("GET", "/workspaces"),
            ("POST", "/auth/token"),
            ("GET", "/workspaces"),
        ]
    );
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    assert_eq!(seen[1].header("authorization"), Some("Bearer token-a"));
    assert_eq!(seen[3].header("authorization"), Some("Bearer token-b"));
    assert_eq!(client.session().unwrap().token, "token-b");
}

#[tokio::test]
async fn a_token_alone_is_not_renewed_and_a_401_is_an_api_error() {
    let server = Scripted::start(vec![answer(401, EXPIRED)]).await;
    let client = client(&server, Credentials::token("old"));

    let error = client.list_workspaces().await.unwrap_err();

    assert_eq!(error.status(), Some(401));
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn a_created_run_is_retried_after_a_5xx_with_the_same_idempotency_key() {
    let server = Scripted::start(vec![
        answer(
            503,
            r#"{"title":"Unavailable","status":503,"detail":"busy"}"#,
        ),
        answer(201, &run_json(&run_id())),
    ])
    .await;
    let client = client(&server, Credentials::token("t"));

    let run = client
        .create_run(&CreateRunRequest {
            task_id: task_id(),
            executor: None,
        })
        .await
        .unwrap();

    assert_eq!(run.run_id, run_id());
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    let key = seen[0].header("idempotency-key").unwrap();
    assert!(key.starts_with("tlao-"));
    assert_eq!(seen[1].header("idempotency-key"), Some(key));
    assert_eq!(seen[0].body, seen[1].body);

    // Another call is another key.
    client
        .create_run(&CreateRunRequest {
            task_id: task_id(),
            executor: None,
        })
        .await
        .unwrap();
    assert_ne!(server.seen()[2].header("idempotency-key"), Some(key));
}

#[tokio::test]
async fn a_cancel_is_tried_once_since_it_carries_no_idempotency_key() {
    let server = Scripted::start(vec![answer(
        503,
        r#"{"title":"Unavailable","status":503,"detail":"busy"}"#,
    )])
    .await;
    let client = client(&server, Credentials::token("t"));

    let error = client.cancel_run(&run_id()).await.unwrap_err();

    assert_eq!(error.status(), Some(503));
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn a_problem_body_becomes_an_api_error_with_its_fields_and_request_id() {
    let server = Scripted::start(vec![Answer {
        status: 400,
        content_type: "application/problem+json",
        body: r#"{"type":"urn:tlao:problem:invalid","title":"Invalid request","status":400,
                 "detail":"1 field is invalid","requestId":"req_9",
                 "errors":[{"field":"name","message":"must not be blank"}]}"#
            .into(),
        extra: Vec::new(),
    }])
    .await;
    let client = client(&server, Credentials::token("t"));

    let error = client.create_workspace(" ").await.unwrap_err();

    match &error {
        ClientError::Api {
            status,
            title,
            request_id,
            problem,
            ..
        } => {
            assert_eq!(*status, 400);
            assert_eq!(title, "Invalid request");
            assert_eq!(request_id.as_deref(), Some("req_9"));
            assert_eq!(problem.as_ref().unwrap().errors[0].field, "name");
        }
        other => panic!("not an API error: {other:?}"),
    }
    assert!(error.to_string().contains("(request req_9)"), "{error}");
}

#[tokio::test]
async fn an_unreachable_server_is_a_connection_error_naming_the_url() {
    let url = unreachable_url();
    let client = TlaoClient::new(&url, Credentials::token("t"))
        .unwrap()
        .with_retry(fast_retry());

    let error = client.list_workspaces().await.unwrap_err();

    match error {
        ClientError::Connection { url: tried, .. } => {
            assert_eq!(tried, format!("{url}/workspaces"));
        }
        other => panic!("not a connection error: {other:?}"),
    }
}

fn workspace_json(id: &str) -> String {
    format!(
        r#"{{"workspaceId":"{id}","name":"w","createdAt":"2026-11-26T13:57:50.123Z","limits":{{"maxArchiveBytes":100}}}}"#
    )
}

#[tokio::test]
async fn list_workspaces_follows_every_page() {
    let first = "ws_01ARZ3NDEKTSV4RRFFQ69G5FA1";
    let second = "ws_01ARZ3NDEKTSV4RRFFQ69G5FA2";
    let server = Scripted::start(vec![
        answer(
            200,
            &format!(
                r#"{{"items":[{}],"nextCursor":"{first}"}}"#,
                workspace_json(first)
            ),
        ),
        answer(
            200,
            &format!(
                r#"{{"items":[{}],"nextCursor":null}}"#,
                workspace_json(second)
            ),
        ),
    ])
    .await;
    let client = client(&server, Credentials::token("t"));

    let workspaces = client.list_workspaces().await.unwrap();

    let ids: Vec<String> = workspaces
        .iter()
        .map(|w| w.workspace_id.to_string())
        .collect();
    assert_eq!(ids, [first, second]);
    let paths: Vec<String> = server.seen().iter().map(|s| s.path.clone()).collect();
    assert_eq!(
        paths,
        [
            "/workspaces".to_owned(),
            format!("/workspaces?cursor={first}")
        ]
    );
}

#[tokio::test]
async fn api_keys_are_listed_created_and_revoked_at_the_users_paths() {
    let user = "usr_01ARZ3NDEKTSV4RRFFQ69G5FAV";
    let key = "key_01ARZ3NDEKTSV4RRFFQ69G5FAV";
    let server = Scripted::start(vec![
        answer(
            200,
            &format!(
                r#"{{"items":[{{"keyId":"{key}","createdAt":"2026-11-26T13:57:50.123Z","lastUsedAt":null}}]}}"#
            ),
        ),
        answer(
            201,
            &format!(
                r#"{{"keyId":"{key}","userId":"{user}","apiKey":"tlao_new","createdAt":"2026-11-26T13:57:50.123Z"}}"#
            ),
        ),
        answer(204, ""),
    ])
    .await;
    let client = client(&server, Credentials::token("t"));
    let user_id: tlao_domain::UserId = user.parse().unwrap();
    let key_id: tlao_domain::KeyId = key.parse().unwrap();

    let listed = client.list_keys(&user_id).await.unwrap();
    let created = client.create_key(&user_id).await.unwrap();
    client.revoke_key(&user_id, &key_id).await.unwrap();

    assert_eq!(listed[0].key_id, key_id);
    assert_eq!(listed[0].last_used_at, None);
    assert_eq!(created.api_key, "tlao_new");
    let calls: Vec<(String, String)> = server
        .seen()
        .iter()
        .map(|s| (s.method.clone(), s.path.clone()))
        .collect();
    assert_eq!(
        calls,
        [
            ("GET".to_owned(), format!("/users/{user}/keys")),
            ("POST".to_owned(), format!("/users/{user}/keys")),
            ("DELETE".to_owned(), format!("/users/{user}/keys/{key}")),
        ]
    );
}
