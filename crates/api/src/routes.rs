//! The route table: every route of the API, once. The router is built from it, the
//! request span takes its operation name from it, and a test checks it against the
//! OpenAPI document both ways, so a route cannot be served undocumented.
//!
//! Each path is one actix resource: its methods are routes, and any other method gets a
//! 405 problem with `Allow`. Paths outside the table get a 404 problem.

pub(crate) mod admin;
pub(crate) mod archives;
pub(crate) mod artifacts;
pub(crate) mod blobs;
pub(crate) mod bundles;
pub(crate) mod events;
pub(crate) mod executors;
pub(crate) mod fallback;
pub(crate) mod health;
pub(crate) mod runs;
pub(crate) mod tasks;
pub(crate) mod tokens;
pub(crate) mod users;
pub(crate) mod worker;
pub(crate) mod workspaces;

use actix_web::http::Method;
use actix_web::{HttpRequest, Route, web};

/// When a route is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mount {
    /// Always.
    Always,
    /// Only when a presigned gateway is configured (local blobs).
    WithPresignedGateway,
    /// Only when the server was given maintenance passes to run.
    WithMaintenance,
}

/// Which optional routes are mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mounts {
    /// `/blobs/*`: a presigned gateway serves local blobs.
    pub presigned_gateway: bool,
    /// `POST /admin/maintenance`.
    pub maintenance: bool,
}

impl Mounts {
    fn mounts(&self, mount: Mount) -> bool {
        match mount {
            Mount::Always => true,
            Mount::WithPresignedGateway => self.presigned_gateway,
            Mount::WithMaintenance => self.maintenance,
        }
    }
}

/// One route: a method on a path, served by a handler.
pub(crate) struct RouteSpec {
    /// The HTTP method.
    pub method: Method,
    /// The actix path pattern; its OpenAPI form is [`openapi_path`] of it.
    pub path: &'static str,
    /// The handler's name, which is also its OpenAPI `operationId` and the `operation`
    /// field of its logs.
    pub operation: &'static str,
    /// When it is mounted.
    pub mount: Mount,
    /// The route, without its method guard (the router adds it).
    pub route: fn() -> Route,
}

macro_rules! route {
    ($method:ident $path:literal => $module:ident :: $handler:ident) => {
        route!($method $path => $module::$handler, Mount::Always)
    };
    ($method:ident $path:literal => $module:ident :: $handler:ident, $mount:expr) => {
        RouteSpec {
            method: Method::$method,
            path: $path,
            operation: stringify!($handler),
            mount: $mount,
            route: || web::route().to($module::$handler),
        }
    };
}

/// Every route of the API.
pub(crate) static ROUTES: &[RouteSpec] = &[
    route!(GET "/" => health::root),
    route!(GET "/healthz" => health::healthz),
    route!(GET "/readyz" => health::readyz),
    route!(GET "/openapi.json" => health::openapi_json),
    route!(POST "/auth/token" => tokens::create_token),
    route!(POST "/users" => users::create_user),
    route!(GET "/users/{userId}/keys" => users::list_keys),
    route!(POST "/users/{userId}/keys" => users::create_key),
    route!(DELETE "/users/{userId}/keys/{keyId}" => users::revoke_key),
    route!(POST "/workspaces" => workspaces::create_workspace),
    route!(GET "/workspaces" => workspaces::list_workspaces),
    route!(GET "/workspaces/{workspaceId}" => workspaces::get_workspace),
    route!(POST "/workspaces/{workspaceId}/archives" => archives::upload_archive),
    route!(POST "/tasks" => tasks::create_task),
    route!(GET "/tasks/{taskId}" => tasks::get_task),
    route!(POST "/runs" => runs::create_run),
    route!(GET "/runs" => runs::list_runs),
    route!(GET "/runs/{runId}" => runs::get_run),
    route!(POST "/runs/{runId}/cancel" => runs::cancel_run),
    route!(GET "/runs/{runId}/events" => events::stream_run_events),
    route!(GET "/runs/{runId}/artifacts" => artifacts::list_run_artifacts),
    route!(GET "/runs/{runId}/bundle" => bundles::get_run_bundle),
    route!(GET "/artifacts/{artifactId}" => artifacts::get_artifact),
    route!(GET "/executors" => executors::list_executors),
    route!(POST "/executors" => executors::register_executor),
    route!(GET "/executors/presets" => executors::list_presets),
    route!(DELETE "/executors/{name}" => executors::remove_executor),
    route!(POST "/worker/lease" => worker::lease),
    route!(GET "/worker/runs/{runId}/assignment" => worker::get_assignment),
    route!(POST "/worker/runs/{runId}/events" => worker::post_events),
    route!(POST "/worker/runs/{runId}/artifacts" => worker::create_artifact),
    route!(POST "/worker/runs/{runId}/artifacts/{artifactId}/finalize" => worker::finalize_artifact),
    route!(POST "/worker/runs/{runId}/complete" => worker::complete),
    route!(GET "/blobs/{key:.*}" => blobs::get_blob, Mount::WithPresignedGateway),
    route!(PUT "/blobs/{key:.*}" => blobs::put_blob, Mount::WithPresignedGateway),
    route!(POST "/admin/maintenance" => admin::run_maintenance, Mount::WithMaintenance),
];

/// The paths most requests are for, registered first: a run as a client polls it, a
/// worker's events.
const BUSIEST: &[&str] = &["/runs/{runId}", "/worker/runs/{runId}/events"];

/// `GET` routes that do not also answer `HEAD`: the event stream (its body ends only
/// with the run, and actix reads a HEAD response's body to its end before the
/// connection moves on) and the presigned blobs (signed for one method).
const NO_HEAD: &[&str] = &["/runs/{runId}/events", "/blobs/{key:.*}"];

impl RouteSpec {
    /// Whether the route also answers `HEAD`: a `GET` not in [`NO_HEAD`].
    fn answers_head(&self) -> bool {
        self.method == Method::GET && !NO_HEAD.contains(&self.path)
    }
}

/// Registers every mounted route of [`ROUTES`], one resource per path.
pub(crate) fn configure(cfg: &mut web::ServiceConfig, mounts: Mounts) {
    let mounted = |spec: &&RouteSpec| mounts.mounts(spec.mount);
    let mut paths: Vec<&'static str> = Vec::new();
    for spec in ROUTES.iter().filter(mounted) {
        if !paths.contains(&spec.path) {
            paths.push(spec.path);
        }
    }
    // actix tries resources in the order they were registered, a pattern match each;
    // the busiest paths go first (no earlier path matches what they match, see
    // `the_busiest_paths_match_what_they_matched_in_table_order`).
    paths.sort_by_key(|path| !BUSIEST.contains(path));
    for path in paths {
        let specs: Vec<&RouteSpec> = ROUTES
            .iter()
            .filter(mounted)
            .filter(|spec| spec.path == path)
            .collect();
        let mut allowed: Vec<Method> = specs.iter().map(|spec| spec.method.clone()).collect();
        let mut resource = web::resource(path);
        for spec in specs {
            resource = resource.route((spec.route)().method(spec.method.clone()));
            // HEAD is GET without the body (actix sends none), as monitors expect; not
            // for streams, whose bodies actix would still read to their end.
            if spec.answers_head() {
                resource = resource.route((spec.route)().method(Method::HEAD));
                allowed.push(Method::HEAD);
            }
        }
        resource = resource.default_service(web::to(move |req: HttpRequest| {
            fallback::method_not_allowed(req, allowed.clone())
        }));
        cfg.service(resource);
    }
}

/// The operation a request is for, from its method and matched path pattern: the
/// handler's name, `method_not_allowed`, `console` for the agent console's pages (which
/// are not in the table), or `unknown_route`.
pub(crate) fn operation_of(method: &Method, pattern: Option<&str>) -> &'static str {
    let Some(pattern) = pattern else {
        return "unknown_route";
    };
    ROUTES
        .iter()
        .find(|spec| {
            spec.path == pattern
                && (spec.method == method || (method == Method::HEAD && spec.answers_head()))
        })
        .map_or_else(
            || {
                if pattern == "/console" || pattern.starts_with("/console/") {
                    "console"
                } else {
                    "method_not_allowed"
                }
            },
            |spec| spec.operation,
        )
}

#[cfg(test)]
/// The OpenAPI form of an actix path pattern: `{key:.*}` becomes `{key}`.
pub(crate) fn openapi_path(pattern: &str) -> String {
    let mut path = String::with_capacity(pattern.len());
    let (mut in_param, mut in_regex) = (false, false);
    for c in pattern.chars() {
        match c {
            '{' => {
                in_param = true;
                path.push(c);
            }
            '}' => {
                in_param = false;
                in_regex = false;
                path.push(c);
            }
            ':' if in_param => in_regex = true,
            _ if in_regex => {}
            _ => path.push(c),
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::openapi::path::Operation;

    fn operation<'a>(
        doc: &'a utoipa::openapi::OpenApi,
        method: &Method,
        path: &str,
    ) -> Option<&'a Operation> {
        let item = doc.paths.paths.get(path)?;
        match *method {
            Method::GET => item.get.as_ref(),
            Method::POST => item.post.as_ref(),
            Method::PUT => item.put.as_ref(),
            Method::DELETE => item.delete.as_ref(),
            Method::PATCH => item.patch.as_ref(),
            _ => None,
        }
    }

    #[test]
    fn regex_segments_are_dropped_from_openapi_paths() {
        assert_eq!(openapi_path("/blobs/{key:.*}"), "/blobs/{key}");
        assert_eq!(openapi_path("/runs/{runId}/cancel"), "/runs/{runId}/cancel");
        assert_eq!(openapi_path("/"), "/");
    }

    #[test]
    fn every_route_is_in_the_openapi_document_under_its_operation_id() {
        let doc = crate::openapi::openapi();
        for spec in ROUTES {
            let path = openapi_path(spec.path);
            let op = operation(&doc, &spec.method, &path)
                .unwrap_or_else(|| panic!("{} {path} is not documented", spec.method));
            assert_eq!(
                op.operation_id.as_deref(),
                Some(spec.operation),
                "{} {path}",
                spec.method
            );
        }
    }

    #[test]
    fn every_documented_operation_is_a_route() {
        let doc = crate::openapi::openapi();
        let methods = [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
        ];
        let mut documented = 0;
        for path in doc.paths.paths.keys() {
            for method in &methods {
                if operation(&doc, method, path).is_some() {
                    documented += 1;
                    assert!(
                        ROUTES
                            .iter()
                            .any(|spec| spec.method == method && openapi_path(spec.path) == *path),
                        "{method} {path} is documented but not routed"
                    );
                }
            }
        }
        assert_eq!(documented, ROUTES.len());
    }

    /// A busiest path is tried before every other: it must match no other route's
    /// requests, and no other route its own (an instance of each pattern, its
    /// parameters filled in).
    #[test]
    fn the_busiest_paths_match_what_they_matched_in_table_order() {
        let instance = |pattern: &str| {
            let mut path = String::new();
            for segment in pattern.split('/').skip(1) {
                path.push('/');
                path.push_str(match segment {
                    s if s.starts_with("{key") => "some/key",
                    s if s.starts_with('{') => "x_1",
                    s => s,
                });
            }
            path
        };
        for busiest in BUSIEST {
            let def = actix_web::dev::ResourceDef::new(*busiest);
            assert!(def.is_match(&instance(busiest)), "{busiest}");
            assert!(ROUTES.iter().any(|spec| spec.path == *busiest), "{busiest}");
            for spec in ROUTES.iter().filter(|spec| spec.path != *busiest) {
                let other = instance(spec.path);
                assert!(!def.is_match(&other), "{busiest} would take {other}");
                // Nor did another route take the busiest path's requests before.
                let other_def = actix_web::dev::ResourceDef::new(spec.path);
                assert!(
                    !other_def.is_match(&instance(busiest)),
                    "{} took {busiest}'s requests",
                    spec.path
                );
            }
        }
    }

    #[test]
    fn operations_are_named_after_their_route() {
        assert_eq!(operation_of(&Method::GET, Some("/runs/{runId}")), "get_run");
        assert_eq!(
            operation_of(&Method::PATCH, Some("/runs/{runId}")),
            "method_not_allowed"
        );
        assert_eq!(operation_of(&Method::GET, None), "unknown_route");
        assert_eq!(
            operation_of(&Method::GET, Some("/console/runs/{runId}")),
            "console"
        );
    }
}
