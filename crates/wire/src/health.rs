//! Probe answers and the presigned upload receipt.

use serde::{Deserialize, Serialize};

/// The answer of `GET /healthz` and `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// `ok`.
    pub status: String,
}

impl Health {
    /// All is well.
    pub fn ok() -> Self {
        Health {
            status: "ok".into(),
        }
    }
}

/// What a presigned `PUT /blobs/{key}` stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BlobUploaded {
    /// The blob key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}
