//! Runs over HTTP: creation with executor selection, the daily quota (also under 100
//! concurrent requests), idempotency, reads, cancellation, and paging.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::HashSet;

use common::{Options, TestApp, error_fields, problem};
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use serde_json::{Value, json};
use tlao_domain::{Guardrails, WorkspaceId, keys};

#[tokio::test]
async fn creating_a_run_returns_201_queued_with_its_executor_and_queue_position() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let task_id = app.task(&alice).await;

    let response = app.create_run(&alice, &task_id).await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let run: Value = response.json().await.unwrap();
    assert!(run["runId"].as_str().unwrap().starts_with("run_"));
    assert_eq!(run["taskId"], task_id.as_str());
    assert_eq!(run["workspaceId"], alice.workspace_id.as_str());
    assert_eq!(run["taskType"], "spec.generate");
    assert_eq!(run["executor"], "kiro");
    assert_eq!(run["status"], "queued");
    assert_eq!(run["queuePosition"], 1);
    assert_eq!(run["maxRunSeconds"], 480);
    assert_eq!(run["startedAt"], Value::Null);
    assert_eq!(run["durationMs"], Value::Null);
    assert_eq!(run["usage"], json!({"kind": "unmeasured"}));
    assert_eq!(run["artifactIds"], json!([]));
}

#[tokio::test]
async fn reading_a_run_returns_it_with_its_logs() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let run_id = app.run(&alice).await;

    let response = app
        .get(&format!("/runs/{run_id}"), &alice.token)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let run: Value = response.json().await.unwrap();
    assert_eq!(run["runId"], run_id.as_str());
    assert_eq!(run["status"], "queued");
    assert_eq!(run["logs"], "");
    assert_eq!(run["logsTruncated"], false);
    assert_eq!(run["droppedLogBytes"], 0);
}

#[tokio::test]
async fn a_run_body_with_bad_fields_lists_each_of_them() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;

    let response = app
        .post(
            "/runs",
            &alice.token,
            &json!({"executor": "Not A Name", "speed": "fast"}),
        )
        .send()
        .await
        .unwrap();

    let body = problem(response, StatusCode::BAD_REQUEST).await;
    let fields: HashSet<String> = error_fields(&body).into_iter().collect();
    let expected: HashSet<String> = ["taskId", "executor", "speed"]
        .map(str::to_owned)
        .into_iter()
        .collect();
    assert_eq!(fields, expected, "{body}");
}

#[tokio::test]
async fn a_run_of_an_unknown_task_is_404() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;

    let response = app
        .create_run(&alice, "task_01ARZ3NDEKTSV4RRFFQ69G5FAV")
        .await;

    problem(response, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn a_run_of_another_users_task_is_403() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let task_id = app.task(&alice).await;

    let response = app.create_run(&bob, &task_id).await;

    problem(response, StatusCode::FORBIDDEN).await;
}

#[tokio::test]
async fn reading_or_cancelling_another_users_run_is_403() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let run_id = app.run(&alice).await;

    let read = app
        .get(&format!("/runs/{run_id}"), &bob.token)
        .send()
        .await
        .unwrap();
    let cancel = app
        .post(&format!("/runs/{run_id}/cancel"), &bob.token, &json!({}))
        .send()
        .await
        .unwrap();

    problem(read, StatusCode::FORBIDDEN).await;
    problem(cancel, StatusCode::FORBIDDEN).await;
}

#[tokio::test]
async fn an_unknown_run_is_404() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;

    let response = app
        .get("/runs/run_01ARZ3NDEKTSV4RRFFQ69G5FAV", &alice.token)
        .send()
        .await
        .unwrap();

    let body = problem(response, StatusCode::NOT_FOUND).await;
    assert_eq!(body["type"], "urn:tlao:problem:not-found");
}

#[tokio::test]
async fn a_malformed_run_id_is_400_naming_the_path_parameter() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;

    let response = app.get("/runs/nope", &alice.token).send().await.unwrap();

    let body = problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error_fields(&body), ["runId"]);
}

#[tokio::test]
async fn cancelling_a_queued_run_returns_it_cancelled() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let run_id = app.run(&alice).await;

    let response = app
        .post(&format!("/runs/{run_id}/cancel"), &alice.token, &json!({}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let run: Value = response.json().await.unwrap();
    assert_eq!(run["status"], "cancelled");
    assert!(run.get("queuePosition").is_none(), "{run}");
    assert!(run["finishedAt"].is_string());
}

#[tokio::test]
async fn cancelling_a_finished_run_is_409() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let run_id = app.run(&alice).await;
    let first = app
        .post(&format!("/runs/{run_id}/cancel"), &alice.token, &json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);

    let second = app
        .post(&format!("/runs/{run_id}/cancel"), &alice.token, &json!({}))
        .send()
        .await
        .unwrap();

    let body = problem(second, StatusCode::CONFLICT).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("only queued or running runs can be cancelled"),
        "{body}"
    );
}

#[tokio::test]
async fn a_run_for_a_task_type_no_executor_serves_is_422_naming_the_task_type() {
    let app = TestApp::spawn_with(Options {
        kiro: false,
        ..Options::default()
    })
    .await;
    let registered = app
        .post(
            "/executors",
            &app.admin.token,
            &json!({"name": "writer", "kind": "command", "taskTypes": ["doc.write"],
                    "config": {"command": ["writer", "{prompt}"]}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
    let alice = app.user("alice").await;
    let task_id = app.task_of_type(&alice, "code.change").await;

    let response = app.create_run(&alice, &task_id).await;

    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["type"], "urn:tlao:problem:no-executor");
    assert_eq!(body["taskType"], "code.change");
    assert!(
        body["detail"].as_str().unwrap().contains("writer"),
        "{body}"
    );
}

#[tokio::test]
async fn requesting_an_unknown_executor_is_422() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let task_id = app.task(&alice).await;

    let response = app
        .post(
            "/runs",
            &alice.token,
            &json!({"taskId": task_id, "executor": "nobody"}),
        )
        .send()
        .await
        .unwrap();

    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["taskType"], "spec.generate");
    assert!(body["detail"].as_str().unwrap().contains("\"nobody\""));
}

#[tokio::test]
async fn creating_a_run_beyond_the_daily_quota_returns_429_with_retry_after() {
    let app = TestApp::with_guardrails(Guardrails {
        daily_run_quota: 1,
        ..Guardrails::default()
    })
    .await;
    let alice = app.user("alice").await;
    let task_id = app.task(&alice).await;
    let first = app.create_run(&alice, &task_id).await;
    assert_eq!(first.status(), StatusCode::CREATED);

    let second = app.create_run(&alice, &task_id).await;

    let retry_after: u64 = second.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&retry_after), "{retry_after}");
    let body = problem(second, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(body["type"], "urn:tlao:problem:quota-exceeded");
    assert_eq!(body["retryAfterSeconds"], retry_after);
}

#[tokio::test]
async fn a_hundred_concurrent_runs_against_a_quota_of_ten_admit_exactly_ten() {
    let app = TestApp::with_guardrails(Guardrails {
        daily_run_quota: 10,
        ..Guardrails::default()
    })
    .await;
    let alice = app.user("alice").await;
    let task_id = app.task(&alice).await;

    let responses =
        futures::future::join_all((0..100).map(|_| app.create_run(&alice, &task_id))).await;

    let statuses: Vec<StatusCode> = responses.iter().map(|r| r.status()).collect();
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((created, refused), (10, 90), "{statuses:?}");
    let ws: WorkspaceId = alice.workspace_id.parse().unwrap();
    let counter = app
        .services
        .core
        .store
        .get_item(&keys::daily_quota(&ws, app.services.core.now().utc_date()))
        .await
        .unwrap()
        .expect("the quota counter exists");
    assert_eq!(counter.n("count"), Some(10));
}

#[tokio::test]
async fn retrying_a_run_with_the_same_idempotency_key_returns_the_first_run_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let task_id = app.task(&alice).await;
    let body = json!({"taskId": task_id});

    let mut runs = Vec::new();
    for _ in 0..2 {
        let response = app
            .post("/runs", &alice.token, &body)
            .header("Idempotency-Key", "run-key-1")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        runs.push(response.json::<Value>().await.unwrap());
    }

    assert_eq!(runs[0]["runId"], runs[1]["runId"]);
    let listed: Value = app
        .get_json(
            &format!("/runs?workspaceId={}", alice.workspace_id),
            &alice.token,
        )
        .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn reusing_a_run_idempotency_key_with_another_body_is_409() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let first_task = app.task(&alice).await;
    let other_task = app.task(&alice).await;
    let first = app
        .post("/runs", &alice.token, &json!({"taskId": first_task}))
        .header("Idempotency-Key", "run-key-2")
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);

    let other = app
        .post("/runs", &alice.token, &json!({"taskId": other_task}))
        .header("Idempotency-Key", "run-key-2")
        .send()
        .await
        .unwrap();

    problem(other, StatusCode::CONFLICT).await;
}

async fn page(app: &TestApp, token: &str, query: &str) -> Value {
    let response = app
        .get(&format!("/runs?{query}"), token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn listing_runs_pages_through_every_run_exactly_once_newest_first() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let task_id = app.task(&alice).await;
    let mut created = Vec::new();
    for _ in 0..25 {
        let response = app.create_run(&alice, &task_id).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        created.push(
            response.json::<Value>().await.unwrap()["runId"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }

    let mut seen = Vec::new();
    let mut pages = 0;
    let mut query = format!("workspaceId={}&limit=10", alice.workspace_id);
    loop {
        let body = page(&app, &alice.token, &query).await;
        pages += 1;
        let items = body["items"].as_array().unwrap();
        assert!(items.len() <= 10);
        seen.extend(
            items
                .iter()
                .map(|r| r["runId"].as_str().unwrap().to_owned()),
        );
        match body["nextCursor"].as_str() {
            Some(cursor) => {
                query = format!(
                    "workspaceId={}&limit=10&cursor={cursor}",
                    alice.workspace_id
                )
            }
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }

    let newest_first: Vec<String> = created.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);
}

#[tokio::test]
async fn listing_runs_filters_by_status() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let mut cancelled = HashSet::new();
    for i in 0..6 {
        let run_id = app.run(&alice).await;
        if i % 2 == 0 {
            let response = app
                .post(&format!("/runs/{run_id}/cancel"), &alice.token, &json!({}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            cancelled.insert(run_id);
        }
    }

    let body = page(
        &app,
        &alice.token,
        &format!("workspaceId={}&status=cancelled", alice.workspace_id),
    )
    .await;
    let queued = page(
        &app,
        &alice.token,
        &format!("workspaceId={}&status=queued", alice.workspace_id),
    )
    .await;

    let listed: HashSet<String> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["runId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, cancelled);
    assert_eq!(body["nextCursor"], Value::Null);
    assert_eq!(queued["items"].as_array().unwrap().len(), 3);
    assert!(
        queued["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "queued")
    );
}

#[tokio::test]
async fn listing_runs_filters_by_task_type_and_executor() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let mut docs = HashSet::new();
    for i in 0..4 {
        let task_type = if i % 2 == 0 {
            "doc.write"
        } else {
            "spec.generate"
        };
        let task_id = app.task_of_type(&alice, task_type).await;
        let response = app.create_run(&alice, &task_id).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        if task_type == "doc.write" {
            docs.insert(body["runId"].as_str().unwrap().to_owned());
        }
    }
    let ws = &alice.workspace_id;
    let ids = |body: &Value| -> HashSet<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["runId"].as_str().unwrap().to_owned())
            .collect()
    };

    let doc_runs = page(
        &app,
        &alice.token,
        &format!("workspaceId={ws}&taskType=doc.write"),
    )
    .await;
    let on_kiro = page(
        &app,
        &alice.token,
        &format!("workspaceId={ws}&executor=kiro"),
    )
    .await;
    let on_other = page(
        &app,
        &alice.token,
        &format!("workspaceId={ws}&executor=other"),
    )
    .await;
    let both = page(
        &app,
        &alice.token,
        &format!("workspaceId={ws}&executor=kiro&taskType=spec.generate&status=queued"),
    )
    .await;

    assert_eq!(ids(&doc_runs), docs);
    assert_eq!(ids(&on_kiro).len(), 4);
    assert!(ids(&on_other).is_empty());
    let generated = ids(&both);
    assert_eq!(generated.len(), 2);
    assert!(generated.is_disjoint(&docs));
}

#[tokio::test]
async fn listing_runs_without_a_workspace_uses_the_callers_first_one() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let run_id = app.run(&alice).await;

    let body = page(&app, &alice.token, "").await;

    assert_eq!(body["items"][0]["runId"], run_id.as_str());
}

#[tokio::test]
async fn listing_runs_with_bad_parameters_names_each_of_them() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;

    let response = app
        .get(
            "/runs?workspaceId=nope&status=sleeping&limit=0&cursor=x&executor=Not%20A%20Name&taskType=poem.write",
            &alice.token,
        )
        .send()
        .await
        .unwrap();

    let body = problem(response, StatusCode::BAD_REQUEST).await;
    let fields: HashSet<String> = error_fields(&body).into_iter().collect();
    let expected: HashSet<String> = [
        "workspaceId",
        "status",
        "limit",
        "cursor",
        "executor",
        "taskType",
    ]
    .map(str::to_owned)
    .into_iter()
    .collect();
    assert_eq!(fields, expected, "{body}");
}

#[tokio::test]
async fn listing_a_page_larger_than_a_hundred_is_400() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;

    let response = app
        .get("/runs?limit=101", &alice.token)
        .send()
        .await
        .unwrap();

    let body = problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error_fields(&body), ["limit"]);
}

#[tokio::test]
async fn listing_another_users_runs_is_403() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;

    let response = app
        .get(
            &format!("/runs?workspaceId={}", alice.workspace_id),
            &bob.token,
        )
        .send()
        .await
        .unwrap();

    problem(response, StatusCode::FORBIDDEN).await;
}
