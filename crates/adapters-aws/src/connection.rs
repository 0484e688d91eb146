//! Where the AWS adapters connect: a region, an optional endpoint override (an emulator
//! such as moto on loopback) and credentials from the standard AWS chain (environment,
//! profile, web identity, the ECS task role, instance metadata).
//!
//! Every client of this crate is built from one [`AwsConnection`], over one HTTP stack
//! (hyper with rustls and ring), so the build carries no second TLS implementation.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

/// The region used when neither the configuration nor the environment names one.
pub const DEFAULT_REGION: &str = "us-east-1";

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

    /// Loads the shared SDK configuration: region, endpoint, credentials chain, HTTP client.
    pub(crate) async fn sdk_config(&self) -> SdkConfig {
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http_client);
        if let Some(region) = &self.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &self.endpoint {
            loader = loader.endpoint_url(endpoint.clone());
        }
        let config = loader.load().await;
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
