//! Tasks over HTTP: validation that names every bad field, ownership, idempotency.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{TestApp, error_fields, problem};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::{Value, json};

#[tokio::test]
async fn creating_a_task_returns_201_with_its_spec() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;

    let response = app
        .post(
            "/tasks",
            &alice.token,
            &json!({
                "workspaceId": alice.workspace_id,
                "taskType": "code.change",
                "input": {"prompt": "fix the bug"},
                "constraints": {"maxRunSeconds": 60}
            }),
        )
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::CREATED);
    let task: Value = response.json().await.unwrap();
    assert!(task["taskId"].as_str().unwrap().starts_with("task_"));
    assert_eq!(task["workspaceId"], alice.workspace_id.as_str());
    assert_eq!(task["taskType"], "code.change");
    assert_eq!(task["spec"]["input"]["prompt"], "fix the bug");
    assert_eq!(task["spec"]["constraints"]["maxRunSeconds"], 60);
    let read = app
        .get(
            &format!("/tasks/{}", task["taskId"].as_str().unwrap()),
            &alice.token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(read.json::<Value>().await.unwrap(), task);
}

#[tokio::test]
async fn a_task_with_an_unknown_task_type_is_400_naming_the_allowed_ones() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;

    let response = app
        .post(
            "/tasks",
            &alice.token,
            &json!({"workspaceId": alice.workspace_id, "taskType": "foo", "input": {"prompt": "x"}}),
        )
        .send()
        .await
        .unwrap();

    let body = problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["type"], "urn:tlao:problem:invalid-request");
    assert_eq!(
        body["errors"],
        json!([{
            "field": "taskType",
            "message": "taskType \"foo\" is not one of spec.generate, code.change, doc.write, deploy.run"
        }])
    );
}

#[tokio::test]
async fn a_task_on_an_archive_that_does_not_exist_is_404_like_an_unknown_workspace() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let archive_id = "arc_01J0000000000000000000000A";

    let response = app
        .post(
            "/tasks",
            &alice.token,
            &json!({
                "workspaceId": alice.workspace_id,
                "taskType": "doc.write",
                "input": {"prompt": "x", "archiveId": archive_id}
            }),
        )
        .send()
        .await
        .unwrap();

    let body = problem(response, StatusCode::NOT_FOUND).await;
    assert_eq!(
        body["detail"],
        format!("archive {archive_id} does not exist")
    );
}

#[tokio::test]
async fn a_task_without_a_prompt_is_400_on_input_prompt() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;

    let response = app
        .post(
            "/tasks",
            &alice.token,
            &json!({"workspaceId": alice.workspace_id, "taskType": "doc.write", "input": {}}),
        )
        .send()
        .await
        .unwrap();

    let body = problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error_fields(&body), ["input.prompt"]);
}

#[tokio::test]
async fn a_task_body_with_many_problems_lists_every_bad_field() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;

    let response = app
        .post(
            "/tasks",
            &alice.token,
            &json!({
                "workspaceId": "nope",
                "input": {"prompt": "   ", "archiveId": 3},
                "constraints": {"maxRunSeconds": 0, "tokenBudget": -1},
                "expectedOutput": {"artifactTypes": ["plan", "zip"]},
                "extra": true
            }),
        )
        .send()
        .await
        .unwrap();

    let body = problem(response, StatusCode::BAD_REQUEST).await;
    let fields = error_fields(&body);
    for field in [
        "workspaceId",
        "taskType",
        "input.prompt",
        "input.archiveId",
        "constraints.maxRunSeconds",
        "constraints.tokenBudget",
        "expectedOutput.artifactTypes[1]",
        "extra",
    ] {
        assert!(
            fields.contains(&field.to_owned()),
            "{field} missing: {body}"
        );
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_is_400_on_the_body() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;

    let response = app
        .client
        .post(app.url("/tasks"))
        .header(AUTHORIZATION, format!("Bearer {}", alice.token))
        .header(CONTENT_TYPE, "application/json")
        .body("{\"workspaceId\": ")
        .send()
        .await
        .unwrap();

    let body = problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error_fields(&body), ["body"]);
}

#[tokio::test]
async fn a_body_that_is_not_an_object_is_400_on_the_body() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;

    let response = app
        .post("/tasks", &alice.token, &json!([1, 2, 3]))
        .send()
        .await
        .unwrap();

    let body = problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error_fields(&body), ["body"]);
    assert_eq!(
        body["errors"][0]["message"],
        "must be an object, found an array"
    );
}

#[tokio::test]
async fn a_json_body_over_the_limit_is_413_with_max_bytes() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let huge = "x".repeat(1024 * 1024 + 1);

    let response = app
        .post(
            "/tasks",
            &alice.token,
            &json!({"workspaceId": alice.workspace_id, "taskType": "doc.write", "input": {"prompt": huge}}),
        )
        .send()
        .await
        .unwrap();

    let body = problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(body["maxBytes"], 1024 * 1024);
}

#[tokio::test]
async fn a_body_that_is_not_declared_json_is_415() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;

    let response = app
        .client
        .post(app.url("/tasks"))
        .header(AUTHORIZATION, format!("Bearer {}", alice.token))
        .header(CONTENT_TYPE, "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();

    problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
}

#[tokio::test]
async fn creating_a_task_in_another_users_workspace_is_403() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;

    let response = app
        .post(
            "/tasks",
            &bob.token,
            &json!({"workspaceId": alice.workspace_id, "taskType": "doc.write", "input": {"prompt": "x"}}),
        )
        .send()
        .await
        .unwrap();

    problem(response, StatusCode::FORBIDDEN).await;
}

#[tokio::test]
async fn reading_another_users_task_is_403() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let task_id = app.task(&alice).await;

    let response = app
        .get(&format!("/tasks/{task_id}"), &bob.token)
        .send()
        .await
        .unwrap();

    problem(response, StatusCode::FORBIDDEN).await;
}

#[tokio::test]
async fn an_unknown_task_is_404() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;

    let response = app
        .get("/tasks/task_01ARZ3NDEKTSV4RRFFQ69G5FAV", &alice.token)
        .send()
        .await
        .unwrap();

    let body = problem(response, StatusCode::NOT_FOUND).await;
    assert_eq!(
        body["detail"],
        "task task_01ARZ3NDEKTSV4RRFFQ69G5FAV does not exist"
    );
}

#[tokio::test]
async fn a_malformed_task_id_is_400_naming_the_path_parameter() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;

    let response = app.get("/tasks/nope", &alice.token).send().await.unwrap();

    let body = problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error_fields(&body), ["taskId"]);
}

#[tokio::test]
async fn retrying_a_task_with_the_same_idempotency_key_returns_the_first_task() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let body = json!({"workspaceId": alice.workspace_id, "taskType": "doc.write", "input": {"prompt": "x"}});

    let first = app
        .post("/tasks", &alice.token, &body)
        .header("Idempotency-Key", "task-key-1")
        .send()
        .await
        .unwrap();
    let again = app
        .post("/tasks", &alice.token, &body)
        .header("Idempotency-Key", "task-key-1")
        .send()
        .await
        .unwrap();

    assert_eq!(first.status(), StatusCode::CREATED);
    assert_eq!(again.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again: Value = again.json().await.unwrap();
    assert_eq!(first, again);
}

#[tokio::test]
async fn reusing_a_task_idempotency_key_with_another_body_is_409() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let first = app
        .post(
            "/tasks",
            &alice.token,
            &json!({"workspaceId": alice.workspace_id, "taskType": "doc.write", "input": {"prompt": "x"}}),
        )
        .header("Idempotency-Key", "task-key-2")
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);

    let other = app
        .post(
            "/tasks",
            &alice.token,
            &json!({"workspaceId": alice.workspace_id, "taskType": "doc.write", "input": {"prompt": "y"}}),
        )
        .header("Idempotency-Key", "task-key-2")
        .send()
        .await
        .unwrap();

    let body = problem(other, StatusCode::CONFLICT).await;
    assert_eq!(body["type"], "urn:tlao:problem:conflict");
}

#[tokio::test]
async fn an_integer_may_be_written_as_a_whole_float_but_not_as_a_fraction() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let task = |max_run_seconds: Value| {
        json!({
            "workspaceId": alice.workspace_id,
            "taskType": "doc.write",
            "input": {"prompt": "x"},
            "constraints": {"maxRunSeconds": max_run_seconds}
        })
    };

    let response = app
        .post("/tasks", &alice.token, &task(json!(60.0)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["spec"]["constraints"]["maxRunSeconds"], 60);

    let response = app
        .post("/tasks", &alice.token, &task(json!(60.5)))
        .send()
        .await
        .unwrap();
    let body = problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error_fields(&body), ["constraints.maxRunSeconds"]);
}

#[tokio::test]
async fn a_task_keeps_the_commit_its_archive_was_packed_from_and_refuses_a_bad_one() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let commit = "0123456789abcdef0123456789abcdef01234567";

    let response = app
        .post(
            "/tasks",
            &alice.token,
            &json!({
                "workspaceId": alice.workspace_id,
                "taskType": "code.change",
                "input": {"prompt": "fix", "source": {"commit": commit, "dirty": true}}
            }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let task: Value = response.json().await.unwrap();
    assert_eq!(
        task["spec"]["input"]["source"],
        json!({"commit": commit, "dirty": true})
    );

    let response = app
        .post(
            "/tasks",
            &alice.token,
            &json!({
                "workspaceId": alice.workspace_id,
                "taskType": "code.change",
                "input": {"prompt": "fix", "source": {"commit": "main", "dirty": 1}}
            }),
        )
        .send()
        .await
        .unwrap();
    let problem = problem(response, StatusCode::BAD_REQUEST).await;
    let fields = error_fields(&problem);
    assert!(
        fields.contains(&"input.source.commit".to_owned()),
        "{problem}"
    );
    assert!(
        fields.contains(&"input.source.dirty".to_owned()),
        "{problem}"
    );
}
