//! Where the AWS adapters connect: a region, an optional endpoint override (an emulator
//! such as moto on loopback) and credentials from the standard AWS chain (environment,
//! profile, web identity, the ECS task role, instance metadata).
//!
//! Every client of this crate is built from one [`AwsConnection`], over one HTTP stack
//! (hyper with rustls and ring), so the build carries no second TLS implementation.
//!
//! # Retries (requirement 13.2)
//!
//! A logical write is attempted at most [`ATTEMPTS`] times in all, so exactly one loop
//! may retry it:
//!
//! - DynamoDB calls of the table port: none here ([`table_retries`]). The orchestrator's
//!   store retries every table call that failed `Transient` (throttling, 5xx, timeouts,
//!   transaction conflicts) with its own backoff, and that loop is the only one.
//! - S3 calls of the blob store port: the SDK's standard retry, [`ATTEMPTS`] per request
//!   ([`standard_retries`]), because the orchestrator does not retry blob calls (an
//!   archive is a stream it cannot replay).
//! - Provisioning (`ensure_table`) and ECS: the SDK's standard retry, which is also
//!   [`ATTEMPTS`]; no other loop retries them.

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, ConfigLoader, Region, SdkConfig};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

/// The region used when neither the configuration nor the environment names one.
pub const DEFAULT_REGION: &str = "us-east-1";

/// How many times a failed write is tried in all, the first try included (requirement
/// 13.2; the orchestrator's `RetryPolicy` has the same default).
pub(crate) const ATTEMPTS: u32 = 3;

/// The SDK retry of the table port's DynamoDB client: none, one HTTP request per call,
/// because the orchestrator's store is the one loop that retries table calls.
pub(crate) fn table_retries() -> RetryConfig {
    RetryConfig::disabled()
}

/// The SDK retry of calls no other loop retries (S3 requests, provisioning, ECS), and the
/// default of every client: the standard mode (exponential backoff with jitter,
/// transient errors only), [`ATTEMPTS`] attempts per request. Set explicitly, so
/// `AWS_MAX_ATTEMPTS` or a profile cannot raise the budget.
pub(crate) fn standard_retries() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(ATTEMPTS)
}

/// How to reach AWS (or an emulator). Holds no credentials: those come from the standard
/// chain, so nothing secret lives in configuration files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsConnection {
    /// An endpoint override (`http://127.0.0.1:5000` for moto); `None` for AWS itself.
    pub endpoint: Option<String>,
    /// The region; `None` takes it from the environment (`AWS_REGION`, the profile),
    /// else [`DEFAULT_REGION`].
    pub region: Option<String>,
}

impl AwsConnection {
    /// A connection to `endpoint` (when set) in `region` (when set).
    pub fn new(endpoint: Option<String>, region: Option<String>) -> Self {
        AwsConnection {
            endpoint: endpoint.filter(|e| !e.is_empty()),
            region: region.filter(|r| !r.is_empty()),
        }
    }

    /// Whether an endpoint override is set: emulators need path-style S3 addressing.
    pub fn is_emulated(&self) -> bool {
        self.endpoint.is_some()
    }

    /// Loads the shared SDK configuration: region, endpoint, credentials chain, HTTP
    /// client. Each client sets its own retries (see the module's documentation).
    pub(crate) async fn sdk_config(&self) -> SdkConfig {
        Self::finish(self.loader().load().await)
    }

    /// The shared SDK configuration signing with fixed test credentials, for tests
    /// against a local endpoint.
    #[cfg(test)]
    pub(crate) async fn test_sdk_config(&self) -> SdkConfig {
        Self::finish(self.loader().test_credentials().load().await)
    }

    fn loader(&self) -> ConfigLoader {
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client)
            .retry_config(standard_retries());
        if let Some(region) = &self.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &self.endpoint {
            loader = loader.endpoint_url(endpoint.clone());
        }
        loader
    }

    fn finish(config: SdkConfig) -> SdkConfig {
        if config.region().is_some() {
            config
        } else {
            config
                .into_builder()
                .region(Region::new(DEFAULT_REGION))
                .build()
        }
    }
}
