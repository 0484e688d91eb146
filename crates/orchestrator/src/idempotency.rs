//! `Idempotency-Key` support for `POST /tasks` and `POST /runs`.
//!
//! The first request with a key stores, in the same transaction that creates the
//! resource, a record of the request's hash and the response. A retry with the same key
//! and body gets that response again and creates nothing; the same key with another body
//! is a conflict. Records expire after a day (DynamoDB TTL removes them; other engines
//! treat an expired record as absent).

use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tlao_domain::{Timestamp, UserId, keys};
use tlao_ports::{AttrValue, Condition, Item, WriteOp};

use crate::attrs::{self, EXPIRES_AT, REQUEST_HASH, RESPONSE, kind};
use crate::error::ServiceError;
use crate::store::Store;
use crate::users::hex_lower;

/// How long a key is remembered.
pub const RETENTION_SECONDS: i64 = 24 * 3600;

/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// An idempotency key with the hash of the request it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    key: String,
    request_hash: String,
}

impl Idempotency {
    /// Checks the key (1 to 255 visible ASCII characters) and hashes the request: the
    /// operation name and its canonical JSON body.
    pub fn new(key: &str, operation: &str, request: &impl Serialize) -> Result<Self, ServiceError> {
        let valid = !key.is_empty()
            && key.len() <= MAX_KEY_LEN
            && key.bytes().all(|b| b.is_ascii_graphic());
        if !valid {
            return Err(ServiceError::invalid(
                "Idempotency-Key",
                format!("must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
            ));
        }
        let body = serde_json::to_vec(request).map_err(|e| ServiceError::Internal(e.into()))?;
        let mut hasher = Sha256::new();
        hasher.update(operation.as_bytes());
        hasher.update([0]);
        hasher.update(&body);
        Ok(Idempotency {
            key: key.to_owned(),
            request_hash: hex_lower(&hasher.finalize()),
        })
    }

    /// The stored response of an earlier request with this key, if any and unexpired;
    /// `Conflict` when that request had another body.
    pub async fn replay<T: DeserializeOwned>(
        &self,
        store: &Store,
        user: &UserId,
        now: Timestamp,
    ) -> Result<Option<T>, ServiceError> {
        let Some(item) = store.get_item(&keys::idempotency(user, &self.key)).await? else {
            return Ok(None);
        };
        if item
            .n(EXPIRES_AT)
            .is_some_and(|at| at <= now.unix_millis() / 1000)
        {
            return Ok(None);
        }
        if item.s(REQUEST_HASH) != Some(self.request_hash.as_str()) {
            return Err(ServiceError::Conflict(format!(
                "Idempotency-Key {:?} was already used with a different request; use a new key",
                self.key
            )));
        }
        let response = item.s(RESPONSE).ok_or_else(|| {
            ServiceError::Internal(anyhow::anyhow!("idempotency record has no response"))
        })?;
        Ok(Some(
            serde_json::from_str(response).map_err(|e| ServiceError::Internal(e.into()))?,
        ))
    }

    /// The answer to a request that lost the race for its key to a request still in
    /// progress (its record is not readable yet).
    pub fn in_progress() -> ServiceError {
        ServiceError::Conflict("a request with this Idempotency-Key is in progress".into())
    }

    /// The transaction operation that records `response` for this key; its condition
    /// fails when an unexpired record exists (a concurrent request won).
    pub fn record_op(
        &self,
        user: &UserId,
        response: &impl Serialize,
        now: Timestamp,
    ) -> Result<WriteOp, ServiceError> {
        let response =
            serde_json::to_string(response).map_err(|e| ServiceError::Internal(e.into()))?;
        let now_seconds = now.unix_millis() / 1000;
        let item = Item::new(keys::idempotency(user, &self.key))
            .with(attrs::KIND, AttrValue::S(kind::IDEMPOTENCY.into()))
            .with(REQUEST_HASH, AttrValue::S(self.request_hash.clone()))
            .with(RESPONSE, AttrValue::S(response))
            .with(EXPIRES_AT, AttrValue::N(now_seconds + RETENTION_SECONDS));
        Ok(WriteOp::Put {
            item,
            condition: Some(Condition::Or(vec![
                Condition::NotExists,
                Condition::LessThan(EXPIRES_AT.into(), now_seconds + 1),
            ])),
        })
    }
}

/// The response an earlier request with `idempotency`'s key got ([`Idempotency::replay`]);
/// `None` without a key.
pub async fn replayed<T: DeserializeOwned>(
    idempotency: Option<&Idempotency>,
    store: &Store,
    user: &UserId,
    now: Timestamp,
) -> Result<Option<T>, ServiceError> {
    match idempotency {
        Some(idem) => idem.replay(store, user, now).await,
        None => Ok(None),
    }
}
