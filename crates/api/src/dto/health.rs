//! Probe answers and the presigned upload receipt.

use serde::{Deserialize, Serialize};
use tlao_ports::BlobMeta;
use utoipa::ToSchema;

/// The answer of `GET /healthz` and `GET /readyz`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
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
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlobUploaded {
    /// The blob key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

impl From<BlobMeta> for BlobUploaded {
    fn from(meta: BlobMeta) -> Self {
        BlobUploaded {
            key: meta.key.to_string(),
            size: meta.size,
        }
    }
}

/// Raw bytes in a request or response body (a tar.gz, a blob), documented as a binary
/// string rather than an array of numbers.
#[derive(Debug, Clone, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Binary(pub Vec<u8>);
