//! The HTTP surface every route shares: request ids, problem bodies for unknown routes
//! and methods, probes, the root redirect, and the OpenAPI document matching what is
//! served.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{TestApp, problem};
use reqwest::StatusCode;
use reqwest::header::{ALLOW, LOCATION};
use serde_json::Value;

#[tokio::test]
async fn a_request_id_sent_by_the_client_is_echoed_and_quoted_in_error_bodies() {
    let app = TestApp::spawn().await;

    let response = app
        .client
        .get(app.url("/runs/run_01ARZ3NDEKTSV4RRFFQ69G5FAV"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();

    assert_eq!(response.headers()["x-request-id"], "trace-me-123");
    let body = problem(response, StatusCode::UNAUTHORIZED).await;
    assert_eq!(body["requestId"], "trace-me-123");
}

#[tokio::test]
async fn a_request_without_an_id_gets_a_fresh_one_on_success_and_on_error() {
    let app = TestApp::spawn().await;

    let ok = app.client.get(app.url("/healthz")).send().await.unwrap();
    let missing = app.client.get(app.url("/nowhere")).send().await.unwrap();

    let ok_id = ok.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(ok_id.starts_with("req_"), "{ok_id}");
    let body = problem(missing, StatusCode::NOT_FOUND).await;
    let missing_id = body["requestId"].as_str().unwrap();
    assert!(missing_id.starts_with("req_"));
    assert_ne!(missing_id, ok_id);
}

#[tokio::test]
async fn an_unusable_client_request_id_is_replaced() {
    let app = TestApp::spawn().await;

    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "x".repeat(129))
        .send()
        .await
        .unwrap();

    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert!(id.starts_with("req_"), "{id}");
}

#[tokio::test]
async fn an_unknown_route_is_a_404_problem() {
    let app = TestApp::spawn().await;

    let response = app
        .get("/no/such/route", &app.admin.token)
        .send()
        .await
        .unwrap();

    let body = problem(response, StatusCode::NOT_FOUND).await;
    assert_eq!(body["type"], "urn:tlao:problem:not-found");
    assert_eq!(body["detail"], "no route matches GET /no/such/route");
}

#[tokio::test]
async fn a_known_route_with_the_wrong_method_is_a_405_problem_naming_the_allowed_ones() {
    let app = TestApp::spawn().await;

    let response = app.client.delete(app.url("/runs")).send().await.unwrap();

    assert_eq!(response.headers()[ALLOW], "POST, GET, HEAD");
    let body = problem(response, StatusCode::METHOD_NOT_ALLOWED).await;
    assert_eq!(body["type"], "urn:tlao:problem:method-not-allowed");
}

#[tokio::test]
async fn head_answers_every_get_route_with_its_headers_and_no_body() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let run_id = app.run(&alice).await;

    let probe = app.client.head(app.url("/healthz")).send().await.unwrap();
    let run = app
        .client
        .head(app.url(&format!("/runs/{run_id}")))
        .header("authorization", format!("Bearer {}", alice.token))
        .send()
        .await
        .unwrap();
    let anonymous = app
        .client
        .head(app.url(&format!("/runs/{run_id}")))
        .send()
        .await
        .unwrap();

    assert_eq!(probe.status(), StatusCode::OK);
    assert_eq!(run.status(), StatusCode::OK);
    assert_eq!(run.headers()["content-type"], "application/json");
    assert!(run.headers().contains_key("x-request-id"));
    assert!(run.bytes().await.unwrap().is_empty());
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // Not on the event stream, whose body ends only with the run: a 405 at once.
    let stream = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        app.client
            .head(app.url(&format!("/runs/{run_id}/events")))
            .header("authorization", format!("Bearer {}", alice.token))
            .send(),
    )
    .await
    .expect("HEAD on the stream answers at once")
    .unwrap();
    assert_eq!(stream.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(stream.headers()[ALLOW], "GET");
}

#[tokio::test]
async fn healthz_and_readyz_answer_ok_without_a_token() {
    let app = TestApp::spawn().await;

    for path in ["/healthz", "/readyz"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "ok");
    }
}

#[tokio::test]
async fn the_root_redirects_to_the_console() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let response = client.get(app.url("/")).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(response.headers()[LOCATION], "/console");
}

#[tokio::test]
async fn the_served_openapi_document_is_the_generated_one_with_a_bearer_scheme() {
    let app = TestApp::spawn().await;

    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let served: Value = response.json().await.unwrap();
    let generated = serde_json::to_value(tlao_api::openapi()).unwrap();
    assert_eq!(served, generated);
    assert_eq!(
        served["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(served["components"]["schemas"]["Problem"].is_object());
    assert!(served["components"]["schemas"]["RunView"].is_object());
}

/// The other direction of the route table's unit test: every documented operation is
/// actually served (neither the unknown-route 404 nor a 405).
#[tokio::test]
async fn every_documented_operation_is_served() {
    let app = TestApp::spawn().await;
    let doc = serde_json::to_value(tlao_api::openapi()).unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{workspaceId}", "ws_01ARZ3NDEKTSV4RRFFQ69G5FAV")
            .replace("{taskId}", "task_01ARZ3NDEKTSV4RRFFQ69G5FAV")
            .replace("{runId}", "run_01ARZ3NDEKTSV4RRFFQ69G5FAV")
            .replace("{artifactId}", "art_01ARZ3NDEKTSV4RRFFQ69G5FAV")
            .replace("{name}", "nobody")
            .replace("{key}", "workspaces/x/none");
        for method in ["get", "post", "put", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            let response = client
                .request(method.to_uppercase().parse().unwrap(), app.url(&concrete))
                .header("authorization", format!("Bearer {}", app.admin.token))
                .send()
                .await
                .unwrap();
            let status = response.status();
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            if status == StatusCode::NOT_FOUND {
                let body: Value = response.json().await.unwrap();
                assert!(
                    !body["detail"]
                        .as_str()
                        .unwrap()
                        .starts_with("no route matches"),
                    "{method} {path} is documented but not routed"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 23, "only {checked} operations were checked");
}
