//! Reading the parts of a request that are not a JSON body: path ids, headers, and the
//! one-field bodies the domain has no parser for.
//!
//! A malformed id in a path (`/runs/nope`) is a 400 whose `errors` name the path
//! parameter (`runId`), not a 404: the client sent something that can never exist, and
//! saying so is more useful than pretending to look it up.

use std::fmt::Display;
use std::str::FromStr;

use actix_web::HttpRequest;
use actix_web::http::header::{self, HeaderName};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tlao_domain::ValidationErrors;
use tlao_domain::validation::{Collector, kind};

use crate::error::ApiError;

/// The header that makes `POST /tasks` and `POST /runs` safe to retry.
pub(crate) const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// Parses the path parameter `name` (e.g. `runId`) into an id.
pub(crate) fn path_id<T>(name: &str, raw: &str) -> Result<T, ApiError>
where
    T: FromStr,
    T::Err: Display,
{
    raw.parse::<T>()
        .map_err(|e| ApiError::invalid(name, format!("{raw:?} is not valid: {e}")))
}

/// A JSON body of the worker protocol read as `T`. It must be an object: serde would
/// also read a struct from an array of its fields in order, which the document does not
/// allow.
pub(crate) fn object_body<T: DeserializeOwned>(body: Value) -> Result<T, ApiError> {
    if !body.is_object() {
        return Err(ApiError::invalid(
            "body",
            format!("must be an object, found {}", kind(&body)),
        ));
    }
    serde_json::from_value(body)
        .map_err(|e| ApiError::invalid("body", format!("is not valid: {e}")))
}

/// The string `field` of a body that has exactly that one field.
pub(crate) fn single_string(body: &Value, field: &str) -> Result<String, ValidationErrors> {
    let mut errors = Collector::new();
    let value = errors.object("", body).and_then(|map| {
        errors.reject_unknown("", map, &[field]);
        errors.string("", map, field, true).map(str::to_owned)
    });
    errors.finish(value)
}

/// The body length the client declared in `Content-Length`, if any.
pub(crate) fn declared_length(req: &HttpRequest) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The request's `Idempotency-Key`, if any, as sent (the orchestrator binds it to the
/// request it came with).
pub(crate) fn idempotency_key(req: &HttpRequest) -> Result<Option<&str>, ApiError> {
    let Some(value) = req.headers().get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::invalid("Idempotency-Key", "must be visible ASCII characters"))?;
    Ok(Some(key))
}
