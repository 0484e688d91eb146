//! Users and API keys. A key is shown once, when issued; only its SHA-256 is stored, so
//! a leaked table does not leak credentials.

use std::sync::Arc;

use crate::attrs;
use crate::context::{Caller, Core};
use crate::error::ServiceError;
use crate::transactions::{self, BootstrapAdminError};
use rand::Rng;
use sha2::{Digest, Sha256};
use tlao_domain::{ApiKeyRecord, Name, User, UserId, keys};

/// The prefix of every API key, so keys are recognisable in logs and secret scanners.
pub const API_KEY_PREFIX: &str = "tlao_";

/// A newly created user and the only copy of its API key.
#[derive(Debug, Clone)]
pub struct IssuedUser {
    /// The user.
    pub user: User,
    /// The API key, in clear; never stored.
    pub api_key: String,
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
        let user = self
            .get(user_id)
            .await?
            .ok_or_else(|| ServiceError::not_found("user", user_id))?;
        let api_key = new_api_key();
        let record = ApiKeyRecord {
            key_hash: hash_api_key(&api_key),
            user_id: user.user_id,
            created_at: self.core.now(),
        };
        self.core.store.insert(&record).await?;
        Ok(api_key)
    }

    /// Finds the user an API key belongs to.
    pub async fn authenticate(&self, api_key: &str) -> Result<User, ServiceError> {
        let rejected = || ServiceError::Unauthenticated("the API key is not valid".into());
        if !api_key.starts_with(API_KEY_PREFIX) {
            return Err(rejected());
        }
        let record = self
            .core
            .store
            .get::<ApiKeyRecord>(&keys::api_key(&hash_api_key(api_key)))
            .await?
            .ok_or_else(rejected)?;
        self.get(&record.user_id).await?.ok_or_else(rejected)
    }

    /// Reads a user.
    pub async fn get(&self, user_id: &UserId) -> Result<Option<User>, ServiceError> {
        Ok(self.core.store.get::<User>(&keys::user(user_id)).await?)
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
        }
    }

    fn key_record(&self, issued: &IssuedUser) -> ApiKeyRecord {
        ApiKeyRecord {
            key_hash: hash_api_key(&issued.api_key),
            user_id: issued.user.user_id.clone(),
            created_at: issued.user.created_at,
        }
    }
}
