//! Starting a task through the multipart form: once per form, errors shown on the
//! form with the input kept, archive limits, CSRF before any archive byte, and the
//! workspace the form showed.

use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION};
use reqwest::{Response, StatusCode};
use serde_json::Value;

use crate::common::{self, TestApp, TestUser};
use crate::support::{Session, browser, hidden_field, html_page, run_status, sign_in};

/// A `multipart/form-data` body of text fields and an optional file.
fn multipart(fields: &[(&str, &str)], file: Option<(&str, &[u8])>) -> (String, Vec<u8>) {
    let boundary = "----tlao-test-boundary";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    let (file_name, bytes) = file.unwrap_or(("", b""));
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"archive\"; filename=\"{file_name}\"\r\nContent-Type: application/gzip\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn start_task(
    app: &TestApp,
    session: &Session,
    fields: &[(&str, &str)],
    file: Option<(&str, &[u8])>,
) -> Response {
    let (content_type, body) = multipart(fields, file);
    browser()
        .post(app.url("/console/runs"))
        .header(COOKIE, &session.cookie)
        .header(CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn starting_a_task_from_the_form_lands_on_its_run_once_per_form() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let session = sign_in(&app, &alice).await;
    let fields = [
        ("csrf", session.csrf.as_str()),
        ("nonce", "form-nonce-1"),
        ("workspaceId", alice.workspace_id.as_str()),
        ("taskType", "doc.write"),
        ("prompt", "write the docs"),
        ("executor", ""),
    ];

    let first = start_task(&app, &session, &fields, None).await;
    let again = start_task(&app, &session, &fields, None).await;

    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let location = first.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(location.starts_with("/console/runs/run_"), "{location}");
    assert_eq!(
        again.headers()[LOCATION].to_str().unwrap(),
        location,
        "the same form sent twice starts one run"
    );
    let run_id = location.rsplit('/').next().unwrap();
    assert_eq!(run_status(&app, &alice, run_id).await, "queued");
    let page = html_page(session.get(&app, &location).await, StatusCode::OK).await;
    assert!(page.contains("write the docs"));
    assert!(page.contains(&format!("data-events=\"/console/runs/{run_id}/events\"")));
    // Connection losses and the run's end, which the script writes here, are announced.
    assert!(
        page.contains("id=\"live-state\" class=\"live-state\" role=\"status\""),
        "{page}"
    );
}

#[tokio::test]
async fn a_form_with_errors_comes_back_with_messages_and_the_input_kept() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let session = sign_in(&app, &alice).await;

    let response = start_task(
        &app,
        &session,
        &[
            ("csrf", session.csrf.as_str()),
            ("nonce", "n2"),
            ("workspaceId", alice.workspace_id.as_str()),
            ("taskType", "code.change"),
            ("prompt", "   "),
            ("executor", "Not A Name"),
        ],
        None,
    )
    .await;

    let page = html_page(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(page.contains("The prompt must not be blank."));
    assert!(page.contains("Choose an executor from the list."));
    assert!(page.contains("<option value=\"code.change\" selected>"));
}

#[tokio::test]
async fn an_archive_over_the_limit_is_refused_on_the_form_and_nothing_is_created() {
    let app = TestApp::with_guardrails(tlao_domain::Guardrails {
        max_archive_bytes: 1024,
        ..tlao_domain::Guardrails::default()
    })
    .await;
    let alice = app.user("alice").await;
    let session = sign_in(&app, &alice).await;
    let big = common::gzip_like(64 * 1024);

    let response = start_task(
        &app,
        &session,
        &[
            ("csrf", session.csrf.as_str()),
            ("nonce", "n3"),
            ("workspaceId", alice.workspace_id.as_str()),
            ("taskType", "code.change"),
            ("prompt", "change it"),
            ("executor", ""),
        ],
        Some(("repo.tar.gz", &big)),
    )
    .await;

    let page = html_page(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(
        page.contains("larger than this workspace&#39;s limit of 1.0 KiB")
            || page.contains("larger than this workspace's limit of 1.0 KiB"),
        "{page}"
    );
    assert!(page.contains(">change it</textarea>"));
    assert_eq!(run_count(&app, &alice).await, 0);
}

#[tokio::test]
async fn a_form_without_the_token_creates_nothing() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let session = sign_in(&app, &alice).await;

    let response = start_task(
        &app,
        &session,
        &[
            ("nonce", "n4"),
            ("workspaceId", alice.workspace_id.as_str()),
            ("taskType", "doc.write"),
            ("prompt", "write"),
            ("executor", ""),
        ],
        Some(("repo.tar.gz", &common::gzip_like(100))),
    )
    .await;

    html_page(response, StatusCode::FORBIDDEN).await;
    assert_eq!(run_count(&app, &alice).await, 0);
}

#[tokio::test]
async fn the_form_starts_the_task_in_the_workspace_it_showed_not_the_switchers() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let other: Value = app
        .post(
            "/workspaces",
            &alice.token,
            &serde_json::json!({"name": "second"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let other = other["workspaceId"].as_str().unwrap().to_owned();
    let session = sign_in(&app, &alice).await;
    let form = html_page(session.get(&app, "/console/runs/new").await, StatusCode::OK).await;
    assert_eq!(hidden_field(&form, "workspaceId"), alice.workspace_id);
    // Meanwhile, another tab switched to the second workspace.
    let switched = Session {
        cookie: format!("{}; tlao_ws={other}", session.cookie),
        csrf: session.csrf.clone(),
    };

    let response = start_task(
        &app,
        &switched,
        &[
            ("csrf", session.csrf.as_str()),
            ("nonce", "ws-nonce"),
            ("workspaceId", alice.workspace_id.as_str()),
            ("taskType", "doc.write"),
            ("prompt", "write the docs"),
            ("executor", ""),
        ],
        None,
    )
    .await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
    let run_id = location.rsplit('/').next().unwrap();
    let run: Value = app.get_json(&format!("/runs/{run_id}"), &alice.token).await;
    assert_eq!(run["workspaceId"], alice.workspace_id.as_str());
}

#[tokio::test]
async fn a_form_naming_a_foreign_workspace_is_refused_with_403() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let session = sign_in(&app, &alice).await;

    let response = start_task(
        &app,
        &session,
        &[
            ("csrf", session.csrf.as_str()),
            ("nonce", "foreign-nonce"),
            ("workspaceId", bob.workspace_id.as_str()),
            ("taskType", "doc.write"),
            ("prompt", "write the docs"),
            ("executor", ""),
        ],
        Some(("repo.tar.gz", &common::gzip_like(100))),
    )
    .await;

    let page = html_page(response, StatusCode::FORBIDDEN).await;
    assert!(page.contains("not a member"), "{page}");
    assert_eq!(run_count(&app, &bob).await, 0);
}

/// A `multipart/form-data` body of `(name, file name, bytes)` parts, in this order.
fn parts(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----tlao-test-boundary";
    let mut body = Vec::new();
    for (name, file_name, bytes) in parts {
        let disposition = match file_name {
            Some(file) => format!(
                "form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: application/gzip"
            ),
            None => format!("form-data; name=\"{name}\""),
        };
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn post_parts(
    app: &TestApp,
    session: &Session,
    body: &[(&str, Option<&str>, &[u8])],
) -> Response {
    let (content_type, body) = parts(body);
    browser()
        .post(app.url("/console/runs"))
        .header(COOKIE, &session.cookie)
        .header(CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn run_count(app: &TestApp, user: &TestUser) -> usize {
    let runs: Value = app
        .get_json(
            &format!("/runs?workspaceId={}", user.workspace_id),
            &user.token,
        )
        .await;
    runs["items"].as_array().unwrap().len()
}

#[tokio::test]
async fn a_form_with_two_archives_is_refused_on_the_form() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let session = sign_in(&app, &alice).await;
    let archive = common::gzip_like(100);

    let response = post_parts(
        &app,
        &session,
        &[
            ("csrf", None, session.csrf.as_bytes()),
            ("nonce", None, b"two-archives"),
            ("workspaceId", None, alice.workspace_id.as_bytes()),
            ("taskType", None, b"doc.write"),
            ("prompt", None, b"write"),
            ("executor", None, b""),
            ("archive", Some("one.tar.gz"), &archive),
            ("archive", Some("two.tar.gz"), &archive),
        ],
    )
    .await;

    let page = html_page(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(page.contains("Send one archive at most."), "{page}");
    assert_eq!(run_count(&app, &alice).await, 0);
}

#[tokio::test]
async fn an_archive_sent_before_the_token_is_refused_as_a_csrf_failure() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let session = sign_in(&app, &alice).await;
    let archive = common::gzip_like(100);

    let response = post_parts(
        &app,
        &session,
        &[
            ("nonce", None, b"archive-first"),
            ("workspaceId", None, alice.workspace_id.as_bytes()),
            ("taskType", None, b"doc.write"),
            ("prompt", None, b"write"),
            ("executor", None, b""),
            ("archive", Some("repo.tar.gz"), &archive),
            ("csrf", None, session.csrf.as_bytes()),
        ],
    )
    .await;

    let page = html_page(response, StatusCode::FORBIDDEN).await;
    assert!(page.contains("security token"), "{page}");
    assert_eq!(
        run_count(&app, &alice).await,
        0,
        "not started without its archive"
    );
}

#[tokio::test]
async fn text_fields_over_256_kib_in_total_are_refused_with_413() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let session = sign_in(&app, &alice).await;
    let filler = vec![b'x'; 100 * 1024];

    let response = post_parts(
        &app,
        &session,
        &[
            ("csrf", None, session.csrf.as_bytes()),
            ("nonce", None, b"too-much-text"),
            ("workspaceId", None, alice.workspace_id.as_bytes()),
            ("taskType", None, b"doc.write"),
            ("prompt", None, b"write"),
            ("executor", None, b""),
            ("extra1", None, &filler),
            ("extra2", None, &filler),
            ("extra3", None, &filler),
            ("archive", Some(""), b""),
        ],
    )
    .await;

    let page = html_page(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert!(page.contains("add up to more than 256.0 KiB"), "{page}");
    assert_eq!(run_count(&app, &alice).await, 0);
}

#[tokio::test]
async fn the_contracts_address_of_the_start_page_redirects_to_it() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let session = sign_in(&app, &alice).await;

    let response = session.get(&app, "/console/new").await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/console/runs/new");
}
