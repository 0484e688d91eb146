//! Creating a user with its first API key, the first administrator (once per table),
//! and issuing and revoking API keys. A key is two items written and deleted together:
//! `KEY#{hash}`, which authenticates it, and `USER#{user}/KEY#{keyId}`, which lists and
//! revokes it by id.

use tlao_domain::{ApiKeyRecord, User, keys};
use tlao_ports::{AttrValue, Condition, Item, WriteOp};

use crate::attrs;
use crate::codec::UserKey;
use crate::store::{Store, StoreError};
use crate::transaction::Transaction;

/// Why [`bootstrap_admin`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapAdminError {
    /// An administrator was bootstrapped already (perhaps by another server starting
    /// at the same time).
    #[error("an administrator was already bootstrapped")]
    AlreadyBootstrapped,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why [`revoke_key`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum RevokeKeyError {
    /// The key is not there (any more): revoked by another request first.
    #[error("the key does not exist")]
    KeyGone,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Stores a new `user` and the record of its API key.
pub async fn create_user(store: &Store, user: &User, key: &ApiKeyRecord) -> Result<(), StoreError> {
    let mut tx = Transaction::new();
    tx.insert(user)?
        .insert(key)?
        .insert(&UserKey(key.clone()))?;
    tx.commit(store).await
}

/// Why [`issue_key`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum IssueKeyError {
    /// The key's user does not exist.
    #[error("the user does not exist")]
    UserGone,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Stores the record of a new API key of an existing user, on both sides.
pub async fn issue_key(store: &Store, key: &ApiKeyRecord) -> Result<(), IssueKeyError> {
    let mut tx = Transaction::new();
    tx.guarded(
        WriteOp::Check {
            key: keys::user(&key.user_id),
            condition: Condition::Exists,
        },
        IssueKeyError::UserGone,
    )
    .insert(key)?
    .insert(&UserKey(key.clone()))?;
    tx.commit(store).await
}

/// Gives the key `key`, stored before keys had ids, its id in its document and its
/// listing item, and records its use at `now`. Nothing happens when another request
/// adopted it first or it was revoked meanwhile.
pub async fn adopt_legacy_key(
    store: &Store,
    key: &ApiKeyRecord,
    now: tlao_domain::Timestamp,
) -> Result<(), StoreError> {
    let mut item = crate::codec::encode(key)?;
    item.attrs
        .insert(attrs::LAST_USED_AT.into(), AttrValue::N(now.unix_millis()));
    let mut tx = Transaction::new();
    tx.push(WriteOp::Put {
        item,
        condition: Some(Condition::Exists),
    })
    .insert(&UserKey(key.clone()))?;
    match tx.commit(store).await {
        Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
        Err(other) => Err(other),
    }
}

/// Deletes both items of the API key `key`: it can no longer get a token.
pub async fn revoke_key(store: &Store, key: &ApiKeyRecord) -> Result<(), RevokeKeyError> {
    let mut tx = Transaction::new();
    tx.guarded(
        WriteOp::Delete {
            key: keys::user_key(&key.user_id, &key.key_id),
            condition: Some(Condition::Exists),
        },
        RevokeKeyError::KeyGone,
    )
    .push(WriteOp::Delete {
        key: keys::api_key(&key.key_hash),
        condition: None,
    });
    tx.commit(store).await
}

/// Stores the first administrator `user` and its API key with the bootstrap marker that
/// names it, unless the marker exists.
pub async fn bootstrap_admin(
    store: &Store,
    user: &User,
    key: &ApiKeyRecord,
) -> Result<(), BootstrapAdminError> {
    let mut tx = Transaction::new();
    tx.guarded(
        WriteOp::Put {
            item: Item::new(keys::bootstrap())
                .with(attrs::USER_ID, AttrValue::S(user.user_id.to_string())),
            condition: Some(Condition::NotExists),
        },
        BootstrapAdminError::AlreadyBootstrapped,
    )
    .insert(user)?
    .insert(key)?
    .insert(&UserKey(key.clone()))?;
    tx.commit(store).await
}

#[cfg(test)]
mod tests {
    use tlao_domain::{Guardrails, Name, UserId};

    use super::*;
    use crate::transactions::testing::World;

    fn admin(world: &World) -> (User, ApiKeyRecord) {
        let core = world.core();
        let user = User {
            user_id: UserId::new(core.new_ulid()),
            name: Name::try_from("admin".to_owned()).expect("a name"),
            admin: true,
            created_at: core.now(),
        };
        let key = ApiKeyRecord {
            key_hash: format!("hash of {}", user.user_id),
            key_id: tlao_domain::KeyId::new(core.new_ulid()),
            user_id: user.user_id.clone(),
            created_at: core.now(),
        };
        (user, key)
    }

    #[tokio::test]
    async fn bootstrapping_a_second_administrator_is_refused_as_already_bootstrapped() {
        let world = World::new(Guardrails::default());
        let store = &world.core().store;
        let (user, key) = admin(&world);
        bootstrap_admin(store, &user, &key)
            .await
            .expect("the first administrator is bootstrapped");

        let (user, key) = admin(&world);
        let refused = bootstrap_admin(store, &user, &key).await;

        assert!(
            matches!(refused, Err(BootstrapAdminError::AlreadyBootstrapped)),
            "{refused:?}"
        );
    }
}

#[cfg(test)]
mod key_tests {
    use tlao_domain::{Guardrails, KeyId, Name, UserId};

    use super::*;
    use crate::transactions::testing::World;

    #[tokio::test]
    async fn a_key_revoked_twice_is_refused_as_gone_the_second_time() {
        let world = World::new(Guardrails::default());
        let core = world.core();
        let user = User {
            user_id: UserId::new(core.new_ulid()),
            name: Name::try_from("ann".to_owned()).expect("a name"),
            admin: false,
            created_at: core.now(),
        };
        let key = ApiKeyRecord {
            key_hash: "ab".repeat(32),
            key_id: KeyId::new(core.new_ulid()),
            user_id: user.user_id.clone(),
            created_at: core.now(),
        };
        create_user(&core.store, &user, &key).await.expect("stored");

        revoke_key(&core.store, &key).await.expect("revoked");
        let again = revoke_key(&core.store, &key).await;

        assert!(matches!(again, Err(RevokeKeyError::KeyGone)), "{again:?}");
        assert!(
            core.store
                .get_item(&keys::api_key(&key.key_hash))
                .await
                .expect("a read")
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_key_for_a_user_who_does_not_exist_is_not_stored() {
        let world = World::new(Guardrails::default());
        let core = world.core();
        let key = ApiKeyRecord {
            key_hash: "cd".repeat(32),
            key_id: KeyId::new(core.new_ulid()),
            user_id: UserId::new(core.new_ulid()),
            created_at: core.now(),
        };

        let refused = issue_key(&core.store, &key).await;

        assert!(
            matches!(refused, Err(IssueKeyError::UserGone)),
            "{refused:?}"
        );
    }
}
