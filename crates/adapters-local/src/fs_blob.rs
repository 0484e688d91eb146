//! The blob store on the local file system, for `tlao dev` and tests.
//!
//! Owns everything under its root:
//! - `objects/<key>`: the bytes of each blob, one file per key;
//! - the blob's metadata — its content type and the SHA-256 of its bytes, computed while
//!   they were written — in an extended attribute of its file (`user.tlao.meta`), so a
//!   blob and its metadata are one file, synced once and renamed into place together;
//! - `meta/<key>`: the same metadata as a JSON sidecar, for blobs stored where the file
//!   system keeps no user attributes, and for blobs stored before the attribute. It
//!   mirrors `objects/` path for path (no suffix), so two keys clash in one tree exactly
//!   when they clash in the other. Readers take the attribute first, then the sidecar;
//! - `tmp/`: uploads in progress. A blob is written there, fsynced, then renamed into
//!   place, so readers see the old blob or the new one, never a part.
//!
//! A presigned PUT only creates: its blob is linked into place with no-replace
//! semantics (`persist_noclobber`), so of two uploads to one key exactly one is stored
//! and the other is refused with `AlreadyExists`, and a stored blob is never rewritten
//! through a URL.
//!
//! It also owns the presigned URLs the API serves at `{base_url}/blobs/{key}`: an
//! HMAC-SHA256 over method, key and expiry, checked by [`FsBlobStore::verify`] and
//! served by [`FsBlobStore::serve_presigned`], the one code path for the API handler and
//! the contract suite.

use std::borrow::Cow;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::anyhow;
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;
use tlao_domain::Timestamp;
use tlao_ports::{
    BlobError, BlobKey, BlobMeta, BlobStore, ByteStream, Clock, FaultyStore, PresignError,
    PresignedGateway, PresignedResponse, PresignedUrl, ServeError, StorageFault,
};
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

type HmacSha256 = Hmac<Sha256>;

/// The size of the chunks a blob is read in.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// The content type of a blob uploaded through a presigned PUT: the URL does not sign
/// one, so the uploader cannot choose it.
const PRESIGNED_PUT_CONTENT_TYPE: &str = "application/octet-stream";

/// A SHA-256 signature in hex.
const SIGNATURE_HEX_LEN: usize = 64;

/// Blobs as files under a root directory, with HMAC-signed presigned URLs.
pub struct FsBlobStore {
    root: PathBuf,
    objects: PathBuf,
    meta: PathBuf,
    tmp: PathBuf,
    base_url: String,
    /// Keyed once; cloned for every signature.
    mac: HmacSha256,
    clock: Arc<dyn Clock>,
    /// Serialises the renames of a put, the removals of a delete and the open+stat+sidecar
    /// read of a get or head, so a reader in this process never pairs a blob with the
    /// content type of another version of it.
    commit: Arc<Mutex<()>>,
    /// Whether writes try the extended attribute before a sidecar: whether the file
    /// system under `tmp/` took one when the store was made.
    xattrs: bool,
}

/// The extended attribute holding a blob's metadata ([`Sidecar::to_attr`]).
const META_ATTR: &str = "user.tlao.meta";
/// The attribute's format version (its first byte).
const META_ATTR_V1: u8 = 1;
/// The largest attribute written (a longer content type goes to a sidecar); readers
/// read up to this much.
const MAX_META_ATTR: usize = 256;

/// The methods URLs are signed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Put,
}

impl Method {
    fn parse(method: &str) -> Result<Method, PresignError> {
        match method {
            "GET" => Ok(Method::Get),
            "PUT" => Ok(Method::Put),
            other => Err(PresignError::UnsupportedMethod(other.to_owned())),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
        }
    }
}

/// The sidecar of a blob.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Sidecar {
    content_type: Option<String>,
    /// The hex SHA-256 of the blob's bytes, computed while writing them (absent in the
    /// sidecars of blobs stored before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
}

impl Sidecar {
    /// The extended attribute's value, compact enough to stay inside an ext4 inode: the
    /// version byte, a byte saying whether a SHA-256 follows, its 32 bytes, then the
    /// content type (none when empty).
    fn to_attr(&self) -> Vec<u8> {
        let sha = self.sha256.as_deref().and_then(|hex| hex::decode(hex).ok());
        let mut value = vec![META_ATTR_V1, u8::from(sha.is_some())];
        value.extend(sha.unwrap_or_default());
        value.extend(self.content_type.as_deref().unwrap_or_default().as_bytes());
        value
    }

    /// The metadata an attribute's value holds; `None` when it is not one [`to_attr`]
    /// wrote.
    ///
    /// [`to_attr`]: Sidecar::to_attr
    fn from_attr(value: &[u8]) -> Option<Sidecar> {
        let (&[version, has_sha], rest) = value.split_first_chunk::<2>()?;
        if version != META_ATTR_V1 {
            return None;
        }
        let (sha256, content_type) = match has_sha {
            0 => (None, rest),
            1 => {
                let (sha, rest) = rest.split_first_chunk::<32>()?;
                (Some(hex::encode(sha)), rest)
            }
            _ => return None,
        };
        let content_type = std::str::from_utf8(content_type).ok()?;
        Some(Sidecar {
            content_type: Some(content_type.to_owned()).filter(|t| !t.is_empty()),
            sha256,
        })
    }
}

/// Whether a write may replace a blob already at its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteMode {
    /// `put` and `put_stream`: the new blob replaces the old.
    Replace,
    /// A presigned PUT: refused with `AlreadyExists` when a blob is there.
    CreateOnly,
}

impl fmt::Debug for FsBlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The signing key stays out of logs.
        f.debug_struct("FsBlobStore")
            .field("root", &self.root)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl FsBlobStore {
    /// A store keeping its blobs under `root` (created if absent) and signing URLs that
    /// start with `base_url` (the API's public address) with `signing_key`.
    ///
    /// Errors: `Unexpected` when `signing_key` is empty (anyone could forge URLs) or
    /// the directories cannot be created.
    pub fn new(
        root: PathBuf,
        base_url: String,
        signing_key: Vec<u8>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, BlobError> {
        if signing_key.is_empty() {
            return Err(BlobError::Unexpected(anyhow!(
                "the presigning key is empty: anyone could forge presigned urls"
            )));
        }
        let mac = HmacSha256::new_from_slice(&signing_key)
            .map_err(|e| BlobError::Unexpected(anyhow!("the presigning key is unusable: {e}")))?;
        let mut store = FsBlobStore {
            objects: root.join("objects"),
            meta: root.join("meta"),
            tmp: root.join("tmp"),
            root,
            base_url: base_url.trim_end_matches('/').to_owned(),
            mac,
            clock,
            commit: Arc::new(Mutex::new(())),
            xattrs: false,
        };
        for dir in [&store.objects, &store.meta, &store.tmp] {
            fs::create_dir_all(dir)
                .map_err(|e| io_error(e, format!("creating {}", dir.display())))?;
        }
        store.xattrs = keeps_user_attrs(&store.tmp);
        if !store.xattrs {
            tracing::info!(
                root = %store.root.display(),
                "the blob store's file system keeps no user extended attributes: each blob's metadata goes to a sidecar file"
            );
        }
        Ok(store)
    }

    /// Checks a presigned request: `method` is the request's, `key`, `expires` and
    /// `signature` are the parts of its URL. Returns the key it may act on.
    ///
    /// The signature is compared in constant time. A URL is expired from the second
    /// in `expires` on (`now >= expires`).
    ///
    /// Errors: `UnsupportedMethod`, `Malformed` (a bad key, a non-numeric expiry, a
    /// signature that is not hex), `BadSignature`, `Expired`, checked in that order so
    /// an altered URL is never told more than that its signature is wrong.
    pub fn verify(
        &self,
        method: &str,
        key: &str,
        expires: &str,
        signature: &str,
    ) -> Result<BlobKey, PresignError> {
        self.authorize(method, key, expires, signature)
            .map(|(_, key)| key)
    }

    /// Serves a request on a presigned URL, as the API's `/blobs/{key}` handler does:
    /// `path_and_query` is the URL without `base_url` (`/blobs/{key}?expires=..&signature=..`).
    /// A GET returns the blob; a PUT stores `body` (nothing means empty) as
    /// `application/octet-stream`, only when no blob is at the key yet.
    ///
    /// Errors: `Refused` as [`verify`](Self::verify) says, plus `Malformed` when the path
    /// is not under `/blobs/` or the query is not exactly `expires` and `signature`;
    /// `Blob` with the store's error (`NotFound`, `AlreadyExists`, `Body`, ...) once the
    /// URL is accepted.
    pub async fn serve_presigned(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<ByteStream>,
    ) -> Result<PresignedResponse, ServeError> {
        let (key, expires, signature) = parse_presigned_path(path_and_query)?;
        let (method, key) = self.authorize(method, &key, expires, signature)?;
        match method {
            Method::Get => {
                let (meta, body) = self.get(&key).await?;
                Ok(PresignedResponse::Download { meta, body })
            }
            Method::Put => {
                let body = body.unwrap_or_else(|| Box::pin(futures::stream::empty()));
                let meta = self
                    .write(
                        &key,
                        body,
                        PRESIGNED_PUT_CONTENT_TYPE,
                        WriteMode::CreateOnly,
                    )
                    .await?;
                Ok(PresignedResponse::Uploaded(meta))
            }
        }
    }

    fn authorize(
        &self,
        method: &str,
        key: &str,
        expires: &str,
        signature: &str,
    ) -> Result<(Method, BlobKey), PresignError> {
        let method = Method::parse(method)?;
        let key = BlobKey::parse(key).map_err(|e| PresignError::Malformed(e.to_string()))?;
        let expires_secs = parse_expires(expires)?;
        let signature = parse_signature(signature)?;
        // The MAC covers the expiry exactly as received, so `0123` is not `123`.
        self.mac_of(method, key.as_str(), expires)
            .verify_slice(&signature)
            .map_err(|_| PresignError::BadSignature)?;
        let expired_at = Timestamp::from_unix_millis(expires_secs.saturating_mul(1000));
        if self.clock.now() >= expired_at {
            return Err(PresignError::Expired { expired_at });
        }
        Ok((method, key))
    }

    fn mac_of(&self, method: Method, key: &str, expires: &str) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(format!("{}\n{key}\n{expires}", method.as_str()).as_bytes());
        mac
    }

    fn presign(&self, method: Method, key: &BlobKey, ttl: Duration) -> PresignedUrl {
        let ttl_millis = i64::try_from(ttl.as_nanos().div_ceil(1_000_000)).unwrap_or(i64::MAX);
        let expires_millis = self.clock.now().unix_millis().saturating_add(ttl_millis);
        // Whole seconds, rounded up: a URL never dies before its ttl has passed.
        let expires_secs = expires_millis
            .div_euclid(1000)
            .saturating_add(i64::from(expires_millis.rem_euclid(1000) != 0));
        let expires = expires_secs.to_string();
        let signature = self
            .mac_of(method, key.as_str(), &expires)
            .finalize()
            .into_bytes();
        PresignedUrl {
            url: format!(
                "{}/blobs/{key}?expires={expires}&signature={}",
                self.base_url,
                hex::encode(signature)
            ),
            method: method.as_str().to_owned(),
            expires_at: Timestamp::from_unix_millis(expires_secs.saturating_mul(1000)),
            headers: Default::default(),
        }
    }

    /// Streams `body` to a temp file while hashing it, then moves it into place: over
    /// any blob at `key` (`Replace`), or only when there is none (`CreateOnly`, atomic
    /// against every other writer of the directory: a no-replace link).
    async fn write(
        &self,
        key: &BlobKey,
        mut body: ByteStream,
        content_type: &str,
        mode: WriteMode,
    ) -> Result<BlobMeta, BlobError> {
        let tmp = self.tmp.clone();
        // Dropped on every early return, which removes the temp file.
        let upload = blocking(move || {
            scratch_file(&tmp).map_err(|e| io_error(e, "creating an upload temp file"))
        })
        .await?;
        let handle = upload
            .as_file()
            .try_clone()
            .map_err(|e| io_error(e, "opening an upload temp file"))?;
        let mut file = tokio::fs::File::from_std(handle);
        let mut size = 0u64;
        let mut hasher = Sha256::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(BlobError::Body)?;
            file.write_all(&chunk)
                .await
                .map_err(|e| io_error(e, format!("writing blob {key}")))?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
        }
        file.flush()
            .await
            .map_err(|e| io_error(e, format!("writing blob {key}")))?;
        drop(file);

        let content_type = Some(content_type.to_owned()).filter(|t| !t.is_empty());
        let sha256 = hex::encode(hasher.finalize());
        let sidecar = Sidecar {
            content_type: content_type.clone(),
            sha256: Some(sha256.clone()),
        };
        let (tmp, commit, xattrs) = (self.tmp.clone(), self.commit.clone(), self.xattrs);
        let (object, meta, owned_key) = (self.object_path(key), self.meta_path(key), key.clone());
        blocking(move || {
            // The metadata on the file itself where the file system keeps user
            // attributes: synced with the bytes, renamed into place with them.
            let in_attr = xattrs && set_meta_attr(upload.as_file(), &sidecar, &owned_key)?;
            upload
                .as_file()
                .sync_all()
                .map_err(|e| io_error(e, format!("syncing blob {owned_key}")))?;
            let sidecar = match in_attr {
                true => None,
                false => Some(write_sidecar(&tmp, &sidecar, &owned_key)?),
            };
            let _commit = lock(&commit);
            for path in [sidecar.as_ref().map(|_| &meta), Some(&object)]
                .into_iter()
                .flatten()
            {
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent).map_err(|e| commit_error(e, &owned_key))?;
                }
            }
            match mode {
                WriteMode::Replace => {
                    // The sidecar first: a blob is never visible before its content type.
                    if let Some(sidecar) = sidecar {
                        sidecar
                            .persist(&meta)
                            .map_err(|e| commit_error(e.error, &owned_key))?;
                    }
                    upload
                        .persist(&object)
                        .map_err(|e| commit_error(e.error, &owned_key))?;
                    if in_attr {
                        // The replaced blob's sidecar, if it had one, is never read again.
                        let _ = remove_if_present(&meta, &owned_key);
                    }
                }
                WriteMode::CreateOnly => {
                    // The blob first, linked without replacing: the one step that decides
                    // which of two uploads is stored. A sidecar follows under the lock
                    // every reader of this store takes; after a crash between the two, the
                    // blob reads with no content type and no hash (reading tells the hash).
                    if let Err(e) = upload.persist_noclobber(&object) {
                        return Err(match e.error.kind() {
                            io::ErrorKind::AlreadyExists
                                if fs::metadata(&object).is_ok_and(|stat| stat.is_file()) =>
                            {
                                BlobError::AlreadyExists(owned_key)
                            }
                            _ => commit_error(e.error, &owned_key),
                        });
                    }
                    if let Some(sidecar) = sidecar {
                        sidecar
                            .persist(&meta)
                            .map_err(|e| commit_error(e.error, &owned_key))?;
                    }
                }
            }
            Ok(())
        })
        .await?;
        Ok(BlobMeta {
            key: key.clone(),
            size,
            content_type,
            sha256: Some(sha256),
        })
    }

    /// The blob at `key`, opened, and what it is: its size and its metadata, read from
    /// the same open file under the commit lock, so they belong to one version. With
    /// its whole body too when it is at most `whole_up_to` bytes: a small blob (a
    /// TaskSpec, a plan) costs one trip to the blocking pool instead of one per chunk
    /// read and one for the end of the file.
    async fn open(
        &self,
        key: &BlobKey,
        whole_up_to: Option<u64>,
    ) -> Result<(fs::File, BlobMeta, Option<Bytes>), BlobError> {
        let (object, meta, commit, owned_key) = (
            self.object_path(key),
            self.meta_path(key),
            self.commit.clone(),
            key.clone(),
        );
        blocking(move || {
            let (mut file, meta) = open_at(&object, &meta, &commit, owned_key)?;
            if whole_up_to.is_none_or(|up_to| meta.size > up_to) {
                return Ok((file, meta, None));
            }
            let mut body = Vec::with_capacity(usize::try_from(meta.size).unwrap_or(0));
            io::Read::read_to_end(&mut file, &mut body)
                .map_err(|e| io_error(e, format!("reading blob {}", meta.key)))?;
            Ok((file, meta, Some(Bytes::from(body))))
        })
        .await
    }

    fn object_path(&self, key: &BlobKey) -> PathBuf {
        self.objects.join(key.as_str())
    }

    fn meta_path(&self, key: &BlobKey) -> PathBuf {
        self.meta.join(key.as_str())
    }
}

/// Opens the blob stored at `object` with its sidecar at `meta`, under the commit lock
/// (so a concurrent put or delete is not seen half done).
fn open_at(
    object: &Path,
    meta: &Path,
    commit: &Mutex<()>,
    owned_key: BlobKey,
) -> Result<(fs::File, BlobMeta), BlobError> {
    let _commit = lock(commit);
    let file = fs::File::open(object).map_err(|e| absent_or(e, &owned_key))?;
    let stat = file
        .metadata()
        .map_err(|e| io_error(e, format!("reading blob {owned_key}")))?;
    if !stat.is_file() {
        return Err(BlobError::NotFound(owned_key));
    }
    let sidecar = read_meta(&file, meta, &owned_key)?;
    Ok((
        file,
        BlobMeta {
            key: owned_key,
            size: stat.len(),
            content_type: sidecar.content_type,
            sha256: sidecar.sha256,
        },
    ))
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put(
        &self,
        key: &BlobKey,
        body: Bytes,
        content_type: &str,
    ) -> Result<BlobMeta, BlobError> {
        let body: ByteStream = Box::pin(futures::stream::once(async move { Ok(body) }));
        self.put_stream(key, body, content_type).await
    }

    async fn put_stream(
        &self,
        key: &BlobKey,
        body: ByteStream,
        content_type: &str,
    ) -> Result<BlobMeta, BlobError> {
        self.write(key, body, content_type, WriteMode::Replace)
            .await
    }

    async fn get(&self, key: &BlobKey) -> Result<(BlobMeta, ByteStream), BlobError> {
        let (file, meta, whole) = self.open(key, Some(READ_CHUNK_BYTES as u64)).await?;
        if let Some(body) = whole {
            return Ok((meta, Box::pin(futures::stream::once(async { Ok(body) }))));
        }
        // The open handle keeps this version readable even if a put replaces it now.
        let stream = ReaderStream::with_capacity(tokio::fs::File::from_std(file), READ_CHUNK_BYTES);
        Ok((meta, Box::pin(stream)))
    }

    async fn head(&self, key: &BlobKey) -> Result<BlobMeta, BlobError> {
        Ok(self.open(key, None).await?.1)
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        let (objects, metas) = (self.objects.clone(), self.meta.clone());
        let (object, meta, commit, owned_key) = (
            self.object_path(key),
            self.meta_path(key),
            self.commit.clone(),
            key.clone(),
        );
        blocking(move || {
            let _commit = lock(&commit);
            // The blob first: once it is gone, a leftover sidecar is never read.
            remove_if_present(&object, &owned_key)?;
            remove_if_present(&meta, &owned_key)?;
            // Empty directories would block a later blob whose key is their path.
            prune_empty_dirs(&object, &objects);
            prune_empty_dirs(&meta, &metas);
            Ok(())
        })
        .await
    }

    async fn presign_get(&self, key: &BlobKey, ttl: Duration) -> Result<PresignedUrl, BlobError> {
        Ok(self.presign(Method::Get, key, ttl))
    }

    /// The URL is create-only ([`FsBlobStore::serve_presigned`] links without
    /// replacing); `sha256` is not checked on upload here, the hash of what was stored
    /// is in [`BlobMeta::sha256`] for whoever settles the upload to compare.
    async fn presign_put(
        &self,
        key: &BlobKey,
        ttl: Duration,
        _sha256: Option<&str>,
    ) -> Result<PresignedUrl, BlobError> {
        Ok(self.presign(Method::Put, key, ttl))
    }

    async fn ping(&self) -> Result<(), BlobError> {
        let (root, tmp) = (self.root.clone(), self.tmp.clone());
        blocking(move || {
            let stat = fs::metadata(&root)
                .map_err(|e| io_error(e, format!("reading the blob root {}", root.display())))?;
            if !stat.is_dir() {
                return Err(BlobError::Unexpected(anyhow!(
                    "the blob root {} is not a directory",
                    root.display()
                )));
            }
            // Writing (not only creating) a file and syncing it is what fails on a full
            // or read-only disk; the probe is removed when dropped.
            let probe = |tmp: &Path| -> io::Result<()> {
                let mut file = scratch_file(tmp)?;
                file.write_all(b"probe")?;
                file.as_file().sync_all()
            };
            probe(&tmp).map_err(|e| io_error(e, "writing a probe file in the scratch directory"))
        })
        .await
    }
}

/// The key of a presigned path with its percent-escapes decoded. A key's characters
/// never need escaping, but a client that builds the URL from the OpenAPI document's
/// `/blobs/{key}` sends the key as one path parameter, its `/` as `%2F`; both spellings
/// name the same key (and the same signature). A `%` without two hex digits after it, or
/// escapes that are not UTF-8, are malformed; what the decoded key may contain is
/// [`BlobKey::parse`]'s to say.
fn percent_decoded(key: &str) -> Result<Cow<'_, str>, PresignError> {
    if !key.contains('%') {
        return Ok(Cow::Borrowed(key));
    }
    let malformed = || PresignError::Malformed(format!("the key {key:?} has a bad %-escape"));
    let mut bytes = Vec::with_capacity(key.len());
    let mut rest = key.bytes();
    while let Some(byte) = rest.next() {
        if byte != b'%' {
            bytes.push(byte);
            continue;
        }
        let mut digit = || {
            rest.next()
                .and_then(|b| char::from(b).to_digit(16))
                .ok_or_else(malformed)
        };
        let (high, low) = (digit()?, digit()?);
        // Two hex digits are at most 0xFF.
        bytes.push(u8::try_from(high * 16 + low).map_err(|_| malformed())?);
    }
    String::from_utf8(bytes)
        .map(Cow::Owned)
        .map_err(|_| malformed())
}

/// Splits `/blobs/{key}?expires=..&signature=..` into key (percent-decoded), expiry and
/// signature.
fn parse_presigned_path(path_and_query: &str) -> Result<(Cow<'_, str>, &str, &str), PresignError> {
    let malformed = |detail: String| PresignError::Malformed(detail);
    let (path, query) = path_and_query.split_once('?').ok_or_else(|| {
        malformed("the url has no query: expires and signature are required".to_owned())
    })?;
    let key = path
        .strip_prefix("/blobs/")
        .ok_or_else(|| malformed(format!("the path {path:?} is not under /blobs/")))?;
    let (mut expires, mut signature) = (None, None);
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match name {
            "expires" => &mut expires,
            "signature" => &mut signature,
            _ => return Err(malformed(format!("unknown query parameter {name:?}"))),
        };
        if slot.replace(value).is_some() {
            return Err(malformed(format!("the {name} parameter is repeated")));
        }
    }
    let expires =
        expires.ok_or_else(|| malformed("the expires parameter is missing".to_owned()))?;
    let signature =
        signature.ok_or_else(|| malformed("the signature parameter is missing".to_owned()))?;
    Ok((percent_decoded(key)?, expires, signature))
}

/// Unix seconds, as decimal digits only.
fn parse_expires(expires: &str) -> Result<i64, PresignError> {
    let digits_only = !expires.is_empty() && expires.bytes().all(|b| b.is_ascii_digit());
    digits_only
        .then(|| expires.parse::<i64>().ok())
        .flatten()
        .ok_or_else(|| {
            PresignError::Malformed(format!(
                "expires {expires:?} is not a unix time in whole seconds"
            ))
        })
}

fn parse_signature(signature: &str) -> Result<Vec<u8>, PresignError> {
    let malformed = || {
        PresignError::Malformed(format!(
            "signature {signature:?} is not {SIGNATURE_HEX_LEN} hex digits"
        ))
    };
    if signature.len() != SIGNATURE_HEX_LEN {
        return Err(malformed());
    }
    hex::decode(signature).map_err(|_| malformed())
}

/// Whether a file in `dir` takes a user extended attribute (a scratch file, removed).
fn keeps_user_attrs(dir: &Path) -> bool {
    scratch_file(dir).is_ok_and(|probe| {
        rustix::fs::fsetxattr(
            probe.as_file(),
            META_ATTR,
            &Sidecar::default().to_attr(),
            rustix::fs::XattrFlags::empty(),
        )
        .is_ok()
    })
}

/// Sets the metadata attribute on `file`: `Ok(false)` when its file system refuses it
/// (the caller writes a sidecar instead).
fn set_meta_attr(file: &fs::File, sidecar: &Sidecar, key: &BlobKey) -> Result<bool, BlobError> {
    let value = sidecar.to_attr();
    if value.len() > MAX_META_ATTR {
        return Ok(false);
    }
    match rustix::fs::fsetxattr(file, META_ATTR, &value, rustix::fs::XattrFlags::empty()) {
        Ok(()) => Ok(true),
        Err(errno) if attrs_unsupported(errno) => Ok(false),
        Err(errno) => Err(io_error(
            errno.into(),
            format!("writing the metadata of blob {key}"),
        )),
    }
}

/// A blob's metadata: its file's attribute, else its sidecar at `sidecar` (see
/// [`read_sidecar`]).
fn read_meta(file: &fs::File, sidecar: &Path, key: &BlobKey) -> Result<Sidecar, BlobError> {
    let mut value = [0u8; MAX_META_ATTR];
    match rustix::fs::fgetxattr(file, META_ATTR, &mut value[..]) {
        Ok(len) => Sidecar::from_attr(&value[..len]).ok_or_else(|| {
            BlobError::Unexpected(anyhow!("the metadata attribute of blob {key} is corrupt"))
        }),
        Err(errno) if errno == NO_SUCH_ATTR || attrs_unsupported(errno) => {
            read_sidecar(sidecar, key)
        }
        Err(errno) => Err(io_error(
            errno.into(),
            format!("reading the metadata of blob {key}"),
        )),
    }
}

/// A file without the attribute.
#[cfg(not(any(target_os = "macos", target_os = "ios")))]
const NO_SUCH_ATTR: rustix::io::Errno = rustix::io::Errno::NODATA;
#[cfg(any(target_os = "macos", target_os = "ios"))]
const NO_SUCH_ATTR: rustix::io::Errno = rustix::io::Errno::NOATTR;

/// The file system keeps no user attributes here, or refuses this one: the sidecar
/// takes over (and a full disk or a refused write still shows when it is written).
fn attrs_unsupported(errno: rustix::io::Errno) -> bool {
    use rustix::io::Errno;
    [
        Errno::NOTSUP,
        Errno::OPNOTSUPP,
        Errno::NOSPC,
        Errno::TOOBIG,
        Errno::RANGE,
        Errno::PERM,
        Errno::ACCESS,
    ]
    .contains(&errno)
}

/// Writes a sidecar to a synced temp file, ready to be renamed into place.
fn write_sidecar(tmp: &Path, sidecar: &Sidecar, key: &BlobKey) -> Result<NamedTempFile, BlobError> {
    let failed = |e: io::Error| io_error(e, format!("writing the sidecar of blob {key}"));
    let mut file = scratch_file(tmp).map_err(failed)?;
    let json = serde_json::to_vec(sidecar)
        .map_err(|e| BlobError::Unexpected(anyhow!("encoding the sidecar of blob {key}: {e}")))?;
    file.write_all(&json).map_err(failed)?;
    file.as_file().sync_all().map_err(failed)?;
    Ok(file)
}

/// A blob's sidecar; an empty one if the sidecar is missing (a crash between the two
/// removals of a delete leaves only the sidecar; between the two steps of a create-only
/// write, only the blob).
fn read_sidecar(path: &Path, key: &BlobKey) -> Result<Sidecar, BlobError> {
    let json = match fs::read(path) {
        Ok(json) => json,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Sidecar::default()),
        Err(e) => return Err(io_error(e, format!("reading the sidecar of blob {key}"))),
    };
    serde_json::from_slice(&json)
        .map_err(|e| BlobError::Unexpected(anyhow!("the sidecar of blob {key} is corrupt: {e}")))
}

fn remove_if_present(path: &Path, key: &BlobKey) -> Result<(), BlobError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        // A directory at the path holds longer keys; the blob itself is absent.
        Err(e) if is_absent(&e) || e.kind() == io::ErrorKind::IsADirectory => Ok(()),
        Err(e) => Err(io_error(e, format!("deleting blob {key}"))),
    }
}

/// Removes the empty directories between `path` and `tree`. Best effort: a directory
/// that is not empty (or cannot be removed) ends the walk, and is harmless.
fn prune_empty_dirs(path: &Path, tree: &Path) {
    let mut dir = path.parent();
    while let Some(current) = dir {
        if current == tree || !current.starts_with(tree) || fs::remove_dir(current).is_err() {
            return;
        }
        dir = current.parent();
    }
}

/// A missing file, or a file where a directory of the key's path should be.
fn is_absent(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

fn absent_or(error: io::Error, key: &BlobKey) -> BlobError {
    if is_absent(&error) {
        BlobError::NotFound(key.clone())
    } else {
        io_error(error, format!("reading blob {key}"))
    }
}

/// A rename into place failed. On a file system a key cannot be both a blob and a
/// directory of longer keys (`a` and `a/b`), which S3 allows: name that case.
fn commit_error(error: io::Error, key: &BlobKey) -> BlobError {
    match error.kind() {
        io::ErrorKind::NotADirectory
        | io::ErrorKind::IsADirectory
        | io::ErrorKind::DirectoryNotEmpty
        | io::ErrorKind::AlreadyExists => BlobError::Unexpected(
            anyhow::Error::new(error).context(format!(
                "blob {key} cannot be stored: on a file system a key cannot also be a prefix directory of another key"
            )),
        ),
        _ => io_error(error, format!("storing blob {key}")),
    }
}

fn io_error(error: io::Error, doing: impl fmt::Display) -> BlobError {
    // A full, read-only or refusing disk: transient (it may be fixed), with the fault at
    // the root of the cause so the API can name it.
    if let Some(fault) = StorageFault::of_io(FaultyStore::Blobs, &error) {
        return BlobError::Transient(
            anyhow::Error::new(fault).context(format!("{doing}: {error}")),
        );
    }
    let transient = matches!(
        error.kind(),
        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    );
    let error = anyhow::Error::new(error).context(doing.to_string());
    if transient {
        BlobError::Transient(error)
    } else {
        BlobError::Unexpected(error)
    }
}

/// A temp file in the scratch directory `tmp`, recreating the directory when it went
/// missing (an operator's cleanup, a `tmp` cleaner), so one deletion does not fail every
/// later upload.
fn scratch_file(tmp: &Path) -> io::Result<NamedTempFile> {
    match NamedTempFile::new_in(tmp) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(tmp)?;
            NamedTempFile::new_in(tmp)
        }
        result => result,
    }
}

/// Runs file-system work off the async threads.
async fn blocking<T, F>(work: F) -> Result<T, BlobError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, BlobError> + Send + 'static,
{
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        BlobError::Unexpected(anyhow::Error::new(e).context("a file-system task died"))
    })?
}

/// The lock guards no data, only the order of file-system steps, so a panic while it
/// was held leaves nothing to distrust.
fn lock(commit: &Mutex<()>) -> MutexGuard<'_, ()> {
    commit.lock().unwrap_or_else(PoisonError::into_inner)
}

#[async_trait]
impl PresignedGateway for FsBlobStore {
    fn verify_url(&self, method: &str, path_and_query: &str) -> Result<BlobKey, PresignError> {
        let (key, expires, signature) = parse_presigned_path(path_and_query)?;
        self.verify(method, &key, expires, signature)
    }

    async fn serve(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<ByteStream>,
    ) -> Result<PresignedResponse, ServeError> {
        self.serve_presigned(method, path_and_query, body).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use futures::StreamExt;
    use tlao_ports::SystemClock;

    use super::*;

    fn store(root: &Path, xattrs: bool) -> FsBlobStore {
        let mut store = FsBlobStore::new(
            root.to_owned(),
            "http://127.0.0.1:1".into(),
            b"k".repeat(32),
            Arc::new(SystemClock),
        )
        .unwrap();
        store.xattrs &= xattrs;
        store
    }

    async fn read(store: &FsBlobStore, key: &BlobKey) -> (BlobMeta, Vec<u8>) {
        let (meta, mut body) = store.get(key).await.unwrap();
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next().await {
            bytes.extend_from_slice(&chunk.unwrap());
        }
        (meta, bytes)
    }

    #[test]
    fn the_metadata_attribute_round_trips_and_refuses_what_it_did_not_write() {
        let sha = hex::encode(Sha256::digest(b"bytes"));
        for sidecar in [
            Sidecar {
                content_type: Some("application/json".into()),
                sha256: Some(sha.clone()),
            },
            Sidecar {
                content_type: None,
                sha256: Some(sha.clone()),
            },
            Sidecar {
                content_type: Some("text/plain; charset=utf-8".into()),
                sha256: None,
            },
            Sidecar::default(),
        ] {
            let value = sidecar.to_attr();
            let back = Sidecar::from_attr(&value).unwrap();
            assert_eq!(
                (back.content_type, back.sha256),
                (sidecar.content_type, sidecar.sha256)
            );
        }
        // Small enough to stay inside an ext4 inode next to its name.
        let full = Sidecar {
            content_type: Some("application/json".into()),
            sha256: Some(sha),
        };
        assert!(full.to_attr().len() <= 64, "{}", full.to_attr().len());
        for corrupt in [
            &b""[..],
            &[1],
            &[2, 0],
            &[1, 2],
            &[1, 1, 0, 0],
            &[1, 0, 0xff],
        ] {
            assert!(Sidecar::from_attr(corrupt).is_none(), "{corrupt:?}");
        }
    }

    #[tokio::test]
    async fn a_blob_keeps_its_metadata_on_its_file_and_reads_a_sidecar_of_an_earlier_store() {
        let root = tempfile::tempdir().unwrap();
        let key = BlobKey::parse("workspaces/ws/runs/r/artifacts/a/plan.json").unwrap();
        let sha = hex::encode(Sha256::digest(b"first"));

        // Where the file system keeps no user attributes (as simulated here), and as every
        // store did before the attribute: a sidecar.
        let sidecars = store(root.path(), false);
        sidecars
            .put(&key, Bytes::from_static(b"first"), "application/json")
            .await
            .unwrap();
        let sidecar = sidecars.meta_path(&key);
        assert!(sidecar.is_file(), "a sidecar at {}", sidecar.display());

        // A store on the same root reads it: attribute first, then the sidecar.
        let attrs = store(root.path(), true);
        let (meta, bytes) = read(&attrs, &key).await;
        assert_eq!(bytes, b"first");
        assert_eq!(meta.content_type.as_deref(), Some("application/json"));
        assert_eq!(meta.sha256.as_deref(), Some(sha.as_str()));

        // Replaced where attributes are kept: one file, its metadata on it, no sidecar.
        let sha = hex::encode(Sha256::digest(b"second"));
        attrs
            .put(&key, Bytes::from_static(b"second"), "text/plain")
            .await
            .unwrap();
        let kept = keeps_user_attrs(root.path());
        if !kept {
            eprintln!(
                "{} keeps no user attributes: only the sidecar path ran",
                root.path().display()
            );
        }
        assert_eq!(
            sidecar.exists(),
            !kept,
            "a sidecar only where attributes are not kept"
        );
        for meta in [attrs.head(&key).await.unwrap(), read(&attrs, &key).await.0] {
            assert_eq!(meta.size, 6);
            assert_eq!(meta.content_type.as_deref(), Some("text/plain"));
            assert_eq!(meta.sha256.as_deref(), Some(sha.as_str()));
        }
        if kept {
            let mut value = [0u8; 256];
            let len =
                rustix::fs::getxattr(attrs.object_path(&key), META_ATTR, &mut value[..]).unwrap();
            assert_eq!(
                Sidecar::from_attr(&value[..len]).unwrap().sha256.as_deref(),
                Some(sha.as_str())
            );
        }

        // A content type too long for the attribute goes to a sidecar, and reads back.
        let long = format!("text/plain; note={}", "x".repeat(300));
        attrs
            .put(&key, Bytes::from_static(b"third"), &long)
            .await
            .unwrap();
        assert!(sidecar.is_file());
        assert_eq!(
            read(&attrs, &key).await.0.content_type.as_deref(),
            Some(long.as_str())
        );
        if kept {
            // The attribute of the blob it replaced went with it.
            assert!(
                rustix::fs::getxattr(attrs.object_path(&key), META_ATTR, &mut [0u8; 8][..])
                    .is_err()
            );
        }

        // Deleting removes the blob whichever way its metadata was kept.
        attrs.delete(&key).await.unwrap();
        assert!(matches!(
            attrs.head(&key).await,
            Err(BlobError::NotFound(_))
        ));
        assert!(!sidecar.exists());
    }

    #[test]
    fn a_write_to_a_full_device_is_a_transient_error_naming_the_fault() {
        // /dev/full answers every write with ENOSPC: a real full disk's error.
        let mut full = fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full exists on Linux");
        let error = full.write_all(b"x").and_then(|()| full.flush());
        let error = error.expect_err("a full device refuses writes");

        match io_error(error, "writing blob k") {
            BlobError::Transient(cause) => {
                let cause: Box<dyn std::error::Error> = cause.into();
                assert_eq!(
                    StorageFault::find(cause.as_ref()),
                    Some(StorageFault::Full(FaultyStore::Blobs))
                );
                assert!(cause.to_string().starts_with("writing blob k: "), "{cause}");
            }
            other => panic!("not transient: {other:?}"),
        }
    }
}
