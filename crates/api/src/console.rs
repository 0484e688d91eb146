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
//! | `GET /console/new` | `303` to `/console/runs/new` (the contract's address of that page) |
//! | `GET /console/runs/{id}` | a run: facts, error, artifacts, live log |
//! | `POST /console/runs/{id}/cancel` | cancel it |
//! | `GET /console/runs/{id}/events` | its events (SSE, cookie-authenticated) |
//! | `GET /console/runs/{id}/log.txt` | its whole kept log as a plain-text download |
//! | `GET /console/runs/{id}/bundle.tar.gz` | its bundle (as `GET /runs/{id}/bundle`) |
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
mod run;
mod run_events;
mod runs;
pub(crate) mod session;

use actix_web::dev::Service as _;
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, Route, middleware, web};

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
            .configure(pages)
            .default_service(web::to(not_found)),
    );
}

/// One console page: a method on a path (relative to `/console`), served by a handler.
struct Page {
    method: Method,
    path: &'static str,
    route: fn() -> Route,
}

macro_rules! page {
    ($method:ident $path:literal => $module:ident :: $handler:ident) => {
        Page {
            method: Method::$method,
            path: $path,
            route: || web::route().to($module::$handler),
        }
    };
}

/// Every console page. Each path is one resource: its methods are routes, and any other
/// method gets the 405 page naming them.
const PAGES: &[Page] = &[
    page!(GET "" => dashboard::dashboard),
    page!(GET "/" => dashboard::dashboard),
    page!(GET "/login" => login::login_form),
    page!(POST "/login" => login::login),
    page!(POST "/logout" => login::logout),
    page!(POST "/workspace" => login::switch_workspace),
    page!(GET "/runs" => runs::list),
    page!(POST "/runs" => new_task::start),
    page!(GET "/runs/new" => new_task::form),
    page!(GET "/new" => new_task::contract_address),
    page!(GET "/runs/{runId}" => run::detail),
    page!(POST "/runs/{runId}/cancel" => run::cancel),
    page!(GET "/runs/{runId}/events" => run_events::events),
    page!(GET "/runs/{runId}/log.txt" => run::log_text),
    page!(GET "/runs/{runId}/bundle.tar.gz" => run::bundle),
    page!(GET "/artifacts" => artifacts::list),
    page!(GET "/artifacts/{artifactId}/download" => artifacts::download),
    page!(GET "/assets/{name}" => assets::asset),
];

/// `GET` pages that do not also answer `HEAD`: the event stream (actix reads a HEAD
/// response's body to its end, and this one ends with the run), the whole log (read to
/// be thrown away) and the download (a redirect to a URL signed for `GET`).
const NO_HEAD: &[&str] = &[
    "/runs/{runId}/events",
    "/runs/{runId}/log.txt",
    "/runs/{runId}/bundle.tar.gz",
    "/artifacts/{artifactId}/download",
];

/// The methods [`PAGES`] serves on `path`.
fn methods_of(path: &str) -> Vec<Method> {
    PAGES
        .iter()
        .filter(|page| page.path == path)
        .map(|page| page.method.clone())
        .collect()
}

/// Registers [`PAGES`], one resource per path.
fn pages(cfg: &mut web::ServiceConfig) {
    let mut paths: Vec<&'static str> = PAGES.iter().map(|page| page.path).collect();
    paths.dedup();
    for path in paths {
        let methods = methods_of(path);
        let mut allow: Vec<&'static str> = methods.iter().map(method_name).collect();
        let mut resource = web::resource(path);
        for page in PAGES.iter().filter(|page| page.path == path) {
            resource = resource.route((page.route)().method(page.method.clone()));
            // HEAD is GET without the body (actix sends none); not for the event stream,
            // the whole log or the download redirect (see `NO_HEAD`).
            if page.method == Method::GET && !NO_HEAD.contains(&page.path) {
                resource = resource.route((page.route)().method(Method::HEAD));
                allow.push("HEAD");
            }
        }
        resource = resource.default_service(web::to(
            move |req: HttpRequest, state: web::Data<AppState>, keys: web::Data<ConsoleKeys>| {
                let allow = allow.clone();
                async move {
                    let ctx = Ctx::load(&req, &state, &keys).await.ok();
                    PageError::MethodNotAllowed(allow).render(ctx.as_ref())
                }
            },
        ));
        cfg.service(resource);
    }
}

/// The name of one of the methods the console routes.
fn method_name(method: &Method) -> &'static str {
    if *method == Method::POST {
        "POST"
    } else {
        "GET"
    }
}

/// Any other path under `/console`: the 404 page.
async fn not_found(
    req: HttpRequest,
    state: web::Data<AppState>,
    keys: web::Data<ConsoleKeys>,
) -> HttpResponse {
    let ctx = Ctx::load(&req, &state, &keys).await.ok();
    PageError::NotFound(format!("There is no page at {}.", req.path())).render(ctx.as_ref())
}

#[cfg(test)]
mod tests {
    use actix_web::http::Method;

    use super::{PAGES, methods_of};

    #[test]
    fn each_path_names_its_methods_once_in_order() {
        assert_eq!(methods_of("/runs"), [Method::GET, Method::POST]);
        assert_eq!(methods_of("/login"), [Method::GET, Method::POST]);
        assert_eq!(methods_of("/runs/{runId}/cancel"), [Method::POST]);
        assert!(methods_of("/no-such-page").is_empty());
        let mut seen: Vec<(&str, &Method)> = Vec::new();
        for page in PAGES {
            assert!(
                !seen.contains(&(page.path, &page.method)),
                "{} {} is routed twice",
                page.method,
                page.path
            );
            assert!(
                page.method == Method::GET || page.method == Method::POST,
                "method_name knows GET and POST only"
            );
            seen.push((page.path, &page.method));
        }
    }

    #[test]
    fn pages_of_one_path_stand_together() {
        // `pages` dedups adjacent paths only.
        let paths: Vec<&str> = PAGES.iter().map(|page| page.path).collect();
        for (i, path) in paths.iter().enumerate() {
            if let Some(last) = paths[..i].iter().rposition(|p| p == path) {
                assert_eq!(last + 1, i, "{path} is split in PAGES");
            }
        }
    }
}
