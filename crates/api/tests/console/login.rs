//! Signing in with an API key and out again: the session cookie and its attributes,
//! the login's refusal of open redirects, expiry, and the workspace switcher.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION};

use crate::common::TestApp;
use crate::support::{
    FORM, browser, cookie_named, encode, html_page, login_form, post_login, set_cookies, sign_in,
};

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
