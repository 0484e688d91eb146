//! What every console page shares: CSRF on every form, the security headers, the
//! content-hashed assets, the 404 and 405 pages, and staying out of the OpenAPI document.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE};
use serde_json::Value;

use crate::common::TestApp;
use crate::support::{FORM, browser, encode, html_page, run_status, sign_in};

#[tokio::test]
async fn a_post_without_or_with_a_wrong_csrf_token_is_refused_with_403() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let run_id = app.run(&alice).await;
    let session = sign_in(&app, &alice).await;
    let cancel = format!("/console/runs/{run_id}/cancel");

    let missing = session.post(&app, &cancel, &[]).await;
    let page = html_page(missing, StatusCode::FORBIDDEN).await;
    assert!(page.contains("security token"));

    let wrong = session
        .post(&app, &cancel, &[("csrf", "not-the-token")])
        .await;
    html_page(wrong, StatusCode::FORBIDDEN).await;

    // Another user's token is not this session's.
    let bob = app.user("bob").await;
    let bobs = sign_in(&app, &bob).await;
    let foreign = session.post(&app, &cancel, &[("csrf", &bobs.csrf)]).await;
    html_page(foreign, StatusCode::FORBIDDEN).await;

    assert_eq!(run_status(&app, &alice, &run_id).await, "queued");
}

#[tokio::test]
async fn a_post_from_another_site_is_refused_even_with_the_token() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let run_id = app.run(&alice).await;
    let session = sign_in(&app, &alice).await;

    for (header, value) in [
        ("Origin", "https://evil.example"),
        ("Sec-Fetch-Site", "cross-site"),
    ] {
        let response = browser()
            .post(app.url(&format!("/console/runs/{run_id}/cancel")))
            .header(COOKIE, &session.cookie)
            .header(header, value)
            .header(CONTENT_TYPE, FORM)
            .body(encode(&[("csrf", session.csrf.as_str())]))
            .send()
            .await
            .unwrap();
        html_page(response, StatusCode::FORBIDDEN).await;
    }
    assert_eq!(run_status(&app, &alice, &run_id).await, "queued");
}

#[tokio::test]
async fn unknown_and_malformed_ids_show_the_404_page() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let session = sign_in(&app, &alice).await;

    for path in [
        "/console/runs/run_01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "/console/runs/not-a-run",
        "/console/runs/%00%ff",
        "/console/artifacts/art_01ARZ3NDEKTSV4RRFFQ69G5FAV/download",
        "/console/artifacts/nope/download",
        "/console/no-such-page",
    ] {
        let page = html_page(session.get(&app, path).await, StatusCode::NOT_FOUND).await;
        assert!(page.contains("Not found"), "{path}");
    }
}

#[tokio::test]
async fn console_responses_carry_a_strict_content_security_policy() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let session = sign_in(&app, &alice).await;

    for response in [
        browser()
            .get(app.url("/console/login"))
            .send()
            .await
            .unwrap(),
        session.get(&app, "/console").await,
        session.get(&app, "/console/runs/nope").await,
    ] {
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "same-origin");
        assert_eq!(headers["cache-control"], "no-store");
    }
}

#[tokio::test]
async fn assets_are_served_under_a_content_hash_with_long_caching() {
    let app = TestApp::spawn().await;
    let page = browser()
        .get(app.url("/console/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let css = page
        .split('"')
        .find(|part| part.starts_with("/console/assets/console.") && part.ends_with(".css"))
        .unwrap();
    let js = page
        .split('"')
        .find(|part| part.starts_with("/console/assets/console.") && part.ends_with(".js"))
        .unwrap();

    for (path, media) in [(css, "text/css"), (js, "text/javascript")] {
        let response = browser().get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with(media)
        );
        assert_eq!(
            response.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
    }
    let stale = browser()
        .get(app.url("/console/assets/console.000000000000.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_console_stays_out_of_the_openapi_document() {
    let app = TestApp::spawn().await;

    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.keys().all(|path| !path.starts_with("/console")));
}

#[tokio::test]
async fn another_method_on_a_console_page_is_a_405_page_with_allow() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let run_id = app.run(&alice).await;
    let session = sign_in(&app, &alice).await;

    for (method, path, allow) in [
        (
            reqwest::Method::DELETE,
            "/console/runs".to_owned(),
            "GET, POST, HEAD",
        ),
        (
            reqwest::Method::PUT,
            format!("/console/runs/{run_id}"),
            "GET, HEAD",
        ),
        (
            reqwest::Method::GET,
            format!("/console/runs/{run_id}/cancel"),
            "POST",
        ),
        (reqwest::Method::GET, "/console/logout".to_owned(), "POST"),
    ] {
        let response = browser()
            .request(method.clone(), app.url(&path))
            .header(COOKIE, &session.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
        assert!(response.headers().contains_key("content-security-policy"));
        let page = html_page(response, StatusCode::METHOD_NOT_ALLOWED).await;
        assert!(page.contains("Not available this way"), "{method} {path}");
        assert!(
            page.contains("Log out"),
            "the console's frame: {method} {path}"
        );
    }
    assert_eq!(run_status(&app, &alice, &run_id).await, "queued");
    // An unknown path is still the 404 page.
    let unknown = browser()
        .delete(app.url("/console/no-such-page"))
        .header(COOKIE, &session.cookie)
        .send()
        .await
        .unwrap();
    html_page(unknown, StatusCode::NOT_FOUND).await;

    // HEAD answers the pages, but not the stream, the whole log or the download.
    for (path, status) in [
        (format!("/console/runs/{run_id}"), StatusCode::OK),
        (
            format!("/console/runs/{run_id}/events"),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            format!("/console/runs/{run_id}/log.txt"),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ] {
        let response = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            browser()
                .head(app.url(&path))
                .header(COOKIE, &session.cookie)
                .send(),
        )
        .await
        .expect("HEAD answers at once")
        .unwrap();
        assert_eq!(response.status(), status, "HEAD {path}");
    }
}
