//! The blob contract suite on [`S3BlobStore`] against moto's S3, with presigned URLs
//! fetched over plain HTTP, plus S3-specific cases.
//!
//! Moto serves presigned URLs without checking their signature or expiry (S3 does), so
//! the suite's presigned client checks each URL first as S3 would (`common::sigv4`) and
//! forwards only those that pass to moto, which then serves the bytes. Two suite cases
//! depend on that check (`a_tampered_presigned_url_is_refused`,
//! `an_expired_presigned_url_is_refused`); `moto_itself_serves_a_tampered_url` below
//! pins the emulator gap, so the day moto checks signatures this file says so.
//!
//! Moto honours `If-None-Match: *` on a PUT (412 once the key holds an object), as S3
//! does, but stores an upload's `x-amz-checksum-sha256` without comparing it with the
//! body (S3 answers `400 BadDigest`). The edge makes that comparison too, as S3 would;
//! `moto_itself_keeps_a_checksum_the_body_does_not_have` pins that gap.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tlao_adapters_aws::{Provisioned, S3BlobStore};
use tlao_ports::testsuite::Guard;
use tlao_ports::testsuite::blob::PresignedClient;
use tlao_ports::{BlobError, BlobKey, BlobStore};

/// A client without credentials in front of which S3's signature check runs.
struct S3Edge {
    http: reqwest::Client,
    secret_key: String,
}

impl S3Edge {
    fn new() -> S3Edge {
        S3Edge {
            http: reqwest::Client::new(),
            secret_key: std::env::var("AWS_SECRET_ACCESS_KEY").expect("the dummy secret key"),
        }
    }

    /// Sends the request to moto as is, without S3's checks.
    async fn send_unchecked(
        &self,
        method: &str,
        url: &str,
        headers: &BTreeMap<String, String>,
        body: Option<Bytes>,
    ) -> (u16, Bytes) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut request = self.http.request(method, url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.expect("moto answers");
        let status = response.status().as_u16();
        (status, response.bytes().await.expect("a body"))
    }
}

/// S3's answer to an upload whose body does not have the SHA-256 its
/// `x-amz-checksum-sha256` header names (base64): `400 BadDigest`.
fn bad_digest(headers: &BTreeMap<String, String>, body: Option<&Bytes>) -> Option<(u16, Bytes)> {
    use base64::Engine;
    use sha2::Digest;
    let declared = headers.get("x-amz-checksum-sha256")?;
    let actual = base64::engine::general_purpose::STANDARD
        .encode(sha2::Sha256::digest(body.map_or(&[][..], |b| &b[..])));
    (*declared != actual).then(|| (400, Bytes::from_static(b"BadDigest")))
}

#[async_trait]
impl PresignedClient for S3Edge {
    async fn send_with(
        &self,
        method: &str,
        url: &str,
        headers: &BTreeMap<String, String>,
        body: Option<Bytes>,
    ) -> (u16, Bytes) {
        if let Err(refusal) = common::sigv4::verify(method, url, headers, &self.secret_key) {
            return (refusal.status(), Bytes::from(format!("{refusal:?}")));
        }
        if let Some(refused) = bad_digest(headers, body.as_ref()) {
            return refused;
        }
        self.send_unchecked(method, url, headers, body).await
    }
}

tlao_ports::blob_contract_tests!(|| async {
    (
        Arc::new(common::store().await) as Arc<dyn BlobStore>,
        Arc::new(S3Edge::new()) as Arc<dyn PresignedClient>,
        Box::new(()) as Guard,
    )
});

fn key(name: &str) -> BlobKey {
    BlobKey::parse(&format!(
        "s3-cases/{}/{name}",
        tlao_ports::testsuite::namespace("s3")
    ))
    .unwrap()
}

#[tokio::test]
async fn moto_itself_serves_a_tampered_url() {
    let store = common::store().await;
    let k = key("gap");
    store
        .put(&k, Bytes::from_static(b"served anyway"), "text/plain")
        .await
        .unwrap();
    let url = store
        .presign_get(&k, Duration::from_secs(60))
        .await
        .unwrap()
        .url;
    let tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0");
    let edge = S3Edge::new();
    let (checked, _) = edge.send("GET", &tampered, None).await;
    assert_eq!(checked, 403, "the S3 check refuses it");
    let (status, body) = edge
        .send_unchecked("GET", &tampered, &BTreeMap::new(), None)
        .await;
    assert_eq!(
        (status, body),
        (200, Bytes::from_static(b"served anyway")),
        "moto now checks presigned signatures: the S3 check in this file may go"
    );
}

#[tokio::test]
async fn moto_itself_keeps_a_checksum_the_body_does_not_have() {
    use sha2::Digest;
    let store = common::store().await;
    let k = key("bad-digest");
    let declared = hex::encode(sha2::Sha256::digest(b"declared"));
    let url = store
        .presign_put(&k, Duration::from_secs(60), Some(&declared))
        .await
        .unwrap();
    let edge = S3Edge::new();
    let body = Bytes::from_static(b"other bytes");
    let (checked, _) = edge
        .send_with("PUT", &url.url, &url.headers, Some(body.clone()))
        .await;
    assert_eq!(checked, 400, "S3 (and the edge) refuse the body");
    let (status, _) = edge
        .send_unchecked("PUT", &url.url, &url.headers, Some(body))
        .await;
    assert_eq!(
        (status, store.head(&k).await.unwrap().sha256),
        (200, Some(declared)),
        "moto now checks upload checksums: the digest check of the edge may go"
    );
}

#[tokio::test]
async fn an_upload_url_signs_if_none_match_and_the_declared_checksum() {
    use sha2::Digest;
    let store = common::store().await;
    let k = key("signed-headers");
    let sha = sha2::Sha256::digest(b"the bytes");
    let url = store
        .presign_put(&k, Duration::from_secs(60), Some(&hex::encode(sha)))
        .await
        .unwrap();
    let expected: BTreeMap<String, String> = [
        ("if-none-match", "*".to_owned()),
        (
            "x-amz-checksum-sha256",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, sha),
        ),
        ("x-amz-sdk-checksum-algorithm", "SHA256".to_owned()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    assert_eq!(url.headers, expected);
    assert!(url.url.contains("if-none-match"), "signed: {}", url.url);
    // Without the headers it signs, S3 refuses the URL.
    let (status, _) = S3Edge::new()
        .send("PUT", &url.url, Some(Bytes::from_static(b"the bytes")))
        .await;
    assert_eq!(status, 403);
    // Without a declared hash, only the condition is signed.
    let bare = store
        .presign_put(&key("bare"), Duration::from_secs(60), None)
        .await
        .unwrap();
    assert_eq!(
        bare.headers.keys().collect::<Vec<_>>(),
        vec!["if-none-match"]
    );
}

#[tokio::test]
async fn a_presigned_url_lives_as_long_as_asked_and_a_get_signs_only_the_host() {
    let store = common::store().await;
    let k = key("shape");
    let get = store
        .presign_get(&k, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(get.url.contains("X-Amz-SignedHeaders=host&"), "{}", get.url);
    assert!(get.headers.is_empty());
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let url = store
        .presign_put(&k, Duration::from_millis(90_500), None)
        .await
        .unwrap();
    assert_eq!(url.method, "PUT");
    assert!(
        url.url.contains("/tlao-contract/s3-cases/"),
        "path style: {}",
        url.url
    );
    let life = url.expires_at.unix_millis() - before;
    assert!(
        (90_500..=92_000).contains(&life),
        "a 90.5 s URL lives {life} ms"
    );
}

#[tokio::test]
async fn a_stream_of_exactly_one_part_is_stored_whole() {
    let store = common::store().await;
    let k = key("one-part.bin");
    let data = Bytes::from(vec![7u8; tlao_adapters_aws::PART_BYTES]);
    let stream = Box::pin(futures::stream::iter(vec![Ok(data.clone())]));
    let meta = store
        .put_stream(&k, stream, "application/octet-stream")
        .await
        .unwrap();
    assert_eq!(meta.size, data.len() as u64);
    assert_eq!(store.head(&k).await.unwrap().size, data.len() as u64);
}

#[tokio::test]
async fn a_stream_failing_after_two_parts_aborts_the_upload() {
    let store = common::store().await;
    let k = key("aborted.bin");
    let part = Bytes::from(vec![1u8; tlao_adapters_aws::PART_BYTES]);
    let stream = Box::pin(futures::stream::iter(vec![
        Ok(part.clone()),
        Ok(part),
        Err(std::io::Error::other("the client went away")),
    ]));
    match store.put_stream(&k, stream, "application/gzip").await {
        Err(BlobError::Body(e)) => assert_eq!(e.to_string(), "the client went away"),
        other => panic!("expected Body, got {other:?}"),
    }
    assert!(matches!(store.head(&k).await, Err(BlobError::NotFound(_))));
}

#[tokio::test]
async fn ensuring_the_bucket_twice_finds_it_the_second_time() {
    let bucket = tlao_ports::testsuite::namespace("bucket").to_ascii_lowercase();
    let bucket: String = bucket.chars().take(60).collect();
    let store = S3BlobStore::connect(&common::connection(), bucket).await;
    assert_eq!(store.ensure_bucket().await.unwrap(), Provisioned::Created);
    assert_eq!(store.ensure_bucket().await.unwrap(), Provisioned::Existing);
    store.ping().await.unwrap();
}
