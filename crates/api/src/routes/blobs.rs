//! `GET`/`PUT /blobs/{key}`: presigned URLs of a store that cannot serve them itself
//! (local files). Mounted only with a presigned gateway; the URL's signature is the
//! credential, so no token is needed. The request is handed over as it came (method,
//! path and query, body stream); the gateway checks the signature before anything is
//! read or written.
//!
//! An upload URL is honoured only while what it uploads may still be written: for an
//! artifact's key, while the artifact is `pending` and its run is running under the lease
//! the URL was handed to (a `409` otherwise, before the body is read). So a worker that
//! lost its lease cannot replace bytes after the end. And an upload URL stores once:
//! a `PUT` to a key that already holds a blob is a `409` and the blob is unchanged (the
//! store links the new blob without replacing), so a pending artifact's bytes cannot
//! be swapped between upload and finalize either. (S3's presigned URLs cannot be
//! revoked: there, `If-None-Match: *` signed into the URL makes them store once, and
//! finalization is the fence: an artifact of an ended run never becomes available.)
//!
//! These URLs are served on the API's origin, which is also the console's, so a
//! download must never render there: every GET answers with `Content-Disposition:
//! attachment` (named after the key's last segment — an artifact's name, an archive's
//! id), `X-Content-Type-Options: nosniff` and `Content-Security-Policy: sandbox`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use tlao_ports::{BlobError, PresignError, PresignedResponse, ServeError};

use crate::dto::{self, Binary, BlobUploaded, Problem};
use crate::error::ApiError;
use crate::state::AppState;
use crate::streaming;

/// Downloads a blob with a presigned URL.
#[utoipa::path(
    get,
    path = "/blobs/{key}",
    tag = "blobs",
    params(
        ("key" = String, Path, max_length = 1024, pattern = r"^(?:[A-Za-z0-9_-][A-Za-z0-9._-]*|\.[A-Za-z0-9_-][A-Za-z0-9._-]*|\.\.[A-Za-z0-9._-]+)(?:/(?:[A-Za-z0-9_-][A-Za-z0-9._-]*|\.[A-Za-z0-9_-][A-Za-z0-9._-]*|\.\.[A-Za-z0-9._-]+))*$",
            description = "The blob key: `/`-separated segments of `A-Z`, `a-z`, `0-9`, `.`, `_`, `-` (not `.` or `..`), sent as they are"),
        ("expires" = u64, Query, maximum = 9223372036854775807_u64, description = "When the URL expires, seconds since the epoch"),
        ("signature" = String, Query, pattern = "^[0-9A-Fa-f]{64}$", description = "The URL's signature: 64 hex digits"),
    ),
    responses(
        (status = 200, description = "The blob's bytes", body = Binary, content_type = "application/octet-stream"),
        (status = 400, description = "The URL is malformed", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The signature does not match, or the URL expired", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No blob at this key", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_blob(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    serve(&state, &req, None).await
}

/// Uploads a blob with a presigned URL.
#[utoipa::path(
    put,
    path = "/blobs/{key}",
    tag = "blobs",
    params(
        ("key" = String, Path, max_length = 1024, pattern = r"^(?:[A-Za-z0-9_-][A-Za-z0-9._-]*|\.[A-Za-z0-9_-][A-Za-z0-9._-]*|\.\.[A-Za-z0-9._-]+)(?:/(?:[A-Za-z0-9_-][A-Za-z0-9._-]*|\.[A-Za-z0-9_-][A-Za-z0-9._-]*|\.\.[A-Za-z0-9._-]+))*$",
            description = "The blob key: `/`-separated segments of `A-Z`, `a-z`, `0-9`, `.`, `_`, `-` (not `.` or `..`), sent as they are"),
        ("expires" = u64, Query, maximum = 9223372036854775807_u64, description = "When the URL expires, seconds since the epoch"),
        ("signature" = String, Query, pattern = "^[0-9A-Fa-f]{64}$", description = "The URL's signature: 64 hex digits"),
    ),
    request_body(content = Binary, content_type = "application/octet-stream", description = "The bytes"),
    responses(
        (status = 200, description = "Stored", body = BlobUploaded),
        (status = 400, description = "The URL is malformed or the body failed", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The signature does not match, or the URL expired", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A blob is already stored at the key (an upload URL stores once), the artifact is no longer pending, or its run has ended (`lease-revoked`): nothing was stored", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn put_blob(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    if let Some(gateway) = &state.presigned {
        let key = gateway
            .verify_url(req.method().as_str(), path_and_query(&req))
            .map_err(|refused| refusal(ServeError::Refused(refused)))?;
        state.services.workers.check_upload(key.as_str()).await?;
    }
    serve(&state, &req, Some(body)).await
}

fn path_and_query(req: &HttpRequest) -> &str {
    req.uri()
        .path_and_query()
        .map_or(req.path(), |pq| pq.as_str())
}

async fn serve(
    state: &AppState,
    req: &HttpRequest,
    body: Option<web::Payload>,
) -> Result<HttpResponse, ApiError> {
    let Some(gateway) = &state.presigned else {
        return Err(ApiError::NotFound(format!(
            "no route matches {} {}",
            req.method(),
            req.path()
        )));
    };
    let response = gateway
        .serve(
            req.method().as_str(),
            path_and_query(req),
            body.map(streaming::forward),
        )
        .await
        .map_err(refusal)?;
    Ok(match response {
        PresignedResponse::Download { meta, body } => HttpResponse::Ok()
            .insert_header((
                header::CONTENT_TYPE,
                meta.content_type
                    .as_deref()
                    .unwrap_or("application/octet-stream"),
            ))
            .insert_header((
                header::CONTENT_DISPOSITION,
                attachment(meta.key.as_str().rsplit('/').next().unwrap_or("download")),
            ))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .insert_header((header::CONTENT_SECURITY_POLICY, "sandbox"))
            .no_chunking(meta.size)
            .streaming(body),
        PresignedResponse::Uploaded(meta) => HttpResponse::Ok().json(dto::blob_uploaded(meta)),
    })
}

/// A `Content-Disposition: attachment` value naming `name` safely (RFC 6266): a plain
/// `filename` with every character outside printable ASCII, `"`, `\\` and `%` replaced by
/// `_`, and, when that changed anything, the exact name as a percent-encoded UTF-8
/// `filename*` (which browsers prefer).
pub(crate) fn attachment(name: &str) -> String {
    let name = if name.is_empty() { "download" } else { name };
    let plain: String = name
        .chars()
        .map(|c| {
            if (c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '%')) || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if plain == name {
        return format!("attachment; filename=\"{plain}\"");
    }
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{plain}\"; filename*=UTF-8''{encoded}")
}

fn refusal(error: ServeError) -> ApiError {
    match error {
        ServeError::Refused(PresignError::Malformed(detail)) => {
            ApiError::invalid("url", format!("is not a presigned url: {detail}"))
        }
        ServeError::Refused(PresignError::UnsupportedMethod(method)) => {
            ApiError::MethodNotAllowed {
                method: actix_web::http::Method::from_bytes(method.as_bytes())
                    .unwrap_or(actix_web::http::Method::OPTIONS),
                allowed: vec![actix_web::http::Method::GET, actix_web::http::Method::PUT],
            }
        }
        ServeError::Refused(
            refused @ (PresignError::BadSignature | PresignError::Expired { .. }),
        ) => ApiError::Forbidden(refused.to_string()),
        ServeError::Blob(BlobError::NotFound(key)) => {
            ApiError::NotFound(format!("no blob at {key}"))
        }
        ServeError::Blob(BlobError::AlreadyExists(key)) => ApiError::Conflict(format!(
            "a blob is already stored at {key}: an upload URL stores once and never replaces"
        )),
        ServeError::Blob(BlobError::Body(error)) => {
            ApiError::invalid("body", format!("the upload failed: {error}"))
        }
        ServeError::Blob(error @ BlobError::Transient(_)) => ApiError::Unavailable {
            detail: "the blob store is unavailable, try again shortly".into(),
            cause: error.into(),
        },
        ServeError::Blob(error) => ApiError::internal(error),
    }
}

#[cfg(test)]
mod tests {
    use super::attachment;

    #[test]
    fn attachment_names_are_quoted_safely() {
        assert_eq!(
            attachment("plan.json"),
            "attachment; filename=\"plan.json\""
        );
        assert_eq!(
            attachment("my plan.json"),
            "attachment; filename=\"my plan.json\""
        );
        assert_eq!(
            attachment("a\"b\\c%.txt"),
            "attachment; filename=\"a_b_c_.txt\"; filename*=UTF-8''a%22b%5Cc%25.txt"
        );
        assert_eq!(
            attachment("résumé.md"),
            "attachment; filename=\"r_sum_.md\"; filename*=UTF-8''r%C3%A9sum%C3%A9.md"
        );
        assert_eq!(
            attachment("x\r\nSet-Cookie: y"),
            "attachment; filename=\"x__Set-Cookie: y\"; filename*=UTF-8''x%0D%0ASet-Cookie%3A%20y"
        );
        assert_eq!(attachment(""), "attachment; filename=\"download\"");
    }
}
