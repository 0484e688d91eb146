//! [`S3BlobStore`]: the blob store port on one S3 bucket.
//!
//! Small bodies are one `PutObject`; streamed bodies are buffered a part at a time
//! (at least 5 MiB, S3's smallest part) and sent as a multipart upload once they outgrow
//! one part, so memory stays bounded by one part whatever the body's size. A body that
//! fails half way aborts the upload: S3 then stores nothing and the previous object at
//! the key stays, as the port promises. Presigned URLs are S3's own (SigV4 query
//! signatures), served by S3 itself, so this store needs no presigned gateway.
//!
//! A presigned upload signs three headers the uploader must send as given:
//! `If-None-Match: *` (S3's conditional write: the PUT is refused with `412` once an
//! object is at the key, so the URL stores at most once and never replaces), and, when
//! the uploader declared its SHA-256, `x-amz-sdk-checksum-algorithm: SHA256` with
//! `x-amz-checksum-sha256` (S3 refuses a body with another hash with `400 BadDigest`,
//! and keeps the checksum, which `head` reads back as [`BlobMeta::sha256`]).

use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, ChecksumAlgorithm, ChecksumMode, ChecksumType,
    CompletedMultipartUpload, CompletedPart, CreateBucketConfiguration,
    PublicAccessBlockConfiguration,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tlao_domain::Timestamp;
use tlao_ports::{BlobError, BlobKey, BlobMeta, BlobStore, ByteStream, PresignedUrl};

use crate::Provisioned;
use crate::connection::{AwsConnection, DEFAULT_REGION, standard_retries};
use crate::sdk_error::{Failure, classify};

/// The size a streamed body is cut into parts at: S3's smallest part size (5 MiB). A
/// body that ends before it is one `PutObject`.
pub const PART_BYTES: usize = 5 * 1024 * 1024;

/// The longest life S3 gives a presigned URL (SigV4: seven days).
const MAX_PRESIGN_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The blob store port on one S3 bucket.
#[derive(Debug, Clone)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
}

impl S3BlobStore {
    /// A store on `bucket` over `connection`: path-style addressing when an endpoint
    /// override is set (emulators have no per-bucket host names). Checksums are sent
    /// and checked only where S3 requires them, so presigned URLs carry no checksum
    /// parameters a plain client could not honour.
    ///
    /// Each request is tried at most three times, by the SDK's standard retry: the
    /// orchestrator retries table calls, not blob calls (requirement 13.2's budget, see
    /// `connection`).
    pub async fn connect(connection: &AwsConnection, bucket: impl Into<String>) -> S3BlobStore {
        S3BlobStore::with_config(
            &connection.sdk_config().await,
            connection.is_emulated(),
            bucket,
        )
    }

    /// A store on `bucket` with the shared SDK configuration `shared`, path-style
    /// addressing when `path_style`.
    pub(crate) fn with_config(
        shared: &SdkConfig,
        path_style: bool,
        bucket: impl Into<String>,
    ) -> S3BlobStore {
        let config = aws_sdk_s3::config::Builder::from(shared)
            .retry_config(standard_retries())
            .force_path_style(path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        S3BlobStore {
            client: Client::from_conf(config),
            bucket: bucket.into(),
        }
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Creates the bucket when it is missing and blocks every form of public access to
    /// it. Idempotent: a bucket this account already owns is kept as it is.
    ///
    /// Errors: `Transient` when a retry may succeed, `Unexpected` otherwise (the name is
    /// taken by another account, no permission...).
    pub async fn ensure_bucket(&self) -> Result<Provisioned, BlobError> {
        let region = self
            .client
            .config()
            .region()
            .map(|r| r.as_ref().to_owned())
            .unwrap_or_else(|| DEFAULT_REGION.to_owned());
        // S3 answers a CreateBucket of a bucket one owns with 200 in us-east-1 (and with
        // BucketAlreadyOwnedByYou elsewhere), so look first.
        let exists = match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => true,
            Err(e) => match classify("HeadBucket", e) {
                Failure::Service(f) if f.status == 404 => false,
                other => return Err(blob_failure(other, None)),
            },
        };
        let provisioned = if exists {
            Provisioned::Existing
        } else {
            let mut create = self.client.create_bucket().bucket(&self.bucket);
            if region != DEFAULT_REGION {
                create = create.create_bucket_configuration(
                    CreateBucketConfiguration::builder()
                        .location_constraint(BucketLocationConstraint::from(region.as_str()))
                        .build(),
                );
            }
            match create.send().await {
                Ok(_) => Provisioned::Created,
                Err(e) => match classify("CreateBucket", e) {
                    Failure::Service(f) if f.code.as_deref() == Some("BucketAlreadyOwnedByYou") => {
                        Provisioned::Existing
                    }
                    other => return Err(blob_failure(other, None)),
                },
            }
        };
        self.client
            .put_public_access_block()
            .bucket(&self.bucket)
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(true)
                    .restrict_public_buckets(true)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| blob_error("PutPublicAccessBlock", None, e))?;
        Ok(provisioned)
    }

    async fn create_upload(&self, key: &BlobKey, content_type: &str) -> Result<String, BlobError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key.as_str())
            .content_type(content_type)
            .set_tagging(kind_tag(key))
            .send()
            .await
            .map_err(|e| blob_error("CreateMultipartUpload", None, e))?;
        created.upload_id.ok_or_else(|| {
            BlobError::Unexpected(anyhow::anyhow!(
                "CreateMultipartUpload for {key} returned no upload id"
            ))
        })
    }

    async fn upload_part(
        &self,
        key: &BlobKey,
        upload_id: &str,
        parts: &mut Vec<CompletedPart>,
        body: Bytes,
    ) -> Result<(), BlobError> {
        let number = i32::try_from(parts.len() + 1).unwrap_or(i32::MAX);
        let length = i64::try_from(body.len()).unwrap_or(i64::MAX);
        let uploaded = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key.as_str())
            .upload_id(upload_id)
            .part_number(number)
            .content_length(length)
            .body(SdkByteStream::from(body))
            .send()
            .await
            .map_err(|e| blob_error("UploadPart", None, e))?;
        parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(uploaded.e_tag)
                .build(),
        );
        Ok(())
    }

    async fn complete_upload(
        &self,
        key: &BlobKey,
        upload_id: &str,
        parts: Vec<CompletedPart>,
    ) -> Result<(), BlobError> {
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key.as_str())
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| blob_error("CompleteMultipartUpload", None, e))?;
        Ok(())
    }

    /// Abandons an upload so S3 keeps none of its parts. A failure here leaves parts
    /// that no object refers to; the bucket's lifecycle rule for incomplete multipart
    /// uploads removes them, so it is logged, not returned.
    async fn abort_upload(&self, key: &BlobKey, upload_id: &str) {
        let aborted = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key.as_str())
            .upload_id(upload_id)
            .send()
            .await;
        if let Err(e) = aborted {
            let error = blob_error("AbortMultipartUpload", None, e);
            tracing::warn!(key = %key, upload_id, error = %error, operation = "blob.put_stream", "could not abort a multipart upload");
        }
    }

    /// Streams the rest of `body` as parts of an upload whose first part is `first`.
    async fn put_parts(
        &self,
        key: &BlobKey,
        upload_id: &str,
        first: Bytes,
        body: &mut ByteStream,
    ) -> Result<u64, BlobError> {
        let mut parts = Vec::new();
        let mut size = first.len() as u64;
        self.upload_part(key, upload_id, &mut parts, first).await?;
        let mut buffer = BytesMut::with_capacity(PART_BYTES);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(BlobError::Body)?;
            size += chunk.len() as u64;
            buffer.extend_from_slice(&chunk);
            if buffer.len() >= PART_BYTES {
                let part = buffer.split().freeze();
                self.upload_part(key, upload_id, &mut parts, part).await?;
            }
        }
        if !buffer.is_empty() {
            self.upload_part(key, upload_id, &mut parts, buffer.freeze())
                .await?;
        }
        self.complete_upload(key, upload_id, parts).await?;
        Ok(size)
    }

    fn presigning(ttl: Duration) -> Result<(PresigningConfig, Timestamp), BlobError> {
        // SigV4 dates and lifetimes have one-second resolution: the URL is signed at the
        // current whole second and lives until `now + ttl` rounded up to a whole second,
        // so it never works for less than `ttl` and `expires_at` is exactly when S3
        // stops serving it.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| BlobError::Unexpected(e.into()))?;
        let start = now.as_secs();
        let end = now.saturating_add(ttl);
        let end = end.as_secs() + u64::from(end.subsec_nanos() > 0);
        let life = Duration::from_secs(end.saturating_sub(start).max(1)).min(MAX_PRESIGN_TTL);
        let config = PresigningConfig::builder()
            .start_time(UNIX_EPOCH + Duration::from_secs(start))
            .expires_in(life)
            .build()
            .map_err(|e| BlobError::Unexpected(e.into()))?;
        let expires_at = Timestamp::from_unix_millis(
            i64::try_from((start + life.as_secs()) * 1000).unwrap_or(i64::MAX),
        );
        Ok((config, expires_at))
    }
}

/// The tag (`tlao-kind=archives`, `tlao-kind=runs`) of a blob under
/// `workspaces/{ws}/{kind}/...`. S3 lifecycle rules filter by prefix or by tag, and the
/// workspace id sits before the kind, so a rule such as "expire archives after 30 days"
/// can only target archives of every workspace by this tag (deploy/aws/template.yaml).
fn kind_tag(key: &BlobKey) -> Option<String> {
    let mut segments = key.as_str().split('/');
    match (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) {
        (Some("workspaces"), Some(_), Some(kind), Some(_)) => Some(format!("tlao-kind={kind}")),
        _ => None,
    }
}

/// The headers a presigned upload signs (lower case, as SigV4 names them): only these
/// are handed to the uploader to send; any other header the SDK would sign is refused
/// here rather than handed to a client that would fail with it.
const UPLOAD_HEADERS: [&str; 3] = [
    "if-none-match",
    "x-amz-checksum-sha256",
    "x-amz-sdk-checksum-algorithm",
];

/// The presigned request as the port's URL, with the headers it signed that the client
/// must send (`allowed`, all others refused: a GET carries none).
fn presigned_url(
    request: PresignedRequest,
    expires_at: Timestamp,
    allowed: &[&str],
) -> Result<PresignedUrl, BlobError> {
    let mut headers = std::collections::BTreeMap::new();
    let mut extra = Vec::new();
    for (name, value) in request.headers() {
        let name = name.to_ascii_lowercase();
        if name == "host" {
            continue;
        }
        if allowed.contains(&name.as_str()) {
            headers.insert(name, value.to_owned());
        } else {
            extra.push(name);
        }
    }
    if !extra.is_empty() {
        return Err(BlobError::Unexpected(anyhow::anyhow!(
            "the presigned {} request needs headers a client is not told to send: {extra:?}",
            request.method()
        )));
    }
    Ok(PresignedUrl {
        url: request.uri().to_owned(),
        method: request.method().to_owned(),
        expires_at,
        headers,
    })
}

/// A hex SHA-256 as S3's checksum header wants it (base64 of the 32 bytes).
fn sha256_base64(hex_digest: &str) -> Result<String, BlobError> {
    hex::decode(hex_digest)
        .ok()
        .filter(|bytes| bytes.len() == 32)
        .map(|bytes| BASE64.encode(bytes))
        .ok_or_else(|| {
            BlobError::Unexpected(anyhow::anyhow!(
                "{hex_digest:?} is not a SHA-256 in hex (64 hex digits)"
            ))
        })
}

/// The hex SHA-256 of a whole object from S3's `ChecksumSHA256` (base64): only a
/// full-object checksum, which S3 checked against the body on upload. A multipart
/// object's composite checksum (`…-N`) is a hash of hashes, not the bytes' own.
fn object_sha256(checksum: Option<&str>, kind: Option<&ChecksumType>) -> Option<String> {
    let checksum = checksum?;
    if checksum.contains('-') || matches!(kind, Some(ChecksumType::Composite)) {
        return None;
    }
    BASE64
        .decode(checksum)
        .ok()
        .filter(|bytes| bytes.len() == 32)
        .map(hex::encode)
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(
        &self,
        key: &BlobKey,
        body: Bytes,
        content_type: &str,
    ) -> Result<BlobMeta, BlobError> {
        let size = body.len() as u64;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .content_type(content_type)
            .set_tagging(kind_tag(key))
            .content_length(i64::try_from(size).unwrap_or(i64::MAX))
            .body(SdkByteStream::from(body))
            .send()
            .await
            .map_err(|e| blob_error("PutObject", None, e))?;
        Ok(BlobMeta {
            key: key.clone(),
            size,
            content_type: Some(content_type.to_owned()),
            sha256: None,
        })
    }

    async fn put_stream(
        &self,
        key: &BlobKey,
        mut body: ByteStream,
        content_type: &str,
    ) -> Result<BlobMeta, BlobError> {
        // The first part decides: a body that ends within it is a single PutObject.
        let mut buffer = BytesMut::new();
        while buffer.len() < PART_BYTES {
            match body.next().await {
                Some(chunk) => buffer.extend_from_slice(&chunk.map_err(BlobError::Body)?),
                None => return self.put(key, buffer.freeze(), content_type).await,
            }
        }
        let upload_id = self.create_upload(key, content_type).await?;
        match self
            .put_parts(key, &upload_id, buffer.freeze(), &mut body)
            .await
        {
            Ok(size) => Ok(BlobMeta {
                key: key.clone(),
                size,
                content_type: Some(content_type.to_owned()),
                sha256: None,
            }),
            Err(error) => {
                self.abort_upload(key, &upload_id).await;
                Err(error)
            }
        }
    }

    async fn get(&self, key: &BlobKey) -> Result<(BlobMeta, ByteStream), BlobError> {
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .map_err(|e| blob_error("GetObject", Some(key), e))?;
        let meta = BlobMeta {
            key: key.clone(),
            size: output
                .content_length
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
            sha256: object_sha256(
                output.checksum_sha256.as_deref(),
                output.checksum_type.as_ref(),
            ),
            content_type: output.content_type,
        };
        let stream = futures::stream::unfold(output.body, |mut body| async move {
            body.next()
                .await
                .map(|chunk| (chunk.map_err(io::Error::other), body))
        });
        Ok((meta, Box::pin(stream)))
    }

    async fn head(&self, key: &BlobKey) -> Result<BlobMeta, BlobError> {
        let output = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .map_err(|e| blob_error("HeadObject", Some(key), e))?;
        Ok(BlobMeta {
            key: key.clone(),
            size: output
                .content_length
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
            sha256: object_sha256(
                output.checksum_sha256.as_deref(),
                output.checksum_type.as_ref(),
            ),
            content_type: output.content_type,
        })
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
            .map_err(|e| blob_error("DeleteObject", None, e))?;
        Ok(())
    }

    async fn presign_get(&self, key: &BlobKey, ttl: Duration) -> Result<PresignedUrl, BlobError> {
        let (config, expires_at) = Self::presigning(ttl)?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .presigned(config)
            .await
            .map_err(|e| BlobError::Unexpected(blob_error("presign GetObject", None, e).into()))?;
        presigned_url(request, expires_at, &[])
    }

    async fn presign_put(
        &self,
        key: &BlobKey,
        ttl: Duration,
        sha256: Option<&str>,
    ) -> Result<PresignedUrl, BlobError> {
        let (config, expires_at) = Self::presigning(ttl)?;
        let mut put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .if_none_match("*");
        if let Some(sha256) = sha256 {
            put = put
                .checksum_algorithm(ChecksumAlgorithm::Sha256)
                .checksum_sha256(sha256_base64(sha256)?);
        }
        let request = put
            .presigned(config)
            .await
            .map_err(|e| BlobError::Unexpected(blob_error("presign PutObject", None, e).into()))?;
        presigned_url(request, expires_at, &UPLOAD_HEADERS)
    }

    async fn ping(&self) -> Result<(), BlobError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| blob_error("HeadBucket", None, e))?;
        Ok(())
    }
}

/// Maps an SDK failure of a blob call into the port's error; with `key`, a 404 for the
/// object is `NotFound` (a missing bucket stays `Unexpected`).
fn blob_error<E>(
    operation: &'static str,
    key: Option<&BlobKey>,
    error: SdkError<E, HttpResponse>,
) -> BlobError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    blob_failure(classify(operation, error), key)
}

fn blob_failure<E: ProvideErrorMetadata>(failure: Failure<E>, key: Option<&BlobKey>) -> BlobError {
    match failure {
        Failure::Transient(e) => BlobError::Transient(e),
        Failure::Unexpected(e) => BlobError::Unexpected(e),
        Failure::Service(f) => {
            let code = f.code.as_deref();
            match key {
                Some(key)
                    if code != Some("NoSuchBucket")
                        && (matches!(code, Some("NoSuchKey" | "NotFound")) || f.status == 404) =>
                {
                    BlobError::NotFound(key.clone())
                }
                _ if code == Some("NoSuchBucket") => BlobError::Unexpected(anyhow::anyhow!(
                    "{f}; create the bucket with `tlao admin init-aws`"
                )),
                _ => BlobError::Unexpected(f.describe()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn blobs_under_a_workspace_are_tagged_with_their_kind() {
        let tag = |key: &str| kind_tag(&BlobKey::parse(key).unwrap());
        assert_eq!(
            tag("workspaces/ws_1/archives/arc_2.tar.gz").as_deref(),
            Some("tlao-kind=archives")
        );
        assert_eq!(
            tag("workspaces/ws_1/runs/run_3/taskspec.json").as_deref(),
            Some("tlao-kind=runs")
        );
        assert_eq!(
            tag("workspaces/ws_1/tasks/task_4/taskspec.json").as_deref(),
            Some("tlao-kind=tasks")
        );
        assert_eq!(tag("workspaces/ws_1/archives"), None);
        assert_eq!(tag("suite/a/b/c"), None);
    }
}
