//! The blob store port: bytes by key, streamed both ways, with presigned URLs.
//!
//! Workspace archives, TaskSpecs and artifacts live here. Clients never talk to the
//! store with credentials: they receive a presigned URL that works for one key, one
//! method and a limited time.

use std::collections::BTreeMap;
use std::fmt;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_core::Stream;
use serde::{Deserialize, Serialize};
use tlao_domain::Timestamp;

/// A stream of byte chunks. An `Err` item aborts whatever consumes the stream.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// The longest key accepted, in bytes (S3's limit).
pub const MAX_KEY_BYTES: usize = 1024;

/// A safe, relative blob key: `/`-separated segments of `A-Z a-z 0-9 . _ -`, none empty,
/// `.` or `..`, no leading or trailing `/`. The same key is a valid S3 key and a valid
/// relative path on every file system we run on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BlobKey(String);

/// Why a blob key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a valid blob key: use '/'-separated segments of A-Z a-z 0-9 . _ - without '.' or '..'"
)]
pub struct BlobKeyError(pub String);

impl BlobKey {
    /// Parses and checks a key.
    pub fn parse(text: &str) -> Result<BlobKey, BlobKeyError> {
        let valid_segment = |segment: &str| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        };
        if text.len() <= MAX_KEY_BYTES && text.split('/').all(valid_segment) {
            Ok(BlobKey(text.to_owned()))
        } else {
            Err(BlobKeyError(text.to_owned()))
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for BlobKey {
    type Error = BlobKeyError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        BlobKey::parse(&text)
    }
}

impl From<BlobKey> for String {
    fn from(key: BlobKey) -> String {
        key.0
    }
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the store knows about a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    /// Its key.
    pub key: BlobKey,
    /// Its size in bytes.
    pub size: u64,
    /// Its media type, when one was given on upload.
    pub content_type: Option<String>,
    /// The lower-case hex SHA-256 of its bytes, when the store itself computed it while
    /// writing them or checked the body against it on upload (never a value a client
    /// merely claimed); `None` when the store does not know it, and then only reading
    /// the bytes tells.
    pub sha256: Option<String>,
}

/// A URL that lets its holder perform one method on one key until it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresignedUrl {
    /// The URL, absolute.
    pub url: String,
    /// `GET` or `PUT`.
    pub method: String,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// Headers the request must carry exactly as given: they are signed into the URL
    /// (S3's `If-None-Match` and checksum of an upload), so a request without them is
    /// refused. Empty for most URLs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// Why a blob operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// No blob has this key.
    #[error("no blob at {0}")]
    NotFound(BlobKey),
    /// A write that may only create found a blob at this key already; nothing was
    /// written (the blob there is unchanged).
    #[error("a blob is already stored at {0}; it cannot be replaced")]
    AlreadyExists(BlobKey),
    /// The caller's body stream failed; nothing was stored. The caller's own error is
    /// returned unchanged so it can recognise it (e.g. a size limit it enforces).
    #[error("the upload body failed: {0}")]
    Body(#[source] std::io::Error),
    /// A passing failure; the same call may succeed if retried.
    #[error("transient blob store error: {0}")]
    Transient(#[source] anyhow::Error),
    /// Anything else; the cause says what.
    #[error("blob store error: {0}")]
    Unexpected(#[source] anyhow::Error),
}

impl BlobError {
    /// Whether a retry may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, BlobError::Transient(_))
    }
}

/// Bytes by key.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores `body` at `key`, replacing any blob there.
    ///
    /// Errors: `Transient` when a retry may succeed, `Unexpected` otherwise.
    async fn put(
        &self,
        key: &BlobKey,
        body: Bytes,
        content_type: &str,
    ) -> Result<BlobMeta, BlobError>;

    /// Stores a stream at `key`, replacing any blob there. The blob appears whole or not
    /// at all: if the stream yields an error, nothing is stored (and a previous blob at
    /// `key` is left as it was).
    ///
    /// Errors: `Body` with the stream's own error, `Transient`, `Unexpected`.
    async fn put_stream(
        &self,
        key: &BlobKey,
        body: ByteStream,
        content_type: &str,
    ) -> Result<BlobMeta, BlobError>;

    /// Opens a blob for reading as a stream.
    ///
    /// Errors: `NotFound` when no blob has this key, `Transient`, `Unexpected`. A failure
    /// while the stream is read is an `Err` item of the stream.
    async fn get(&self, key: &BlobKey) -> Result<(BlobMeta, ByteStream), BlobError>;

    /// Reads a blob's metadata.
    ///
    /// Errors: `NotFound`, `Transient`, `Unexpected`.
    async fn head(&self, key: &BlobKey) -> Result<BlobMeta, BlobError>;

    /// Removes a blob. Removing an absent blob succeeds.
    ///
    /// Errors: `Transient`, `Unexpected`.
    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError>;

    /// A URL that downloads `key` with a plain `GET` until `ttl` has passed. A URL with
    /// any part changed (key, expiry, signature) is refused by whoever serves it.
    ///
    /// Errors: `Unexpected` when the store cannot sign.
    async fn presign_get(&self, key: &BlobKey, ttl: Duration) -> Result<PresignedUrl, BlobError>;

    /// A URL that uploads `key` once, with a `PUT` of the body and the URL's
    /// [`headers`](PresignedUrl::headers), until `ttl` has passed. Create-only: once a
    /// blob is stored at `key`, every later `PUT` with it (or with any other URL for
    /// `key`) is refused — `409` from the presigned gateway, `412` from S3 — and the blob
    /// stays as it was. So an uploader whose answer was lost and who sends again learns
    /// that its bytes are there; whether they are the right bytes is for whoever checks
    /// the blob's size and `sha256` afterwards.
    ///
    /// `sha256` is the lower-case hex SHA-256 the uploader declared for the body: a store
    /// that can check the body against it on upload does (S3 refuses another body), and
    /// a store that reports a hash in [`BlobMeta::sha256`] afterwards reports the one of
    /// the bytes it stored, never the declared one unchecked.
    ///
    /// Errors: `Unexpected` when the store cannot sign (or `sha256` is not 64 hex
    /// digits).
    async fn presign_put(
        &self,
        key: &BlobKey,
        ttl: Duration,
        sha256: Option<&str>,
    ) -> Result<PresignedUrl, BlobError>;

    /// Checks that the store is reachable, for readiness probes.
    ///
    /// Errors: `Transient` or `Unexpected` with the cause.
    async fn ping(&self) -> Result<(), BlobError>;
}

/// Serves presigned URLs for a store that cannot serve them itself (local files): the API
/// mounts it at `/blobs/`, and it checks each request's signature and expiry before it
/// reads or writes anything. Stores with their own endpoint (S3) have none.
#[async_trait]
pub trait PresignedGateway: Send + Sync {
    /// Checks the URL of a request of `method` on `path_and_query` as [`serve`] would,
    /// reading and writing nothing, and returns the key it is signed for: so the caller
    /// can ask whether the key may still be written (an artifact of a run that has ended
    /// may not) before the body is read.
    ///
    /// Errors: as [`serve`]'s `Refused`.
    ///
    /// [`serve`]: PresignedGateway::serve
    fn verify_url(&self, method: &str, path_and_query: &str) -> Result<BlobKey, PresignError>;

    /// Serves `method` on `path_and_query` (`/blobs/{key}?expires=..&signature=..`): a GET
    /// returns the blob, a PUT stores `body` (nothing means empty) only if no blob is at
    /// the key yet (`Blob(AlreadyExists)` otherwise, nothing written).
    ///
    /// Errors: `Refused` when the URL is malformed, expired, altered or used with another
    /// method (nothing is read or written); `Blob` with the store's error once the URL is
    /// accepted (`NotFound`, `Body`, ...).
    async fn serve(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<ByteStream>,
    ) -> Result<PresignedResponse, ServeError>;
}

/// Why a presigned URL was refused. Nothing was read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresignError {
    /// The URL is not `/blobs/{key}?expires=..&signature=..`, or a part of it does not
    /// parse (a key with `..` included); the detail says which.
    #[error("malformed presigned url: {0}")]
    Malformed(String),
    /// The request's method is one no URL is ever signed for.
    #[error("method {0:?} has no presigned urls: only GET and PUT do")]
    UnsupportedMethod(String),
    /// The signature is not this store's for this method, key and expiry: the URL was
    /// altered, or is used with another method than it was signed for.
    #[error("the signature does not match the method, key and expiry of the url")]
    BadSignature,
    /// The URL was genuine but its time is up.
    #[error("the presigned url expired at {expired_at}")]
    Expired {
        /// When it stopped working.
        expired_at: Timestamp,
    },
}

/// Why `FsBlobStore::serve_presigned` (in `tlao-adapters-local`) did not serve a request.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The URL was refused; nothing was read or written.
    #[error(transparent)]
    Refused(#[from] PresignError),
    /// The URL was valid but the store operation failed: `NotFound` for a GET of a
    /// missing blob, `AlreadyExists` for a PUT to a key that holds a blob, `Body` when
    /// the upload stream failed, ...
    #[error(transparent)]
    Blob(#[from] BlobError),
}

/// What a presigned request did.
pub enum PresignedResponse {
    /// A GET: the blob's metadata and its bytes.
    Download {
        /// Size and content type, for the response headers.
        meta: BlobMeta,
        /// The bytes; an `Err` item means the read failed half way.
        body: ByteStream,
    },
    /// A PUT: the blob now stored.
    Uploaded(BlobMeta),
}

impl fmt::Debug for PresignedResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PresignedResponse::Download { meta, .. } => f
                .debug_struct("Download")
                .field("meta", meta)
                .finish_non_exhaustive(),
            PresignedResponse::Uploaded(meta) => f.debug_tuple("Uploaded").field(meta).finish(),
        }
    }
}
