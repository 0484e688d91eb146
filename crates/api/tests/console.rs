//! The agent console over HTTP: the session cookie and its attributes, CSRF on every
//! form, the login's refusal of open redirects, the 403 and 404 pages, the security
//! headers, the content-hashed assets, starting a task through the multipart form, and
//! the cookie-authenticated event stream. (The browser tests in `tests/console/` drive
//! the same pages in Chromium.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestApp, TestUser};
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Client, Response, StatusCode, redirect};
use serde_json::Value;

/// The media type of a posted form.
const FORM: &str = "application/x-www-form-urlencoded";

/// A form body.
fn encode(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap()
}

/// A client that shows redirects instead of following them.
fn browser() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

/// A signed-in console session: its cookie header and its CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

/// The value of `name="{field}" value="…"` in a page.
fn hidden_field(html: &str, field: &str) -> String {
    let marker = format!("name=\"{field}\" value=\"");
    let start = html.find(&marker).expect("the field is on the page") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// The `Set-Cookie` headers of a response.
fn set_cookies(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn cookie_named<'a>(cookies: &'a [String], name: &str) -> &'a str {
    cookies
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {cookies:?}"))
}

/// Fetches the login form: its double-submit cookie and token.
async fn login_form(app: &TestApp) -> (String, String) {
    let response = browser()
        .get(app.url("/console/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookies = set_cookies(&response);
    let cookie = cookie_named(&cookies, "tlao_login_csrf")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let token = hidden_field(&response.text().await.unwrap(), "csrf");
    (cookie, token)
}

/// Posts the login form with `api_key` and `next`.
async fn post_login(app: &TestApp, api_key: &str, next: &str) -> Response {
    let (cookie, token) = login_form(app).await;
    browser()
        .post(app.url("/console/login"))
        .header(COOKIE, cookie)
        .header(CONTENT_TYPE, FORM)
        .body(encode(&[
            ("csrf", token.as_str()),
            ("apiKey", api_key),
            ("next", next),
        ]))
        .send()
        .await
        .unwrap()
}

/// Signs `user` in and reads a CSRF token from the dashboard.
async fn sign_in(app: &TestApp, user: &TestUser) -> Session {
    let response = post_login(app, &user.api_key, "/console").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookies = set_cookies(&response);
    let cookie = cookie_named(&cookies, "tlao_session")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = browser()
        .get(app.url("/console"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csrf = hidden_field(&page.text().await.unwrap(), "csrf");
    Session { cookie, csrf }
}

impl Session {
    async fn get(&self, app: &TestApp, path: &str) -> Response {
        browser()
            .get(app.url(path))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .unwrap()
    }

    async fn post(&self, app: &TestApp, path: &str, form: &[(&str, &str)]) -> Response {
        browser()
            .post(app.url(path))
            .header(COOKIE, &self.cookie)
            .header(CONTENT_TYPE, FORM)
            .body(encode(form))
            .send()
            .await
            .unwrap()
    }
}

async fn run_status(app: &TestApp, user: &TestUser, run_id: &str) -> String {
    let run: Value = app.get_json(&format!("/runs/{run_id}"), &user.token).await;
    run["status"].as_str().unwrap().to_owned()
}

/// Asserts `response` is an HTML page with `status` and returns its text.
async fn html_page(response: Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    let content_type = response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "text/html; charset=utf-8");
    response.text().await.unwrap()
}

#[tokio::test]
async fn signing_in_sets_an_http_only_same_site_strict_session_cookie() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;

    let response = post_login(&app, &alice.api_key, "/console/runs").await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/console/runs");
    let cookies = set_cookies(&response);
    let session = cookie_named(&cookies, "tlao_session");
    assert!(session.contains("; HttpOnly"), "{session}");
    assert!(session.contains("; SameSite=Strict"), "{session}");
    assert!(session.contains("; Path=/;"), "{session}");
    assert!(
        !session.contains("Secure"),
        "plain http gets no Secure: {session}"
    );
    // The double-submit cookie of the login form is spent.
    assert!(cookie_named(&cookies, "tlao_login_csrf").contains("Max-Age=0"));
}

#[tokio::test]
async fn the_session_cookie_is_secure_behind_an_https_proxy() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let (cookie, token) = login_form(&app).await;

    let response = browser()
        .post(app.url("/console/login"))
        .header(COOKIE, cookie)
        .header("X-Forwarded-Proto", "https")
        .header(CONTENT_TYPE, FORM)
        .body(encode(&[
            ("csrf", token.as_str()),
            ("apiKey", alice.api_key.as_str()),
        ]))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    let cookies = set_cookies(&response);
    let session = cookie_named(&cookies, "__Host-tlao_session");
    assert!(session.contains("; Secure"), "{session}");
    assert!(session.contains("; Path=/;"), "{session}");
    assert!(!session.contains("Domain"), "{session}");
    assert!(
        !cookies.iter().any(|c| c.starts_with("tlao_session=")),
        "{cookies:?}"
    );
    let secret = session
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1;

    // Over https the __Host- name is read, and only it.
    let over_https = |cookie: String| {
        browser()
            .get(app.url("/console"))
            .header(COOKIE, cookie)
            .header("X-Forwarded-Proto", "https")
            .send()
    };
    let page = over_https(format!("__Host-tlao_session={secret}"))
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(
        page.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    let plain_name = over_https(format!("tlao_session={secret}")).await.unwrap();
    assert_eq!(plain_name.status(), StatusCode::SEE_OTHER);
    // Over plain http, the __Host- cookie is not read, and there is no HSTS.
    let plain = browser()
        .get(app.url("/console"))
        .header(COOKIE, format!("__Host-tlao_session={secret}"))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), StatusCode::SEE_OTHER);
    assert!(plain.headers().get("strict-transport-security").is_none());
}

#[tokio::test]
async fn a_wrong_api_key_shows_the_form_again_without_a_session() {
    let app = TestApp::spawn().await;

    let response = post_login(&app, "tlao_wrong", "/console").await;

    let cookies = set_cookies(&response);
    let page = html_page(response, StatusCode::UNAUTHORIZED).await;
    assert!(page.contains("That API key is not valid"));
    assert!(!cookies.iter().any(|c| c.starts_with("tlao_session=")));
}

#[tokio::test]
async fn signing_in_without_the_login_forms_token_is_refused() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;

    let response = browser()
        .post(app.url("/console/login"))
        .header(CONTENT_TYPE, FORM)
        .body(encode(&[
            ("csrf", "forged"),
            ("apiKey", alice.api_key.as_str()),
        ]))
        .send()
        .await
        .unwrap();

    let cookies = set_cookies(&response);
    html_page(response, StatusCode::FORBIDDEN).await;
    assert!(!cookies.iter().any(|c| c.starts_with("tlao_session=")));
}

#[tokio::test]
async fn the_login_refuses_to_redirect_anywhere_but_the_console() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;

    for next in [
        "//evil.example/",
        "https://evil.example/console",
        "/\\evil.example",
        "/console//evil.example",
        "/openapi.json",
    ] {
        let response = post_login(&app, &alice.api_key, next).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{next}");
        assert_eq!(response.headers()[LOCATION], "/console", "{next}");
    }
}

#[tokio::test]
async fn a_page_without_a_session_redirects_to_the_login_with_next() {
    let app = TestApp::spawn().await;

    let response = browser()
        .get(app.url("/console/runs?status=failed"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()[LOCATION],
        "/console/login?next=/console/runs%3Fstatus%3Dfailed"
    );
}

#[tokio::test]
async fn an_expired_session_redirects_to_the_login() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let session = sign_in(&app, &alice).await;

    app.clock.advance_millis(13 * 3600 * 1000);

    let response = session.get(&app, "/console").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/console/login?next=/console");
}

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
async fn cancelling_with_the_token_cancels_and_returns_to_the_run() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let run_id = app.run(&alice).await;
    let session = sign_in(&app, &alice).await;

    let response = session
        .post(
            &app,
            &format!("/console/runs/{run_id}/cancel"),
            &[("csrf", &session.csrf)],
        )
        .await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()[LOCATION].to_str().unwrap(),
        format!("/console/runs/{run_id}")
    );
    assert_eq!(run_status(&app, &alice, &run_id).await, "cancelled");
}

#[tokio::test]
async fn a_foreign_workspaces_run_shows_the_403_page() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let run_id = app.run(&alice).await;
    let session = sign_in(&app, &bob).await;

    let page = html_page(
        session.get(&app, &format!("/console/runs/{run_id}")).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(page.contains("This run belongs to a workspace you are not a member of."));
    assert!(!page.contains("plan the work"), "the prompt is not shown");

    let events = session
        .get(&app, &format!("/console/runs/{run_id}/events"))
        .await;
    assert_eq!(events.status(), StatusCode::FORBIDDEN);
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
async fn signing_out_clears_the_session_cookie() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let session = sign_in(&app, &alice).await;

    let refused = session.post(&app, "/console/logout", &[]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    let response = session
        .post(&app, "/console/logout", &[("csrf", &session.csrf)])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/console/login");
    let cookies = set_cookies(&response);
    let cleared = cookie_named(&cookies, "tlao_session");
    assert!(cleared.starts_with("tlao_session=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
}

#[tokio::test]
async fn after_signing_out_the_old_cookie_no_longer_works() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let session = sign_in(&app, &alice).await;
    assert_eq!(session.get(&app, "/console").await.status(), StatusCode::OK);

    let response = session
        .post(&app, "/console/logout", &[("csrf", &session.csrf)])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    // A browser (or an attacker) that kept the cookie is signed out all the same.
    let again = session.get(&app, "/console/runs").await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        again.headers()[LOCATION],
        "/console/login?next=/console/runs"
    );
}

#[tokio::test]
async fn the_session_cookie_is_not_a_bearer_token() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let session = sign_in(&app, &alice).await;
    let secret = session.cookie.split_once('=').unwrap().1;

    let response = app.get("/workspaces", secret).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // And the cookie itself still works where it belongs.
    assert_eq!(session.get(&app, "/console").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn signing_out_closes_the_sessions_open_event_streams() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let run_id = app.run(&alice).await;
    let session = sign_in(&app, &alice).await;
    let mut stream = session
        .get(&app, &format!("/console/runs/{run_id}/events"))
        .await;
    assert_eq!(stream.status(), StatusCode::OK);
    stream.chunk().await.unwrap().unwrap();

    session
        .post(&app, "/console/logout", &[("csrf", &session.csrf)])
        .await;

    // The run is still queued: only the session's end can close the stream, within
    // one session check (5 s).
    let closed = tokio::time::timeout(std::time::Duration::from_secs(12), async {
        while let Some(_chunk) = stream.chunk().await.unwrap() {}
    })
    .await;
    assert!(closed.is_ok(), "the stream outlived the session");
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
async fn the_run_events_stream_needs_the_session_cookie() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let run_id = app.run(&alice).await;
    let session = sign_in(&app, &alice).await;
    let path = format!("/console/runs/{run_id}/events");

    let anonymous = browser().get(app.url(&path)).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    // A bearer token is not a console session.
    let bearer = app.get(&path, &alice.token).send().await.unwrap();
    assert_eq!(bearer.status(), StatusCode::UNAUTHORIZED);

    let mut stream = session.get(&app, &path).await;
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(
        stream.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let first = stream.chunk().await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&first);
    assert!(text.contains("event: status"), "{text}");
    assert!(text.contains("\"queued\""), "{text}");
}

#[tokio::test]
async fn switching_workspace_requires_membership() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let session = sign_in(&app, &alice).await;

    let own = session
        .post(
            &app,
            "/console/workspace",
            &[
                ("csrf", &session.csrf),
                ("workspace", &alice.workspace_id),
                ("next", "/console/runs"),
            ],
        )
        .await;
    assert_eq!(own.status(), StatusCode::SEE_OTHER);
    assert_eq!(own.headers()[LOCATION], "/console/runs");
    assert!(cookie_named(&set_cookies(&own), "tlao_ws").contains(&alice.workspace_id));

    let foreign = session
        .post(
            &app,
            "/console/workspace",
            &[("csrf", &session.csrf), ("workspace", &bob.workspace_id)],
        )
        .await;
    html_page(foreign, StatusCode::FORBIDDEN).await;
}

#[tokio::test]
async fn the_runs_list_pages_and_filters_by_task_type() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    for _ in 0..27 {
        app.run(&alice).await;
    }
    let doc_task = app.task_of_type(&alice, "doc.write").await;
    let doc_run: Value = app
        .create_run(&alice, &doc_task)
        .await
        .json()
        .await
        .unwrap();
    let doc_run = doc_run["runId"].as_str().unwrap().to_owned();
    let session = sign_in(&app, &alice).await;

    let first = html_page(session.get(&app, "/console/runs").await, StatusCode::OK).await;
    assert_eq!(first.matches("href=\"/console/runs/run_").count(), 25);
    assert!(first.contains(&doc_run), "newest first");
    let next = first
        .split('"')
        .find(|part| part.starts_with("/console/runs?cursor=run_"))
        .expect("a next page link")
        .to_owned();
    let second = html_page(session.get(&app, &next).await, StatusCode::OK).await;
    assert_eq!(second.matches("href=\"/console/runs/run_").count(), 3);
    assert!(!second.contains("rel=\"next\""));

    let docs = html_page(
        session
            .get(&app, "/console/runs?type=doc.write&executor=kiro")
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(docs.matches("href=\"/console/runs/run_").count(), 1);
    assert!(docs.contains(&doc_run));
}

#[tokio::test]
async fn the_dashboard_counts_todays_runs_against_the_quota() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    app.run(&alice).await;
    app.run(&alice).await;
    let session = sign_in(&app, &alice).await;

    let page = html_page(session.get(&app, "/console").await, StatusCode::OK).await;

    assert!(page.contains("2 of 100"), "runs today of the quota");
    assert!(page.contains("2 queued"));
    assert!(page.contains("0 of 2"), "running of the concurrency limit");
}

/// A run of `user` that a worker ran to completion after logging `lines` stdout lines
/// (`line 0`, `line 1`, …).
async fn finished_run_with_log(app: &TestApp, user: &TestUser, lines: usize) -> String {
    let run_id = app.run(user).await;
    let (leased, lease) = app.lease().await;
    assert_eq!(leased, run_id);
    let all: Vec<usize> = (0..lines).collect();
    for batch in all.chunks(500) {
        let events: Vec<Value> = batch
            .iter()
            .map(|i| serde_json::json!({"type": "log", "stream": "stdout", "text": format!("\u{1b}[1mline {i}\u{1b}[0m")}))
            .collect();
        let report = app
            .worker_post(
                &format!("/worker/runs/{run_id}/events"),
                &serde_json::json!({"leaseId": lease, "events": events}),
            )
            .await;
        assert_eq!(report.status(), StatusCode::OK);
    }
    let done = app
        .worker_post(
            &format!("/worker/runs/{run_id}/complete"),
            &serde_json::json!({"leaseId": lease, "status": "completed"}),
        )
        .await;
    assert!(done.status().is_success(), "{}", done.status());
    run_id
}

#[tokio::test]
async fn a_long_finished_log_says_it_is_cut_and_offers_the_whole_log() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let run_id = finished_run_with_log(&app, &alice, 5200).await;
    let session = sign_in(&app, &alice).await;

    let page = html_page(
        session.get(&app, &format!("/console/runs/{run_id}")).await,
        StatusCode::OK,
    )
    .await;
    // queued, running, 5,200 lines, completed: 5,203 events, 5,000 rendered.
    assert!(
        page.contains("First 5000 of 5203 lines shown."),
        "{}",
        &page[page.len().saturating_sub(400)..]
    );
    assert!(page.contains(&format!("href=\"/console/runs/{run_id}/log.txt\"")));
    assert!(!page.contains("line 5199"));

    let response = session
        .get(&app, &format!("/console/runs/{run_id}/log.txt"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[CONTENT_TYPE],
        "text/plain; charset=utf-8"
    );
    assert_eq!(
        response.headers()["content-disposition"].to_str().unwrap(),
        format!("attachment; filename=\"{run_id}.log.txt\"")
    );
    let text = response.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5200, "every kept log line");
    assert_eq!(lines[0], "line 0", "ANSI sequences are removed");
    assert_eq!(lines[5199], "line 5199");
}

#[tokio::test]
async fn a_short_log_is_shown_whole_without_a_notice() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let run_id = finished_run_with_log(&app, &alice, 3).await;
    let session = sign_in(&app, &alice).await;

    let page = html_page(
        session.get(&app, &format!("/console/runs/{run_id}")).await,
        StatusCode::OK,
    )
    .await;
    assert!(!page.contains("lines shown"));
    assert!(page.contains("line 2"));
    let text = session
        .get(&app, &format!("/console/runs/{run_id}/log.txt"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(text, "line 0\nline 1\nline 2\n");
}

#[tokio::test]
async fn a_foreign_runs_log_download_is_refused_with_403() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let run_id = finished_run_with_log(&app, &alice, 3).await;
    let session = sign_in(&app, &bob).await;

    let response = session
        .get(&app, &format!("/console/runs/{run_id}/log.txt"))
        .await;
    let page = html_page(response, StatusCode::FORBIDDEN).await;
    assert!(!page.contains("line 0"));

    let anonymous = browser()
        .get(app.url(&format!("/console/runs/{run_id}/log.txt")))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
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

/// A run of `user` that produced one available artifact, `plan.json`; the artifact's id.
async fn artifact_of(app: &TestApp, user: &TestUser) -> String {
    let run_id = app.run(user).await;
    let (leased, lease) = app.lease().await;
    assert_eq!(leased, run_id);
    let body = b"{\"steps\":[]}".to_vec();
    let slot: Value = app
        .worker_post(
            &format!("/worker/runs/{run_id}/artifacts"),
            &serde_json::json!({"leaseId": lease, "name": "plan.json", "artifactType": "plan",
                "size": body.len(), "sha256": "a".repeat(64), "contentType": "application/json"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let put = app
        .client
        .put(slot["upload"]["url"].as_str().unwrap())
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success());
    let artifact_id = slot["artifact"]["artifactId"].as_str().unwrap().to_owned();
    let settled = app
        .worker_post(
            &format!("/worker/runs/{run_id}/artifacts/{artifact_id}/finalize"),
            &serde_json::json!({"leaseId": lease}),
        )
        .await;
    assert!(settled.status().is_success());
    artifact_id
}

#[tokio::test]
async fn a_foreign_workspaces_artifact_download_is_refused_with_403() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let artifact_id = artifact_of(&app, &alice).await;
    let path = format!("/console/artifacts/{artifact_id}/download");

    // The owner is sent on to the bytes…
    let own = sign_in(&app, &alice).await.get(&app, &path).await;
    assert_eq!(own.status(), StatusCode::SEE_OTHER);
    assert!(
        own.headers()[LOCATION]
            .to_str()
            .unwrap()
            .contains("/blobs/")
    );
    // …another user is not, and learns nothing of where they are.
    let response = sign_in(&app, &bob).await.get(&app, &path).await;
    assert!(response.headers().get(LOCATION).is_none());
    let page = html_page(response, StatusCode::FORBIDDEN).await;
    assert!(page.contains("This artifact belongs to a workspace you are not a member of."));
    assert!(!page.contains("/blobs/"));
}

#[tokio::test]
async fn cancelling_a_foreign_workspaces_run_is_refused_with_403() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let run_id = app.run(&alice).await;
    let session = sign_in(&app, &bob).await;

    let response = session
        .post(
            &app,
            &format!("/console/runs/{run_id}/cancel"),
            &[("csrf", &session.csrf)],
        )
        .await;

    let page = html_page(response, StatusCode::FORBIDDEN).await;
    assert!(page.contains("This run belongs to a workspace you are not a member of."));
    assert_eq!(run_status(&app, &alice, &run_id).await, "queued");
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

#[tokio::test]
async fn the_contracts_address_of_the_start_page_redirects_to_it() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let session = sign_in(&app, &alice).await;

    let response = session.get(&app, "/console/new").await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/console/runs/new");
}
