//! What answers when no route does: 404 for an unknown path, 405 for a known path with
//! another method.

use actix_web::HttpRequest;
use actix_web::http::Method;

use crate::error::ApiError;

/// A path no route serves.
pub(crate) async fn not_found(req: HttpRequest) -> Result<&'static str, ApiError> {
    Err(ApiError::NotFound(format!(
        "no route matches {} {}",
        req.method(),
        req.path()
    )))
}

/// A known path asked with a method it does not serve.
pub(crate) async fn method_not_allowed(
    req: HttpRequest,
    allowed: Vec<Method>,
) -> Result<&'static str, ApiError> {
    Err(ApiError::MethodNotAllowed {
        method: req.method().clone(),
        allowed,
    })
}
