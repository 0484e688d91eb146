//! The console's session and its defences against cross-site requests.
//!
//! - **Session**: the cookie `tlao_session` carries the opaque secret of a server-side
//!   session record (see [`tlao_orchestrator::sessions`]): every console request looks
//!   the record up (one point read), signing out deletes it, and it expires after the
//!   API's token lifetime (`auth.token_ttl_seconds`, 12 h by default). The secret is
//!   not a bearer token: the REST API refuses it.
//!   The cookie is `HttpOnly; SameSite=Strict; Path=/`. Over https — directly, or
//!   through a proxy that says so with `X-Forwarded-Proto: https` (or `Forwarded:
//!   proto=https`) — it is also `Secure` and named `__Host-tlao_session`, a prefix
//!   browsers accept only with `Secure`, `Path=/` and no `Domain`, so neither a
//!   subdomain nor plain http can set or shadow it; only the name matching the
//!   request's scheme is read. Console responses over https also carry
//!   `Strict-Transport-Security`. Trusting the proxy's header is safe in one direction
//!   only, which is the one it is used for: a forged header can add `Secure`, never
//!   remove it from a cookie the proxy would have protected.
//! - **CSRF**: every form carries a synchronizer token derived statelessly from the
//!   session (HMAC-SHA256 under a key derived from the signing secret), checked on every
//!   POST; a POST is also refused when `Sec-Fetch-Site` says another site sent it or
//!   `Origin` names another host. The login form, which has no session yet, uses a
//!   double-submit token: a random value in a `SameSite=Strict` cookie and the same
//!   value in the form.
//! - **Redirects after login** go only to local console paths (`next` is checked), so
//!   the login page cannot be used as an open redirect.

use actix_web::HttpRequest;
use actix_web::http::header::{self, HeaderValue};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tlao_orchestrator::{Caller, ServiceError};

use crate::state::AppState;

/// The cookie carrying the session's secret, over plain http (local development).
pub(crate) const SESSION_COOKIE: &str = "tlao_session";
/// The cookie carrying the session's secret over https.
pub(crate) const SECURE_SESSION_COOKIE: &str = "__Host-tlao_session";
/// The `Strict-Transport-Security` of console responses over https (one year).
pub(crate) const HSTS: &str = "max-age=31536000";
/// The cookie carrying the login form's double-submit token.
pub(crate) const LOGIN_CSRF_COOKIE: &str = "tlao_login_csrf";
/// The cookie remembering the workspace chosen in the switcher.
pub(crate) const WORKSPACE_COOKIE: &str = "tlao_ws";
/// The form field every console form carries its CSRF token in.
pub(crate) const CSRF_FIELD: &str = "csrf";

type HmacSha256 = Hmac<Sha256>;

/// The console's secret: the CSRF key, derived from the token signing secret so a
/// deployment has one secret to manage.
pub(crate) struct ConsoleKeys {
    csrf: Vec<u8>,
}

impl ConsoleKeys {
    /// The keys derived from the API's signing secret.
    pub fn derive(signing_secret: &[u8]) -> ConsoleKeys {
        ConsoleKeys {
            csrf: mac(signing_secret, &[b"tlao console csrf v1"]),
        }
    }

    /// The CSRF token of a session token.
    pub fn csrf_token(&self, session_token: &str) -> String {
        URL_SAFE_NO_PAD.encode(mac(&self.csrf, &[b"csrf\0", session_token.as_bytes()]))
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC accepts keys of any length.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return Vec::new(),
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// A signed-in user of the console.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// Who.
    pub caller: Caller,
    /// The token every form of this session carries.
    pub csrf: String,
    /// The session's secret (the cookie's value), to end it or to check it is still live.
    pub secret: String,
}

impl Session {
    /// Whether `submitted` is this session's CSRF token.
    pub fn csrf_matches(&self, submitted: &str) -> bool {
        constant_time_eq(self.csrf.as_bytes(), submitted.as_bytes())
    }
}

/// The session of a request, or `None` when its cookie names no live session (none
/// sent, signed out, expired). One point read of the session record.
pub(crate) async fn session(
    req: &HttpRequest,
    state: &AppState,
    keys: &ConsoleKeys,
) -> Result<Option<Session>, ServiceError> {
    let Some(secret) = cookie(req, session_cookie(req)) else {
        return Ok(None);
    };
    let Some(caller) = state.services.sessions.resolve(&secret).await? else {
        return Ok(None);
    };
    crate::request_id::note_user(&caller.user_id);
    Ok(Some(Session {
        caller,
        csrf: keys.csrf_token(&secret),
        secret,
    }))
}

/// The value of cookie `name`, if the request sent it.
pub(crate) fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"').to_owned())
}

/// The session cookie's name for this request's scheme.
pub(crate) fn session_cookie(req: &HttpRequest) -> &'static str {
    if is_https(req) {
        SECURE_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}

/// Whether the request reached us over https (directly or per the proxy's header).
pub(crate) fn is_https(req: &HttpRequest) -> bool {
    req.connection_info().scheme().eq_ignore_ascii_case("https")
}

/// A `Set-Cookie` value: `HttpOnly; SameSite=Strict`, `Secure` on https; `max_age`
/// seconds, 0 to delete.
pub(crate) fn set_cookie(
    req: &HttpRequest,
    name: &str,
    value: &str,
    path: &str,
    max_age: i64,
) -> HeaderValue {
    let secure = if is_https(req) { "; Secure" } else { "" };
    let text = format!(
        "{name}={value}; Path={path}; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
        max_age.max(0)
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Whether a state-changing request may have come from this site: refused when
/// `Sec-Fetch-Site` names another site, or `Origin` another host (or `null`). Requests
/// without either header (old browsers, scripts) rely on the CSRF token alone.
pub(crate) fn same_origin(req: &HttpRequest) -> bool {
    if let Some(site) = req.headers().get("sec-fetch-site") {
        let site = site.to_str().unwrap_or("");
        if !matches!(site, "same-origin" | "none") {
            return false;
        }
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let Some((_, authority)) = origin.split_once("://") else {
            return false;
        };
        let info = req.connection_info();
        return authority.eq_ignore_ascii_case(info.host());
    }
    true
}

/// A fresh random token (256 bits, URL-safe base64).
pub(crate) fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// Compares two secrets in time that depends only on their lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `next` when it is a local console path to go back to after logging in, else the
/// dashboard. Only paths under `/console` made of URL-safe characters are kept, so
/// `//evil.example`, `/\evil`, `https://…` and header tricks are all refused.
pub(crate) fn local_next(next: Option<&str>) -> String {
    let Some(next) = next else {
        return "/console".into();
    };
    let safe_chars = next
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/-_.~?&=%+:".contains(&b));
    let local =
        next == "/console" || next.starts_with("/console/") || next.starts_with("/console?");
    if safe_chars && local && !next.contains("//") {
        next.to_owned()
    } else {
        "/console".into()
    }
}

/// `text` percent-encoded for a query parameter.
pub(crate) fn encode_query(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_keeps_local_console_paths_only() {
        assert_eq!(
            local_next(Some("/console/runs?status=failed")),
            "/console/runs?status=failed"
        );
        assert_eq!(local_next(Some("/console")), "/console");
        for hostile in [
            "//evil.example",
            "https://evil.example/console",
            "/console//evil.example",
            "/\\evil.example",
            "/consoleevil",
            "/runs",
            "/console/\r\nSet-Cookie: x=1",
            "",
        ] {
            assert_eq!(local_next(Some(hostile)), "/console", "{hostile:?}");
        }
        assert_eq!(local_next(None), "/console");
    }

    #[test]
    fn csrf_tokens_are_bound_to_the_session() {
        let keys = ConsoleKeys::derive(b"a secret that is long enough for the test");
        assert_eq!(keys.csrf_token("a"), keys.csrf_token("a"));
        assert_ne!(keys.csrf_token("a"), keys.csrf_token("b"));
        let other = ConsoleKeys::derive(b"another secret that is long enough");
        assert_ne!(keys.csrf_token("a"), other.csrf_token("a"));
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            encode_query("/console/runs?x=1&y"),
            "/console/runs%3Fx%3D1%26y"
        );
    }
}
