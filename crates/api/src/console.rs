//! The agent console (requirement 14): server-rendered pages under `/console`, served
//! by the API process, with one small script for the live parts of the run page.
//!
//! The console is a client of the same services the REST API uses, never of the REST
//! API's routes: it is a separate scope, outside the route table and the OpenAPI
//! document, authenticated by a session cookie (see [`session`]) where the REST API
//! takes bearer tokens only. Every response carries a strict Content-Security-Policy
//! (scripts and styles from this origin only, no inline code, no framing), and over
//! https `Strict-Transport-Security`.
//!
//! | route | page |
//! |---|---|
//! | `GET /console` | dashboard: recent runs, executors and their health, workspace usage |
//! | `GET/POST /console/login`, `POST /console/logout` | API key → session cookie |
//! | `POST /console/workspace` | the workspace switcher |
//! | `GET /console/runs` | runs, with filters and paging |
//! | `GET /console/runs/new`, `POST /console/runs` | start a task (optional archive upload) |
//! | `GET /console/runs/{id}` | a run: facts, error, artifacts, live log |
//! | `POST /console/runs/{id}/cancel` | cancel it |
//! | `GET /console/runs/{id}/events` | its events (SSE, cookie-authenticated) |
//! | `GET /console/runs/{id}/log.txt` | its whole kept log as a plain-text download |
//! | `GET /console/artifacts` | the workspace's artifacts |
//! | `GET /console/artifacts/{id}/download` | 303 to a presigned download URL |
//! | `GET /console/assets/{name}` | the stylesheet and the script, content-hashed |

mod artifacts;
mod assets;
mod dashboard;
mod form;
mod login;
mod new_task;
mod page;
mod runs;
pub(crate) mod session;

use actix_web::dev::Service as _;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, middleware, web};

use crate::state::AppState;
use page::{Ctx, PageError};
pub(crate) use session::ConsoleKeys;

/// The Content-Security-Policy of every console response.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// Mounts the console at `/console`.
pub(crate) fn configure(cfg: &mut web::ServiceConfig, keys: web::Data<ConsoleKeys>) {
    let headers = middleware::DefaultHeaders::new()
        .add(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "same-origin"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Cache-Control", "no-store"));
    cfg.service(
        web::scope("/console")
            .app_data(keys)
            .wrap(headers)
            .wrap_fn(|req, service| {
                let https = session::is_https(req.request());
                let response = service.call(req);
                async move {
                    let mut response = response.await?;
                    if https {
                        response.headers_mut().insert(
                            header::STRICT_TRANSPORT_SECURITY,
                            HeaderValue::from_static(session::HSTS),
                        );
                    }
                    Ok(response)
                }
            })
            .route("", web::get().to(dashboard::dashboard))
            .route("/", web::get().to(dashboard::dashboard))
            .route("/login", web::get().to(login::login_form))
            .route("/login", web::post().to(login::login))
            .route("/logout", web::post().to(login::logout))
            .route("/workspace", web::post().to(login::switch_workspace))
            .route("/runs", web::get().to(runs::list))
            .route("/runs", web::post().to(new_task::start))
            .route("/runs/new", web::get().to(new_task::form))
            .route("/runs/{runId}", web::get().to(runs::detail))
            .route("/runs/{runId}/cancel", web::post().to(runs::cancel))
            .route("/runs/{runId}/events", web::get().to(runs::events))
            .route("/runs/{runId}/log.txt", web::get().to(runs::log_text))
            .route("/artifacts", web::get().to(artifacts::list))
            .route(
                "/artifacts/{artifactId}/download",
                web::get().to(artifacts::download),
            )
            .route("/assets/{name}", web::get().to(assets::asset))
            .default_service(web::to(not_found)),
    );
}

/// Every console path and the methods it answers, as routed in [`configure`]; a request
/// with another method on one of these paths gets the 405 page.
const ROUTES: &[(&str, &[&str])] = &[
    ("/console", &["GET"]),
    ("/console/", &["GET"]),
    ("/console/login", &["GET", "POST"]),
    ("/console/logout", &["POST"]),
    ("/console/workspace", &["POST"]),
    ("/console/runs", &["GET", "POST"]),
    ("/console/runs/new", &["GET"]),
    ("/console/runs/{runId}", &["GET"]),
    ("/console/runs/{runId}/cancel", &["POST"]),
    ("/console/runs/{runId}/events", &["GET"]),
    ("/console/runs/{runId}/log.txt", &["GET"]),
    ("/console/artifacts", &["GET"]),
    ("/console/artifacts/{artifactId}/download", &["GET"]),
    ("/console/assets/{name}", &["GET"]),
];

/// The methods `path` answers, when it is a console page.
fn allowed_methods(path: &str) -> Option<&'static [&'static str]> {
    ROUTES
        .iter()
        .find(|(pattern, _)| actix_web::dev::ResourceDef::new(*pattern).is_match(path))
        .map(|(_, methods)| *methods)
}

/// Any other request under `/console`: the 405 page (with `Allow`) for a known path
/// asked with another method, else the 404 page.
async fn not_found(
    req: HttpRequest,
    state: web::Data<AppState>,
    keys: web::Data<ConsoleKeys>,
) -> HttpResponse {
    let ctx = Ctx::load(&req, &state, &keys).await.ok();
    let error = match allowed_methods(req.path()) {
        Some(methods) => PageError::MethodNotAllowed(methods),
        None => PageError::NotFound(format!("There is no page at {}.", req.path())),
    };
    error.render(ctx.as_ref())
}

#[cfg(test)]
mod tests {
    use super::allowed_methods;

    #[test]
    fn known_paths_name_their_methods() {
        assert_eq!(allowed_methods("/console/runs"), Some(&["GET", "POST"][..]));
        assert_eq!(allowed_methods("/console/runs/new"), Some(&["GET"][..]));
        assert_eq!(
            allowed_methods("/console/runs/run_01ARZ3NDEKTSV4RRFFQ69G5FAV/cancel"),
            Some(&["POST"][..])
        );
        assert_eq!(allowed_methods("/console/no-such-page"), None);
        assert_eq!(allowed_methods("/console/runs/a/b/c"), None);
    }
}
