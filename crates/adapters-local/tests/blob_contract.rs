//! The blob contract suite on [`FsBlobStore`], served through the same
//! `serve_presigned` path as the API, plus what only a file system can get wrong.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tempfile::TempDir;
use tlao_adapters_local::FsBlobStore;
use tlao_domain::Timestamp;
use tlao_ports::PresignedGateway;
use tlao_ports::testsuite::Guard;
use tlao_ports::testsuite::blob::PresignedClient;
use tlao_ports::{
    BlobError, BlobKey, BlobStore, ByteStream, Clock, ManualClock, PresignError, PresignedResponse,
    ServeError, SystemClock,
};

const BASE_URL: &str = "http://127.0.0.1:8080";
const SIGNING_KEY: &[u8] = b"a signing key for tests only";

fn store_in(root: &Path, clock: Arc<dyn Clock>) -> FsBlobStore {
    FsBlobStore::new(
        root.to_path_buf(),
        BASE_URL.to_owned(),
        SIGNING_KEY.to_vec(),
        clock,
    )
    .expect("a store in a temp dir")
}

fn one_chunk(body: Bytes) -> ByteStream {
    Box::pin(futures::stream::once(async move { Ok(body) }))
}

/// An HTTP client without credentials, as the API would answer it.
struct ServedByTheApi(Arc<FsBlobStore>);

#[async_trait]
impl PresignedClient for ServedByTheApi {
    async fn send_with(
        &self,
        method: &str,
        url: &str,
        // The gateway signs no header: what an upload may be is checked by the store.
        _headers: &BTreeMap<String, String>,
        body: Option<Bytes>,
    ) -> (u16, Bytes) {
        let Some(path_and_query) = url.strip_prefix(BASE_URL) else {
            return (404, Bytes::from("not a url of this server"));
        };
        let served = self
            .0
            .serve_presigned(method, path_and_query, body.map(one_chunk))
            .await;
        match served {
            Ok(PresignedResponse::Download { mut body, .. }) => {
                let mut bytes = Vec::new();
                while let Some(chunk) = body.next().await {
                    match chunk {
                        Ok(chunk) => bytes.extend_from_slice(&chunk),
                        Err(e) => return (500, Bytes::from(e.to_string())),
                    }
                }
                (200, bytes.into())
            }
            Ok(PresignedResponse::Uploaded(_)) => (200, Bytes::new()),
            Err(ServeError::Refused(refusal)) => {
                let status = match refusal {
                    PresignError::Malformed(_) => 400,
                    PresignError::UnsupportedMethod(_) => 405,
                    PresignError::BadSignature | PresignError::Expired { .. } => 403,
                };
                (status, Bytes::from(refusal.to_string()))
            }
            Err(ServeError::Blob(BlobError::NotFound(key))) => {
                (404, Bytes::from(format!("no blob at {key}")))
            }
            Err(ServeError::Blob(BlobError::Body(e))) => (400, Bytes::from(e.to_string())),
            Err(ServeError::Blob(e @ BlobError::AlreadyExists(_))) => {
                (409, Bytes::from(e.to_string()))
            }
            Err(ServeError::Blob(e)) => (500, Bytes::from(e.to_string())),
        }
    }
}

tlao_ports::blob_contract_tests!(|| async {
    let dir = TempDir::new().expect("a temp dir");
    let store = Arc::new(store_in(dir.path(), Arc::new(SystemClock)));
    let client = Arc::new(ServedByTheApi(store.clone()));
    (
        store as Arc<dyn BlobStore>,
        client as Arc<dyn PresignedClient>,
        Box::new(dir) as Guard,
    )
});

/// The `expires` and `signature` parameters of a presigned URL.
fn query_of(url: &str) -> (String, String) {
    let (_, query) = url.split_once('?').expect("a query");
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
            .expect("the parameter")
            .to_owned()
    };
    (param("expires"), param("signature"))
}

fn key(text: &str) -> BlobKey {
    BlobKey::parse(text).expect("a valid key")
}

/// On a whole second, so expiries are exact.
const START: Timestamp = Timestamp::from_unix_millis(1_800_000_000_000);

#[tokio::test]
async fn a_url_works_until_one_millisecond_before_its_expiry_and_not_at_it() {
    let dir = TempDir::new().expect("a temp dir");
    let clock = Arc::new(ManualClock::new(START));
    let store = store_in(dir.path(), clock.clone());
    let url = store
        .presign_get(&key("a/b"), Duration::from_secs(60))
        .await
        .expect("a url");
    let (expires, signature) = query_of(&url.url);
    assert_eq!(expires, "1800000060");
    assert_eq!(url.expires_at, START.plus_seconds(60));

    clock.set(START.plus_seconds(59));
    assert_eq!(
        store.verify("GET", "a/b", &expires, &signature),
        Ok(key("a/b"))
    );
    clock.set(START.plus_seconds(60).plus_millis(-1));
    assert_eq!(
        store.verify("GET", "a/b", &expires, &signature),
        Ok(key("a/b"))
    );
    clock.set(START.plus_seconds(60));
    assert_eq!(
        store.verify("GET", "a/b", &expires, &signature),
        Err(PresignError::Expired {
            expired_at: START.plus_seconds(60)
        })
    );
}

#[tokio::test]
async fn an_expiry_is_rounded_up_to_a_whole_second() {
    let dir = TempDir::new().expect("a temp dir");
    let clock = Arc::new(ManualClock::new(START.plus_millis(500)));
    let store = store_in(dir.path(), clock);
    let url = store
        .presign_put(&key("k"), Duration::from_millis(1200), None)
        .await
        .expect("a url");
    assert_eq!(query_of(&url.url).0, "1800000002");
    assert_eq!(url.expires_at, START.plus_seconds(2));
    assert_eq!(url.method, "PUT");
}

#[tokio::test]
async fn the_signature_is_an_hmac_of_method_key_and_expiry_in_lowercase_hex() {
    let dir = TempDir::new().expect("a temp dir");
    let store = store_in(dir.path(), Arc::new(ManualClock::new(START)));
    let url = store
        .presign_get(&key("x/y.bin"), Duration::from_secs(10))
        .await
        .expect("a url");
    let expected = sign("GET", "x/y.bin", "1800000010");
    assert_eq!(
        url.url,
        format!("{BASE_URL}/blobs/x/y.bin?expires=1800000010&signature={expected}")
    );
}

#[tokio::test]
async fn a_verified_url_is_refused_for_another_method_or_a_rewritten_expiry() {
    let dir = TempDir::new().expect("a temp dir");
    let store = store_in(dir.path(), Arc::new(ManualClock::new(START)));
    let url = store
        .presign_get(&key("k"), Duration::from_secs(10))
        .await
        .expect("a url");
    let (expires, signature) = query_of(&url.url);
    assert_eq!(
        store.verify("PUT", "k", &expires, &signature),
        Err(PresignError::BadSignature)
    );
    assert_eq!(
        store.verify("GET", "k", &format!("0{expires}"), &signature),
        Err(PresignError::BadSignature)
    );
    assert_eq!(
        store.verify("DELETE", "k", &expires, &signature),
        Err(PresignError::UnsupportedMethod("DELETE".to_owned()))
    );
    assert!(matches!(
        store.verify("GET", "k", "-5", &signature),
        Err(PresignError::Malformed(_))
    ));
    assert!(matches!(
        store.verify("GET", "k", &expires, "zz"),
        Err(PresignError::Malformed(_))
    ));
}

#[test]
fn a_key_with_dot_dot_cannot_be_built() {
    for bad in [
        "..",
        "../etc/passwd",
        "a/../b",
        "a/..",
        "/abs",
        "a//b",
        "a/./b",
    ] {
        assert!(BlobKey::parse(bad).is_err(), "{bad:?} was accepted");
    }
}

fn sign(method: &str, key: &str, expires: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SIGNING_KEY).expect("any key length");
    mac.update(format!("{method}\n{key}\n{expires}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn a_path_with_dot_dot_is_refused_as_malformed_even_when_signed() {
    let dir = TempDir::new().expect("a temp dir");
    std::fs::write(dir.path().join("secret"), b"outside the objects").expect("a file");
    let store = store_in(dir.path(), Arc::new(ManualClock::new(START)));
    for path in ["../secret", "x/../../secret", "./secret", "x/%2e%2e/secret"] {
        let query = format!(
            "expires=1800000010&signature={}",
            sign("GET", path, "1800000010")
        );
        let served = store
            .serve_presigned("GET", &format!("/blobs/{path}?{query}"), None)
            .await;
        assert!(
            matches!(served, Err(ServeError::Refused(PresignError::Malformed(_)))),
            "{path:?} got {served:?}"
        );
    }
}

#[tokio::test]
async fn a_key_sent_percent_encoded_names_the_same_blob() {
    let dir = TempDir::new().expect("a temp dir");
    let store = store_in(dir.path(), Arc::new(ManualClock::new(START)));
    store
        .put(&key("a/b-1.txt"), Bytes::from("same"), "text/plain")
        .await
        .expect("stored");
    let query = format!(
        "expires=1800000010&signature={}",
        sign("GET", "a/b-1.txt", "1800000010")
    );
    // As a client that fills `/blobs/{key}` from the OpenAPI document sends it.
    for spelled in ["a%2Fb-1.txt", "a%2fb-1.txt", "%61/b%2D1.txt"] {
        let served = store
            .serve_presigned("GET", &format!("/blobs/{spelled}?{query}"), None)
            .await;
        assert!(
            matches!(served, Ok(PresignedResponse::Download { .. })),
            "{spelled:?} got {served:?}"
        );
        // The check the API makes before an upload reads the key the same way.
        let verified = store.verify_url("GET", &format!("/blobs/{spelled}?{query}"));
        assert_eq!(
            verified.map(|key| key.as_str().to_owned()),
            Ok("a/b-1.txt".to_owned()),
            "{spelled:?}"
        );
    }
    for bad in ["a%2", "a%zz/b", "a%FF"] {
        let served = store
            .serve_presigned("GET", &format!("/blobs/{bad}?{query}"), None)
            .await;
        assert!(
            matches!(served, Err(ServeError::Refused(PresignError::Malformed(_)))),
            "{bad:?} got {served:?}"
        );
    }
}

#[tokio::test]
async fn a_url_outside_blobs_or_with_a_strange_query_is_malformed() {
    let dir = TempDir::new().expect("a temp dir");
    let store = store_in(dir.path(), Arc::new(ManualClock::new(START)));
    let signature = sign("GET", "k", "1800000010");
    for path_and_query in [
        "/blobs/k".to_owned(),
        format!("/objects/k?expires=1800000010&signature={signature}"),
        format!("/blobs/k?signature={signature}"),
        "/blobs/k?expires=1800000010".to_owned(),
        format!("/blobs/k?expires=1800000010&expires=1800000010&signature={signature}"),
        format!("/blobs/k?expires=1800000010&signature={signature}&acl=public"),
    ] {
        let served = store.serve_presigned("GET", &path_and_query, None).await;
        assert!(
            matches!(served, Err(ServeError::Refused(PresignError::Malformed(_)))),
            "{path_and_query:?} got {served:?}"
        );
    }
}

#[tokio::test]
async fn a_presigned_put_stores_the_body_as_octet_stream() {
    let dir = TempDir::new().expect("a temp dir");
    let store = store_in(dir.path(), Arc::new(ManualClock::new(START)));
    let url = store
        .presign_put(&key("up/load"), Duration::from_secs(10), None)
        .await
        .expect("a url");
    let path_and_query = url.url.strip_prefix(BASE_URL).expect("the base url");
    let served = store
        .serve_presigned("PUT", path_and_query, Some(one_chunk(Bytes::from("hi"))))
        .await;
    assert!(
        matches!(served, Ok(PresignedResponse::Uploaded(_))),
        "{served:?}"
    );
    let head = store.head(&key("up/load")).await.expect("the blob");
    assert_eq!(head.size, 2);
    assert_eq!(
        head.content_type.as_deref(),
        Some("application/octet-stream")
    );
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("a directory")
        .map(|entry| {
            entry
                .expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_failed_stream_leaves_no_temp_file_behind() {
    let dir = TempDir::new().expect("a temp dir");
    let store = store_in(dir.path(), Arc::new(SystemClock));
    let parts: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from(vec![7u8; 200_000])),
        Err(std::io::Error::other("the client went away")),
    ];
    let result = store
        .put_stream(
            &key("half/written"),
            Box::pin(futures::stream::iter(parts)),
            "application/gzip",
        )
        .await;
    assert!(matches!(result, Err(BlobError::Body(_))), "{result:?}");
    assert_eq!(entries(&dir.path().join("tmp")), Vec::<String>::new());
    assert!(!dir.path().join("objects/half/written").exists());
    assert!(!dir.path().join("meta/half/written").exists());
}

#[tokio::test]
async fn a_successful_put_leaves_no_temp_file_behind() {
    let dir = TempDir::new().expect("a temp dir");
    let store = store_in(dir.path(), Arc::new(SystemClock));
    store
        .put(&key("done"), Bytes::from("x"), "text/plain")
        .await
        .expect("stored");
    store.ping().await.expect("healthy");
    assert_eq!(entries(&dir.path().join("tmp")), Vec::<String>::new());
}

#[tokio::test]
async fn deleting_a_nested_blob_frees_its_prefix_for_a_blob() {
    let dir = TempDir::new().expect("a temp dir");
    let store = store_in(dir.path(), Arc::new(SystemClock));
    store
        .put(&key("a/b/c"), Bytes::from("nested"), "text/plain")
        .await
        .expect("stored");
    assert!(matches!(
        store.head(&key("a/b")).await,
        Err(BlobError::NotFound(_))
    ));
    store.delete(&key("a/b")).await.expect("absent is fine");
    store.delete(&key("a/b/c")).await.expect("deleted");
    store
        .put(&key("a/b"), Bytes::from("flat"), "text/plain")
        .await
        .expect("the prefix is free again");
    assert_eq!(store.head(&key("a/b")).await.expect("stored").size, 4);
}

#[test]
fn an_empty_signing_key_is_refused() {
    let dir = TempDir::new().expect("a temp dir");
    let store = FsBlobStore::new(
        dir.path().to_path_buf(),
        BASE_URL.to_owned(),
        Vec::new(),
        Arc::new(SystemClock),
    );
    assert!(matches!(store, Err(BlobError::Unexpected(_))));
}

#[tokio::test]
async fn a_deleted_scratch_directory_is_recreated_by_the_next_upload_and_probe() {
    let dir = TempDir::new().expect("a temp dir");
    let store = store_in(dir.path(), Arc::new(SystemClock));
    std::fs::remove_dir_all(dir.path().join("tmp")).expect("tmp removed");

    store
        .put(&key("after-cleanup"), Bytes::from("x"), "text/plain")
        .await
        .expect("stored although tmp/ was gone");
    std::fs::remove_dir_all(dir.path().join("tmp")).expect("tmp removed again");
    store.ping().await.expect("ready although tmp/ was gone");

    let (_, mut body) = store.get(&key("after-cleanup")).await.expect("readable");
    assert_eq!(body.next().await.expect("a chunk").expect("bytes"), "x");
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(Sha256::digest(data))
}

#[tokio::test]
async fn every_write_records_the_sha256_of_the_bytes_it_wrote() {
    let dir = TempDir::new().expect("a temp dir");
    let store = store_in(dir.path(), Arc::new(ManualClock::new(START)));
    let put = store
        .put(&key("a"), Bytes::from_static(b"alpha"), "text/plain")
        .await
        .expect("a put");
    assert_eq!(put.sha256, Some(sha256_hex(b"alpha")));
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        vec![Ok(Bytes::from_static(b"be")), Ok(Bytes::from_static(b"ta"))];
    store
        .put_stream(
            &key("b"),
            Box::pin(futures::stream::iter(chunks)),
            "text/plain",
        )
        .await
        .expect("a streamed put");
    let url = store
        .presign_put(&key("c"), Duration::from_secs(10), None)
        .await
        .expect("a url");
    let path_and_query = url.url.strip_prefix(BASE_URL).expect("the base url");
    store
        .serve_presigned("PUT", path_and_query, Some(one_chunk(Bytes::from("gamma"))))
        .await
        .expect("a presigned put");
    for (name, bytes) in [("a", "alpha"), ("b", "beta"), ("c", "gamma")] {
        let head = store.head(&key(name)).await.expect("the blob");
        assert_eq!(head.sha256, Some(sha256_hex(bytes.as_bytes())), "{name}");
        let (got, _) = store.get(&key(name)).await.expect("the blob");
        assert_eq!(got.sha256, head.sha256, "{name}");
    }
    // A replacing put records the new bytes' hash.
    store
        .put(&key("a"), Bytes::from_static(b"ALPHA"), "text/plain")
        .await
        .expect("a put");
    assert_eq!(
        store.head(&key("a")).await.expect("the blob").sha256,
        Some(sha256_hex(b"ALPHA"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_racing_presigned_puts_to_one_key_exactly_one_is_stored() {
    let dir = TempDir::new().expect("a temp dir");
    let store = Arc::new(store_in(dir.path(), Arc::new(ManualClock::new(START))));
    let url = store
        .presign_put(&key("race/plan.json"), Duration::from_secs(10), None)
        .await
        .expect("a url");
    let path_and_query = url
        .url
        .strip_prefix(BASE_URL)
        .expect("the base url")
        .to_owned();
    let uploads: Vec<_> = (0..8u8)
        .map(|i| {
            let (store, path_and_query) = (store.clone(), path_and_query.clone());
            tokio::spawn(async move {
                let body = Bytes::from(vec![b'0' + i; 4096]);
                let served = store
                    .serve_presigned("PUT", &path_and_query, Some(one_chunk(body.clone())))
                    .await;
                (body, served)
            })
        })
        .collect();
    let mut stored = Vec::new();
    for upload in uploads {
        match upload.await.expect("the upload task") {
            (body, Ok(PresignedResponse::Uploaded(_))) => stored.push(body),
            (_, Err(ServeError::Blob(BlobError::AlreadyExists(k)))) => {
                assert_eq!(k, key("race/plan.json"));
            }
            (_, other) => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(stored.len(), 1, "exactly one upload is stored");
    let (meta, mut body) = store.get(&key("race/plan.json")).await.expect("the blob");
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        bytes.extend_from_slice(&chunk.expect("a chunk"));
    }
    assert_eq!(bytes, stored[0]);
    assert_eq!(meta.sha256, Some(sha256_hex(&stored[0])));
    assert!(
        entries(&dir.path().join("tmp")).is_empty(),
        "the refused uploads left no temp file"
    );
}
