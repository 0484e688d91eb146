//! The [`BlobStore`] contract suite.
//!
//! Presigned URLs are exercised through a [`PresignedClient`]: plain HTTP for S3, or the
//! same verification code the API serves `/blobs/...` with for the file-system store.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};

use crate::blob::{BlobError, BlobKey, BlobStore, ByteStream};

/// Performs a request on a presigned URL, as an HTTP client without credentials would.
#[async_trait]
pub trait PresignedClient: Send + Sync {
    /// Sends `method` to `url` with `headers` (a presigned URL's own) and an optional
    /// body; returns the status and body.
    async fn send_with(
        &self,
        method: &str,
        url: &str,
        headers: &BTreeMap<String, String>,
        body: Option<Bytes>,
    ) -> (u16, Bytes);

    /// Sends `method` to `url` with no header and an optional body.
    async fn send(&self, method: &str, url: &str, body: Option<Bytes>) -> (u16, Bytes) {
        self.send_with(method, url, &BTreeMap::new(), body).await
    }
}

/// Generates one `#[tokio::test]` per blob contract case. `$factory` is an expression
/// evaluating to an async closure
/// `|| async { (Arc<dyn BlobStore>, Arc<dyn PresignedClient>, Guard) }`.
#[macro_export]
macro_rules! blob_contract_tests {
    ($factory:expr) => {
        $crate::blob_contract_tests!(@cases $factory;
            bytes_round_trip_exactly,
            a_large_stream_round_trips_exactly,
            a_failing_stream_stores_nothing_and_keeps_the_previous_blob,
            missing_blobs_are_not_found_and_deletes_are_idempotent,
            a_put_replaces_the_previous_blob,
            a_presigned_get_downloads_the_bytes,
            a_presigned_put_uploads_the_bytes,
            a_presigned_put_stores_once_and_never_replaces,
            a_presigned_put_of_other_bytes_than_declared_is_never_reported_as_declared,
            a_stored_blob_reports_its_own_sha256_or_none,
            a_tampered_presigned_url_is_refused,
            an_expired_presigned_url_is_refused,
            ping_succeeds,
        );
    };
    (@cases $factory:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, client, _guard) = ($factory)().await;
                $crate::testsuite::blob::$case(
                    store,
                    client,
                    &$crate::testsuite::namespace(stringify!($case)),
                )
                .await;
            }
        )+
    };
}

fn key(ns: &str, name: &str) -> BlobKey {
    BlobKey::parse(&format!("suite/{ns}/{name}")).unwrap()
}

/// Every byte value, so encodings that mangle binary show up.
fn all_bytes(len: usize) -> Bytes {
    (0..len).map(|i| (i % 256) as u8).collect::<Vec<_>>().into()
}

async fn read_all(store: &Arc<dyn BlobStore>, key: &BlobKey) -> Bytes {
    let (meta, mut stream) = store.get(key).await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(
        meta.size,
        out.len() as u64,
        "head size and body length differ"
    );
    out.into()
}

fn chunks(data: Bytes, chunk: usize) -> ByteStream {
    let parts: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(parts))
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, BlobError>) {
    match result {
        Err(BlobError::NotFound(_)) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

/// Bytes put are the bytes got, with the size and content type on `head`.
pub async fn bytes_round_trip_exactly(
    store: Arc<dyn BlobStore>,
    _client: Arc<dyn PresignedClient>,
    ns: &str,
) {
    let k = key(ns, "a/b/data.bin");
    let data = all_bytes(70_000);
    let meta = store
        .put(&k, data.clone(), "application/octet-stream")
        .await
        .unwrap();
    assert_eq!(meta.size, 70_000);
    assert_eq!(read_all(&store, &k).await, data);
    let head = store.head(&k).await.unwrap();
    assert_eq!(head.size, 70_000);
    assert_eq!(
        head.content_type.as_deref(),
        Some("application/octet-stream")
    );

    let empty = key(ns, "empty");
    store.put(&empty, Bytes::new(), "text/plain").await.unwrap();
    assert_eq!(read_all(&store, &empty).await, Bytes::new());

    // Around 64 KiB, where an adapter may read a small blob whole instead of streaming.
    for size in [1, 65_535, 65_536, 65_537] {
        let k = key(ns, &format!("sized/{size}"));
        let data = all_bytes(size);
        store
            .put(&k, data.clone(), "application/octet-stream")
            .await
            .unwrap();
        assert_eq!(read_all(&store, &k).await, data, "{size} bytes");
    }
}

/// An 8 MiB stream in uneven chunks (larger than S3's multipart threshold) round-trips.
pub async fn a_large_stream_round_trips_exactly(
    store: Arc<dyn BlobStore>,
    _client: Arc<dyn PresignedClient>,
    ns: &str,
) {
    let k = key(ns, "large.tar.gz");
    let data = all_bytes(8 * 1024 * 1024 + 13);
    let meta = store
        .put_stream(&k, chunks(data.clone(), 65_537), "application/gzip")
        .await
        .unwrap();
    assert_eq!(meta.size, data.len() as u64);
    assert_eq!(read_all(&store, &k).await, data);
}

/// A stream that fails half way stores nothing, returns the stream's own error, and a
/// previous blob at the key survives.
pub async fn a_failing_stream_stores_nothing_and_keeps_the_previous_blob(
    store: Arc<dyn BlobStore>,
    _client: Arc<dyn PresignedClient>,
    ns: &str,
) {
    let fresh = key(ns, "fresh");
    let kept = key(ns, "kept");
    store
        .put(&kept, Bytes::from_static(b"old"), "text/plain")
        .await
        .unwrap();
    for k in [&fresh, &kept] {
        let parts: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(all_bytes(100_000)),
            Err(std::io::Error::other("archive exceeds 1 bytes")),
        ];
        let result = store
            .put_stream(
                k,
                Box::pin(futures::stream::iter(parts)),
                "application/gzip",
            )
            .await;
        match result {
            Err(BlobError::Body(e)) => assert_eq!(e.to_string(), "archive exceeds 1 bytes"),
            other => panic!("expected Body, got {other:?}"),
        }
    }
    assert_not_found(store.head(&fresh).await);
    assert_eq!(read_all(&store, &kept).await, Bytes::from_static(b"old"));
}

/// Reading or heading an absent key is `NotFound`; delete is idempotent.
pub async fn missing_blobs_are_not_found_and_deletes_are_idempotent(
    store: Arc<dyn BlobStore>,
    _client: Arc<dyn PresignedClient>,
    ns: &str,
) {
    let k = key(ns, "gone");
    assert_not_found(store.head(&k).await);
    assert_not_found(store.get(&k).await.map(|(meta, _)| meta));
    store.delete(&k).await.unwrap();
    store
        .put(&k, Bytes::from_static(b"x"), "text/plain")
        .await
        .unwrap();
    store.delete(&k).await.unwrap();
    assert_not_found(store.head(&k).await);
    store.delete(&k).await.unwrap();
}

/// A second put replaces the first entirely (a shorter body leaves no tail behind).
pub async fn a_put_replaces_the_previous_blob(
    store: Arc<dyn BlobStore>,
    _client: Arc<dyn PresignedClient>,
    ns: &str,
) {
    let k = key(ns, "replace");
    store.put(&k, all_bytes(1000), "text/plain").await.unwrap();
    store
        .put(&k, Bytes::from_static(b"short"), "text/markdown")
        .await
        .unwrap();
    assert_eq!(read_all(&store, &k).await, Bytes::from_static(b"short"));
    assert_eq!(
        store.head(&k).await.unwrap().content_type.as_deref(),
        Some("text/markdown")
    );
}

/// A presigned GET downloads exactly the stored bytes, without credentials.
pub async fn a_presigned_get_downloads_the_bytes(
    store: Arc<dyn BlobStore>,
    client: Arc<dyn PresignedClient>,
    ns: &str,
) {
    let k = key(ns, "artifacts/plan.json");
    let data = all_bytes(5000);
    store
        .put(&k, data.clone(), "application/json")
        .await
        .unwrap();
    let url = store
        .presign_get(&k, Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!(url.method, "GET");
    let (status, body) = client.send("GET", &url.url, None).await;
    assert_eq!(status, 200);
    assert_eq!(body, data);
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A presigned PUT stores the uploaded bytes, and the store then knows their SHA-256
/// (it computed it, or checked the declared one against the body).
pub async fn a_presigned_put_uploads_the_bytes(
    store: Arc<dyn BlobStore>,
    client: Arc<dyn PresignedClient>,
    ns: &str,
) {
    let k = key(ns, "uploaded.patch");
    let data = all_bytes(3000);
    let url = store
        .presign_put(&k, Duration::from_secs(300), Some(&sha256_hex(&data)))
        .await
        .unwrap();
    assert_eq!(url.method, "PUT");
    let (status, _) = client
        .send_with("PUT", &url.url, &url.headers, Some(data.clone()))
        .await;
    assert!((200..300).contains(&status), "status {status}");
    assert_eq!(read_all(&store, &k).await, data);
    let head = store.head(&k).await.unwrap();
    assert_eq!(
        (head.size, head.sha256),
        (3000, Some(sha256_hex(&data))),
        "the stored bytes' size and hash"
    );
}

/// An upload URL stores once: sending it again (the same bytes, or others of the same
/// size) is refused with a 4xx, so is a fresh URL for the same key, and the first bytes
/// stay, with their hash.
pub async fn a_presigned_put_stores_once_and_never_replaces(
    store: Arc<dyn BlobStore>,
    client: Arc<dyn PresignedClient>,
    ns: &str,
) {
    let k = key(ns, "once.json");
    let first = Bytes::from_static(b"{\"first\":1}");
    let other = Bytes::from_static(b"{\"other\":2}");
    assert_eq!(first.len(), other.len());
    let url = store
        .presign_put(&k, Duration::from_secs(300), Some(&sha256_hex(&first)))
        .await
        .unwrap();
    let (status, _) = client
        .send_with("PUT", &url.url, &url.headers, Some(first.clone()))
        .await;
    assert!(
        (200..300).contains(&status),
        "the first upload got {status}"
    );

    let (again, _) = client
        .send_with("PUT", &url.url, &url.headers, Some(first.clone()))
        .await;
    assert!(
        matches!(again, 409 | 412),
        "the same upload again got {again}"
    );
    let (replay, _) = client
        .send_with("PUT", &url.url, &url.headers, Some(other.clone()))
        .await;
    assert!(
        matches!(replay, 400 | 409 | 412),
        "a replay with other bytes got {replay}"
    );
    let fresh = store
        .presign_put(&k, Duration::from_secs(300), Some(&sha256_hex(&other)))
        .await
        .unwrap();
    let (fresh_status, _) = client
        .send_with("PUT", &fresh.url, &fresh.headers, Some(other.clone()))
        .await;
    assert!(
        matches!(fresh_status, 409 | 412),
        "a fresh URL for a stored key got {fresh_status}"
    );
    assert_eq!(read_all(&store, &k).await, first);
    assert_eq!(
        store.head(&k).await.unwrap().sha256,
        Some(sha256_hex(&first))
    );
}

/// Bytes other than the declared ones are refused on upload (a store that checks the
/// declared hash), or stored and reported with their own hash: never with the
/// declared one.
pub async fn a_presigned_put_of_other_bytes_than_declared_is_never_reported_as_declared(
    store: Arc<dyn BlobStore>,
    client: Arc<dyn PresignedClient>,
    ns: &str,
) {
    let k = key(ns, "swapped.json");
    let declared = Bytes::from_static(b"{\"plan\":\"a\"}");
    let sent = Bytes::from_static(b"{\"plan\":\"b\"}");
    let url = store
        .presign_put(&k, Duration::from_secs(300), Some(&sha256_hex(&declared)))
        .await
        .unwrap();
    let (status, _) = client
        .send_with("PUT", &url.url, &url.headers, Some(sent.clone()))
        .await;
    if (200..300).contains(&status) {
        let head = store.head(&k).await.unwrap();
        assert_eq!(
            head.sha256,
            Some(sha256_hex(&sent)),
            "the stored bytes' hash"
        );
        assert_eq!(read_all(&store, &k).await, sent);
    } else {
        assert_eq!(status, 400, "a refused body");
        assert_not_found(store.head(&k).await);
    }
}

/// What `put` and `put_stream` stored is reported with its own SHA-256, or with none:
/// never with a wrong one.
pub async fn a_stored_blob_reports_its_own_sha256_or_none(
    store: Arc<dyn BlobStore>,
    _client: Arc<dyn PresignedClient>,
    ns: &str,
) {
    let small = key(ns, "small");
    let data = all_bytes(1000);
    let put = store.put(&small, data.clone(), "text/plain").await.unwrap();
    let large = key(ns, "large");
    let big = all_bytes(6 * 1024 * 1024 + 7);
    let streamed = store
        .put_stream(&large, chunks(big.clone(), 65_537), "application/gzip")
        .await
        .unwrap();
    for (k, bytes, written) in [(&small, &data, put), (&large, &big, streamed)] {
        let right = sha256_hex(bytes);
        let head = store.head(k).await.unwrap();
        let (got, _) = store.get(k).await.unwrap();
        for (what, reported) in [
            ("put", written.sha256),
            ("head", head.sha256),
            ("get", got.sha256),
        ] {
            assert!(
                reported.as_ref().is_none_or(|hash| *hash == right),
                "{what} of {k} reports {reported:?}, the bytes' hash is {right}"
            );
        }
    }
}

/// Rewrites the value of the first query parameter whose name ends with `suffix`.
fn tamper(url: &str, suffix: &str) -> String {
    let (base, query) = url.split_once('?').expect("a presigned URL has a query");
    let params: Vec<String> = query
        .split('&')
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if name.to_ascii_lowercase().ends_with(suffix) {
                let mut chars: Vec<char> = value.chars().collect();
                let last = chars.len() - 1;
                chars[last] = if chars[last] == '1' { '2' } else { '1' };
                format!("{name}={}", chars.into_iter().collect::<String>())
            } else {
                pair.to_owned()
            }
        })
        .collect();
    format!("{base}?{}", params.join("&"))
}

/// Changing the key, the expiry or the signature of a presigned URL gets it refused,
/// and so does using a GET URL to PUT.
pub async fn a_tampered_presigned_url_is_refused(
    store: Arc<dyn BlobStore>,
    client: Arc<dyn PresignedClient>,
    ns: &str,
) {
    let k = key(ns, "secret-a");
    let other = key(ns, "secret-b");
    store
        .put(&k, Bytes::from_static(b"a"), "text/plain")
        .await
        .unwrap();
    store
        .put(&other, Bytes::from_static(b"b"), "text/plain")
        .await
        .unwrap();
    let url = store
        .presign_get(&k, Duration::from_secs(300))
        .await
        .unwrap()
        .url;
    assert!(url.contains(k.as_str()), "the URL names its key: {url}");

    let other_key = url.replace("secret-a", "secret-b");
    for (what, bad) in [
        ("key", other_key),
        ("expiry", tamper(&url, "expires")),
        ("signature", tamper(&url, "signature")),
    ] {
        assert_ne!(bad, url, "tampering with the {what} changed nothing");
        let (status, _) = client.send("GET", &bad, None).await;
        assert!(
            (400..500).contains(&status),
            "a URL with a tampered {what} got {status}"
        );
    }
    let (status, _) = client
        .send("PUT", &url, Some(Bytes::from_static(b"overwrite")))
        .await;
    assert!(
        (400..500).contains(&status),
        "a GET URL used to PUT got {status}"
    );
    assert_eq!(read_all(&store, &k).await, Bytes::from_static(b"a"));
}

/// A presigned URL stops working once its time is up.
pub async fn an_expired_presigned_url_is_refused(
    store: Arc<dyn BlobStore>,
    client: Arc<dyn PresignedClient>,
    ns: &str,
) {
    let k = key(ns, "short-lived");
    store
        .put(&k, Bytes::from_static(b"x"), "text/plain")
        .await
        .unwrap();
    let url = store.presign_get(&k, Duration::from_secs(1)).await.unwrap();
    let (status, _) = client.send("GET", &url.url, None).await;
    assert_eq!(status, 200, "a fresh URL works");
    // Expiry has one-second resolution in every signing scheme we speak.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, _) = client.send("GET", &url.url, None).await;
    assert!((400..500).contains(&status), "an expired URL got {status}");
}

/// A healthy store answers `ping`.
pub async fn ping_succeeds(
    store: Arc<dyn BlobStore>,
    _client: Arc<dyn PresignedClient>,
    _ns: &str,
) {
    store.ping().await.unwrap();
}
