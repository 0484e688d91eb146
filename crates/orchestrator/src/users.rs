//! Users and API keys. A key is shown once, when issued; only its SHA-256 is stored, so
//! a leaked table does not leak credentials. Each key has an id (`key_...`) by which its
//! user — or an administrator — lists and revokes it; a revoked key gets no more tokens
//! (tokens it got before stay valid until they expire: they are not looked up).

use std::sync::Arc;

use crate::attrs;
use crate::codec::UserKey;
use crate::context::{Caller, Core};
use crate::error::ServiceError;
use crate::transactions::{self, BootstrapAdminError, IssueKeyError, RevokeKeyError};
use rand::Rng;
use sha2::{Digest, Sha256};
use tlao_domain::{ApiKeyRecord, KeyId, Name, Timestamp, User, UserId, keys};
use tlao_ports::{AttrValue, Condition, Direction, Item, Query, Update};

/// How stale a key's last use may be before authenticating with it records it again:
/// at most one write per key per minute.
const LAST_USED_PRECISION_MILLIS: i64 = 60_000;

/// A key of a user as listed: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySummary {
    /// Its record (id, hash, user, creation).
    pub record: ApiKeyRecord,
    /// When it last got a token, to the minute; `None` when never (or not since it was
    /// last recorded).
    pub last_used_at: Option<Timestamp>,
}

/// A newly issued key of an existing user and the only copy of it.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    /// Its record.
    pub record: ApiKeyRecord,
    /// The API key, in clear; never stored.
    pub api_key: String,
}

/// The prefix of every API key, so keys are recognisable in logs and secret scanners.
pub const API_KEY_PREFIX: &str = "tlao_";

/// A newly created user and the only copy of its API key.
#[derive(Debug, Clone)]
pub struct IssuedUser {
    /// The user.
    pub user: User,
    /// The API key, in clear; never stored.
    pub api_key: String,
    /// The key's id.
    pub key_id: KeyId,
}

/// Creates users, issues API keys and authenticates them.
pub struct UserService {
    core: Arc<Core>,
}

/// The hex SHA-256 of an API key, as stored.
pub fn hash_api_key(api_key: &str) -> String {
    hex_lower(&Sha256::digest(api_key.as_bytes()))
}

pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn new_api_key() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let secret: String = (0..40)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{API_KEY_PREFIX}{secret}")
}

impl UserService {
    /// The service over shared dependencies.
    pub fn new(core: Arc<Core>) -> Self {
        UserService { core }
    }

    /// Creates a user with a fresh API key (administrators only).
    pub async fn create(&self, caller: &Caller, name: &str) -> Result<IssuedUser, ServiceError> {
        self.core.require_admin(caller, "create users")?;
        let name = Name::try_from(name.to_owned())
            .map_err(|e| ServiceError::invalid("name", e.to_string()))?;
        self.create_unchecked(name, false).await
    }

    /// Creates the first administrator, once per table: the creation is atomic with a
    /// bootstrap marker, so two servers starting together create one admin. Returns
    /// `None` when an administrator was already bootstrapped.
    pub async fn bootstrap_admin(&self, name: Name) -> Result<Option<IssuedUser>, ServiceError> {
        if self
            .core
            .store
            .get_item(&keys::bootstrap())
            .await?
            .is_some()
        {
            return Ok(None);
        }
        let issued = self.build(name, true);
        let key = self.key_record(&issued);
        match transactions::bootstrap_admin(&self.core.store, &issued.user, &key).await {
            Ok(()) => Ok(Some(issued)),
            Err(BootstrapAdminError::AlreadyBootstrapped) => Ok(None),
            Err(BootstrapAdminError::Store(error)) => Err(error.into()),
        }
    }

    /// The administrator created by [`UserService::bootstrap_admin`], if any.
    pub async fn bootstrap_admin_id(&self) -> Result<Option<UserId>, ServiceError> {
        let Some(marker) = self.core.store.get_item(&keys::bootstrap()).await? else {
            return Ok(None);
        };
        let id = marker
            .s(attrs::USER_ID)
            .and_then(|text| text.parse::<UserId>().ok())
            .ok_or_else(|| {
                ServiceError::Internal(anyhow::anyhow!("the bootstrap marker names no valid user"))
            })?;
        Ok(Some(id))
    }

    /// Issues an additional API key for an existing user (e.g. an administrator whose
    /// key file was lost). Earlier keys stay valid.
    pub async fn issue_key(&self, user_id: &UserId) -> Result<String, ServiceError> {
        Ok(self.store_new_key(user_id).await?.api_key)
    }

    /// Issues a new API key to `user_id` for the caller (the user themself or an
    /// administrator); the caller's other keys stay valid until revoked (rotation is
    /// a create then a revoke). Errors: `Forbidden`, `NotFound` for the user.
    pub async fn create_key(
        &self,
        caller: &Caller,
        user_id: &UserId,
    ) -> Result<IssuedKey, ServiceError> {
        self.require_self_or_admin(caller, user_id).await?;
        let issued = self.store_new_key(user_id).await?;
        tracing::info!(
            user_id = %user_id, key_id = %issued.record.key_id, operation = "create_key",
            "API key issued"
        );
        Ok(issued)
    }

    /// The keys of `user_id`, oldest first, with when each was last used. Errors:
    /// `Forbidden`, `NotFound` for the user.
    pub async fn list_keys(
        &self,
        caller: &Caller,
        user_id: &UserId,
    ) -> Result<Vec<KeySummary>, ServiceError> {
        self.require_self_or_admin(caller, user_id).await?;
        let mut records = Vec::new();
        let mut cursor = None;
        loop {
            let query = Query::new(keys::keys_of(user_id), Direction::Forward, 100).after(cursor);
            let (page, next) = self.core.store.query::<UserKey>(query).await?;
            records.extend(page.into_iter().map(|UserKey(record)| record));
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let keys: Vec<_> = records
            .iter()
            .map(|record| keys::api_key(&record.key_hash))
            .collect();
        let reads = keys.iter().map(|key| self.core.store.get_item(key));
        let items = futures::future::try_join_all(reads).await?;
        Ok(records
            .into_iter()
            .zip(items)
            .map(|(record, item)| KeySummary {
                record,
                last_used_at: item.as_ref().and_then(last_used_at),
            })
            .collect())
    }

    /// Revokes the key `key_id` of `user_id`: it can no longer get a token; tokens it
    /// already got expire as they would. Errors: `Forbidden`, `NotFound` for the user
    /// or the key.
    pub async fn revoke_key(
        &self,
        caller: &Caller,
        user_id: &UserId,
        key_id: &KeyId,
    ) -> Result<(), ServiceError> {
        self.require_self_or_admin(caller, user_id).await?;
        let UserKey(record) = self
            .core
            .store
            .get::<UserKey>(&keys::user_key(user_id, key_id))
            .await?
            .ok_or_else(|| ServiceError::not_found("API key", key_id))?;
        match transactions::revoke_key(&self.core.store, &record).await {
            Ok(()) => {}
            Err(RevokeKeyError::KeyGone) => return Err(ServiceError::not_found("API key", key_id)),
            Err(RevokeKeyError::Store(error)) => return Err(error.into()),
        }
        tracing::info!(
            user_id = %user_id, key_id = %key_id, operation = "revoke_key", "API key revoked"
        );
        Ok(())
    }

    /// Finds the user an API key belongs to, and records that the key was used.
    pub async fn authenticate(&self, api_key: &str) -> Result<User, ServiceError> {
        let rejected = || ServiceError::Unauthenticated("the API key is not valid".into());
        if !api_key.starts_with(API_KEY_PREFIX) {
            return Err(rejected());
        }
        let item = self
            .core
            .store
            .get_item(&keys::api_key(&hash_api_key(api_key)))
            .await?
            .ok_or_else(rejected)?;
        let record = crate::codec::decode::<ApiKeyRecord>(&item)?;
        let user = self.get(&record.user_id).await?.ok_or_else(rejected)?;
        self.note_use(&item, &record).await;
        Ok(user)
    }

    /// Reads a user.
    pub async fn get(&self, user_id: &UserId) -> Result<Option<User>, ServiceError> {
        Ok(self.core.store.get::<User>(&keys::user(user_id)).await?)
    }

    /// The caller may manage `user_id`'s keys: they are that user or an administrator
    /// (`Forbidden` otherwise, whether or not the user exists), and the user exists
    /// (`NotFound`).
    async fn require_self_or_admin(
        &self,
        caller: &Caller,
        user_id: &UserId,
    ) -> Result<(), ServiceError> {
        if caller.user_id != *user_id && !caller.admin {
            return Err(ServiceError::Forbidden(
                "you may manage only your own API keys".into(),
            ));
        }
        if self.get(user_id).await?.is_none() {
            return Err(ServiceError::not_found("user", user_id));
        }
        Ok(())
    }

    async fn store_new_key(&self, user_id: &UserId) -> Result<IssuedKey, ServiceError> {
        let api_key = new_api_key();
        let record = ApiKeyRecord {
            key_hash: hash_api_key(&api_key),
            key_id: KeyId::new(self.core.new_ulid()),
            user_id: user_id.clone(),
            created_at: self.core.now(),
        };
        match transactions::issue_key(&self.core.store, &record).await {
            Ok(()) => Ok(IssuedKey { record, api_key }),
            Err(IssueKeyError::UserGone) => Err(ServiceError::not_found("user", user_id)),
            Err(IssueKeyError::Store(error)) => Err(error.into()),
        }
    }

    /// Records the use of a key (at most once a minute), and gives a key from before
    /// keys had ids its listing item. Best effort: a failure is logged, and the key
    /// still authenticates.
    async fn note_use(&self, item: &Item, record: &ApiKeyRecord) {
        let now = self.core.now();
        let fresh =
            last_used_at(item).is_some_and(|at| now.millis_since(at) < LAST_USED_PRECISION_MILLIS);
        if fresh {
            return;
        }
        let store = &self.core.store;
        let written = if stored_without_id(item) {
            transactions::adopt_legacy_key(store, record, now).await
        } else {
            store
                .update(
                    &keys::api_key(&record.key_hash),
                    Update::new().set(attrs::LAST_USED_AT, AttrValue::N(now.unix_millis())),
                    Some(Condition::Exists),
                )
                .await
                .map(drop)
        };
        if let Err(error) = written {
            tracing::warn!(
                user_id = %record.user_id, key_id = %record.key_id, %error,
                "cannot record the use of an API key"
            );
        }
    }

    async fn create_unchecked(&self, name: Name, admin: bool) -> Result<IssuedUser, ServiceError> {
        let issued = self.build(name, admin);
        transactions::create_user(&self.core.store, &issued.user, &self.key_record(&issued))
            .await?;
        tracing::info!(user_id = %issued.user.user_id, admin, operation = "create_user", "user created");
        Ok(issued)
    }

    fn build(&self, name: Name, admin: bool) -> IssuedUser {
        IssuedUser {
            user: User {
                user_id: UserId::new(self.core.new_ulid()),
                name,
                admin,
                created_at: self.core.now(),
            },
            api_key: new_api_key(),
            key_id: KeyId::new(self.core.new_ulid()),
        }
    }

    fn key_record(&self, issued: &IssuedUser) -> ApiKeyRecord {
        ApiKeyRecord {
            key_hash: hash_api_key(&issued.api_key),
            key_id: issued.key_id.clone(),
            user_id: issued.user.user_id.clone(),
            created_at: issued.user.created_at,
        }
    }
}

/// When the key of a `KEY#{hash}` item last got a token, as recorded.
fn last_used_at(item: &Item) -> Option<Timestamp> {
    item.n(attrs::LAST_USED_AT).map(Timestamp::from_unix_millis)
}

/// Whether a `KEY#{hash}` item was written before keys had ids (its document has no
/// `keyId`): such a key has no listing item yet.
fn stored_without_id(item: &Item) -> bool {
    item.s(attrs::DOC)
        .and_then(|doc| serde_json::from_str::<serde_json::Value>(doc).ok())
        .is_some_and(|doc| doc.get("keyId").is_none())
}
