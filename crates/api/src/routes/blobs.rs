//! `GET`/`PUT /blobs/{key}`: presigned URLs of a store that cannot serve them itself
//! (local files). Mounted only with a presigned gateway; the URL's signature is the
//! credential, so no token is needed. The request is handed over as it came (method,
//! path and query, body stream); the gateway checks the signature before anything is
//! read or written.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use tlao_ports::{BlobError, PresignError, PresignedResponse, ServeError};

use crate::dto::{Binary, BlobUploaded, Problem};
use crate::error::ApiError;
use crate::state::AppState;
use crate::streaming;

/// Downloads a blob with a presigned URL.
#[utoipa::path(
    get,
    path = "/blobs/{key}",
    tag = "blobs",
    params(
        ("key" = String, Path, description = "The blob key"),
        ("expires" = u64, Query, description = "When the URL expires, seconds since the epoch"),
        ("signature" = String, Query, description = "The URL's signature"),
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
        ("key" = String, Path, description = "The blob key"),
        ("expires" = u64, Query, description = "When the URL expires, seconds since the epoch"),
        ("signature" = String, Query, description = "The URL's signature"),
    ),
    request_body(content = Binary, content_type = "application/octet-stream", description = "The bytes"),
    responses(
        (status = 200, description = "Stored", body = BlobUploaded),
        (status = 400, description = "The URL is malformed or the body failed", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The signature does not match, or the URL expired", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn put_blob(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    serve(&state, &req, Some(body)).await
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
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or(req.path(), |pq| pq.as_str());
    let response = gateway
        .serve(
            req.method().as_str(),
            path_and_query,
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
            .no_chunking(meta.size)
            .streaming(body),
        PresignedResponse::Uploaded(meta) => HttpResponse::Ok().json(BlobUploaded::from(meta)),
    })
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
