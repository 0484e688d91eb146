//! Signing in with an API key, signing out, and switching workspace.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;
use tlao_domain::{User, WorkspaceId};
use tlao_orchestrator::ServiceError;

use super::form::{self, Form};
use super::page::{self, Nav, PageError};
use super::session::{self, ConsoleKeys, LOGIN_CSRF_COOKIE, WORKSPACE_COOKIE, local_next};
use crate::state::AppState;
use tlao_orchestrator::sessions::SESSION_TTL_SECONDS;

/// Where the login form's double-submit cookie is sent.
const LOGIN_PATH: &str = "/console/login";

/// How long a login form stays valid, in seconds.
const LOGIN_FORM_TTL: i64 = 3600;

/// How long the workspace choice is remembered, in seconds.
const WORKSPACE_TTL: i64 = 365 * 86_400;

fn next_of(req: &HttpRequest) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
        .ok()?
        .into_iter()
        .find(|(key, _)| key == "next")
        .map(|(_, value)| value)
}

/// `GET /console/login`: the form, or the page to go to when already signed in.
pub(crate) async fn login_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    keys: web::Data<ConsoleKeys>,
) -> HttpResponse {
    let next = local_next(next_of(&req).as_deref());
    if let Ok(Some(_)) = session::session(&req, &state, &keys).await {
        return page::see_other(&next);
    }
    login_page(&req, StatusCode::OK, &next, None)
}

/// The login page with a fresh double-submit token (and its cookie).
fn login_page(
    req: &HttpRequest,
    status: StatusCode,
    next: &str,
    error: Option<&str>,
) -> HttpResponse {
    let token = session::random_token();
    let body = html! {
        section class="narrow" aria-labelledby="login-title" {
            h1 id="login-title" { "Sign in to the agent console" }
            @if let Some(error) = error {
                div class="error-summary" role="alert" tabindex="-1" id="error-summary" {
                    h2 { "Sign-in failed" }
                    p { (error) }
                }
            }
            form class="stacked" method="post" action=(LOGIN_PATH) {
                input type="hidden" name="csrf" value=(token);
                input type="hidden" name="next" value=(next);
                div class="field" {
                    label for="api-key" { "API key" }
                    span class="hint" id="api-key-hint" {
                        "Your key starts with " code { "tlao_" } ". With " code { "tlao dev" }
                        ", the administrator's key is in " code { "admin.key" } " in the data directory."
                    }
                    @if error.is_some() {
                        input type="password" id="api-key" name="apiKey" required autocomplete="off"
                            spellcheck="false" aria-describedby="api-key-hint" aria-invalid="true";
                    } @else {
                        input type="password" id="api-key" name="apiKey" required autocomplete="off"
                            spellcheck="false" aria-describedby="api-key-hint";
                    }
                }
                button type="submit" class="button" { "Sign in" }
            }
            p class="muted" { "Signing in sets a session cookie for this site only; it ends when you sign out or after the session lifetime." }
        }
    };
    let mut response = page::page(status, None, Nav::None, "Sign in", body);
    response.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(req, LOGIN_CSRF_COOKIE, &token, LOGIN_PATH, LOGIN_FORM_TTL),
    );
    response
}

/// `POST /console/login`: an API key in, a session cookie out.
pub(crate) async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let form = body.map(|body| Form::parse(&body)).unwrap_or_default();
    let next = local_next(form.get("next"));
    let double_submitted = double_submitted(&req, &form);
    if !session::same_origin(&req) {
        return PageError::Csrf.render(None);
    }
    if !double_submitted {
        return login_page(
            &req,
            StatusCode::FORBIDDEN,
            &next,
            Some("The sign-in form expired or was not sent from this page. Please try again."),
        );
    }
    let api_key = form.get("apiKey").unwrap_or("").trim();
    if api_key.is_empty() {
        return login_page(
            &req,
            StatusCode::UNPROCESSABLE_ENTITY,
            &next,
            Some("Enter your API key."),
        );
    }
    match state.services.users.authenticate(api_key).await {
        Ok(user) => start_session(&req, &state, &user, &next).await,
        Err(ServiceError::Unauthenticated(_)) => login_page(
            &req,
            StatusCode::UNAUTHORIZED,
            &next,
            Some("That API key is not valid. Check it and try again."),
        ),
        Err(other) => PageError::from(other).render(None),
    }
}

/// Whether the form's token matches the login form's double-submit cookie.
fn double_submitted(req: &HttpRequest, form: &Form) -> bool {
    match (session::cookie(req, LOGIN_CSRF_COOKIE), form::csrf(form)) {
        (Some(cookie), Some(field)) => {
            !cookie.is_empty() && session::constant_time_eq(cookie.as_bytes(), field.as_bytes())
        }
        _ => false,
    }
}

/// Starts a session for `user` and goes on to `next` with its cookie (the login form's
/// double-submit cookie spent).
async fn start_session(
    req: &HttpRequest,
    state: &AppState,
    user: &User,
    next: &str,
) -> HttpResponse {
    let now = state.now();
    let ttl = i64::try_from(state.tokens.ttl().as_secs()).unwrap_or(SESSION_TTL_SECONDS);
    let started = match state.services.sessions.start(user, ttl).await {
        Ok(started) => started,
        Err(error) => return PageError::from(error).render(None),
    };
    let max_age = started.expires_at.millis_since(now) / 1000;
    let mut response = page::see_other(next);
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        session::set_cookie(
            req,
            session::session_cookie(req),
            &started.secret,
            "/",
            max_age,
        ),
    );
    headers.append(
        header::SET_COOKIE,
        session::set_cookie(req, LOGIN_CSRF_COOKIE, "", LOGIN_PATH, 0),
    );
    tracing::info!(operation = "console_login", user_id = %user.user_id, "console session started");
    response
}

/// `POST /console/logout`: ends the session (its record is deleted, so the cookie stops
/// working everywhere, and open event streams close) and clears the cookie.
pub(crate) async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    keys: web::Data<ConsoleKeys>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let form = body.map(|body| Form::parse(&body)).unwrap_or_default();
    let session = match session::session(&req, &state, &keys).await {
        Ok(Some(session)) => session,
        // Nothing to end; a stale cookie is cleared all the same.
        Ok(None) => return cleared(&req, page::see_other(LOGIN_PATH)),
        Err(error) => return PageError::from(error).render(None),
    };
    if let Err(error) = form::verify(&req, &session, form::csrf(&form)) {
        return error.render(None);
    }
    if let Err(error) = state.services.sessions.end(&session.secret).await {
        return PageError::from(error).render(None);
    }
    tracing::info!(operation = "console_logout", user_id = %session.caller.user_id, "console session ended");
    cleared(&req, page::see_other(LOGIN_PATH))
}

/// Where the switcher goes back to: the page it was on, but a run (or an artifact)
/// belongs to the workspace left behind, so from a run to the list.
fn next_after_switch(form: &Form) -> String {
    let next = local_next(form.get("next"));
    if next.starts_with("/console/runs/run_") {
        "/console/runs".to_owned()
    } else {
        next
    }
}

fn cleared(req: &HttpRequest, mut response: HttpResponse) -> HttpResponse {
    response.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(req, session::session_cookie(req), "", "/", 0),
    );
    response.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(req, WORKSPACE_COOKIE, "", "/console", 0),
    );
    response
}

/// `POST /console/workspace`: remembers the chosen workspace and goes back.
pub(crate) async fn switch_workspace(
    req: HttpRequest,
    state: web::Data<AppState>,
    keys: web::Data<ConsoleKeys>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let form = body.map(|body| Form::parse(&body)).unwrap_or_default();
    let session = match session::session(&req, &state, &keys).await {
        Ok(Some(session)) => session,
        Ok(None) => {
            return PageError::Login {
                next: "/console".into(),
            }
            .render(None);
        }
        Err(error) => return PageError::from(error).render(None),
    };
    if let Err(error) = form::verify(&req, &session, form::csrf(&form)) {
        return error.render(None);
    }
    let Some(workspace_id) = form
        .get("workspace")
        .and_then(|text| text.parse::<WorkspaceId>().ok())
    else {
        return PageError::NotFound("There is no such workspace.".into()).render(None);
    };
    if let Err(error) = state
        .services
        .workspaces
        .get(&session.caller, &workspace_id)
        .await
    {
        return PageError::from(error).render(None);
    }
    let mut response = page::see_other(&next_after_switch(&form));
    let value = session::set_cookie(
        &req,
        WORKSPACE_COOKIE,
        workspace_id.as_str(),
        "/console",
        WORKSPACE_TTL,
    );
    response.headers_mut().append(header::SET_COOKIE, value);
    response
}
