//! Tenant limits over HTTP: the workspaces one user may own and the runs one user may
//! start a day (429 problems naming the limit), `GET /workspaces` paged by cursor, and
//! archives refused at upload for their entries or unpacked size (413 naming the limit,
//! nothing stored) or for not being a readable tar.gz (400).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use bytes::Bytes;
use common::{TestApp, TestUser, error_fields, problem, tar_gz};
use reqwest::header::{AUTHORIZATION, RETRY_AFTER};
use reqwest::{Body, StatusCode};
use serde_json::{Value, json};
use tlao_domain::{Guardrails, WorkspaceId, keys};

async fn create_workspace(app: &TestApp, user: &TestUser, name: &str) -> reqwest::Response {
    app.post("/workspaces", &user.token, &json!({"name": name}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_user_at_their_workspace_limit_gets_a_429_naming_it() {
    let app = TestApp::with_guardrails(Guardrails {
        max_workspaces_per_user: 2,
        ..Guardrails::default()
    })
    .await;
    // `user` creates their first workspace.
    let ann = app.user("ann").await;
    let second = create_workspace(&app, &ann, "second").await;
    assert_eq!(second.status(), StatusCode::CREATED);

    let refused = create_workspace(&app, &ann, "third").await;

    assert!(
        refused.headers().get(RETRY_AFTER).is_none(),
        "time does not lift this limit"
    );
    let body = problem(refused, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(body["type"], "urn:tlao:problem:limit-reached");
    assert_eq!(body["limit"], "maxWorkspacesPerUser");
    assert_eq!(body["max"], 2);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("guardrails.max_workspaces_per_user"),
        "{body}"
    );
    let listed = app.get_json("/workspaces", &ann.token).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    // Another user owns workspaces of their own.
    let bob = app.user("bob").await;
    assert_eq!(
        create_workspace(&app, &bob, "more").await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_user_past_their_daily_run_quota_gets_a_429_in_any_of_their_workspaces() {
    let app = TestApp::with_guardrails(Guardrails {
        daily_run_quota_per_user: 2,
        ..Guardrails::default()
    })
    .await;
    let ann = app.user("ann").await;
    let other = create_workspace(&app, &ann, "other").await;
    let other: Value = other.json().await.unwrap();
    let in_other = TestUser {
        workspace_id: other["workspaceId"].as_str().unwrap().to_owned(),
        ..ann.clone()
    };
    app.run(&ann).await;
    app.run(&in_other).await;

    let task = app.task(&ann).await;
    let refused = app.create_run(&ann, &task).await;

    let retry_after: u64 = refused.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&retry_after), "{retry_after}");
    let body = problem(refused, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(body["type"], "urn:tlao:problem:quota-exceeded");
    assert_eq!(body["limit"], "dailyRunQuotaPerUser");
    assert_eq!(body["max"], 2);
    assert_eq!(body["retryAfterSeconds"], retry_after);
    // The workspace's own quota is not what refused it, and another user may run.
    let bob = app.user("bob").await;
    app.run(&bob).await;
}

#[tokio::test]
async fn the_workspace_quota_429_names_its_limit_too() {
    let app = TestApp::with_guardrails(Guardrails {
        daily_run_quota: 1,
        ..Guardrails::default()
    })
    .await;
    let ann = app.user("ann").await;
    app.run(&ann).await;
    let task = app.task(&ann).await;

    let body = problem(
        app.create_run(&ann, &task).await,
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;

    assert_eq!(body["limit"], "dailyRunQuota");
    assert_eq!(body["max"], 1);
}

#[tokio::test]
async fn paging_through_250_workspaces_returns_each_once_oldest_first() {
    let app = TestApp::with_guardrails(Guardrails {
        max_workspaces_per_user: 300,
        ..Guardrails::default()
    })
    .await;
    let ann = app.user("ann").await;
    let caller = tlao_orchestrator::Caller {
        user_id: ann.user_id.parse().unwrap(),
        admin: false,
    };
    // Made through the service (a few ms each), read through the API.
    let mut created = vec![ann.workspace_id.clone()];
    for index in 1..250 {
        let workspace = app
            .services
            .workspaces
            .create(&caller, &format!("ws {index}"))
            .await
            .unwrap();
        created.push(workspace.workspace_id.to_string());
    }

    let mut seen = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => "/workspaces?limit=100".to_owned(),
            Some(cursor) => format!("/workspaces?limit=100&cursor={cursor}"),
        };
        let page = app.get_json(&path, &ann.token).await;
        pages += 1;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 100);
        seen.extend(
            items
                .iter()
                .map(|w| w["workspaceId"].as_str().unwrap().to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }

    assert_eq!(pages, 3);
    assert_eq!(seen, created);
    // Without `limit`, a page holds 100.
    let first = app.get_json("/workspaces", &ann.token).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 100);
    assert!(first["nextCursor"].is_string());
}

#[tokio::test]
async fn a_bad_workspace_page_parameter_is_a_400_naming_it() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann").await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("cursor=nope", "cursor"),
    ] {
        let response = app
            .get(&format!("/workspaces?{query}"), &ann.token)
            .send()
            .await
            .unwrap();
        let body = problem(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(error_fields(&body), [field], "{query}: {body}");
    }
}

#[tokio::test]
async fn a_workspace_limits_list_the_archive_guardrails() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann").await;

    let workspace = app
        .get_json(&format!("/workspaces/{}", ann.workspace_id), &ann.token)
        .await;

    assert_eq!(workspace["limits"]["maxArchiveEntries"], 100_000);
    assert_eq!(workspace["limits"]["maxUnpackedBytes"], 1u64 << 30);
}

async fn upload(app: &TestApp, user: &TestUser, body: Body) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/workspaces/{}/archives", user.workspace_id)))
        .header(AUTHORIZATION, format!("Bearer {}", user.token))
        .header("content-type", "application/gzip")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn archives_stored(app: &TestApp, user: &TestUser) -> usize {
    let ws: WorkspaceId = user.workspace_id.parse().unwrap();
    let records = app
        .services
        .core
        .store
        .query_items(tlao_ports::Query::new(
            keys::archives_of(&ws),
            tlao_ports::Direction::Forward,
            10,
        ))
        .await
        .unwrap()
        .items
        .len();
    let blobs = std::fs::read_dir(
        app.blobs_dir()
            .join(format!("objects/workspaces/{ws}/archives")),
    )
    .map(|dir| dir.count())
    .unwrap_or(0);
    assert_eq!(records, blobs, "a record for every archive blob");
    records
}

#[tokio::test]
async fn an_archive_of_too_many_entries_is_refused_at_upload_and_nothing_is_stored() {
    let app = TestApp::with_guardrails(Guardrails {
        max_archive_entries: 1000,
        ..Guardrails::default()
    })
    .await;
    let ann = app.user("ann").await;
    // 2,000 empty files: a few kilobytes compressed.
    let names: Vec<String> = (0..2000).map(|i| format!("empty/{i}")).collect();
    let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
    let archive = tar_gz(&files);
    assert!(archive.len() < 64 * 1024, "{} bytes", archive.len());
    let parts: Vec<Result<Bytes, std::io::Error>> = archive
        .chunks(1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();

    let response = upload(&app, &ann, Body::wrap_stream(futures::stream::iter(parts))).await;

    let body = problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(body["type"], "urn:tlao:problem:too-large");
    assert_eq!(body["limit"], "maxArchiveEntries");
    assert_eq!(body["max"], 1000);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("guardrails.max_archive_entries"),
        "{body}"
    );
    assert_eq!(archives_stored(&app, &ann).await, 0);
}

#[tokio::test]
async fn a_gzip_bomb_is_refused_at_upload_by_its_unpacked_size() {
    let app = TestApp::with_guardrails(Guardrails {
        max_unpacked_bytes: 4 << 20,
        ..Guardrails::default()
    })
    .await;
    let ann = app.user("ann").await;
    let zeros = vec![0u8; 8 << 20];
    let bomb = tar_gz(&[("zeros.bin", &zeros)]);
    // Small next to what it unpacks to, whichever deflate backend the build links.
    assert!(bomb.len() < 256 * 1024, "{} bytes", bomb.len());

    let response = upload(&app, &ann, Body::from(bomb)).await;

    let body = problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(body["limit"], "maxUnpackedBytes");
    assert_eq!(body["max"], 4 << 20);
    assert_eq!(body["maxBytes"], 4 << 20);
    assert_eq!(archives_stored(&app, &ann).await, 0);
}

#[tokio::test]
async fn a_gzip_body_that_is_not_a_tar_archive_is_a_400_on_the_body() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann").await;
    let mut not_tar = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut not_tar, &[b'a'; 4096]).unwrap();

    let response = upload(&app, &ann, Body::from(not_tar.finish().unwrap())).await;

    let body = problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(error_fields(&body), ["body"]);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("tar.gz"),
        "{body}"
    );
    assert_eq!(archives_stored(&app, &ann).await, 0);
}

#[tokio::test]
async fn an_archive_within_every_limit_is_stored_whole() {
    let app = TestApp::with_guardrails(Guardrails {
        max_archive_entries: 3,
        max_unpacked_bytes: 10,
        ..Guardrails::default()
    })
    .await;
    let ann = app.user("ann").await;
    let archive = tar_gz(&[("a.txt", b"12345"), ("b.txt", b"67890"), ("c", b"")]);

    let response = upload(&app, &ann, Body::from(archive.clone())).await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let stored: Value = response.json().await.unwrap();
    assert_eq!(stored["size"], archive.len());
    assert_eq!(archives_stored(&app, &ann).await, 1);
}

#[tokio::test]
async fn a_prompt_with_a_nul_byte_is_a_400_naming_input_prompt() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann").await;
    for prompt in ["plan\u{0}the work", "colour \u{1b}[31mred", "bell\u{7}"] {
        let response = app
            .post(
                "/tasks",
                &ann.token,
                &json!({
                    "workspaceId": ann.workspace_id,
                    "taskType": "spec.generate",
                    "input": {"prompt": prompt}
                }),
            )
            .send()
            .await
            .unwrap();

        let body = problem(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(error_fields(&body), ["input.prompt"], "{prompt:?}: {body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("control character"),
            "{body}"
        );
    }
    // Tabs and line ends are text.
    let response = app
        .post(
            "/tasks",
            &ann.token,
            &json!({
                "workspaceId": ann.workspace_id,
                "taskType": "spec.generate",
                "input": {"prompt": "one\ttwo\r\nthree\n"}
            }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}
