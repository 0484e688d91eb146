//! Classifying the AWS SDK's errors, once for every adapter of this crate.
//!
//! An `SdkError` is turned into a [`Failure`] here: a passing failure (throttling, 5xx,
//! timeouts, a connection that broke), a service answer the adapter inspects further
//! (its error code decides: `ConditionalCheckFailedException`, `NoSuchKey`, ...), or
//! anything else. Each adapter then maps a `Failure` into its port's error, so no SDK
//! type travels past this crate.

use std::fmt;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// Error codes that mean "slow down": the same request succeeds later.
const THROTTLING_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "SlowDown",
    "TransactionInProgressException",
    "PriorRequestNotComplete",
];

/// What an SDK call's failure means to an adapter.
#[derive(Debug)]
pub(crate) enum Failure<E> {
    /// Retrying the same call may succeed: throttling, a 5xx, a timeout, an I/O failure.
    Transient(anyhow::Error),
    /// The service refused the request with an error the adapter may recognise.
    Service(ServiceFailure<E>),
    /// Anything else: the request could not be built, the response could not be read.
    Unexpected(anyhow::Error),
}

/// A service's refusal, with what identifies it.
#[derive(Debug)]
pub(crate) struct ServiceFailure<E> {
    /// The operation's modeled error.
    pub error: E,
    /// The error code (`ConditionalCheckFailedException`, `NoSuchKey`, ...).
    pub code: Option<String>,
    /// The HTTP status.
    pub status: u16,
    /// The AWS request id, for support cases and log correlation.
    pub request_id: Option<String>,
    /// The operation, for messages.
    pub operation: &'static str,
}

impl<E: ProvideErrorMetadata> ServiceFailure<E> {
    /// The service's message, if it sent one.
    pub fn message(&self) -> &str {
        self.error.message().unwrap_or("no message")
    }

    /// The failure as an error naming the operation, code, status and request id.
    pub fn describe(&self) -> anyhow::Error {
        anyhow::anyhow!("{self}")
    }
}

impl<E: ProvideErrorMetadata> fmt::Display for ServiceFailure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} failed: {}: {} (status {}, request id {})",
            self.operation,
            self.code.as_deref().unwrap_or("unknown error"),
            self.message(),
            self.status,
            self.request_id.as_deref().unwrap_or("none")
        )
    }
}

/// The request id AWS services send back (DynamoDB, ECS: `x-amzn-requestid`; S3:
/// `x-amz-request-id`).
fn request_id(response: &HttpResponse) -> Option<String> {
    ["x-amzn-requestid", "x-amz-request-id", "x-amzn-request-id"]
        .iter()
        .find_map(|name| response.headers().get(*name))
        .map(str::to_owned)
}

/// Sorts an SDK failure of `operation` into a [`Failure`].
pub(crate) fn classify<E>(operation: &'static str, error: SdkError<E, HttpResponse>) -> Failure<E>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    // Only failures that never reached the service are described by their chain; a
    // service's answer (the common, cheap case of a failed condition) by its code.
    let described = match &error {
        SdkError::ServiceError(_) => String::new(),
        other => format!("{operation}: {}", DisplayChain(other)),
    };
    match error {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let request_id = request_id(service.raw());
            let error = service.into_err();
            let code = error.code().map(str::to_owned);
            let failure = ServiceFailure {
                error,
                code,
                status,
                request_id,
                operation,
            };
            let throttled = failure
                .code
                .as_deref()
                .is_some_and(|code| THROTTLING_CODES.contains(&code));
            if throttled || failure.status >= 500 || failure.status == 429 {
                Failure::Transient(failure.describe())
            } else {
                Failure::Service(failure)
            }
        }
        SdkError::TimeoutError(_) => Failure::Transient(anyhow::anyhow!(described)),
        SdkError::DispatchFailure(dispatch) => {
            if dispatch.is_io() || dispatch.is_timeout() {
                // The connection was refused, reset or timed out: another try may get through.
                Failure::Transient(anyhow::anyhow!(described))
            } else {
                // A malformed request, or no credentials: trying again will not help.
                Failure::Unexpected(anyhow::anyhow!(described))
            }
        }
        SdkError::ResponseError(response) => {
            let status = response.raw().status().as_u16();
            let message = format!(
                "{operation}: the response (status {status}, request id {}) could not be read",
                request_id(response.raw()).as_deref().unwrap_or("none")
            );
            // A truncated or garbled body is usually the connection, not the service.
            Failure::Transient(anyhow::anyhow!(message))
        }
        _ => Failure::Unexpected(anyhow::anyhow!(described)),
    }
}

/// Displays an error with its sources, `a: b: c`.
pub(crate) struct DisplayChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_smithy_types::body::SdkBody;

    use super::*;

    fn service_error(status: u16, code: &str) -> SdkError<PutItemError, HttpResponse> {
        let mut raw = HttpResponse::new(status.try_into().expect("a status"), SdkBody::empty());
        raw.headers_mut().insert("x-amzn-requestid", "REQ123");
        let meta = ErrorMetadata::builder().code(code).message("nope").build();
        SdkError::service_error(PutItemError::generic(meta), raw)
    }

    #[test]
    fn throttling_and_5xx_are_transient_and_the_rest_keeps_its_request_id() {
        for (status, code) in [
            (400, "ProvisionedThroughputExceededException"),
            (400, "ThrottlingException"),
            (400, "RequestLimitExceeded"),
            (500, "InternalServerError"),
            (503, "ServiceUnavailable"),
        ] {
            assert!(
                matches!(
                    classify("PutItem", service_error(status, code)),
                    Failure::Transient(_)
                ),
                "{status} {code}"
            );
        }
        match classify("PutItem", service_error(400, "AccessDeniedException")) {
            Failure::Service(failure) => {
                let text = failure.describe().to_string();
                assert!(text.contains("REQ123"), "{text}");
                assert!(text.contains("AccessDeniedException"), "{text}");
                assert!(text.contains("PutItem"), "{text}");
            }
            other => panic!("expected a service failure, got {other:?}"),
        }
    }

    #[test]
    fn a_timeout_is_transient() {
        let error: SdkError<PutItemError, HttpResponse> =
            SdkError::timeout_error(std::io::Error::other("slow"));
        assert!(matches!(classify("PutItem", error), Failure::Transient(_)));
    }
}
