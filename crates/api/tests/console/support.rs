//! What the console tests share: a browser that shows redirects, signing in through
//! the login form, a signed-in session's GETs and form POSTs, and reading pages.

use reqwest::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use reqwest::{Client, Response, StatusCode, redirect};
use serde_json::Value;

use crate::common::{TestApp, TestUser};

/// The media type of a posted form.
pub(crate) const FORM: &str = "application/x-www-form-urlencoded";

/// A form body.
pub(crate) fn encode(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap()
}

/// A client that shows redirects instead of following them.
pub(crate) fn browser() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

/// A signed-in console session: its cookie header and its CSRF token.
pub(crate) struct Session {
    pub(crate) cookie: String,
    pub(crate) csrf: String,
}

/// The value of `name="{field}" value="…"` in a page.
pub(crate) fn hidden_field(html: &str, field: &str) -> String {
    let marker = format!("name=\"{field}\" value=\"");
    let start = html.find(&marker).expect("the field is on the page") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// The `Set-Cookie` headers of a response.
pub(crate) fn set_cookies(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

pub(crate) fn cookie_named<'a>(cookies: &'a [String], name: &str) -> &'a str {
    cookies
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {cookies:?}"))
}

/// Fetches the login form: its double-submit cookie and token.
pub(crate) async fn login_form(app: &TestApp) -> (String, String) {
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
pub(crate) async fn post_login(app: &TestApp, api_key: &str, next: &str) -> Response {
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
pub(crate) async fn sign_in(app: &TestApp, user: &TestUser) -> Session {
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
    pub(crate) async fn get(&self, app: &TestApp, path: &str) -> Response {
        browser()
            .get(app.url(path))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn post(&self, app: &TestApp, path: &str, form: &[(&str, &str)]) -> Response {
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

pub(crate) async fn run_status(app: &TestApp, user: &TestUser, run_id: &str) -> String {
    let run: Value = app.get_json(&format!("/runs/{run_id}"), &user.token).await;
    run["status"].as_str().unwrap().to_owned()
}

/// Asserts `response` is an HTML page with `status` and returns its text.
pub(crate) async fn html_page(response: Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    let content_type = response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "text/html; charset=utf-8");
    response.text().await.unwrap()
}
