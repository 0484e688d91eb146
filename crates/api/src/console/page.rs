//! What every console page shares: the signed-in context ([`Ctx`]), the layout, the
//! error pages ([`PageError`]) and the small formatting helpers (badges, sizes,
//! durations, times).
//!
//! Handlers return [`HttpResponse`]s they built themselves, never `Err`: an error
//! attached to a response would be rewritten into problem+json by the API's
//! middleware, and a person should see a page that explains.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use maud::{DOCTYPE, Markup, html};
use tlao_domain::{RunStatus, Timestamp, Workspace, WorkspaceId};
use tlao_orchestrator::ServiceError;

use super::assets;
use super::session::{self, ConsoleKeys, Session, WORKSPACE_COOKIE};
use crate::state::AppState;

/// Which navigation entry a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    /// The dashboard.
    Dashboard,
    /// Runs and a run.
    Runs,
    /// Artifacts.
    Artifacts,
    /// Start a task.
    NewTask,
    /// None (errors, login).
    None,
}

/// A signed-in request: the session, the user's workspaces and the one in use.
pub(crate) struct Ctx {
    /// The session.
    pub session: Session,
    /// Every workspace the user belongs to, oldest first.
    pub workspaces: Vec<Workspace>,
    /// The workspace pages show: the switcher's choice, else the oldest.
    pub current: Option<Workspace>,
    /// The path and query of this page, to come back to after switching workspace.
    pub here: String,
}

impl Ctx {
    /// The context of a request, or [`PageError::Login`] when it has no session.
    pub async fn load(
        req: &HttpRequest,
        state: &AppState,
        keys: &ConsoleKeys,
    ) -> Result<Ctx, PageError> {
        // After signing in, a GET comes back to its page; a form sent with an expired
        // session cannot be replayed, so it comes back to the dashboard.
        let here = match req.query_string() {
            _ if req.method() != actix_web::http::Method::GET => "/console".to_owned(),
            "" => req.path().to_owned(),
            query => format!("{}?{query}", req.path()),
        };
        let Some(session) = session::session(req, state, keys)
            .await
            .map_err(PageError::from)?
        else {
            return Err(PageError::Login { next: here });
        };
        let workspaces = state
            .services
            .workspaces
            .list(&session.caller)
            .await
            .map_err(PageError::from)?;
        let chosen = session::cookie(req, WORKSPACE_COOKIE)
            .and_then(|text| text.parse::<WorkspaceId>().ok());
        let current = chosen
            .and_then(|id| workspaces.iter().find(|ws| ws.workspace_id == id))
            .or_else(|| workspaces.first())
            .cloned();
        if let Some(ws) = &current {
            crate::request_id::note_workspace(&ws.workspace_id);
        }
        Ok(Ctx {
            session,
            workspaces,
            current,
            here,
        })
    }

    /// The workspace in use, or the page explaining there is none.
    pub fn workspace(&self) -> Result<&Workspace, PageError> {
        self.current.as_ref().ok_or(PageError::NoWorkspace)
    }

    /// A hidden input carrying this session's CSRF token.
    pub fn csrf_input(&self) -> Markup {
        html! { input type="hidden" name=(session::CSRF_FIELD) value=(self.session.csrf); }
    }
}

/// Answers a console request: loads its [`Ctx`] (without a session, the redirect to the
/// login page), then runs `page`; a failure becomes its explaining page, inside the
/// console's frame.
pub(crate) async fn respond<F>(
    req: &HttpRequest,
    state: &AppState,
    keys: &ConsoleKeys,
    page: F,
) -> HttpResponse
where
    F: AsyncFnOnce(&Ctx) -> Result<HttpResponse, PageError>,
{
    let ctx = match Ctx::load(req, state, keys).await {
        Ok(ctx) => ctx,
        Err(error) => return error.render(None),
    };
    match page(&ctx).await {
        Ok(response) => response,
        Err(error) => error.render(Some(&ctx)),
    }
}

/// Why a page cannot be shown.
#[derive(Debug)]
pub(crate) enum PageError {
    /// No valid session: log in, then come back to `next`.
    Login {
        /// Where to come back to.
        next: String,
    },
    /// The user may not see this.
    Forbidden(String),
    /// It does not exist.
    NotFound(String),
    /// The page exists, but not for this method: the methods it answers.
    MethodNotAllowed(Vec<&'static str>),
    /// A form arrived without this session's token, or from another site.
    Csrf,
    /// The user belongs to no workspace.
    NoWorkspace,
    /// Storage is unavailable.
    Unavailable,
    /// Anything else; logged, never shown.
    Internal(anyhow::Error),
}

impl From<ServiceError> for PageError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::NotFound { what, id } => {
                PageError::NotFound(format!("There is no {what} with the id {id}."))
            }
            ServiceError::Forbidden(message) => PageError::Forbidden(message),
            ServiceError::Unauthenticated(_) => PageError::Login {
                next: "/console".into(),
            },
            ServiceError::Unavailable(_) => PageError::Unavailable,
            other => PageError::Internal(other.into()),
        }
    }
}

/// How an error is answered: a page that explains it, or (without a session) the way
/// to the login.
enum Answer {
    /// An error page.
    Page(Explained),
    /// A `303` to this location.
    Redirect(String),
}

/// What an error page says: its status, title, message and advice.
struct Explained {
    status: StatusCode,
    title: &'static str,
    message: String,
    hint: Markup,
}

impl PageError {
    /// The page (or redirect) for this error; `ctx` adds the navigation when known.
    pub fn render(self, ctx: Option<&Ctx>) -> HttpResponse {
        let allow = match &self {
            PageError::MethodNotAllowed(methods) => Some(methods.join(", ")),
            _ => None,
        };
        let explained = match self.explain() {
            Answer::Page(explained) => explained,
            Answer::Redirect(location) => return see_other(&location),
        };
        let body = html! {
            section class="error-page" aria-labelledby="error-title" {
                p class="error-code" { (explained.status.as_u16()) }
                h1 id="error-title" { (explained.title) }
                p class="lead" { (explained.message) }
                (explained.hint)
                p { a href="/console" { "Back to the dashboard" } }
            }
        };
        let mut response = page(explained.status, ctx, Nav::None, explained.title, body);
        if let Some(allow) = allow
            && let Ok(value) = header::HeaderValue::from_str(&allow)
        {
            response.headers_mut().insert(header::ALLOW, value);
        }
        response
    }

    /// What the error's page says (an internal error is logged here, its cause never
    /// shown), or where to sign in.
    fn explain(self) -> Answer {
        let explained = |status, title, message: String, hint| {
            Answer::Page(Explained {
                status,
                title,
                message,
                hint,
            })
        };
        match self {
            PageError::Login { next } => Answer::Redirect(format!(
                "/console/login?next={}",
                session::encode_query(&next)
            )),
            PageError::Forbidden(message) => explained(
                StatusCode::FORBIDDEN,
                "You do not have access to this",
                message,
                forbidden_hint(),
            ),
            PageError::NotFound(message) => {
                explained(StatusCode::NOT_FOUND, "Not found", message, not_found_hint())
            }
            PageError::MethodNotAllowed(methods) => explained(
                StatusCode::METHOD_NOT_ALLOWED,
                "Not available this way",
                format!("This page answers {} only.", methods.join(" and ")),
                html! {
                    p { "Links and the console's own forms always use the right method; "
                        "go back and use the page's buttons." }
                },
            ),
            PageError::Csrf => explained(
                StatusCode::FORBIDDEN,
                "This form could not be accepted",
                "The form was sent without a valid security token (it may have expired when you signed in again), or it came from another site.".into(),
                html! { p { "Go back, reload the page and try again." } },
            ),
            PageError::NoWorkspace => explained(
                StatusCode::OK,
                "No workspace yet",
                "You are not a member of any workspace, so there are no runs or artifacts to show.".into(),
                html! { p { "Create one with " code { "tlao workspace create NAME" } " or " code { "POST /workspaces" } ", then come back." } },
            ),
            PageError::Unavailable => explained(
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "Storage did not answer in time.".into(),
                html! { p { "Try again in a few seconds." } },
            ),
            PageError::Internal(cause) => {
                tracing::error!(operation = "console", error = %format!("{cause:#}"), "console page failed");
                explained(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "An unexpected error occurred; it was logged with this request's id.".into(),
                    html! { p { "Request id: " code { (crate::request_id::current().map(|id| id.to_string()).unwrap_or_default()) } } },
                )
            }
        }
    }
}

fn forbidden_hint() -> Markup {
    html! {
        p { "Only members of a workspace can see its runs, tasks and artifacts. "
            "Ask the workspace's owner to add you, or switch to one of your own workspaces." }
    }
}

fn not_found_hint() -> Markup {
    html! {
        p { "Check the address, or find what you are looking for from "
            a href="/console/runs" { "Runs" } " or " a href="/console/artifacts" { "Artifacts" } "." }
    }
}

/// A `303 See Other` to `location`.
pub(crate) fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// A whole HTML page with the layout around `body`.
pub(crate) fn page(
    status: StatusCode,
    ctx: Option<&Ctx>,
    nav: Nav,
    title: &str,
    body: Markup,
) -> HttpResponse {
    let markup = layout(ctx, nav, title, body);
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(markup.into_string())
}

fn layout(ctx: Option<&Ctx>, nav: Nav, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · TLÁO Codex" }
                // No favicon request (it would be an API 404 in the browser's console).
                link rel="icon" href="data:,";
                link rel="stylesheet" href=(assets::css_url());
                script src=(assets::js_url()) defer {}
            }
            body {
                a class="skip-link" href="#main" { "Skip to main content" }
                header class="topbar" {
                    a class="brand" href="/console" { "TLÁO Codex" }
                    @if let Some(ctx) = ctx {
                        (navigation(nav))
                        (account(ctx))
                    }
                }
                main id="main" tabindex="-1" {
                    (body)
                }
                footer class="footer" {
                    p { "TLÁO Codex agent console · "
                        a href="/openapi.json" { "API description" } }
                }
            }
        }
    }
}

/// The main navigation, `nav`'s entry marked current.
fn navigation(nav: Nav) -> Markup {
    let item = |target: Nav, href: &str, label: &str| {
        html! {
            li {
                @if nav == target {
                    a href=(href) aria-current="page" { (label) }
                } @else {
                    a href=(href) { (label) }
                }
            }
        }
    };
    html! {
        nav aria-label="Main" {
            ul {
                (item(Nav::Dashboard, "/console", "Dashboard"))
                (item(Nav::Runs, "/console/runs", "Runs"))
                (item(Nav::Artifacts, "/console/artifacts", "Artifacts"))
                (item(Nav::NewTask, "/console/runs/new", "Start a task"))
            }
        }
    }
}

/// The workspace switcher and the sign-out button.
fn account(ctx: &Ctx) -> Markup {
    html! {
        div class="account" {
            @if !ctx.workspaces.is_empty() {
                form class="switcher" method="post" action="/console/workspace" {
                    (ctx.csrf_input())
                    input type="hidden" name="next" value=(ctx.here);
                    label for="workspace-switch" { "Workspace" }
                    select id="workspace-switch" name="workspace"{
                        @for ws in &ctx.workspaces {
                            @let selected = ctx.current.as_ref().is_some_and(|c| c.workspace_id == ws.workspace_id);
                            option value=(ws.workspace_id) selected[selected] { (ws.name.as_str()) }
                        }
                    }
                    button type="submit" class="button secondary small" { "Switch" }
                }
            }
            form method="post" action="/console/logout" {
                (ctx.csrf_input())
                button type="submit" class="button secondary small" { "Log out" }
            }
        }
    }
}

/// A run status as a badge: a symbol and the word, so colour is never the only cue.
pub(crate) fn status_badge(status: RunStatus) -> Markup {
    let symbol = match status {
        RunStatus::Queued => "◷",
        RunStatus::Running => "●",
        RunStatus::Completed => "✓",
        RunStatus::Failed => "✕",
        RunStatus::TimedOut => "⏱",
        RunStatus::Cancelled => "⊘",
    };
    html! {
        span class={ "badge status-" (status.as_str()) } data-status=(status.as_str()) {
            span aria-hidden="true" { (symbol) " " }
            (status_label(status))
        }
    }
}

/// A status in words.
pub(crate) fn status_label(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Queued => "queued",
        RunStatus::Running => "running",
        RunStatus::Completed => "completed",
        RunStatus::Failed => "failed",
        RunStatus::TimedOut => "timed out",
        RunStatus::Cancelled => "cancelled",
    }
}

/// A timestamp as `<time>`: `2026-11-26 16:54:40 UTC`.
pub(crate) fn time(at: Timestamp) -> Markup {
    let text = at.to_string();
    let shown = match (text.get(..10), text.get(11..19)) {
        (Some(day), Some(clock)) => format!("{day} {clock} UTC"),
        _ => text.clone(),
    };
    html! { time datetime=(text) { (shown) } }
}

/// An optional timestamp, `—` when absent.
pub(crate) fn maybe_time(at: Option<Timestamp>) -> Markup {
    match at {
        Some(at) => time(at),
        None => html! { span class="muted" { "—" } },
    }
}

/// A duration in milliseconds as `850 ms`, `12 s`, `3 min 05 s`, `2 h 04 min`.
pub(crate) fn duration(millis: i64) -> String {
    let millis = millis.max(0);
    if millis < 1000 {
        return format!("{millis} ms");
    }
    let seconds = millis / 1000;
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min {:02} s", seconds / 60, seconds % 60),
        _ => format!("{} h {:02} min", seconds / 3600, (seconds % 3600) / 60),
    }
}

/// A byte count as `512 B`, `1.5 KiB`, `30.0 MiB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// How long ago `at` was, in words, from `now`.
pub(crate) fn ago(at: Timestamp, now: Timestamp) -> String {
    let seconds = now.millis_since(at).max(0) / 1000;
    match seconds {
        0..60 => "just now".into(),
        60..3600 => format!("{} min ago", seconds / 60),
        3600..86_400 => format!("{} h ago", seconds / 3600),
        _ => format!("{} days ago", seconds / 86_400),
    }
}

/// Removes ANSI escape sequences (CSI and OSC) and other control characters but tab
/// and newline.
pub(crate) fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            match chars.peek() {
                Some('[') => {
                    chars.next();
                    // Parameters and intermediates, then one final byte in @..~.
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    chars.next();
                    // Until BEL or ESC \.
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' {
                            chars.next();
                            break;
                        }
                    }
                }
                _ => {
                    chars.next();
                }
            }
        } else if c == '\t' || c == '\n' || !c.is_control() {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_sequences_and_control_characters_are_removed() {
        assert_eq!(strip_ansi("\u{1b}[1;32m>\u{1b}[0m Done"), "> Done");
        assert_eq!(strip_ansi("\u{1b}[38;5;8mline 1\u{1b}[0m"), "line 1");
        assert_eq!(strip_ansi("\u{1b}]0;title\u{7}text\r"), "text");
        assert_eq!(strip_ansi("a\tb\nc"), "a\tb\nc");
    }

    #[test]
    fn sizes_and_durations_read_naturally() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(31_457_280), "30.0 MiB");
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(12_000), "12 s");
        assert_eq!(duration(185_000), "3 min 05 s");
        assert_eq!(duration(7_440_000), "2 h 04 min");
    }
}
