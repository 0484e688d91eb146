//! Reading console forms (`application/x-www-form-urlencoded`) and checking that a POST
//! came from one of this session's own pages.

use std::collections::HashMap;

use actix_web::HttpRequest;

use super::page::PageError;
use super::session::{self, CSRF_FIELD, Session};

/// A submitted form: the last value of each field.
#[derive(Debug, Default)]
pub(crate) struct Form(HashMap<String, String>);

impl Form {
    /// The form in `body`; an unreadable body is an empty form (whose CSRF check fails).
    pub fn parse(body: &[u8]) -> Form {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
        Form(pairs.into_iter().collect())
    }

    /// The value of `name`, if sent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// Refuses a POST that lacks this session's CSRF token or came from another site.
pub(crate) fn verify(
    req: &HttpRequest,
    session: &Session,
    token: Option<&str>,
) -> Result<(), PageError> {
    if session::same_origin(req) && token.is_some_and(|token| session.csrf_matches(token)) {
        Ok(())
    } else {
        tracing::info!(operation = "console", "form refused: CSRF check failed");
        Err(PageError::Csrf)
    }
}

/// The CSRF token of a form.
pub(crate) fn csrf(form: &Form) -> Option<&str> {
    form.get(CSRF_FIELD)
}
